"""Fine-tune pretrained params on downstream tasks and score them by batched greedy decoding.

Per-task mode restarts every task from the pretrained params (the paper's ablation protocol);
multi-task mode trains once on an examples-proportional mixture (rate = min(n_task, cap)). Scores are
kept for the last evaluation and for the best one (the paper reports the best), and the best one's
predictions are saved so any score can be recomputed from `predictions/<task>.jsonl`. After the last task,
the best predictions are bootstrapped over the validation examples (data/bootstrap.py) for result.json's
`bootstrap` field; this uses its own random stream, after training, so training is unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import jax
import numpy as np

from t5explore.config import ConfigError
from t5explore.data.features import EOS_ID
from t5explore.io_utils import atomic_write_text
from t5explore.seeds import STREAM_FINETUNE_ORDER, STREAM_MIXTURE, STREAM_TRAIN_SUBSET, numpy_rng
from t5explore.train.config import Finetune
from t5explore.train.pretrain import check_finite
from t5explore.train.trainer import Trainer
from t5explore.train.writers import MetricsWriter, Progress


@dataclasses.dataclass
class TokenizedTask:
    name: str
    task: Any  # DownstreamTask
    train_inputs: np.ndarray
    train_targets: np.ndarray
    val_examples: list  # TextExample, capped at eval_max_examples
    val_inputs: np.ndarray


def encode(texts: Sequence[str], vocab, length: int) -> tuple[np.ndarray, int]:
    """Encode, append EOS, truncate to `length` (EOS kept last) and right-pad with 0; also how many texts
    were truncated."""
    ids = vocab.encode_batch(list(texts)) if hasattr(vocab, "encode_batch") else [vocab.encode(t) for t in texts]
    out = np.zeros((len(ids), length), np.int32)
    truncated = 0
    for row, seq in enumerate(ids):
        if len(seq) + 1 > length:
            truncated += 1
            seq = seq[: length - 1]
        out[row, : len(seq)] = seq
        out[row, len(seq)] = EOS_ID
    return out, truncated


def tokenize(texts: Sequence[str], vocab, length: int, what: str) -> np.ndarray:
    """`encode`; truncation is never silent: one line on stderr says how many of `what` were cut."""
    out, truncated = encode(texts, vocab, length)
    report_truncation(what, [("texts", truncated, len(out), length)])
    return out


def report_truncation(what: str, parts: Sequence[tuple[str, int, int, int]]) -> None:
    """One line on stderr for (kind, truncated, total, length) parts with any truncation, e.g.
    `warning: task glue_rte train: truncated 12 of 2490 inputs to 512 tokens (0.5%), 3 of 2490 targets ...`."""
    cut = [f"{n} of {total} {kind} to {length} tokens ({100 * n / max(total, 1):.1f}%)"
           for kind, n, total, length in parts if n]
    if cut:
        print(f"warning: {what}: truncated {', '.join(cut)}", file=sys.stderr, flush=True)


def detokenize(ids: np.ndarray, vocab) -> list[str]:
    """Decoded rows up to (not including) the first EOS."""
    out = []
    for row in np.asarray(ids):
        end = np.flatnonzero(row == EOS_ID)
        row = row[: end[0]] if end.size else row
        out.append(vocab.decode([int(t) for t in row if t > 0]))
    return out


def prepare_tasks(cfg: Finetune) -> dict[str, Any]:
    """{name: DownstreamTask} of `cfg.tasks`, each task's train and validation examples read now, before any
    pretraining, so that a missing file, column or field (or an empty split) stops the run at once with one
    TaskDataError naming the file and field. The tasks returned hand these same examples on to `load_task`:
    nothing is read or tokenised twice."""
    from t5explore.data.tasks import SPLITS, TASK_NAMES, TaskDataError, get_task

    out = {}
    for name in cfg.tasks:
        if name not in TASK_NAMES:
            raise ConfigError(f"gin binding Finetune.tasks: unknown downstream task {name!r}; "
                              f"known tasks: {', '.join(TASK_NAMES)}")
        task = get_task(name)
        examples = {}
        for split in SPLITS:
            try:
                examples[split] = task.examples(split, cfg.data_dir)
            except FileNotFoundError as e:
                raise TaskDataError(f"task {name}: {e}") from None
            if not examples[split]:
                raise TaskDataError(f"task {name}: no {split} examples (Finetune.data_dir = {cfg.data_dir!r})")
        out[name] = dataclasses.replace(task, loader=lambda split, data_dir, ex=examples: ex[split])
    return out


def load_task(name: str, task: Any, cfg: Finetune, vocab) -> TokenizedTask:
    train = task.examples("train", cfg.data_dir)
    val = task.examples("validation", cfg.data_dir)
    if cfg.eval_max_examples:
        val = val[: cfg.eval_max_examples]
    train = train_subset(train, cfg.max_train_examples)
    if not train or not val:
        raise ValueError(f"task {name}: {len(train)} train / {len(val)} validation examples "
                         f"(data_dir={cfg.data_dir!r})")
    train_inputs, cut_inputs = encode([e.inputs for e in train], vocab, cfg.inputs_length)
    train_targets, cut_targets = encode([e.targets for e in train], vocab, cfg.targets_length)
    val_inputs, cut_val = encode([e.inputs for e in val], vocab, cfg.inputs_length)
    report_truncation(f"task {name} train", [("inputs", cut_inputs, len(train), cfg.inputs_length),
                                             ("targets", cut_targets, len(train), cfg.targets_length)])
    report_truncation(f"task {name} validation", [("inputs", cut_val, len(val), cfg.inputs_length)])
    return TokenizedTask(name, task, train_inputs, train_targets, val, val_inputs)


def train_subset(examples: list, max_examples: Optional[int]) -> list:
    """A fixed random subset of `max_examples` training examples (all of them if None or fewer).

    The subset depends on neither the run seed nor the variant (stream STREAM_TRAIN_SUBSET, index 0), so every
    row and seed of a sweep fine-tunes on the same examples and paired comparisons stay paired; the seed
    still sets their order. The kept examples stay in their original order.
    """
    if not max_examples or len(examples) <= max_examples:
        return examples
    keep = np.sort(numpy_rng(0, STREAM_TRAIN_SUBSET, len(examples)).permutation(len(examples))[:max_examples])
    return [examples[i] for i in keep]


class MixtureSampler:
    """Deterministic batches: shuffled epochs per task; in a mixture each row's task is drawn with
    probability proportional to min(n_task, cap) (examples-proportional mixing with a cap)."""

    def __init__(self, tasks: Sequence[TokenizedTask], batch_size: int, seed: int, cap: int, task_ids: Sequence[int]):
        self.tasks, self.batch_size, self.seed, self.task_ids = list(tasks), batch_size, seed, list(task_ids)
        sizes = np.array([len(t.train_inputs) for t in self.tasks], np.float64)
        self.rates = np.minimum(sizes, cap) / np.minimum(sizes, cap).sum()
        self._order = [np.empty(0, np.int64)] * len(self.tasks)
        self._pos = [0] * len(self.tasks)
        self._epoch = [0] * len(self.tasks)

    def _take(self, t: int) -> int:
        if self._pos[t] >= len(self._order[t]):
            rng = numpy_rng(self.seed, STREAM_FINETUNE_ORDER, self.task_ids[t], self._epoch[t])
            self._order[t] = rng.permutation(len(self.tasks[t].train_inputs))
            self._pos[t], self._epoch[t] = 0, self._epoch[t] + 1
        self._pos[t] += 1
        return int(self._order[t][self._pos[t] - 1])

    def batch(self, step: int) -> dict[str, np.ndarray]:
        if len(self.tasks) == 1:
            which = np.zeros(self.batch_size, np.int64)
        else:
            which = numpy_rng(self.seed, STREAM_MIXTURE, step).choice(len(self.tasks), self.batch_size, p=self.rates)
        rows = [(t, self._take(t)) for t in which]
        return {"inputs": np.stack([self.tasks[t].train_inputs[i] for t, i in rows]),
                "targets": np.stack([self.tasks[t].train_targets[i] for t, i in rows])}


def predict(decode_fn: Callable, params: Any, inputs: np.ndarray, batch_size: int) -> np.ndarray:
    """Greedy-decode `inputs` in fixed-size batches (the last one padded, so one compilation serves all)."""
    outs = []
    for start in range(0, len(inputs), batch_size):
        chunk = inputs[start:start + batch_size]
        padded = np.zeros((batch_size, inputs.shape[1]), np.int32)
        padded[: len(chunk)] = chunk
        outs.append(np.asarray(jax.device_get(decode_fn(params, padded)))[: len(chunk)])
    return np.concatenate(outs)


@dataclasses.dataclass
class TaskRecord:
    primary_metric: str
    best: Optional[dict] = None
    last: Optional[dict] = None
    best_step: Optional[int] = None
    best_predictions: Optional[list] = None  # the best evaluation's decoded predictions (for the bootstrap)

    def as_dict(self) -> dict:
        return {"best": self.best, "last": self.last, "best_step": self.best_step,
                "primary_metric": self.primary_metric}


@dataclasses.dataclass
class FinetuneOutcome:
    downstream: dict  # task -> {"best", "last", "best_step", "primary_metric"}
    finetune_s: float = 0.0
    eval_s: float = 0.0
    compile_s: float = 0.0
    bootstrap: Optional[dict] = None  # result.json's `bootstrap` (data/bootstrap.py), None without tasks


def finetune(make_trainer: Callable[[int], Trainer], decode_fn: Callable, cfg: Finetune, tasks: dict[str, Any],
             vocab, writer: MetricsWriter, run_dir: str | Path, seed: int, progress_stream=None) -> FinetuneOutcome:
    """Fine-tune and evaluate every task in `tasks` ({name: DownstreamTask}).

    `make_trainer(total_steps)` returns a Trainer starting from the pretrained params with the fine-tuning
    optimiser; `decode_fn(params, inputs[B, I]) -> ids[B, targets_length]` is batched greedy decoding.
    Fine-tuning is not checkpointed: a resumed run redoes it, so its old metrics rows are dropped first.
    """
    cfg.validate()
    writer.discard_phase("finetune")
    loaded = [load_task(name, task, cfg, vocab) for name, task in tasks.items()]
    records = {t.name: TaskRecord(t.task.primary_metric) for t in loaded}
    out = FinetuneOutcome(downstream={})
    groups = [[i] for i in range(len(loaded))] if cfg.mode == "per_task" else [list(range(len(loaded)))]
    for group in groups:
        members = [loaded[i] for i in group]
        phase = f"finetune/{members[0].name}" if len(members) == 1 else "finetune/mixture"
        trainer = make_trainer(max(cfg.steps, 1))
        sampler = MixtureSampler(members, cfg.batch_size, seed, cfg.mixing_cap, group)
        _train_and_evaluate(trainer, sampler, decode_fn, members, records, cfg, vocab, writer, run_dir, phase,
                            out, progress_stream)
        out.compile_s += trainer.compile_s
    out.downstream = {name: rec.as_dict() for name, rec in records.items()}
    out.bootstrap = _bootstrap_best(loaded, records, seed, out)
    return out


def _bootstrap_best(loaded: Sequence[TokenizedTask], records: dict, seed: int, out: FinetuneOutcome) -> Optional[dict]:
    """Bootstrap intervals of the best evaluation of every task; its time counts as evaluation time."""
    from t5explore.data.bootstrap import EvalSet, bootstrap_report

    t0 = time.perf_counter()
    evals = {t.name: EvalSet([e.targets for e in t.val_examples], records[t.name].best_predictions,
                             [e.meta for e in t.val_examples], t.task.score)
             for t in loaded if records[t.name].best_predictions is not None}
    report = bootstrap_report(evals, seed) if evals else None
    out.eval_s += time.perf_counter() - t0
    return report


def _train_and_evaluate(trainer, sampler, decode_fn, members, records, cfg, vocab, writer, run_dir, phase, out,
                        progress_stream) -> None:
    progress = Progress(phase, cfg.steps, stream=progress_stream)
    tokens_per_step = cfg.batch_size * cfg.inputs_length
    window, t_window = [], time.perf_counter()
    t_start, compile0 = time.perf_counter(), trainer.train_compile_s
    eval_time = 0.0
    if cfg.steps == 0:  # no fine-tuning: score the pretrained model as it is
        eval_time += _evaluate(trainer, decode_fn, members, records, cfg, vocab, writer, run_dir, 0)
    for step in range(cfg.steps):
        window.append(trainer.train_step(sampler.batch(step)))
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            fetched = jax.device_get(window)
            loss = float(np.mean([m["loss"] for m in fetched]))
            acc = float(np.mean([m["accuracy"] for m in fetched]))
            check_finite(loss, done, phase)
            elapsed = max(time.perf_counter() - t_window - (trainer.train_compile_s - compile0), 1e-9)
            tps = len(window) * tokens_per_step / elapsed
            writer.write(phase, done, {"tokens_seen": done * tokens_per_step, "loss": loss, "accuracy": acc,
                                       "learning_rate": trainer.learning_rate(step), "tokens_per_s": tps})
            progress.report(done, loss=loss, acc=acc, tokens_per_s=tps)
            window, t_window, compile0 = [], time.perf_counter(), trainer.train_compile_s
        if (cfg.eval_every and done % cfg.eval_every == 0) or done == cfg.steps:
            dt = _evaluate(trainer, decode_fn, members, records, cfg, vocab, writer, run_dir, done)
            eval_time += dt
            t_window += dt
    out.eval_s += eval_time
    out.finetune_s += time.perf_counter() - t_start - eval_time - trainer.train_compile_s


def _evaluate(trainer, decode_fn, members, records, cfg, vocab, writer, run_dir, step) -> float:
    """Decode each task's validation inputs, score, update best/last, save the best predictions."""
    t0 = time.perf_counter()
    for t in members:
        ids = predict(decode_fn, trainer.params, t.val_inputs, cfg.eval_batch_size or cfg.batch_size)
        predictions = detokenize(ids, vocab)
        targets = [e.targets for e in t.val_examples]
        scores = {k: float(v) for k, v in t.task.score(targets, predictions, [e.meta for e in t.val_examples]).items()}
        rec = records[t.name]
        if rec.primary_metric not in scores:
            raise KeyError(f"task {t.name}: score() returned {sorted(scores)}, "
                           f"not its primary metric {rec.primary_metric!r}")
        rec.last = scores
        if rec.best is None or scores[rec.primary_metric] > rec.best[rec.primary_metric]:
            rec.best, rec.best_step, rec.best_predictions = scores, step, predictions
            _save_predictions(Path(run_dir) / "predictions" / f"{t.name}.jsonl", t.val_examples, predictions)
        writer.write(f"finetune_eval/{t.name}", step, {**scores, "num_examples": len(targets)})
        shown = "  ".join(f"{k} {v:.2f}" for k, v in scores.items())
        print(f"finetune_eval/{t.name} step {step}: {shown}", flush=True)
    return time.perf_counter() - t0


def _save_predictions(path: Path, examples: Sequence[Any], predictions: Sequence[str]) -> None:
    lines = [json.dumps({"inputs": e.inputs, "target": e.targets, "prediction": p, "meta": dict(e.meta)},
                        default=str, ensure_ascii=False) for e, p in zip(examples, predictions)]
    atomic_write_text(path, "\n".join(lines) + "\n")
