"""Orbax checkpoints of the train state together with the data-stream position.

Saving both in one step directory is what makes resume exact: the restored run continues with the
same params, optimiser moments and the very next batch it would have drawn. The data item also holds the
training metrics of the steps since the last metrics row (`window_state`), so the first row after a resume
averages the same steps as an uninterrupted run's.

A damaged checkpoint heals: pre-training keeps at least the last two, and a restore that fails (a truncated
or missing file) moves the bad step aside (`unreadable.<step>` beside the steps) with a one-line warning
naming it and resumes from the previous good one. When none is readable, one CheckpointError line says how
to restart. A full disk during a save is one DiskFullError line; orbax's background tracebacks of it are
dropped.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from t5explore.io_utils import DISK_FULL_ERRNOS, DiskFullError
from t5explore.train import stopping
from t5explore.train.attempts import CLOCK
from t5explore.train.faults import kill_point

STATE_ITEM = "state"
DATA_ITEM = "data"


class NonFiniteStateError(FloatingPointError):
    """A train state about to be checkpointed holds NaN/inf: training diverged; the run fails instead."""


@jax.jit
def _all_finite(leaves: list) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def require_finite(state: Any, what: str) -> None:
    """Raise NonFiniteStateError naming `what` unless every float array in `state` is finite."""
    leaves = [x for x in jax.tree.leaves(state) if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
    if leaves and not bool(_all_finite(leaves)):
        raise NonFiniteStateError(
            f"not saving {what}: the parameters or optimiser state hold NaN/inf (training "
            "diverged: lower the learning rate, add Pretrain.z_loss, or check the data)"
        )


_DISK_FULL_SEEN = threading.Event()  # set once a checkpoint write failed on a full disk (this process ends)


class _QuietDiskFull(logging.Filter):
    """Drops orbax's logged tracebacks of a full disk (one per background thread, hundreds of lines), and any
    orbax error logged after one (threads still writing when the run ends): the failure reaches the run as one
    DiskFullError naming the checkpoint directory (Checkpointer.save/wait/close)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        text = f"{record.getMessage()} {exc or ''}"
        full = isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS
        full = full or "No space left on device" in text or f"[Errno {errno.ENOSPC}]" in text
        return not (full or (_DISK_FULL_SEEN.is_set() and "orbax" in record.pathname))


def _quiet_orbax_disk_full() -> None:
    logger = logging.getLogger("absl")  # orbax logs through absl, which logs through this Python logger
    if not any(isinstance(f, _QuietDiskFull) for f in logger.filters):
        logger.addFilter(_QuietDiskFull())


class CheckpointError(RuntimeError):
    """No checkpoint of a run can be read; the message (one line) says how to restart it."""


UNREADABLE_PREFIX = "unreadable."  # a step that failed to restore, moved aside: `<directory>/unreadable.<step>`
MIN_KEEP_PRETRAIN = 2  # so that a damaged newest checkpoint leaves one to fall back to


class Checkpointer:
    """Save every `every` steps (and on `force`), keep the newest `keep` (pre-training: at least two), restore
    the newest readable one."""

    def __init__(self, directory: str | os.PathLike, every: int, keep: int, label: str = "pretrain"):
        self.directory = os.path.abspath(os.fspath(directory))
        self.label = label  # names its test kill point, `checkpoint/<label>` (faults.py)
        _quiet_orbax_disk_full()
        self._phase = "checkpoint_pretrain" if label == "pretrain" else "checkpoint_finetune"  # attempts.CLOCK
        options = ocp.CheckpointManagerOptions(
            save_interval_steps=max(int(every), 1),
            max_to_keep=max(int(keep), MIN_KEEP_PRETRAIN if label == "pretrain" else 1),
            create=True,
            enable_async_checkpointing=True,
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=(STATE_ITEM, DATA_ITEM))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def should_save(self, step: int) -> bool:
        """Whether `save(step, ...)` without `force` would save."""
        return step not in self._manager.all_steps() and self._manager.should_save(int(step))

    def save(self, step: int, state: Any, data_state: dict, force: bool = False) -> bool:
        """Save if `step` is on the interval (or `force`); returns whether a save started. `state` None saves the
        data item alone. A state that is not finite is never saved: NonFiniteStateError."""
        if step in self._manager.all_steps():
            return False
        items = {DATA_ITEM: ocp.args.JsonSave(dict(data_state))}
        if state is not None:
            require_finite(state, f"the checkpoint of step {step} in {self.directory}")
            items[STATE_ITEM] = ocp.args.StandardSave(state)
        with self._disk_full_named(f"checkpoint of step {step}"), CLOCK.timed(self._phase):
            started = self._manager.save(int(step), args=ocp.args.Composite(**items), force=force)
        if started:
            kill_point(f"checkpoint/{self.label}", step)
            if stopping.requested():  # SIGTERM: this checkpoint is the step boundary to stop at
                self.wait()
                stopping.after_checkpoint(self.label, step)
        return started

    def read_data(self, step: int | None = None) -> tuple[dict, int] | None:
        """(data_state, step) of the newest (or given) checkpoint without restoring its state; None if none."""
        self._manager.wait_until_finished()
        step = self.latest_step() if step is None else step
        if step is None:
            return None
        restored = self._manager.restore(step, args=ocp.args.Composite(**{DATA_ITEM: ocp.args.JsonRestore()}))
        return dict(restored[DATA_ITEM] or {}), int(step)

    def restore(self, like_state: Any, step: int | None = None) -> tuple[Any, dict, int]:
        """Restore (state, data_state, step) with the structure, dtypes and shardings of `like_state`: the given
        step, or else the newest readable one (an unreadable newer step is moved aside with a warning)."""
        self._manager.wait_until_finished()
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like_state)
        args = ocp.args.Composite(**{STATE_ITEM: ocp.args.StandardRestore(abstract), DATA_ITEM: ocp.args.JsonRestore()})
        if step is not None:  # the caller chose this step (with what it read of it): no other step will do
            try:
                restored = self._manager.restore(int(step), args=args)
            except Exception as e:  # any restore failure is a damaged checkpoint
                raise CheckpointError(f"{self._unreadable(int(step), e)}; {self._restart_hint()}") from e
            return restored[STATE_ITEM], dict(restored[DATA_ITEM] or {}), int(step)
        found, failures = self._newest_readable(args)
        if found is None:
            if not failures:
                raise FileNotFoundError(f"no checkpoint in {self.directory}")
            raise CheckpointError(
                f"no readable {self.label} checkpoint: {'; '.join(failures)}; the unreadable steps are kept as "
                f"{UNREADABLE_PREFIX}<step>, so running it again restarts the {self.label} from its first step"
            )
        restored, good = found
        return restored[STATE_ITEM], dict(restored[DATA_ITEM] or {}), good

    def _newest_readable(self, args: Any) -> tuple[tuple[Any, int] | None, list[str]]:
        """(restored items, step) of the newest step that restores, moving every newer one aside; and what
        failed, one phrase per step."""
        failures: list[str] = []
        for step in sorted(self._manager.all_steps(), reverse=True):
            try:
                return (self._manager.restore(int(step), args=args), int(step)), failures
            except Exception as e:  # noqa: BLE001 - any restore failure is a damaged checkpoint
                failures.append(self._unreadable(int(step), e))
                aside = self._move_aside(int(step))
                older = [s for s in self._manager.all_steps() if s < step]
                then = f"resuming from step {max(older)}" if older else "no older checkpoint to resume from"
                print(f"{self.label}: WARNING: {failures[-1]}; moved to {aside}; {then}", file=sys.stderr, flush=True)
        return None, failures

    def _unreadable(self, step: int, e: BaseException) -> str:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0].split(" See full TensorStore details")[0]
        return f"{self.label} checkpoint step {step} in {self.directory} is unreadable ({reason[:160]})"

    def _restart_hint(self) -> str:
        return f"delete {self.directory} to restart the {self.label} from its first step"

    def _move_aside(self, step: int) -> str:
        """Move an unreadable step out of orbax's sight (kept for inspection), so the next save can redo it."""
        src = os.path.join(self.directory, str(step))
        dst = os.path.join(self.directory, f"{UNREADABLE_PREFIX}{step}")
        if os.path.exists(dst):
            shutil.rmtree(dst)
        os.replace(src, dst)
        self._manager.reload()
        return dst

    def wait(self) -> None:
        with self._disk_full_named("checkpoint (written in the background)"), CLOCK.timed(self._phase):
            self._manager.wait_until_finished()

    def close(self) -> None:
        """Wait for the background write, then always close the manager (its threads must not outlive a failed
        write: they would print tracebacks at exit)."""
        try:
            with self._disk_full_named("checkpoint (written in the background)"), CLOCK.timed(self._phase):
                self._manager.wait_until_finished()
        finally:
            with contextlib.suppress(Exception):
                self._manager.close()

    @contextlib.contextmanager
    def _disk_full_named(self, what: str) -> Iterator[None]:
        """A full disk while orbax writes (an OSError with ENOSPC/EDQUOT, or tensorstore's error whose text says
        so) becomes one DiskFullError naming the checkpoint directory. Orbax's own background threads may
        report other errors in other forms; those pass through unchanged."""
        try:
            yield
        except DiskFullError:
            raise
        except Exception as e:
            if (isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS) or "No space left on device" in str(e):
                _DISK_FULL_SEEN.set()
                raise DiskFullError(f"No space left on device: could not write {self.directory} ({what})") from e
            raise


def window_state(window: Sequence[dict]) -> dict:
    """JSON-able training metrics of the steps not yet in a metrics row: {key: [values]} plus their dtypes.
    Python floats hold float32 (and float64) values exactly, so `restore_window` gives the same numbers."""
    fetched = jax.device_get(list(window))
    if not fetched:
        return {}
    keys = sorted(fetched[0])
    return {
        "dtypes": {k: str(np.asarray(fetched[0][k]).dtype) for k in keys},
        "values": {k: [np.asarray(m[k]).item() for m in fetched] for k in keys},
    }


def restore_window(state: dict | None) -> list[dict]:
    """The metrics window saved by `window_state` (empty for checkpoints made before windows were saved)."""
    if not state:
        return []
    dtypes, values = state["dtypes"], state["values"]
    count = len(next(iter(values.values())))
    return [{k: np.asarray(values[k][i], dtype=dtypes[k]) for k in values} for i in range(count)]
