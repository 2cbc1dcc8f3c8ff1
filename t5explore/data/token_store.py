"""The token store cache: a corpus tokenised once, memory-mapped by every run.

`get_token_store` opens the cached store of (corpus, vocab), building it first when it is missing: the
layout, the parallel build and its resume are in token_shards.py; the opened store (`TokenStore`, its
`tokens`, `doc_offsets` and held-out split) is in token_store_reader.py. Cached by hash(corpus fingerprint,
vocab fingerprint): a sweep's runs share it, concurrent builders take one lock (one builds, the others
wait), and a store is complete once its manifest exists. The vocab fingerprint includes the sentinel count:
sentinel ids (`vocab_size - 1 - k`) and the saved token space change with it, so a 100-sentinel store is
never opened for a 200-sentinel vocabulary (and `get_token_store` checks the saved token space on every open).

Stores of the first format (one int32 tokens.npy) are not opened; `get_token_store` migrates one it finds
under the same corpus and vocabulary into a new entry (no re-tokenising) and leaves it in place.
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

import gin
import numpy as np

from t5explore.data import token_shards as shards_lib
from t5explore.data.cache import build_lock, content_key, resolve_cache_dir
from t5explore.data.token_shards import MANIFEST, SHARDS_DIR, Shard
from t5explore.data.token_store_reader import DEFAULT_EVAL_FRACTION, TokenStore, is_legacy_store
from t5explore.errors import InputError
from t5explore.objectives.base import TokenSpace


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
