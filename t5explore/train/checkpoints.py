"""Orbax checkpoints of the train state together with the data-stream position.

Saving both in one step directory is what makes resume exact: the restored run continues with the
same params, optimiser moments and the very next batch it would have drawn. The data item also holds the
training metrics of the steps since the last metrics row (`window_state`), so the first row after a resume
averages the same steps as an uninterrupted run's.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from t5explore.io_utils import DISK_FULL_ERRNOS, DiskFullError
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


class Checkpointer:
    """Save every `every` steps (and on `force`), keep the newest `keep`, restore the newest."""

    def __init__(self, directory: str | os.PathLike, every: int, keep: int, label: str = "pretrain"):
        self.directory = os.path.abspath(os.fspath(directory))
        self.label = label  # names its test kill point, `checkpoint/<label>` (faults.py)
        options = ocp.CheckpointManagerOptions(
            save_interval_steps=max(int(every), 1),
            max_to_keep=max(int(keep), 1),
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
        with self._disk_full_named(f"checkpoint of step {step}"):
            started = self._manager.save(int(step), args=ocp.args.Composite(**items), force=force)
        if started:
            kill_point(f"checkpoint/{self.label}", step)
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
        """Restore (state, data_state, step) with the structure, dtypes and shardings of `like_state`."""
        self._manager.wait_until_finished()
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like_state)
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(
                **{STATE_ITEM: ocp.args.StandardRestore(abstract), DATA_ITEM: ocp.args.JsonRestore()}
            ),
        )
        return restored[STATE_ITEM], dict(restored[DATA_ITEM] or {}), int(step)

    def wait(self) -> None:
        with self._disk_full_named("checkpoint (written in the background)"):
            self._manager.wait_until_finished()

    def close(self) -> None:
        with self._disk_full_named("checkpoint (written in the background)"):
            self._manager.wait_until_finished()
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
