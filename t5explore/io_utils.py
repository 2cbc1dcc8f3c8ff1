"""Atomic file writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_UMASK_LOCK = threading.Lock()


class DiskFullError(OSError):
    """No space (or quota) left while writing a file; the message names the file and what was written."""

    def __init__(self, message: str, code: int = errno.ENOSPC):
        super().__init__(message)
        self.errno = code


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (/proc), else set and restored."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


@contextlib.contextmanager
def disk_full_named(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Turn an out-of-space OSError (ENOSPC, EDQUOT) inside into one DiskFullError naming `path` and `what`."""
    try:
        yield
    except DiskFullError:
        raise
    except OSError as e:
        if e.errno not in DISK_FULL_ERRNOS:
            raise
        raise DiskFullError(f"{os.strerror(e.errno)}: could not write {path} ({what})", e.errno) from e


def atomic_write_bytes(path: str | os.PathLike, data: bytes, what: str | None = None) -> None:
    """Write `data` to `path` via a temp file in the same directory and an atomic rename.

    The file gets the permissions of an ordinary new file (0666 minus the umask; a temp file's are 0600),
    so collaborators can read results. A full disk raises DiskFullError naming `path` and `what` was being
    written (default: the byte count), with no temp file left behind."""
    path = Path(path)
    tmp = None
    with disk_full_named(path, what or f"{len(data):,} byte{'' if len(data) == 1 else 's'}"):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), 0o666 & ~current_umask())
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
            raise


def atomic_write_text(path: str | os.PathLike, text: str, what: str | None = None) -> None:
    """Write UTF-8 `text` to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), what)


def atomic_write_json(path: str | os.PathLike, obj: Any, what: str | None = None) -> None:
    """Serialise `obj` as indented JSON and write it atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n", what)


def _json_default(x: Any) -> Any:
    import numpy as np

    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)
