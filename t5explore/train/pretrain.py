"""The pretraining loop: stream batches -> jit step -> logs, held-out loss, checkpoints, exact resume.

The loop never knows which objective made its batches. It measures what the paper's comparisons and a
user's patience need: compile time (apart), tokens seen (steps x batch x inputs_length, the paper's
convention), tokens/s, the share of step time spent waiting for data, and MFU when model FLOPs and the
device's peak are both known.
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

from t5explore.train.checkpoints import Checkpointer, restore_window, window_state
from t5explore.train.config import Pretrain
from t5explore.train.hardware import model_flops_utilization
from t5explore.train.trainer import Trainer
from t5explore.train.writers import MetricsWriter, Progress

LOG_WINDOW = "log_window"  # the checkpoint data item's key for the metrics of the steps not yet logged


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
) -> PretrainOutcome:
    """Train `trainer` for cfg.steps on `stream` (an iterator of batches with state()/restore()).

    Resumes from the newest checkpoint in `checkpoint_dir` (train state + stream position + the metrics of
    the steps not yet logged) and drops metrics rows logged after it. `flops_per_token` is the model's training
    FLOPs per counted token. `on_checkpoint(outcome)` is called after every checkpoint with the timing so far.
    """
    cfg.validate()
    out = PretrainOutcome()
    if cfg.steps == 0:
        return out
    tokens_per_step = cfg.batch_size * cfg.inputs_length
    ckpt = Checkpointer(checkpoint_dir, cfg.checkpoint_every, cfg.keep_checkpoints)
    try:
        start, window = _resume(trainer, cfg, stream, writer, ckpt, out)
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
                row = {
                    "tokens_seen": done * tokens_per_step,
                    "loss": m["loss"],
                    "accuracy": m["accuracy"],
                    "cross_entropy": m["cross_entropy"],
                    "z_loss": m["z_loss"],
                    "learning_rate": trainer.learning_rate(step),
                    "tokens_per_s": tps,
                    "data_wait_share": data_wait / max(now - loop_t0 - (compile_before - compile_at_start), 1e-9),
                }
                writer.write("pretrain", done, row)
                progress.report(done, loss=m["loss"], acc=m["accuracy"], lr=row["learning_rate"], tokens_per_s=tps)
                out.final_loss, out.final_accuracy = m["loss"], m["accuracy"]
                window, window_t0 = [], time.perf_counter()
            if eval_batches and ((cfg.eval_every and done % cfg.eval_every == 0) or last):
                dt = _evaluate(trainer, eval_batches, writer, done, done * tokens_per_step, out)
                window_t0 += dt
                loop_t0 += dt
            if last or ckpt.should_save(done):
                ckpt.save(done, trainer.state, {**stream.state(), LOG_WINDOW: window_state(window)}, force=last)
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


def _resume(
    trainer: Trainer, cfg: Pretrain, stream: Any, writer: MetricsWriter, ckpt: Checkpointer, out: PretrainOutcome
) -> tuple[int, list[dict]]:
    """Restore the newest checkpoint, if any: (the step to start from, the metrics of the steps since the
    last row, which the next row averages over)."""
    if ckpt.latest_step() is None:
        writer.discard_phase("pretrain")  # rows of an attempt that died before its first checkpoint
        return 0, []
    trainer.state, data_state, start = ckpt.restore(trainer.state)
    window = restore_window(data_state.pop(LOG_WINDOW, None))
    stream.restore(data_state)
    writer.discard_after("pretrain", start)
    out.resumed_from = start
    print(f"pretrain: resumed from checkpoint at step {start}", flush=True)
    if start > cfg.steps:
        raise ValueError(f"checkpoint at step {start} is past Pretrain.steps={cfg.steps}; use a new run_dir")
    return start, window


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
