"""The pretraining loop: stream batches -> jit step -> logs, held-out loss, checkpoints, exact resume.

The loop never knows which objective made its batches. It measures what the paper's comparisons and a
user's patience need: compile time (apart), tokens seen (steps x batch x inputs_length, the paper's
convention), tokens/s, the share of step time spent waiting for data, and MFU when model FLOPs and the
device's peak are both known.

Budgets (Pretrain.eval_at_steps, train/budgets.py): at every budget step, and at the last step, the held-out loss
is evaluated and `on_budget(point, params)` gets what pre-training knows about that point (`BudgetPoint`: steps,
input and loss-bearing target tokens, losses, this attempt's pre-training seconds). Nothing of it feeds back
into training, so the params at step k are those of a k-step run. The loss-bearing target tokens are the train
steps' own `num_tokens` (the sum of the loss weights), counted up to the last metrics row and kept in the
checkpoint's data item, so a resumed run counts on exactly.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from t5explore.run_config import Pretrain
from t5explore.train.checkpoints import Checkpointer, restore_window, window_state
from t5explore.train.hardware import model_flops_utilization
from t5explore.train.trainer import Trainer
from t5explore.train.writers import MetricsWriter, Progress

LOG_WINDOW = "log_window"  # the checkpoint data item's key for the metrics of the steps not yet logged
TARGET_TOKENS = "target_tokens"  # its key for the loss-bearing target tokens of the steps logged so far


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN/inf; the sweep records the run as failed with this message."""


@dataclasses.dataclass
class PretrainOutcome:
    steps: int = 0
    tokens_seen: int = 0
    final_loss: float | None = None
    final_accuracy: float | None = None
    eval_loss: float | None = None
    eval_accuracy: float | None = None
    compile_s: float = 0.0
    train_s: float = 0.0
    eval_s: float = 0.0
    tokens_per_s: float | None = None
    data_wait_share: float | None = None
    mfu: float | None = None
    resumed_from: int | None = None

    def summary(self) -> dict:
        return {
            k: getattr(self, k)
            for k in ("steps", "tokens_seen", "final_loss", "final_accuracy", "eval_loss", "eval_accuracy")
        }


@dataclasses.dataclass(frozen=True)
class BudgetPoint:
    """Pre-training at a budget step: what result.json's `budgets` entry takes from pre-training."""

    steps: int
    input_tokens: int  # steps x batch x inputs_length (the paper's count)
    target_tokens: int | None  # loss-bearing target tokens trained on (None: resumed from a checkpoint without it)
    loss: float | None  # the training loss of the steps since the last metrics row (a k-step run's final_loss)
    held_out_loss: float | None  # None without held-out batches
    train_s: float  # this attempt's pre-training seconds so far (compilation and evaluation excluded)


def _mean_metrics(window: list[dict]) -> dict[str, float]:
    fetched = jax.device_get(window)
    return {k: float(np.mean([m[k] for m in fetched])) for k in fetched[0]}


def check_finite(loss: float, step: int, phase: str) -> None:
    if not math.isfinite(loss):
        raise NonFiniteLossError(
            f"{phase} loss is {loss} at step {step}: training diverged "
            "(lower the learning rate, add Pretrain.z_loss, or check the data)"
        )


def pretrain(
    trainer: Trainer,
    cfg: Pretrain,
    stream: Any,
    eval_batches: Sequence[dict],
    writer: MetricsWriter,
    checkpoint_dir: str | Path,
    flops_per_token: float | None = None,
    progress_stream=None,
    on_checkpoint: Callable[[PretrainOutcome], None] | None = None,
    on_budget: Callable[[BudgetPoint, Any], None] | None = None,
) -> PretrainOutcome:
    """Train `trainer` for cfg.steps on `stream` (an iterator of batches with state()/restore()).

    Resumes from the newest checkpoint in `checkpoint_dir` (train state + stream position + the metrics of
    the steps not yet logged) and drops metrics rows logged after it. `flops_per_token` is the model's training
    FLOPs per counted token. `on_checkpoint(outcome)` is called after every checkpoint with the timing so far;
    `on_budget(point, params)` at every step of cfg.budget_steps() this attempt trains (its time is not counted).
    """
    cfg.validate()
    out = PretrainOutcome()
    if cfg.steps == 0:
        return out
    tokens_per_step = cfg.batch_size * cfg.inputs_length
    budgets = set(cfg.budget_steps())
    ckpt = Checkpointer(checkpoint_dir, cfg.checkpoint_every, cfg.keep_checkpoints)
    try:
        start, window, counted = _resume(trainer, cfg, stream, writer, ckpt, out)
        progress = Progress("pretrain", cfg.steps, start, stream=progress_stream)
        window_t0 = time.perf_counter()
        loop_t0, data_wait = window_t0, 0.0
        compile_at_start = compile_before = trainer.train_compile_s
        iterator = iter(stream)
        for step in range(start, cfg.steps):
            t0 = time.perf_counter()
            batch = next(iterator)
            data_wait += time.perf_counter() - t0
            window.append(trainer.train_step(batch))
            done = step + 1
            last = done == cfg.steps
            if done % cfg.log_every == 0 or last:
                m = _mean_metrics(window)  # blocks on the device: the window's wall time is real
                check_finite(m["loss"], done, "pretraining")
                now = time.perf_counter()
                elapsed = now - window_t0 - (trainer.train_compile_s - compile_before)
                compile_before = trainer.train_compile_s
                tps = len(window) * tokens_per_step / max(elapsed, 1e-9)
                share = data_wait / max(now - loop_t0 - (compile_before - compile_at_start), 1e-9)
                row = _row(m, trainer.learning_rate(step), done * tokens_per_step, tps, share)
                writer.write("pretrain", done, row)
                progress.report(done, loss=m["loss"], acc=m["accuracy"], lr=row["learning_rate"], tokens_per_s=tps)
                out.final_loss, out.final_accuracy = m["loss"], m["accuracy"]
                counted = _count_target_tokens(counted, window)
                window, window_t0 = [], time.perf_counter()
            if eval_batches and ((cfg.eval_every and done % cfg.eval_every == 0) or last or done in budgets):
                dt = _evaluate(trainer, eval_batches, writer, done, done * tokens_per_step, out)
                window_t0, loop_t0 = window_t0 + dt, loop_t0 + dt
            if done in budgets and on_budget is not None:
                train_s = time.perf_counter() - loop_t0 - (trainer.train_compile_s - compile_at_start)
                dt = _budget(on_budget, trainer, cfg, done, counted, window, out, bool(eval_batches), train_s)
                window_t0, loop_t0 = window_t0 + dt, loop_t0 + dt
            if last or ckpt.should_save(done):
                data = {**stream.state(), LOG_WINDOW: window_state(window), TARGET_TOKENS: counted}
                ckpt.save(done, trainer.state, data, force=last)
                if on_checkpoint is not None:
                    out.compile_s = trainer.compile_s
                    out.train_s = time.perf_counter() - loop_t0 - (trainer.train_compile_s - compile_at_start)
                    on_checkpoint(out)
        loop_s = time.perf_counter() - loop_t0 - (trainer.train_compile_s - compile_at_start)
        ckpt.wait()
    finally:
        ckpt.close()
    _summarise(out, trainer, cfg, start, loop_s, data_wait, flops_per_token)
    _fill_from_metrics(out, writer)
    return out


def _row(m: dict[str, float], learning_rate: float, tokens_seen: int, tokens_per_s: float, wait_share: float) -> dict:
    """A `pretrain` metrics row from the window's mean metrics `m`."""
    return {
        "tokens_seen": tokens_seen,
        "loss": m["loss"],
        "accuracy": m["accuracy"],
        "cross_entropy": m["cross_entropy"],
        "z_loss": m["z_loss"],
        "learning_rate": learning_rate,
        "tokens_per_s": tokens_per_s,
        "data_wait_share": wait_share,
    }


def _count_target_tokens(counted: int | None, window: Sequence[dict]) -> int | None:
    """`counted` plus the loss-bearing target tokens of the steps in `window` (None stays None: unknown)."""
    if counted is None:
        return None
    return counted + sum(round(float(m["num_tokens"])) for m in jax.device_get(list(window)))


def _budget(
    on_budget: Callable[[BudgetPoint, Any], None],
    trainer: Trainer,
    cfg: Pretrain,
    done: int,
    counted: int | None,
    window: list[dict],
    out: PretrainOutcome,
    evaluated: bool,
    train_s: float,
) -> float:
    """Hand budget step `done` to `on_budget`; returns the seconds that took. Its training loss is the mean over
    the steps since the last metrics row (what a `done`-step run's last row, its final_loss, averages)."""
    t0 = time.perf_counter()
    point = BudgetPoint(
        steps=done,
        input_tokens=done * cfg.batch_size * cfg.inputs_length,
        target_tokens=_count_target_tokens(counted, window),
        loss=_mean_metrics(window)["loss"] if window else out.final_loss,
        held_out_loss=out.eval_loss if evaluated else None,
        train_s=max(train_s, 0.0),
    )
    on_budget(point, trainer.params)
    return time.perf_counter() - t0


def _resume(
    trainer: Trainer, cfg: Pretrain, stream: Any, writer: MetricsWriter, ckpt: Checkpointer, out: PretrainOutcome
) -> tuple[int, list[dict], int | None]:
    """Restore the newest checkpoint, if any: (the step to start from, the metrics of the steps since the
    last row, which the next row averages over, the loss-bearing target tokens of the steps before them)."""
    if ckpt.latest_step() is None:
        writer.discard_phase("pretrain")  # rows of an attempt that died before its first checkpoint
        return 0, [], 0
    trainer.state, data_state, start = ckpt.restore(trainer.state)
    window = restore_window(data_state.pop(LOG_WINDOW, None))
    counted = data_state.pop(TARGET_TOKENS, None)  # None: a checkpoint made before target tokens were counted
    stream.restore(data_state)
    writer.discard_after("pretrain", start)
    out.resumed_from = start
    print(f"pretrain: resumed from checkpoint at step {start}", flush=True)
    if start > cfg.steps:
        raise ValueError(f"checkpoint at step {start} is past Pretrain.steps={cfg.steps}; use a new run_dir")
    return start, window, counted


def _evaluate(
    trainer: Trainer,
    eval_batches: Sequence[dict],
    writer: MetricsWriter,
    done: int,
    tokens_seen: int,
    out: PretrainOutcome,
) -> float:
    """Held-out loss at step `done`, logged; returns the wall time it took (compilation included)."""
    t0, eval_compile0 = time.perf_counter(), trainer.eval_compile_s
    ev = trainer.evaluate(eval_batches)
    if ev is None:  # only called with batches; None means that none of them holds a target token
        raise ValueError(f"pretrain: the {len(eval_batches)} held-out batches hold no target tokens to evaluate")
    check_finite(ev["loss"], done, "held-out")
    writer.write(
        "pretrain_eval",
        done,
        {"tokens_seen": tokens_seen, "loss": ev["loss"], "accuracy": ev["accuracy"], "num_tokens": ev["num_tokens"]},
    )
    out.eval_loss, out.eval_accuracy = ev["loss"], ev["accuracy"]
    dt = time.perf_counter() - t0
    out.eval_s += dt - (trainer.eval_compile_s - eval_compile0)
    return dt


def _summarise(
    out: PretrainOutcome,
    trainer: Trainer,
    cfg: Pretrain,
    start: int,
    loop_s: float,
    data_wait: float,
    flops_per_token: float | None,
) -> None:
    trained = cfg.steps - start
    tokens_per_step = cfg.batch_size * cfg.inputs_length
    out.steps, out.tokens_seen = cfg.steps, cfg.steps * tokens_per_step
    out.compile_s = trainer.compile_s
    out.train_s = max(loop_s, 0.0) if trained else 0.0
    if trained:
        out.tokens_per_s = trained * tokens_per_step / max(out.train_s, 1e-9)
        out.data_wait_share = data_wait / max(out.train_s, 1e-9)
        out.mfu = model_flops_utilization(out.tokens_per_s * flops_per_token if flops_per_token else None)
        print(
            f"pretrain: {trained} steps in {out.train_s:.1f}s (+{out.compile_s:.1f}s compile), "
            f"{out.tokens_per_s:,.0f} tok/s, data wait {100 * out.data_wait_share:.1f}% of step time"
            + (f", MFU {100 * out.mfu:.1f}%" if out.mfu is not None else ""),
            flush=True,
        )


def _fill_from_metrics(out: PretrainOutcome, writer: MetricsWriter) -> None:
    """A run resumed after its last step did no training now: take its final numbers from metrics.jsonl."""
    if out.final_loss is None:
        rows = writer.rows("pretrain")
        if rows:
            out.final_loss, out.final_accuracy = rows[-1].get("loss"), rows[-1].get("accuracy")
    if out.eval_loss is None:
        rows = writer.rows("pretrain_eval")
        if rows:
            out.eval_loss, out.eval_accuracy = rows[-1].get("loss"), rows[-1].get("accuracy")
