"""TFDS as a source of task records (`glue/cola`, `super_glue/boolq`, `squad/v1.1`, ...), for users who
can download; records come back as plain Python with TFDS's feature names, like the local readers'.

A failed load is reported by its cause, because the fixes differ: a module TFDS imports lazily that is not
installed (install it; `data_dir` would not help), no network (download elsewhere or pass `data_dir`), or
anything else (the dataset's name and the exception, with `data_dir` as the way around TFDS)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from t5explore.data.tasks.base import TaskDataError

TFDS_SPLITS = {"train": "train", "validation": "validation"}
LOCAL_ALTERNATIVE = "pass data_dir=<dir laid out like ../shared/data> to read local files instead"
# Exception types (by module and name, so `requests` need not be imported) that mean "no network".
NETWORK_ERRORS = {
    ("requests.exceptions", "ConnectionError"),
    ("requests.exceptions", "ConnectTimeout"),
    ("requests.exceptions", "ReadTimeout"),
    ("urllib.error", "URLError"),
    ("socket", "gaierror"),
    ("urllib3.exceptions", "MaxRetryError"),
    ("urllib3.exceptions", "NameResolutionError"),
}


def tfds_records(name: str, split: str) -> list[dict[str, Any]]:
    """All records of a TFDS dataset split, in TFDS's (unshuffled) order, strings decoded as UTF-8."""
    import tensorflow_datasets as tfds  # heavy: only imported when TFDS is actually the source

    try:
        ds = tfds.load(name, split=TFDS_SPLITS[split], shuffle_files=False)
    except Exception as e:  # missing module, offline, unknown name, ...: say which, and what fixes it
        raise TaskDataError(tfds_failure_message(name, split, e)) from e
    return [to_python(x) for x in tfds.as_numpy(ds)]


def tfds_failure_message(name: str, split: str, error: BaseException) -> str:
    """One sentence naming the dataset and the cause: a missing module, the network, or the exception."""
    what = f"TFDS dataset {name!r} split {split!r} could not be loaded"
    for e in causes(error):
        if isinstance(e, ModuleNotFoundError) and e.name:
            return (
                f"{what}: TFDS imports the Python module {e.name!r}, which is not installed "
                f"(pip install {e.name.split('.')[0]}, or reinstall t5explore with 'make install', which pins it)"
            )
    for e in causes(error):
        if isinstance(e, ConnectionError | TimeoutError) or (type(e).__module__, type(e).__name__) in NETWORK_ERRORS:
            return (
                f"{what}: the download failed for lack of network ({type(e).__name__}: {e}); "
                f"download it where there is network (TFDS_DATA_DIR) or {LOCAL_ALTERNATIVE}"
            )
    return f"{what} ({type(error).__name__}: {error}); {LOCAL_ALTERNATIVE}"


def causes(error: BaseException) -> Iterator[BaseException]:
    """The exception and every exception it was raised from or while handling, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


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
