"""Fine-tune pretrained params on downstream tasks and score them by batched greedy decoding.

Per-task mode restarts every task from the pretrained params (the paper's ablation protocol);
multi-task mode trains once on an examples-proportional mixture (rate = min(n_task, cap)). Scores are
kept for the last evaluation and for the best one (the paper reports the best), and the best one's
predictions are saved so any score can be recomputed from `predictions/<task>.jsonl`. After the last task,
the best predictions are bootstrapped over the validation examples (data/bootstrap.py) for result.json's
`bootstrap` field; this uses its own random stream, after training, so training is unchanged.

Fine-tuning is checkpointed per task (per_task) or per mixture (multi_task) at every evaluation
(finetune_resume.py): a killed run resumes each unfinished task from its last evaluation, skips finished ones,
and ends with the same scores, metrics rows and predictions as an uninterrupted run.

Every token counts: training batches are packed by default (Finetune.packing, data/packing.py), and each
training metrics row logs `packing_ratio` (real tokens / token slots, encoder and decoder together) and
`real_tokens_per_s` beside `tokens_per_s` (padded encoder slots per second, T5's count, as pretraining logs it).
Per-task groups share one Trainer, reset to the pretrained params for each task, so the train step is compiled
once.
Evaluation decodes examples sorted by input length, each batch cut to the width its longest input needs
(train/predict.py).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from t5explore.run_config import Finetune
from t5explore.train import finetune_resume as resume
from t5explore.train.checkpoints import require_finite, restore_window, window_state
from t5explore.train.faults import kill_point
from t5explore.train.finetune_data import (  # noqa: F401 - re-exported: callers import them from here
    MixtureSampler,
    PackedSampler,
    TokenizedTask,
    batch_token_counts,
    detokenize,
    encode,
    load_task,
    make_sampler,
    prepare_tasks,
    report_truncation,
    tokenize,
    train_subset,
    validation_examples,
)
from t5explore.train.finetune_records import FinetuneOutcome, TaskRecord
from t5explore.train.predict import predict, predictions_path, save_predictions
from t5explore.train.pretrain import check_finite
from t5explore.train.trainer import Trainer
from t5explore.train.writers import MetricsWriter, Progress


@dataclasses.dataclass
class _Context:
    """What every group of one `finetune` call shares."""

    decode_fn: Callable
    cfg: Finetune
    vocab: Any
    writer: MetricsWriter
    run_dir: Path
    seed: int
    records: dict
    out: FinetuneOutcome
    progress_stream: Any = None
    on_checkpoint: Callable[[FinetuneOutcome], None] | None = None
    trainer: Trainer | None = None  # the one Trainer every group uses (reset to the pretrained params)


@dataclasses.dataclass
class _Group:
    """Tasks trained together (one, or a mixture), and where their training stands."""

    name: str
    members: list  # TokenizedTask
    trainer: Trainer
    sampler: MixtureSampler
    ckpt: resume.GroupCheckpoint
    start: int = 0
    window: list = dataclasses.field(default_factory=list)  # train-step metrics not yet in a metrics row
    t_start: float = 0.0
    eval_time: float = 0.0
    compile0: float = 0.0  # the trainer's compile_s / train_compile_s when this group started
    train_compile0: float = 0.0

    def compile_s(self) -> float:
        return self.trainer.compile_s - self.compile0

    def train_compile_s(self) -> float:
        return self.trainer.train_compile_s - self.train_compile0

    @property
    def phase(self) -> str:
        return f"finetune/{self.name}"


def finetune(
    make_trainer: Callable[[int], Trainer],
    decode_fn: Callable,
    cfg: Finetune,
    tasks: dict[str, Any],
    vocab,
    writer: MetricsWriter,
    run_dir: str | Path,
    seed: int,
    progress_stream=None,
    on_checkpoint: Callable[[FinetuneOutcome], None] | None = None,
) -> FinetuneOutcome:
    """Fine-tune and evaluate every task in `tasks` ({name: DownstreamTask}).

    `make_trainer(total_steps)` returns a Trainer starting from the pretrained params with the fine-tuning
    optimiser; `decode_fn(params, inputs[B, I]) -> ids[B, targets_length]` is batched greedy decoding.
    Checkpointed under run_dir/checkpoints/finetune/ (finetune_resume.py): a resumed run continues each task
    from its last evaluation and skips finished ones. `on_checkpoint(outcome)` gets the timing so far after
    every checkpoint.
    """
    cfg.validate()
    names = list(tasks)
    selected_on = "selection" if cfg.selection_examples else "validation"
    records = {name: TaskRecord(task.primary_metric, selected_on=selected_on) for name, task in tasks.items()}
    ctx = _Context(
        decode_fn,
        cfg,
        vocab,
        writer,
        Path(run_dir),
        seed,
        records,
        FinetuneOutcome(downstream={}),
        progress_stream,
        on_checkpoint,
    )
    groups = [[i] for i in range(len(names))] if cfg.mode == "per_task" else [list(range(len(names)))]
    members = [[names[i] for i in group] for group in groups]
    ours = set().union(*(resume.group_phases(resume.group_name(m), m) for m in members))
    logged = {r["phase"] for r in writer.rows() if str(r.get("phase", "")).startswith("finetune")}
    writer.discard_phases(logged - ours)  # tasks this config does not fine-tune (any more)
    for group in groups:
        _run_group(ctx, make_trainer, tasks, group)
    ctx.out.downstream = {name: rec.as_dict() for name, rec in records.items()}
    ctx.out.bootstrap = _bootstrap_best(ctx, tasks)
    return ctx.out


def _run_group(ctx: _Context, make_trainer: Callable[[int], Trainer], tasks: dict[str, Any], group: list[int]) -> None:
    """Train and evaluate one group, resuming from its checkpoint; a group finished before is only read back."""
    cfg, names = ctx.cfg, list(tasks)
    members = [names[i] for i in group]
    name = resume.group_name(members)
    phases = resume.group_phases(name, members)
    ckpt = resume.GroupCheckpoint(ctx.run_dir, name, resume.signature(cfg, members, ctx.seed))
    try:
        saved = ckpt.saved()
        if saved is not None and saved["finished"]:
            for m in members:
                ctx.records[m].restore(saved["records"][m])
            ctx.writer.discard_phases(phases, after=saved["step"])
            print(f"finetune/{name}: finished by an earlier attempt; not redone", flush=True)
            return
        loaded = [load_task(m, tasks[m], cfg, ctx.vocab) for m in members]
        trainer = _trainer(ctx, make_trainer)
        g = _Group(
            name,
            loaded,
            trainer,
            make_sampler(loaded, cfg, ctx.seed, group),
            ckpt,
            compile0=trainer.compile_s,
            train_compile0=trainer.train_compile_s,
        )
        if saved is None:
            ctx.writer.discard_phases(phases)
        else:
            g.start = saved["step"]
            trainer.state = ckpt.restore_state(trainer.state, g.start)
            g.sampler.restore(saved["sampler"])
            for m in members:
                ctx.records[m].restore(saved["records"][m])
            g.window = restore_window(saved["log_window"])
            ctx.writer.discard_phases(phases, after=g.start)
            print(f"{g.phase}: resumed from checkpoint at step {g.start}", flush=True)
        _train_and_evaluate(ctx, g)
        ctx.out.compile_s += g.compile_s()
    finally:
        ckpt.close()


def _trainer(ctx: _Context, make_trainer: Callable[[int], Trainer]) -> Trainer:
    """The Trainer of the next group: made once, then reset to the pretrained params. Every group has the
    same model, optimiser, step count and batch shapes, so its compiled step serves them all (what was compiled
    and what the persistent cache served are in result.json's timing: compiles, compile_cache_hits)."""
    if ctx.trainer is None:
        ctx.trainer = make_trainer(max(ctx.cfg.steps, 1))
        return ctx.trainer
    ctx.trainer.reset()
    return ctx.trainer


def _bootstrap_best(ctx: _Context, tasks: dict[str, Any]) -> dict | None:
    """Bootstrap intervals of the best evaluation of every task; its time counts as evaluation time. The best
    predictions of a task finished by an earlier attempt are read back from its predictions file."""
    from t5explore.data.bootstrap import EvalSet, bootstrap_report

    t0 = time.perf_counter()
    evals = {}
    for name, task in tasks.items():
        rec = ctx.records[name]
        if rec.best is None:
            continue
        val = validation_examples(task, ctx.cfg)
        preds = rec.best_predictions
        if preds is None:
            preds = resume.read_predictions(predictions_path(ctx.run_dir, name), rec.saved_hash)
        evals[name] = EvalSet([e.targets for e in val], preds, [e.meta for e in val], task.score)
    report = bootstrap_report(evals, ctx.seed) if evals else None
    ctx.out.eval_s += time.perf_counter() - t0
    return report


def _train_and_evaluate(ctx: _Context, g: _Group) -> None:
    cfg, trainer = ctx.cfg, g.trainer
    progress = Progress(g.phase, cfg.steps, g.start, stream=ctx.progress_stream)
    tokens_per_step = cfg.batch_size * cfg.inputs_length
    window, t_window = g.window, time.perf_counter()
    g.t_start, compile0 = time.perf_counter(), trainer.train_compile_s
    if cfg.steps == 0:  # no fine-tuning: score the pretrained model as it is
        g.eval_time += _evaluate(ctx, trainer, g.members, 0)
        _checkpoint(ctx, g, 0, window)
    for step in range(g.start, cfg.steps):
        batch = g.sampler.batch(step)
        real, slots = batch_token_counts(batch)
        window.append({**trainer.train_step(batch), "real_tokens": np.int64(real), "token_slots": np.int64(slots)})
        ctx.out.train_steps += 1
        ctx.out.real_tokens, ctx.out.token_slots = ctx.out.real_tokens + real, ctx.out.token_slots + slots
        ctx.out.encoder_slots += tokens_per_step
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            fetched = jax.device_get(window)
            loss = float(np.mean([m["loss"] for m in fetched]))
            acc = float(np.mean([m["accuracy"] for m in fetched]))
            check_finite(loss, done, g.phase)
            elapsed = max(time.perf_counter() - t_window - (trainer.train_compile_s - compile0), 1e-9)
            tps = len(window) * tokens_per_step / elapsed
            real = sum(int(m["real_tokens"]) for m in fetched)
            ratio = real / max(sum(int(m["token_slots"]) for m in fetched), 1)
            ctx.writer.write(
                g.phase,
                done,
                {
                    "tokens_seen": done * tokens_per_step,
                    "loss": loss,
                    "accuracy": acc,
                    "learning_rate": trainer.learning_rate(step),
                    "tokens_per_s": tps,
                    "real_tokens_per_s": real / elapsed,
                    "packing_ratio": ratio,
                },
            )
            progress.report(done, loss=loss, acc=acc, tokens_per_s=tps, real_tokens_per_s=real / elapsed, packing=ratio)
            window, t_window, compile0 = [], time.perf_counter(), trainer.train_compile_s
        if (cfg.eval_every and done % cfg.eval_every == 0) or done == cfg.steps:
            dt = _evaluate(ctx, trainer, g.members, done)
            g.eval_time += dt
            t_window += dt + _checkpoint(ctx, g, done, window)
    ctx.out.eval_s += g.eval_time
    ctx.out.finetune_s += time.perf_counter() - g.t_start - g.eval_time - g.train_compile_s()


def _checkpoint(ctx: _Context, g: _Group, step: int, window: list) -> float:
    """Checkpoint the group after its evaluation at `step` (the data item alone once it is finished); report
    the timing so far. Returns the seconds it took."""
    t0 = time.perf_counter()
    finished = step == ctx.cfg.steps
    if finished and ctx.cfg.steps:  # the finishing checkpoint holds no state, but must not record a diverged one
        require_finite(g.trainer.state, f"the fine-tuning checkpoint of {g.phase} at step {step}")
    data = {
        "finished": finished,
        "sampler": g.sampler.state(),
        "log_window": window_state(window),
        "records": {t.name: ctx.records[t.name].state() for t in g.members},
    }
    g.ckpt.save(step, None if finished else g.trainer.state, data)
    if ctx.on_checkpoint is not None:
        now = time.perf_counter()
        ctx.on_checkpoint(
            dataclasses.replace(
                ctx.out,
                eval_s=ctx.out.eval_s + g.eval_time,
                compile_s=ctx.out.compile_s + g.compile_s(),
                finetune_s=ctx.out.finetune_s + now - g.t_start - g.eval_time - g.train_compile_s(),
            )
        )
    return time.perf_counter() - t0


def _score(ctx: _Context, trainer, t, inputs, examples) -> tuple[dict, list[str]]:
    """(scores, predictions) of greedy decoding on `examples` of task `t`; the primary metric must be scored."""
    ids = predict(ctx.decode_fn, trainer.params, inputs, ctx.cfg.eval_batch_size or ctx.cfg.batch_size)
    predictions = detokenize(ids, ctx.vocab)
    raw = t.task.score([e.targets for e in examples], predictions, [e.meta for e in examples])
    scores = {k: float(v) for k, v in raw.items()}
    primary = ctx.records[t.name].primary_metric
    if primary not in scores:
        raise KeyError(f"task {t.name}: score() returned {sorted(scores)}, not its primary metric {primary!r}")
    return scores, predictions


def _log_scores(ctx: _Context, phase: str, step: int, scores: dict, n: int) -> None:
    ctx.writer.write(phase, step, {**scores, "num_examples": n})
    print(f"{phase} step {step}: " + "  ".join(f"{k} {v:.2f}" for k, v in scores.items()), flush=True)


def _evaluate(ctx: _Context, trainer, members, step) -> float:
    """Score each task's selection examples (if any) and validation examples, update best/last (best chosen on
    the selection examples when there are any), save the best validation predictions."""
    t0 = time.perf_counter()
    for t in members:
        selection = None
        if t.sel_examples:
            selection, _ = _score(ctx, trainer, t, t.sel_inputs, t.sel_examples)
            _log_scores(ctx, f"finetune_select/{t.name}", step, selection, len(t.sel_examples))
        scores, predictions = _score(ctx, trainer, t, t.val_inputs, t.val_examples)
        rec = ctx.records[t.name]
        rec.last = scores
        if rec.improves(scores, selection):
            rec.best, rec.best_step, rec.best_predictions = scores, step, predictions
            rec.best_selection = selection
            save_predictions(predictions_path(ctx.run_dir, t.name), t.val_examples, predictions)
        kill_point(f"eval/{t.name}", step)
        _log_scores(ctx, f"finetune_eval/{t.name}", step, scores, len(t.val_examples))
    return time.perf_counter() - t0
