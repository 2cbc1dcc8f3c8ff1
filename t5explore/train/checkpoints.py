"""Orbax checkpoints of the train state together with the data-stream position.

Saving both in one step directory is what makes resume exact: the restored run continues with the
same params, optimiser moments and the very next batch it would have drawn.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator, Optional

import jax
import orbax.checkpoint as ocp

from t5explore.io_utils import DISK_FULL_ERRNOS, DiskFullError

STATE_ITEM = "state"
DATA_ITEM = "data"


class Checkpointer:
    """Save every `every` steps (and on `force`), keep the newest `keep`, restore the newest."""

    def __init__(self, directory: str | os.PathLike, every: int, keep: int):
        self.directory = os.path.abspath(os.fspath(directory))
        options = ocp.CheckpointManagerOptions(save_interval_steps=max(int(every), 1), max_to_keep=max(int(keep), 1),
                                               create=True, enable_async_checkpointing=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=(STATE_ITEM, DATA_ITEM))

    def latest_step(self) -> Optional[int]:
        return self._manager.latest_step()

    def save(self, step: int, state: Any, data_state: dict, force: bool = False) -> bool:
        """Save if `step` is on the interval (or `force`); returns whether a save started."""
        if step in self._manager.all_steps():
            return False
        with self._disk_full_named(f"checkpoint of step {step}"):
            return self._manager.save(int(step), args=ocp.args.Composite(
                **{STATE_ITEM: ocp.args.StandardSave(state), DATA_ITEM: ocp.args.JsonSave(dict(data_state))}),
                force=force)

    def restore(self, like_state: Any, step: Optional[int] = None) -> tuple[Any, dict, int]:
        """Restore (state, data_state, step) with the structure, dtypes and shardings of `like_state`."""
        self._manager.wait_until_finished()
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like_state)
        restored = self._manager.restore(step, args=ocp.args.Composite(
            **{STATE_ITEM: ocp.args.StandardRestore(abstract), DATA_ITEM: ocp.args.JsonRestore()}))
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
