"""The on-disk cache shared by runs (built-in corpus, vocabularies, token stores).

Entries are directories named by a content hash and published with one atomic rename, so concurrent runs of a
sweep never see half an entry: each builds in a private temp dir; the first rename wins, the others discard.
Builders of one entry also take `build_lock`, so that concurrent workers build it once, not once each.

Corpus fingerprints hash every byte of a file-backed corpus; `files_fingerprint` remembers each result under
`fingerprints/`, keyed by the files' metadata (path, size, mtime_ns, ctime_ns, inode), so a large corpus is
hashed once, not at every run start. A rewrite changes ctime even where mtime is restored (`cp -p`, `rsync
-t`), and files changed within `RACY_SECONDS` of hashing are never remembered (a timestamp may not tick
between two same-size writes), so a remembered hash never stands for other bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from t5explore.io_utils import atomic_write_json, current_umask, read_json

CACHE_ENV = "T5EXPLORE_CACHE"
FINGERPRINTS = "fingerprints"
RACY_SECONDS = 60.0  # files changed this recently are re-hashed next time (coarse timestamps, clock skew)
HASH_BLOCK = 1 << 20


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


def files_fingerprint(
    tag: str, options: tuple[str, ...], files, hash_contents: bool = False, cache_dir: str | os.PathLike | None = None
) -> str:
    """Content hash of a file-backed corpus: its kind and options, then every file's bytes in order.

    Remembered under the files' metadata in `<cache>/fingerprints/` (see the module docstring) unless
    `hash_contents`, which re-hashes every byte every time; both give the same value."""
    started = time.time_ns()
    before = [_file_metadata(p) for p in files]
    newest = max((max(m[2], m[3]) for m in before), default=0)
    if hash_contents or newest >= started - RACY_SECONDS * 1e9:  # asked to, or too fresh to be remembered
        return _hash_files(tag, options, files)
    path = resolve_cache_dir(cache_dir) / FINGERPRINTS / f"{content_key('files-v1', tag, options, before)}.json"
    known = _remembered(path)
    if known:
        return known
    with build_lock(path, "corpus fingerprint"):  # many workers of a cold 1 TB corpus hash it once
        known = _remembered(path)
        if known:
            return known
        digest = _hash_files(tag, options, files)
        if [_file_metadata(p) for p in files] == before:
            with suppress(OSError):  # a read-only cache only costs the next start a re-hash
                atomic_write_json(path, {"fingerprint": digest, "tag": tag, "files": len(before)})
    return digest


def _file_metadata(path) -> list:
    st = os.stat(path)
    return [os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _remembered(path: Path) -> str | None:
    try:
        value = read_json(path)["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, str) and len(value) == 64 else None


def _hash_files(tag: str, options: tuple[str, ...], files) -> str:
    """sha256 of (tag, options, each file's bytes), each length-prefixed; streamed, so files of any size."""
    h = hashlib.sha256()
    hash_update(h, tag, *options)
    for path in files:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            h.update(size.to_bytes(8, "little"))
            read = 0
            while block := f.read(HASH_BLOCK):
                h.update(block)
                read += len(block)
        if read != size:
            raise OSError(f"{path} changed while it was being hashed ({size} bytes, then {read})")
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
