"""The token store: a corpus tokenised once, memory-mapped by every run.

Documents are concatenated without separators, as T5's `reduce_concat_tokens` does before splitting into
chunks; `doc_offsets[i]:doc_offsets[i+1]` is document i. `tokens` reads as one int32 array over the store's
shards (stored as uint16 where the vocabulary fits); `doc_offsets` is a memory-mapped int64 .npy. The
layout, the parallel build and its resume are in token_shards.py. Cached by hash(corpus fingerprint, vocab
fingerprint): a sweep's runs share it, concurrent builders take one lock (one builds, the others wait), and
a store is complete once its manifest exists. The vocab fingerprint includes the sentinel count: sentinel
ids (`vocab_size - 1 - k`) and the saved token space change with it, so a 100-sentinel store is never opened
for a 200-sentinel vocabulary (and `get_token_store` checks the saved token space on every open).

Stores of the first format (one int32 tokens.npy) are not opened; `get_token_store` migrates one it finds
under the same corpus and vocabulary into a new entry (no re-tokenising) and leaves it in place.

The held-out split is positional: tokens `[split_point, num_tokens)` (the last `eval_fraction`) are validation
and no training chunk ever reaches into them, whatever the chunk length.
"""

from __future__ import annotations

import dataclasses
import itertools
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import gin
import numpy as np

from t5explore.data import token_shards as shards_lib
from t5explore.data.cache import build_lock, content_key, resolve_cache_dir
from t5explore.data.token_shards import MANIFEST, SHARDS_DIR, STORE_FORMAT, IncompleteStoreError, Shard
from t5explore.errors import InputError
from t5explore.io_utils import read_json
from t5explore.objectives.base import TokenSpace

SPLITS = ("train", "validation")
DEFAULT_EVAL_FRACTION = 0.02  # small corpora (the built-in ~0.7M tokens) still get a few eval batches


@gin.configurable("token_store")
@dataclasses.dataclass(frozen=True)
class BuildSettings:
    """How a store is built (never what it holds: any settings give the same store).

    num_workers: tokenising processes; None = min(cpu count, shards). encode_threads: sentencepiece threads
    per process; None = cpu count // processes. shard_bytes: input bytes per shard of a file corpus; None =
    total / 64 within [4 MiB, 256 MiB]. shard_documents: documents per shard of a TFDS corpus."""

    num_workers: int | None = None
    encode_threads: int | None = None
    shard_bytes: int | None = None
    shard_documents: int = 1_000_000

    def workers_for(self, shards: int) -> int:
        return max(1, min(self.num_workers or (os.cpu_count() or 1), shards))

    def threads_for(self, workers: int) -> int:
        return self.encode_threads or max(1, (os.cpu_count() or 1) // workers)


class ShardedTokens:
    """The shards' token files as one read-only 1-D int32 array: ints, slices and integer arrays index it."""

    dtype = np.dtype(np.int32)
    ndim = 1

    def __init__(self, paths: list[Path], lengths: list[int]):
        kept = [(p, n) for p, n in zip(paths, lengths) if n]
        self._paths = [p for p, _ in kept]
        self._maps: list[np.ndarray | None] = [None] * len(kept)
        self._starts = np.concatenate([[0], np.cumsum([n for _, n in kept], dtype=np.int64)])
        self.shape = (int(self._starts[-1]),)
        self.size = self.shape[0]

    def __len__(self) -> int:
        return self.size

    def _map(self, k: int) -> np.ndarray:
        mapped = self._maps[k]
        if mapped is None:
            mm = np.load(self._paths[k], mmap_mode="r")
            if mm.shape != (self._starts[k + 1] - self._starts[k],):
                raise IncompleteStoreError(f"{self._paths[k]} holds {mm.shape} tokens, not what the manifest says")
            mapped = self._maps[k] = mm.view(np.ndarray)  # the same mapping, without np.memmap's per-index overhead
        return mapped

    def __getitem__(self, key):
        if isinstance(key, slice):
            start, stop, step = key.indices(self.size)
            if step != 1:
                return self[np.arange(start, stop, step)]
            return self._range(start, max(start, stop))
        if isinstance(key, (int, np.integer)):
            return self[np.array([key])][0]
        idx = np.asarray(key)
        if idx.dtype.kind not in "iu":
            raise IndexError(f"token store indices must be integers, got {idx.dtype}")
        if idx.size == 0:
            return np.empty(idx.shape, np.int32)
        if idx.min() < 0:
            idx = np.where(idx < 0, idx + self.size, idx)
        if idx.min() < 0 or idx.max() >= self.size:
            raise IndexError(f"token index out of range for a store of {self.size} tokens")
        if idx.ndim == 2 and idx.shape[1] > 1 and np.all(idx[:, 1:] - idx[:, :-1] == 1):
            return self._rows(idx)
        shard = np.searchsorted(self._starts, idx, side="right") - 1
        out = np.empty(idx.shape, np.int32)
        for k in np.unique(shard):
            sel = shard == k
            out[sel] = self._map(k)[idx[sel] - self._starts[k]]
        return out

    def _rows(self, idx: np.ndarray) -> np.ndarray:
        """Rows of consecutive indices (what PretrainStream.chunks asks for), copied row by row as slices."""
        first = (np.searchsorted(self._starts, idx[:, 0], side="right") - 1).tolist()
        starts, stops, width = idx[:, 0].tolist(), (idx[:, -1] + 1).tolist(), idx.shape[1]
        out = np.empty(idx.shape, np.int32)
        for r, (k, start, stop) in enumerate(zip(first, starts, stops)):
            if stop <= self._starts[k + 1]:
                base = int(self._starts[k])
                out[r] = self._map(k)[start - base : start - base + width]
            else:  # straddles two shards
                out[r] = self._range(start, stop)
        return out

    def _range(self, start: int, stop: int) -> np.ndarray:
        parts = []
        k = max(0, int(np.searchsorted(self._starts, start, side="right")) - 1)
        while start < stop:
            end = min(stop, int(self._starts[k + 1]))
            parts.append(self._map(k)[start - self._starts[k] : end - self._starts[k]])
            start, k = end, k + 1
        return np.concatenate(parts).astype(np.int32) if parts else np.empty(0, np.int32)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"ShardedTokens({self.size} tokens in {len(self._paths)} shards)"


class TokenStore:
    """An opened store: `tokens` (int32 values, memory-mapped shards), `doc_offsets` (int64, memory-mapped),
    the vocab's `token_space`, and `meta` (the manifest)."""

    def __init__(self, directory: str | os.PathLike, eval_fraction: float = DEFAULT_EVAL_FRACTION):
        if not 0.0 <= eval_fraction < 1.0:
            raise ValueError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
        self.directory = Path(directory)
        self.meta = read_manifest(self.directory)
        self.storage_dtype = np.dtype(self.meta["dtype"])
        shard_dir = self.directory / SHARDS_DIR
        self.tokens = ShardedTokens(
            [shard_dir / s["name"] / "tokens.npy" for s in self.meta["shards"]],
            [s["num_tokens"] for s in self.meta["shards"]],
        )
        self.doc_offsets = np.load(self.directory / "doc_offsets.npy", mmap_mode="r")
        if self.doc_offsets.shape != (self.meta["num_documents"] + 1,) or self.num_tokens != self.meta["num_tokens"]:
            raise IncompleteStoreError(
                f"token store {self.directory} does not match its manifest; delete it to rebuild it"
            )
        self.eval_fraction = float(eval_fraction)
        space: dict[str, Any] = {
            k: (tuple(map(tuple, v)) if k == "mode_token_ids" else v) for k, v in self.meta["token_space"].items()
        }
        self.token_space = TokenSpace(**space)

    @property
    def num_tokens(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def num_documents(self) -> int:
        return len(self.doc_offsets) - 1

    @property
    def key(self) -> str:
        return self.directory.name

    @property
    def split_point(self) -> int:
        """First validation token: the last `eval_fraction` of the store is held out."""
        return self.num_tokens - round(self.num_tokens * self.eval_fraction)

    def split_bounds(self, split: str) -> tuple[int, int]:
        """Token range [start, stop) of a split."""
        if split == "train":
            return 0, self.split_point
        if split == "validation":
            return self.split_point, self.num_tokens
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")

    def document(self, i: int) -> np.ndarray:
        return self.tokens[int(self.doc_offsets[i]) : int(self.doc_offsets[i + 1])]

    def __repr__(self) -> str:
        return f"TokenStore({self.directory}, tokens={self.num_tokens}, documents={self.num_documents})"


class OldStoreFormatError(InputError):
    """A store written by an older t5explore; the message names it and how to migrate or rebuild it."""


def is_legacy_store(directory: Path) -> bool:
    return (directory / "tokens.npy").is_file() and (directory / "meta.json").is_file()


def read_manifest(directory: Path) -> dict:
    """The manifest of a complete store; a clear error for an old-format, unfinished or future store."""
    path = directory / MANIFEST
    if not path.is_file():
        if is_legacy_store(directory):
            raise OldStoreFormatError(
                f"token store {directory} is in the old format (one int32 tokens.npy), which this version does "
                f"not read: a run or `t5explore build-store` with the same gin files migrates it into a new cache "
                f"entry without re-tokenising; or delete that directory to rebuild it"
            )
        raise IncompleteStoreError(
            f"{directory} is not a complete token store (no {MANIFEST}): an unfinished "
            f"build; `t5explore build-store` with the run's gin files resumes it"
        )
    meta = read_json(path)
    if meta.get("format") != STORE_FORMAT:
        raise OldStoreFormatError(
            f"token store {directory} has format {meta.get('format')!r}; this version reads "
            f"format {STORE_FORMAT}: delete that directory to rebuild it"
        )
    return meta


def _token_space_json(ts: TokenSpace) -> dict:
    return {f: getattr(ts, f) for f in TokenSpace.__dataclass_fields__}


def write_token_store(
    directory: str | os.PathLike,
    documents: Iterable[np.ndarray],
    token_space: TokenSpace,
    eval_fraction: float = DEFAULT_EVAL_FRACTION,
    **meta,
) -> TokenStore:
    """Write already-tokenised documents as a one-shard store (synthetic stores for tests and tools)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    docs = [np.asarray(d).reshape(-1) for d in documents]
    dtype = shards_lib.token_dtype(token_space.vocab_size)
    if any(d.size and d.max() >= 1 << 16 for d in docs):
        dtype = np.dtype(np.int32)
    shard = Shard(0, {"written": len(docs)})
    if (directory / SHARDS_DIR / shard.name).exists():
        shutil.rmtree(directory / SHARDS_DIR / shard.name)
    chunk = (np.concatenate(docs) if docs else np.zeros(0, np.int32), np.array([len(d) for d in docs], np.int64))
    shards_lib.write_shard(directory, shard, [chunk], dtype)
    shards_lib.finalize_store(
        directory, _NoDocuments(), [shard], dtype, {**meta, "token_space": _token_space_json(token_space)}
    )
    return TokenStore(directory, eval_fraction)


class _NoDocuments:
    name = "written documents"

    def no_documents_error(self) -> Exception:
        return ValueError("write_token_store needs at least one document")


def store_cache_key(corpus, vocab) -> str:
    """`vocab.fingerprint()` covers the model bytes and the sentinel count (see the module docstring)."""
    return content_key("tokens-v2", corpus.fingerprint(), vocab.fingerprint())


def legacy_cache_key(corpus, vocab) -> str:
    """Where the first format kept the same store (migrated from there, see the module docstring)."""
    return content_key("tokens-v1", corpus.fingerprint(), vocab.fingerprint())


def store_entry(corpus, vocab, cache_dir: str | os.PathLike | None = None) -> Path:
    return resolve_cache_dir(cache_dir) / "tokens" / store_cache_key(corpus, vocab)


def is_complete(entry: Path) -> bool:
    return (entry / MANIFEST).is_file()


def store_meta(corpus, vocab) -> dict:
    return {
        "corpus": corpus.name,
        "corpus_fingerprint": corpus.fingerprint(),
        "vocab": str(vocab.sp_path),
        "vocab_fingerprint": vocab.fingerprint(),
        "token_space": _token_space_json(vocab.token_space()),
    }


def shard_jobs(
    corpus, vocab, entry: Path, settings: BuildSettings, part: tuple[int, int] = (0, 1), progress: bool = False
) -> tuple[list[Shard], list]:
    """The corpus's shards, and jobs for those of them not built yet that belong to `part` (i, n): the shards
    whose index is i mod n (one task of a job array builds one part)."""
    note = corpus.size_note() if progress and hasattr(corpus, "size_note") else None
    if note:
        print(note, file=sys.stderr, flush=True)
    plan = shards_lib.plan_shards(corpus, settings.shard_bytes, settings.shard_documents)
    todo = [s for s in plan if s.index % part[1] == part[0] and shards_lib.shard_info(entry, s) is None]
    threads = settings.threads_for(settings.workers_for(len(todo)))
    dtype = shards_lib.token_dtype(vocab.token_space().vocab_size).name
    return plan, [
        shards_lib.ShardJob(corpus, s, str(entry), dtype, str(vocab.sp_path), vocab.extra_ids, threads) for s in todo
    ]


def tokenize_to_files(corpus, vocab, entry: Path, settings: BuildSettings, progress: bool = True) -> dict:
    """Tokenise the corpus's missing shards into the store `entry` in parallel, then write its manifest."""
    start = time.perf_counter()
    plan, jobs = shard_jobs(corpus, vocab, entry, settings, progress=progress)
    workers = settings.workers_for(len(jobs))
    shards_lib.build_shards(jobs, workers, vocab, corpus.name, progress)
    dtype = shards_lib.token_dtype(vocab.token_space().vocab_size)
    manifest = shards_lib.finalize_store(
        entry,
        corpus,
        plan,
        dtype,
        {**store_meta(corpus, vocab), "seconds": round(time.perf_counter() - start, 2), "workers": workers},
    )
    if progress:
        print(
            f"tokenised {corpus.name}: {manifest['num_documents']:,} documents, {manifest['num_tokens']:,} tokens "
            f"({len(plan)} shards, {len(jobs)} built now by {workers} process{'es' if workers > 1 else ''}) in "
            f"{manifest['seconds']} s "
            f"-> {entry}",
            file=sys.stderr,
            flush=True,
        )
    return manifest


def migrate_legacy(legacy: Path, entry: Path, corpus, vocab, progress: bool = True) -> dict:
    """Copy a first-format store into `entry` as one shard (uint16 where it fits); the old one is kept."""
    dtype = shards_lib.token_dtype(vocab.token_space().vocab_size)
    shard = Shard(0, {"migrated_from": legacy.name})
    shards_lib.write_shard(entry, shard, _legacy_chunks(legacy), dtype)
    manifest = shards_lib.finalize_store(
        entry, corpus, [shard], dtype, {**store_meta(corpus, vocab), "migrated_from": str(legacy)}
    )
    if progress:
        print(
            f"migrated the token store {legacy} to {entry} ({manifest['num_tokens']:,} tokens, "
            f"{dtype.name}); the old directory can be deleted",
            file=sys.stderr,
            flush=True,
        )
    return manifest


def _legacy_chunks(legacy: Path) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """(tokens, document lengths) chunks of a first-format store, read in pieces (memory stays flat)."""
    previous = None
    tokens = shards_lib.read_npy_chunks(legacy / "tokens.npy")
    offsets = shards_lib.read_npy_chunks(legacy / "doc_offsets.npy")
    for values, ends in itertools.zip_longest(tokens, offsets):
        lengths = np.zeros(0, np.int64)
        if ends is not None and ends.size:
            if previous is None:
                previous, ends = int(ends[0]), ends[1:]
            lengths = np.diff(np.concatenate([[previous], ends]))
            previous = int(ends[-1]) if ends.size else previous
        yield (np.zeros(0, np.int32) if values is None else values), lengths


def _build_store(entry: Path, corpus, vocab, settings: BuildSettings, progress: bool) -> None:
    legacy = entry.parent / legacy_cache_key(corpus, vocab)
    try:
        if is_legacy_store(legacy) and not (entry / SHARDS_DIR).exists():
            migrate_legacy(legacy, entry, corpus, vocab, progress)
        else:
            tokenize_to_files(corpus, vocab, entry, settings, progress)
    except InputError:  # the corpus is wrong: no half-built entry is worth keeping
        shutil.rmtree(entry, ignore_errors=True)
        raise


def get_token_store(
    corpus,
    vocab,
    cache_dir: str | os.PathLike | None = None,
    eval_fraction: float = DEFAULT_EVAL_FRACTION,
    progress: bool = True,
    settings: BuildSettings | None = None,
) -> TokenStore:
    """Open the cached store of (corpus, vocab), tokenising the corpus first if it is not cached yet (resuming
    a killed build; `settings` default to the gin-configured `token_store.*`)."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):  # a worker re-running an unguarded script
        raise RuntimeError(
            "get_token_store was called while a tokenising worker process was starting: a script that "
            "builds a token store needs an `if __name__ == '__main__':` guard (workers are spawned)"
        )
    entry = store_entry(corpus, vocab, cache_dir)
    if not is_complete(entry):
        with build_lock(entry, "token store"):  # concurrent workers tokenise once; the others wait, then open it
            if not is_complete(entry):
                _build_store(entry, corpus, vocab, settings or BuildSettings(), progress)
    store = TokenStore(entry, eval_fraction)
    if store.token_space != vocab.token_space():  # a stale entry: the key missed something the store embeds
        raise ValueError(
            f"token store {entry} was built for {store.token_space}, not for this vocabulary's "
            f"{vocab.token_space()} ({vocab!r}); delete that directory to rebuild it"
        )
    return store
