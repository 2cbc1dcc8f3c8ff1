"""Budgets: one pre-training run evaluated at every step of `Pretrain.eval_at_steps` (and its last step).

Why: a ranking of objectives at one budget says nothing about where rankings cross. A checkpoint at step k is
the model a k-step run ends with when nothing before step k depends on the total step count (Pretrain.validate
refuses a schedule that decays to the total unless opted in, and then every such budget is labelled), so one run
gives every point of the budget axis for the price of its longest one.

On disk, beside the run's own checkpoints, fine-tuning and predictions:

    run_dir/checkpoints/budgets/<step>/params/      orbax: the params at that step (all budgets but the final)
    run_dir/checkpoints/budgets/<step>/pretrain.json what pre-training knew there (`record`)
    run_dir/budgets/<step>/                         that budget's fine-tuning: metrics.jsonl, TensorBoard events,
                                                    checkpoints/finetune/<group>/, predictions/

Each budget is fine-tuned by the same `finetune(...)` call as the final params (same Finetune config, seed, data
order, steps, best/last reporting), into its own directory, so its resume is the fine-tuning resume: a run killed
during budget k's fine-tuning resumes there, and finished budgets are read back, not redone. The final step's
scores stay at the top of result.json and are also its last `budgets` entry. A test-only kill point
`budget/<step>/<phase>` (faults.py) fires after a budget's metrics row of `phase`, so a test can kill the
fine-tuning of one budget and not another's.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from t5explore.io_utils import atomic_write_json, read_json
from t5explore.run_config import Pretrain
from t5explore.run_layout import CHECKPOINTS_DIR
from t5explore.train.faults import kill_point
from t5explore.train.pretrain import BudgetPoint
from t5explore.train.writers import MetricsWriter

BUDGETS_DIR = "budgets"  # run_dir/budgets/<step>/ (fine-tuning) and run_dir/checkpoints/budgets/<step>/
PARAMS_ITEM = "params"
RECORD_FILE = "pretrain.json"


def checkpoint_dir(run_dir: str | os.PathLike, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS_DIR / BUDGETS_DIR / str(int(step))


def finetune_dir(run_dir: str | os.PathLike, step: int) -> Path:
    return Path(run_dir) / BUDGETS_DIR / str(int(step))


class Recorder:
    """pretrain()'s `on_budget`: keeps the params of every budget but the final one (the run's own checkpoint
    holds those) and every budget's record. Pre-training is deterministic, so a budget step trained again after a
    resume has the same params: they are written once; its record is rewritten with this attempt's timing."""

    def __init__(
        self,
        run_dir: str | os.PathLike,
        pre: Pretrain,
        flops_per_token: float | None,
        earlier_attempts: Sequence[dict],
        primary: bool = True,
    ):
        """earlier_attempts: attempts.json's entries before this attempt. A budget's wall_s is their pre-training
        seconds (each counted up to its last checkpoint, as result.json's `timing` counts them) plus this
        attempt's up to the budget step."""
        self.run_dir, self.pre, self.primary = Path(run_dir), pre, primary
        self.flops_per_token = flops_per_token
        self.wall_offset_s = sum(float(e.get("pretrain_s") or 0.0) for e in earlier_attempts)

    def __call__(self, point: BudgetPoint, params: Any) -> None:
        where = checkpoint_dir(self.run_dir, point.steps)
        if point.steps != self.pre.steps:
            save_params(where / PARAMS_ITEM, params)
        if self.primary:
            atomic_write_json(where / RECORD_FILE, self.record(point))

    def record(self, point: BudgetPoint) -> dict:
        """A `budgets` entry's pre-training part (budget contract: docs/ARCHITECTURE.md, results_schema.py)."""
        flops = self.flops_per_token * point.input_tokens if self.flops_per_token else None
        return {
            "steps": point.steps,
            "input_tokens": point.input_tokens,
            "target_tokens": point.target_tokens,
            "flops": flops,
            "wall_s": self.wall_offset_s + point.train_s,
            "pretrain": {"loss": point.loss, "held_out_loss": point.held_out_loss},
            # the final step is a run of its own length: only earlier budgets are off a decaying schedule
            "schedule_depends_on_total": point.steps != self.pre.steps and self.pre.schedule_depends_on_total(),
        }


def save_params(path: Path, params: Any) -> None:
    """Write `params` to the orbax directory `path` unless a complete one is there (orbax writes a temporary
    directory and renames it when done, so `path` exists only once complete)."""
    if path.exists():
        return
    checkpointer = ocp.StandardCheckpointer()
    try:
        checkpointer.save(path.absolute(), params)
        checkpointer.wait_until_finished()
    finally:
        checkpointer.close()


def restore_params(run_dir: str | os.PathLike, step: int, like: Any) -> Any:
    """The params kept at budget `step`, with the structure, dtypes and shardings of `like`."""
    path = checkpoint_dir(run_dir, step) / PARAMS_ITEM
    if not path.exists():
        raise FileNotFoundError(
            f"no params of budget {step} in {path}: pre-training passed step {step} without keeping them "
            "(was Pretrain.eval_at_steps changed?); use a new run_dir or delete its checkpoints to redo pre-training"
        )
    checkpointer = ocp.StandardCheckpointer()
    try:
        return checkpointer.restore(path.absolute(), jax.tree.map(ocp.utils.to_shape_dtype_struct, like))
    finally:
        checkpointer.close()


def read_record(run_dir: str | os.PathLike, step: int) -> dict | None:
    """Budget `step`'s record, or None when pre-training has not written it."""
    path = checkpoint_dir(run_dir, step) / RECORD_FILE
    return read_json(path) if path.is_file() else None


class BudgetWriter(MetricsWriter):
    """A budget's metrics writer: its own metrics.jsonl, and the kill point `budget/<step>/<phase>` after each row."""

    def __init__(self, run_dir: str | os.PathLike, step: int, tensorboard: bool = True):
        super().__init__(run_dir, tensorboard=tensorboard)
        self.step = int(step)

    def write(self, phase: str, step: int, metrics: dict[str, Any]) -> dict:
        row = super().write(phase, step, metrics)
        kill_point(f"budget/{self.step}/{phase}", step)
        return row


def add_timing(done: Any, out: Any) -> Any:
    """FinetuneOutcome `out` with the timing and token counts of `done` (the budgets fine-tuned before it in
    this attempt, or None) added: result.json's timing and throughput cover all of an attempt's fine-tuning."""
    if done is None or out is None:
        return out
    summed = {}
    for f in dataclasses.fields(out):  # every number (seconds, steps, tokens); not the scores
        value = getattr(out, f.name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            summed[f.name] = getattr(done, f.name) + value
    return dataclasses.replace(out, **summed)


def entry(record: dict, ft_out: Any, benchmarks_of: Callable[[dict], dict]) -> dict:
    """One `budgets` entry: the pre-training record and the scores of that budget's fine-tuning (`ft_out`, a
    FinetuneOutcome, or None without tasks) in the shapes of result.json's top-level fields."""
    downstream = ft_out.downstream if ft_out else {}
    return {
        **record,
        "downstream": downstream,
        "benchmarks": benchmarks_of(downstream),
        "bootstrap": ft_out.bootstrap if ft_out else None,
    }


def fallback_record(pre: Pretrain, outcome: Any, flops_per_token: float | None, wall_s: float) -> dict:
    """The final budget's record for a run whose pre-training finished before budgets were recorded (resumed
    with this code): what its outcome says, with the target tokens it did not count left unknown."""
    point = BudgetPoint(pre.steps, outcome.tokens_seen, None, outcome.final_loss, outcome.eval_loss, 0.0)
    return Recorder(".", pre, flops_per_token, [{"pretrain_s": wall_s}]).record(point)


def finetune_all(
    run_dir: str | os.PathLike,
    pre: Pretrain,
    params: Any,
    finetune_at: Callable[[Path | None, MetricsWriter | None, Any, Callable[[Any], None]], Any],
    record_timing: Callable[[Any], None],
    primary: bool = True,
    process: int = 0,
) -> tuple[Any, dict[int, Any]]:
    """Fine-tune every budget of pre.eval_at_steps from its kept params, then the final `params`: (the final
    FinetuneOutcome, {budget step: its FinetuneOutcome}).

    `finetune_at(where, writer, params, on_checkpoint)` is the run's fine-tuning into directory `where` with
    `writer` (None, None: the run's own). The timing and token counts of the returned final outcome, and of what
    `record_timing` gets after every checkpoint, sum this attempt's fine-tuning of every budget."""
    done: Any = None  # the budgets fine-tuned so far, summed

    def on_checkpoint(partial: Any) -> None:
        record_timing(add_timing(done, partial))

    outs = {}
    for step in pre.eval_at_steps:
        where = finetune_dir(run_dir, step)
        # one process writes the budget's files; the others log beside them (as run.py does for the run's)
        writer = BudgetWriter(where if primary else where / f".process_{process}", step, tensorboard=primary)
        try:
            outs[step] = finetune_at(where, writer, restore_params(run_dir, step, params), on_checkpoint)
        finally:
            writer.close()
        done = add_timing(done, outs[step])
    return add_timing(done, finetune_at(None, None, params, on_checkpoint)), outs


def result_entries(
    run_dir: str | os.PathLike,
    pre: Pretrain,
    ft_out: Any,
    outs: dict[int, Any],
    benchmarks_of: Callable[[dict], dict],
    fallback: Callable[[], dict],
) -> list[dict]:
    """result.json's `budgets`: one entry per pre.budget_steps(), from the records pre-training wrote and the
    fine-tuning outcomes (`ft_out` the final params', `outs` the earlier budgets'). `fallback()` is the final
    step's record for a run pre-trained before budgets were recorded."""
    entries = []
    for step in pre.budget_steps():
        record = read_record(run_dir, step)
        if record is None and step == pre.steps:
            record = fallback()
        if record is None:
            raise FileNotFoundError(
                f"no record of budget {step} in {checkpoint_dir(run_dir, step)}: pre-training passed step {step} "
                "without it (was Pretrain.eval_at_steps changed?); use a new run_dir"
            )
        entries.append(entry(record, ft_out if step == pre.steps else outs.get(step), benchmarks_of))
    return entries
