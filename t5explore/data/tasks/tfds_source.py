"""TFDS as a source of task records (`glue/cola`, `super_glue/boolq`, `squad/v1.1`, ...), for users who
can download; records come back as plain Python with TFDS's feature names, like the local readers'."""

from __future__ import annotations

from typing import Any

import numpy as np

from t5explore.data.tasks.base import TaskDataError

TFDS_SPLITS = {"train": "train", "validation": "validation"}


def tfds_records(name: str, split: str) -> list[dict[str, Any]]:
    """All records of a TFDS dataset split, in TFDS's (unshuffled) order, strings decoded as UTF-8."""
    import tensorflow_datasets as tfds  # heavy: only imported when TFDS is actually the source

    try:
        ds = tfds.load(name, split=TFDS_SPLITS[split], shuffle_files=False)
    except Exception as e:  # offline, unknown name, ...: say which dataset and how to avoid TFDS
        raise TaskDataError(
            f"TFDS dataset {name!r} split {split!r} could not be loaded ({type(e).__name__}: {e}); "
            "pass data_dir=<dir laid out like ../shared/data> to read local files instead"
        ) from e
    return [to_python(x) for x in tfds.as_numpy(ds)]


def to_python(value: Any) -> Any:
    """bytes -> str, numpy scalars -> Python numbers, arrays -> lists, recursively through dicts."""
    if isinstance(value, dict):
        return {k: to_python(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return [to_python(v) for v in value.tolist()] if value.ndim else to_python(value.item())
    if isinstance(value, np.generic):
        return value.item()
    return value
