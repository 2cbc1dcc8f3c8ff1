"""Fine-tuning checkpoints: a killed run resumes fine-tuning where it stopped and never redoes a finished task.

One orbax checkpoint directory per group of tasks trained together — a task in per_task mode, the mixture in
multi_task mode (named like its metrics phase, `finetune/<group>`):

    run_dir/checkpoints/finetune/<group>/<step>/

A checkpoint is written after every evaluation: the train state (params, optimiser moments, step) and a data
item with the sampler position (per task: epoch and position in its epoch's order, which is a pure function of
(seed, task, epoch)), every member task's best and last scores and best step, the training metrics of the
steps not yet logged, and the Finetune config it was made under (another config is refused). After the last
evaluation the group's checkpoint is the data item alone, marked `finished`: a finished group needs no state, so
it takes no disk and is not trained again. Only the newest checkpoint per group is kept, and a state that is not
finite is never saved (checkpoints.NonFiniteStateError).

The best predictions are not in checkpoints: predictions/<task>.jsonl is written whenever a new best is found,
and a resumed run reads it back for the bootstrap, checked against the hash its checkpoint recorded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from t5explore.run_layout import CHECKPOINTS_DIR
from t5explore.train.checkpoints import Checkpointer

FINETUNE_DIR = "finetune"  # under run_dir/checkpoints
MIXTURE = "mixture"


def group_name(members: Sequence[str]) -> str:
    """A one-task group is named after its task (either mode); a mixture of several is `mixture`."""
    return members[0] if len(members) == 1 else MIXTURE


def group_phases(name: str, members: Sequence[str]) -> set[str]:
    """The metrics.jsonl phases a group writes: its training rows and every member's evaluation rows (on the
    reported validation examples, and on the selection examples that choose the best checkpoint)."""
    return {f"finetune/{name}"} | {f"{kind}/{m}" for m in members for kind in ("finetune_eval", "finetune_select")}


def signature(cfg: Any, members: Sequence[str], seed: int) -> dict:
    """What a group's checkpoints are valid for: every Finetune field but the data location, its tasks, the seed."""
    fields = {
        f.name: repr(getattr(cfg, f.name)) for f in dataclasses.fields(cfg) if f.name not in ("tasks", "data_dir")
    }
    return {**fields, "tasks": list(members), "seed": int(seed)}


def predictions_hash(predictions: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps(list(predictions), ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def read_predictions(path: Path, expected_hash: str | None) -> list[str]:
    """The predictions of a best evaluation made by an earlier attempt, from its predictions file."""
    try:
        predictions = [json.loads(line)["prediction"] for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, ValueError, KeyError) as e:
        raise RuntimeError(
            f"cannot read the best predictions of an earlier attempt from {path} ({e}); delete "
            f"{path.parent.parent / CHECKPOINTS_DIR / FINETUNE_DIR} to redo fine-tuning"
        ) from None
    if predictions_hash(predictions) != expected_hash:
        raise RuntimeError(
            f"{path} is not the best evaluation its fine-tuning checkpoint recorded; delete "
            f"{path.parent.parent / CHECKPOINTS_DIR / FINETUNE_DIR} to redo fine-tuning"
        )
    return predictions


class GroupCheckpoint:
    """The checkpoints of one group: at most one kept, the data item readable without restoring the state."""

    def __init__(self, run_dir: str | Path, name: str, signature_: dict):
        self.name, self.signature = name, signature_
        self.directory = Path(run_dir) / CHECKPOINTS_DIR / FINETUNE_DIR / name
        self._ckpt = Checkpointer(self.directory, every=1, keep=1, label=f"finetune/{name}")

    def saved(self) -> dict | None:
        """The newest checkpoint's data item with its `step`, or None; one made under another config is refused."""
        found = self._ckpt.read_data()
        if found is None:
            return None
        data, step = found
        if data.get("config") != self.signature:
            old, new = data.get("config") or {}, self.signature
            changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise ValueError(
                f"fine-tuning checkpoint {self.directory} was made under another config "
                f"({', '.join(changed)} changed); use a new run_dir or delete it"
            )
        return {**data, "step": step}

    def restore_state(self, like_state: Any, step: int) -> Any:
        return self._ckpt.restore(like_state, step)[0]

    def save(self, step: int, state: Any, data: dict) -> None:
        """Save now (`state` None: the data item alone); the write finishes in the background."""
        self._ckpt.save(step, state, {**data, "config": self.signature}, force=True)

    def close(self) -> None:
        self._ckpt.close()
