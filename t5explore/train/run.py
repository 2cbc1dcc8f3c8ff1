"""One run end to end: (gin files, bindings) -> run directory with config.gin, metrics, checkpoints,
predictions and, last of all, result.json (`RunResult`, t5explore/results_schema.py).

`execute` is what `t5explore train` and the sweep runner call. It resumes: pretraining continues from the
newest checkpoint in run_dir/checkpoints, each fine-tuning task (or mixture) from its newest checkpoint in
run_dir/checkpoints/finetune/<group> (a finished one is not redone), so a run killed anywhere ends with the
numbers an uninterrupted run has. Every attempt's timing is kept (attempts.py): result.json's `timing` is the
sum over attempts, `attempts` lists each.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gin

from t5explore.config import ConfigError, parse_gin
from t5explore.data.cache import resolve_cache_dir
from t5explore.data.features import encdec_features
from t5explore.data.pretrain_stream import PretrainStream
from t5explore.data.tasks import benchmark_scores, registry_info
from t5explore.data.token_store import get_token_store
from t5explore.data.token_store_reader import TokenStore
from t5explore.data.vocab import Vocab, vocabulary
from t5explore.distributed import is_primary, process_index
from t5explore.io_utils import atomic_write_json, atomic_write_text
from t5explore.model.config import T5Config, padded_vocab_size
from t5explore.model.interface import Model
from t5explore.model.registry import build_model as build_architecture
from t5explore.model.registry import result_fields
from t5explore.numerics import NUMERICS_VERSION
from t5explore.results_schema import RunResult
from t5explore.run_config import Experiment, Finetune, Optimizer, Pretrain
from t5explore.run_layout import CHECKPOINTS_DIR, CONFIG_FILE, METADATA_KEYS, RESULT_FILE
from t5explore.train import budgets
from t5explore.train.attempts import Attempts
from t5explore.train.faults import kill_point
from t5explore.train.finetune import finetune, prepare_tasks
from t5explore.train.finetune_records import FinetuneOutcome
from t5explore.train.hardware import device_info
from t5explore.train.hygiene import evaluation_hygiene
from t5explore.train.partitioning import Partitioner
from t5explore.train.pretrain import PretrainOutcome, pretrain
from t5explore.train.provenance import git_commit, versions
from t5explore.train.state import count_params
from t5explore.train.trainer import Trainer, init_params
from t5explore.train.writers import MetricsWriter, record_hparams


def cache_dir_for(experiment: Experiment) -> Path:
    """Experiment.cache_dir, else $T5EXPLORE_CACHE, else ~/.cache/t5explore (shared by a sweep's runs)."""
    return resolve_cache_dir(experiment.cache_dir or None)


def build_model(vocab: Vocab) -> tuple[Model, T5Config]:
    """(the gin-configured architecture, Model.name, model/registry.py; its T5Config), vocab_size filled from
    the vocabulary (padded to a multiple of 128)."""
    cfg = dataclasses.replace(T5Config(), vocab_size=padded_vocab_size(vocab.vocab_size))
    return build_architecture(cfg), cfg


def run_metadata(run_dir: str | os.PathLike, metadata: dict | None = None) -> dict:
    """result.json's sweep/run/variant fields: a standalone run (no sweep metadata) is named after its
    directory, `results/<sweep>/<run>/`, so the report, which needs strings there, can read it too.
    Metadata given by the sweep runner wins."""
    run_dir = Path(run_dir).resolve()
    out: dict[str, Any] = {  # one default per run_layout.METADATA_KEYS (tests/test_sweep_sharing.py checks)
        "sweep": run_dir.parent.name or "runs",
        "run": run_dir.name,
        "variant": run_dir.name,
        "variant_bindings": {},
        "baseline": False,
    }
    out.update({key: metadata[key] for key in METADATA_KEYS if metadata and key in metadata})
    return out


def _close(obj: Any) -> None:
    if hasattr(obj, "close"):
        obj.close()


def execute(
    run_dir: str | os.PathLike, gin_files: Sequence[str], bindings: Sequence[str] = (), metadata: dict | None = None
) -> dict:
    """Run pretraining + fine-tuning + evaluation into `run_dir`; return (and write) the result dict."""
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    parse_gin(gin_files, bindings)
    experiment, pre, ft = Experiment(), Pretrain(), Finetune()
    experiment.validate()
    pre.validate()
    ft.validate()
    optimizer = pre.get_optimizer() if pre.steps else None
    if pre.corpus is None:
        raise ConfigError(
            "gin binding Pretrain.corpus is required (the vocabulary is trained on it); "
            "include e.g. gin/data/builtin.gin"
        )
    tasks = prepare_tasks(ft)  # every task's data read and checked before the vocabulary and pretraining
    cache_dir = cache_dir_for(experiment)
    pre, hygiene = evaluation_hygiene(pre, ft, tasks, cache_dir)
    vocab = vocabulary(corpus=pre.corpus, cache_dir=str(cache_dir))
    model, model_cfg = build_model(vocab)
    partitioner = Partitioner()
    ft_optimizer = ft.get_optimizer() if ft.tasks else None
    if pre.steps:
        partitioner.check_batch_size(pre.batch_size, "Pretrain.batch_size")
    if ft.tasks and ft.steps:
        partitioner.check_batch_size(ft.batch_size, "Finetune.batch_size")
    params, param_shardings = init_params(model, partitioner, experiment.seed)
    if pre.init_from_hf:  # start from a transformers T5 checkpoint (t5explore/model/hf_import.py)
        from t5explore.model.hf_import import init_from_hf

        params = init_from_hf(pre.init_from_hf, model, params, param_shardings, vocab)
    if is_primary():
        write_operative_config(run_dir)

    attempts = Attempts(run_dir, t_start)
    # One process writes the run's files; the others log beside it, out of the report's way.
    writer = (
        MetricsWriter(run_dir)
        if is_primary()
        else MetricsWriter(run_dir / f".process_{process_index()}", tensorboard=False)
    )
    setup = RunSetup(
        run_dir, experiment, pre, ft, model, model_cfg, partitioner, param_shardings, vocab, writer, attempts
    )
    try:
        outcome, params = _pretrain(setup, params, optimizer, cache_dir)
        ft_out, budget_outs = _finetune_budgets(setup, params, ft_optimizer, tasks)
    finally:
        writer.close()
    if is_primary():
        write_operative_config(run_dir)  # now also holds what was configured lazily (tasks, stream)

    attempts.update(outcome, ft_out)
    print(attempts.summary_line(), flush=True)  # where the time went (attempts.phases)
    result = result_dict(
        run_dir, metadata, experiment, pre, outcome, ft_out, model_cfg, count_params(params), attempts, hygiene
    )
    result = {**result, **_budgets_field(setup, outcome, ft_out, budget_outs)}
    kill_point("result")
    if is_primary():
        atomic_write_json(run_dir / RESULT_FILE, result)
        record_hparams(run_dir, result, in_sweep=metadata is not None)  # TensorBoard's HParams dashboard
    return result


@dataclasses.dataclass(frozen=True)
class RunSetup:
    """What pretraining and fine-tuning of one run share, built once by `execute` (a budget's fine-tuning is a
    copy with its own run_dir and writer)."""

    run_dir: Path
    experiment: Experiment
    pre: Pretrain
    ft: Finetune
    model: Model
    model_cfg: T5Config
    partitioner: Partitioner
    param_shardings: Any  # the params' pytree of jax.sharding.NamedSharding
    vocab: Vocab
    writer: MetricsWriter
    attempts: Attempts


def _pretrain(s: RunSetup, params: Any, optimizer: Optimizer | None, cache_dir: Path) -> tuple[PretrainOutcome, Any]:
    """(PretrainOutcome, the pretrained params), resuming from run_dir/checkpoints."""
    pre = s.pre
    if not pre.steps or optimizer is None:
        s.writer.discard_phase("pretrain")
        return PretrainOutcome(), params
    seed = s.experiment.seed
    store = get_token_store(pre.corpus, s.vocab, cache_dir)
    stream = PretrainStream(
        store, pre.objective, pre.inputs_length, pre.batch_size, seed, "train", features=s.model.features
    )
    eval_batches = held_out_batches(store, pre, seed, s.model.features)
    flops = pretrain_flops_per_token(s)
    trainer = Trainer(
        s.model, s.partitioner, params, s.param_shardings, optimizer, pre.steps, seed, pre.z_loss, pre.label_smoothing
    )
    try:
        outcome = pretrain(
            trainer,
            pre,
            stream,
            eval_batches,
            s.writer,
            s.run_dir / CHECKPOINTS_DIR,
            flops,
            on_checkpoint=lambda partial: s.attempts.update(pretrain=partial),
            on_budget=_budget_recorder(s, flops),
        )
    finally:
        _close(stream)
    s.attempts.update(pretrain=outcome)
    return outcome, trainer.params


def _finetune(
    s: RunSetup, params: Any, ft_optimizer: Optimizer, tasks: dict, on_checkpoint: Callable[[Any], None] | None = None
) -> FinetuneOutcome:
    """FinetuneOutcome of every task, resuming from run_dir/checkpoints/finetune/. on_checkpoint(partial):
    None records the timing so far in s.attempts."""

    def make_trainer(total_steps: int) -> Trainer:
        return Trainer(s.model, s.partitioner, params, s.param_shardings, ft_optimizer, total_steps, s.experiment.seed)

    def decode_fn(p, inputs):
        return s.model.greedy_decode(p, inputs, s.ft.targets_length)

    return finetune(
        make_trainer,
        decode_fn,
        s.ft,
        tasks,
        s.vocab,
        s.writer,
        s.run_dir,
        s.experiment.seed,
        on_checkpoint=on_checkpoint or (lambda partial: s.attempts.update(finetune=partial)),
    )


def pretrain_flops_per_token(s: RunSetup) -> float:
    """Training FLOPs per input token (batch x inputs_length) of the batches pre-training runs: the model's count
    at the widths the objective's batches have (lm's encoder is 1 token wide)."""
    pre = s.pre
    plan = pre.objective.plan(pre.inputs_length)
    return s.model.flops_per_token(plan.inputs_length, plan.targets_length) * plan.inputs_length / pre.inputs_length


def _budget_recorder(s: RunSetup, flops: float) -> budgets.Recorder:
    """pretrain()'s on_budget (train/budgets.py)."""
    return budgets.Recorder(s.run_dir, s.pre, flops, s.attempts.entries[:-1], primary=is_primary())


def _finetune_budgets(
    s: RunSetup, params: Any, ft_optimizer: Optimizer | None, tasks: dict
) -> tuple[FinetuneOutcome | None, dict[int, FinetuneOutcome]]:
    """(the final params' FinetuneOutcome, {budget step: its FinetuneOutcome}): budgets.finetune_all, each
    budget fine-tuned by `_finetune` in its own directory with its own writer, then the final params."""
    if not tasks or ft_optimizer is None:  # no tasks, no fine-tuning optimiser
        return None, {}

    def finetune_at(
        where: Path | None, writer: MetricsWriter | None, kept: Any, on_checkpoint: Callable
    ) -> FinetuneOutcome:
        at = s if where is None or writer is None else dataclasses.replace(s, run_dir=where, writer=writer)
        return _finetune(at, kept, ft_optimizer, tasks, on_checkpoint)

    def record(partial: Any) -> None:
        s.attempts.update(finetune=partial)

    return budgets.finetune_all(s.run_dir, s.pre, params, finetune_at, record, is_primary(), process_index())


def _budgets_field(
    s: RunSetup, outcome: PretrainOutcome, ft_out: FinetuneOutcome | None, outs: dict[int, FinetuneOutcome]
) -> dict:
    """result.json's `budgets` as {"budgets": [...]}; {} without pre-training (the key is then absent)."""

    def fallback() -> dict:
        flops = pretrain_flops_per_token(s)
        return budgets.fallback_record(s.pre, outcome, flops, s.attempts.totals()["pretrain_s"])

    entries = budgets.result_entries(s.run_dir, s.pre, ft_out, outs, benchmarks_of, fallback)
    return {"budgets": entries} if entries else {}


def benchmarks_of(downstream: dict) -> dict:
    """result.json's `benchmarks` ({best, last}: benchmark score -> score) of a `downstream` dict."""
    return {
        which: benchmark_scores({t: r[which] for t, r in downstream.items() if r[which] is not None})
        for which in ("best", "last")
    }


def result_dict(
    run_dir: Path,
    metadata: dict | None,
    experiment: Experiment,
    pre: Pretrain,
    outcome: PretrainOutcome,
    ft_out: FinetuneOutcome | None,
    model_cfg: T5Config,
    num_params: int,
    attempts: Attempts,
    hygiene: dict | None = None,
) -> dict:
    """result.json of a finished run: a RunResult (t5explore/results_schema.py) as its JSON object."""
    downstream = ft_out.downstream if ft_out else {}
    metrics = [m for r in downstream.values() for which in ("best", "last") for m in (r[which] or {})]
    return RunResult(
        **run_metadata(run_dir, metadata),
        seed=experiment.seed,
        scale=experiment.scale or None,
        objective=getattr(pre.objective, "name", None) if pre.steps else None,
        pretrain=outcome.summary(),
        downstream=downstream,
        benchmarks=benchmarks_of(downstream),
        bootstrap=ft_out.bootstrap if ft_out else None,  # intervals over evaluation examples
        timing=attempts.totals(),  # summed over attempts
        attempts=attempts.entries,
        throughput={
            "pretrain_tokens_per_s": outcome.tokens_per_s,
            "mfu": outcome.mfu,
            "data_wait_share": outcome.data_wait_share,
            **(ft_out.throughput() if ft_out else {}),
        },  # finetune_*: the last attempt's too
        model={
            "name": experiment.model_name or model_cfg.name,
            "num_params": num_params,
            **result_fields(model_cfg, pre),
        },
        versions=versions(),
        git_commit=git_commit(),
        devices=device_info(),
        host=socket.gethostname(),
        registry=registry_info(downstream, metrics),  # labels and benchmark membership, for the report
        numerics_version=NUMERICS_VERSION,
        hygiene=hygiene,
    ).to_json()


def held_out_batches(store: TokenStore, pre: Pretrain, seed: int, features: Callable | None = None) -> list:
    """The first `eval_batches` batches of the validation split (at most one pass over it): the same fixed
    set at every evaluation, so held-out losses are comparable across steps and runs. features: the model's
    `Model.features` (None: the encoder-decoder's)."""
    if not pre.eval_batches:
        return []
    stream = PretrainStream(
        store,
        pre.objective,
        pre.inputs_length,
        pre.batch_size,
        seed,
        "validation",
        prefetch=0,
        features=features or encdec_features,
    )
    try:
        return [stream.batch(k) for k in range(min(pre.eval_batches, max(stream.batches_per_epoch, 1)))]
    finally:
        _close(stream)


def write_operative_config(run_dir: Path) -> None:
    atomic_write_text(run_dir / CONFIG_FILE, gin.operative_config_str())
