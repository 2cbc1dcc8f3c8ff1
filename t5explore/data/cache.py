"""The on-disk cache shared by runs (built-in corpus, vocabularies, token stores).

Entries are directories named by a content hash and published with one atomic rename, so concurrent runs of a
sweep never see half an entry: each builds in a private temp dir; the first rename wins, the others discard.
Builders of one entry also take `build_lock`, so that concurrent workers build it once, not once each.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from t5explore.io_utils import current_umask

CACHE_ENV = "T5EXPLORE_CACHE"


def default_cache_dir() -> Path:
    """`$T5EXPLORE_CACHE`, else `~/.cache/t5explore`."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "t5explore")


def resolve_cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def content_key(*parts) -> str:
    """A short stable hash of JSON-able parts (used to name cache entries)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:24]


def hash_update(h, *parts: str | bytes) -> None:
    """Feed parts into a hashlib object, each length-prefixed, so ("ab", "c") and ("a", "bc") differ."""
    for p in parts:
        b = p.encode("utf-8") if isinstance(p, str) else p
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)


def files_fingerprint(tag: str, options: tuple[str, ...], files) -> str:
    """Content hash of a file-backed corpus: its kind and options, then every file's bytes in order."""
    h = hashlib.sha256()
    hash_update(h, tag, *options)
    for path in files:
        hash_update(h, Path(path).read_bytes())
    return h.hexdigest()


@contextmanager
def build_lock(final_dir: Path, what: str = "cache entry") -> Iterator[None]:
    """Hold an exclusive lock (fcntl.flock on `.<entry>.lock` beside it) while building `final_dir`, so that
    concurrent workers build an entry once: the others wait here, then find it built. Check again inside."""
    import fcntl

    final_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(final_dir.parent / f".{final_dir.name}.lock", "a") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another process building the {what} {final_dir}", file=sys.stderr, flush=True)
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


@contextmanager
def building_entry(final_dir: Path) -> Iterator[Path]:
    """Yield a temp dir beside `final_dir` to fill; on success rename it to `final_dir` atomically.

    If another process published `final_dir` meanwhile, keep theirs (same key = same content) and discard ours.
    """
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final_dir.parent, prefix=f".{final_dir.name}.", suffix=".tmp"))
    try:
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp's 0700 would hide the entry from collaborators
        yield tmp
        try:
            os.rename(tmp, final_dir)
        except OSError:
            if not final_dir.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
