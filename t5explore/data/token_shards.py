"""Building a token store: shards of the corpus tokenised in parallel processes, then a manifest, last.

A store directory (one cache entry, see token_store.py):

    shards/<index>-<hash of the shard's spec>/tokens.npy   the shard's documents' tokens, uint16 (int32 if the
                                                          vocabulary needs it), concatenated
                                              offsets.npy  int64 document boundaries within the shard (0 first)
                                              shard.json   its counts
    doc_offsets.npy   int64, every document's first token, then the total (written when all shards are done)
    manifest.json     written last: a store is complete when it exists

Each shard is built by one process in `shards/.<name>.<pid>.<random>.tmp/`, written front to back in its final
form (no second copy of the tokens), and renamed into place when done: a killed build keeps its completed
shards and resumes with the others; two builders of one shard both finish and the second rename loses
harmlessly. Shards are consecutive parts of the corpus (`CorpusSource.shards`), so the store is the same for
any number of processes or machines. Memory is bounded by the encode batch, never by the corpus: no
per-document Python objects outlive a batch, and offsets are streamed to disk.

CPU beyond sentencepiece's own encoding (issue 24: at least 0.9 of raw sentencepiece per CPU second): ids come
back as one int32 array per document (`Vocab.encode_batch_arrays`), never as a Python int per token; documents
move into batches DOCS_PER_TAKE at a time, with no Python line per document; what is left is reading the
files and splitting them into documents (corpus.py), 10-15% of the encoding's CPU on Gutenberg books.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import multiprocessing
import os
import secrets
import shutil
import struct
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from t5explore.data.cache import content_key
from t5explore.errors import InputError
from t5explore.io_utils import atomic_write_json, read_json

STORE_FORMAT = 2
SHARDS_DIR = "shards"
MANIFEST = "manifest.json"
SHARD_INFO = "shard.json"
ENCODE_BATCH_CHARS = 1 << 20  # text per sentencepiece call (the next batch is read while this one encodes)
DOCS_PER_TAKE = 256  # documents moved into a batch at once (a batch overshoots ENCODE_BATCH_CHARS by < this)
COPY_CHUNK = 1 << 22  # elements per read when offsets or migrated tokens are copied
PROGRESS_EVERY_S = 10.0
_NPY_HEADER_BYTES = 128


class IncompleteStoreError(RuntimeError):
    """A store was finalized (or opened) before all its shards were built."""


class EmptyCorpusError(InputError):
    """The corpus's documents hold no tokens at all."""


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 where every id fits (vocab_size <= 65536), else int32; both read back as the same integers."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.int32)


def _npy_header(dtype: np.dtype, length: int) -> bytes:
    """A .npy (v1.0) header of a 1-D array, always 128 bytes, so it can be rewritten once the length is known."""
    text = f"{{'descr': {dtype.str!r}, 'fortran_order': False, 'shape': ({length:d},), }}"
    body = text.encode("latin1").ljust(_NPY_HEADER_BYTES - 11) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body


class NpyAppender:
    """A 1-D .npy file written front to back without knowing its length (the header is fixed at close)."""

    def __init__(self, path: str | os.PathLike, dtype):
        self.path, self.dtype, self.length = Path(path), np.dtype(dtype), 0
        self._f = open(self.path, "wb")  # noqa: SIM115 - the appender owns the file until close()
        self._f.write(_npy_header(self.dtype, 0))

    def write(self, values) -> None:
        values = np.ascontiguousarray(values, dtype=self.dtype)
        self._f.write(memoryview(values).cast("B"))
        self.length += values.size

    def close(self) -> None:
        if not self._f.closed:
            self._f.seek(0)
            self._f.write(_npy_header(self.dtype, self.length))
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()

    def __enter__(self) -> NpyAppender:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self._f.close()


def read_npy_chunks(path: Path, chunk: int | None = None) -> Iterator[np.ndarray]:
    """A 1-D .npy file in chunks read from disk (not memory-mapped: the process's memory stays flat)."""
    chunk = chunk or COPY_CHUNK
    with open(path, "rb") as f:
        major, _ = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)
        left = int(np.prod(shape))
        while left:
            part = np.fromfile(f, dtype=dtype, count=min(chunk, left))
            if part.size == 0:
                raise IncompleteStoreError(f"{path} is truncated ({left} values missing)")
            left -= part.size
            yield part


@dataclasses.dataclass(frozen=True)
class Shard:
    """One consecutive part of a corpus: its position and the corpus's JSON-able description of it."""

    index: int
    spec: Any

    @property
    def name(self) -> str:
        return f"{self.index:05d}-{content_key('shard', self.spec)[:12]}"


def plan_shards(corpus, shard_bytes: int | None, shard_documents: int) -> list[Shard]:
    """The corpus's shards (one, the whole corpus, for a source without `shards`)."""
    specs = corpus.shards(shard_bytes, shard_documents) if hasattr(corpus, "shards") else [None]
    return [Shard(i, spec) for i, spec in enumerate(specs)]


def shard_documents(corpus, spec) -> Iterable[str]:
    return corpus.shard_documents(spec) if hasattr(corpus, "shard_documents") else corpus.documents()


def shard_info(entry: Path, shard: Shard) -> dict | None:
    """The shard's counts if it is built, else None."""
    path = entry / SHARDS_DIR / shard.name / SHARD_INFO
    return read_json(path) if path.is_file() else None


@dataclasses.dataclass(frozen=True)
class ShardJob:
    """What a worker process needs to build one shard (pickled to it)."""

    corpus: Any
    shard: Shard
    entry: str
    dtype: str
    sp_path: str
    extra_ids: int
    encode_threads: int


@functools.lru_cache(maxsize=2)
def _load_vocab(sp_path: str, extra_ids: int):
    from t5explore.data.vocab import Vocab

    return Vocab(sp_path, extra_ids)


def run_shard_job(job: ShardJob, vocab=None) -> dict:
    """Build one shard unless it is built; returns its counts."""
    shards_dir = Path(job.entry) / SHARDS_DIR
    final = shards_dir / job.shard.name
    if (final / SHARD_INFO).is_file():
        return read_json(final / SHARD_INFO)
    vocab = vocab if vocab is not None else _load_vocab(job.sp_path, job.extra_ids)
    tmp = shards_dir / f".{job.shard.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    tmp.mkdir(parents=True)
    try:
        info = _tokenize_shard(job, vocab, tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / SHARD_INFO).is_file():
                raise  # not another builder's finished shard: a real error
        return info
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _tokenize_shard(job: ShardJob, vocab, out: Path) -> dict:
    start, cpu_start = time.perf_counter(), time.process_time()
    dtype = np.dtype(job.dtype)
    num_tokens = num_documents = 0
    with NpyAppender(out / "tokens.npy", dtype) as tokens, NpyAppender(out / "offsets.npy", np.int64) as offsets:
        offsets.write(np.zeros(1, np.int64))
        for encoded in encoded_batches(shard_documents(job.corpus, job.shard.spec), vocab, job.encode_threads):
            lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
            flat = np.concatenate(encoded)  # int32 ids, stored as `dtype` (uint16 where the vocabulary fits)
            tokens.write(flat)
            offsets.write(num_tokens + np.cumsum(lengths))
            num_tokens += flat.size
            num_documents += len(encoded)
    info = {
        "index": job.shard.index,
        "name": job.shard.name,
        "spec": job.shard.spec,
        "dtype": dtype.name,
        "num_tokens": num_tokens,
        "num_documents": num_documents,
        "seconds": round(time.perf_counter() - start, 3),
        "cpu_seconds": round(time.process_time() - cpu_start, 3),
    }  # every thread of this process
    atomic_write_json(out / SHARD_INFO, info)
    return info


def _text_batches(documents: Iterable[str]) -> Iterator[list[str]]:
    """Batches of at least ENCODE_BATCH_CHARS characters (the last may be shorter), DOCS_PER_TAKE documents
    taken at a time, so no Python line runs per document; where a batch ends changes no token."""
    docs = iter(documents)
    batch: list[str] = []
    chars = 0
    while taken := list(itertools.islice(docs, DOCS_PER_TAKE)):
        batch += taken
        chars += sum(map(len, taken))
        if chars >= ENCODE_BATCH_CHARS:
            yield batch
            batch, chars = [], 0
    if batch:
        yield batch


def encoded_batches(documents: Iterable[str], vocab, threads: int) -> Iterator[list[np.ndarray]]:
    """Encoded batches of documents, one int32 array per document; sentencepiece (which releases the GIL)
    encodes batch k+1 in a thread while the caller stores batch k and the next text is read."""
    with ThreadPoolExecutor(1, thread_name_prefix="encode") as pool:
        pending = None
        for texts in _text_batches(documents):
            submitted = pool.submit(vocab.encode_batch_arrays, texts, threads)
            if pending is not None:
                yield pending.result()
            pending = submitted
        if pending is not None:
            yield pending.result()


def build_shards(jobs: list[ShardJob], num_workers: int, vocab, label: str, progress: bool) -> list[dict]:
    """Run the jobs (in this process when one worker is enough, else in a pool of spawned processes)."""
    done: list[dict] = []
    if not jobs:
        return done
    report = _Progress(label, len(jobs), num_workers, progress)
    if num_workers <= 1 or len(jobs) == 1:
        for job in jobs:
            done.append(run_shard_job(job, vocab))
            report(done[-1])
        return done
    # spawn, not fork: the caller may hold JAX or TensorFlow threads, which a fork would copy half-way
    with multiprocessing.get_context("spawn").Pool(min(num_workers, len(jobs))) as pool:
        for info in pool.imap_unordered(run_shard_job, jobs):
            done.append(info)
            report(info)
    return done


class _Progress:
    def __init__(self, label: str, total: int, workers: int, enabled: bool):
        self.label, self.total, self.workers, self.enabled = label, total, workers, enabled
        self.start = self.last = time.perf_counter()
        self.done = self.tokens = 0

    def __call__(self, info: dict) -> None:
        self.done += 1
        self.tokens += info["num_tokens"]
        now = time.perf_counter()
        if self.enabled and (now - self.last >= PROGRESS_EVERY_S or self.done == self.total):
            self.last = now
            print(
                f"tokenising {self.label}: {self.done}/{self.total} shards, {self.tokens:,} tokens "
                f"({self.tokens / max(now - self.start, 1e-9):,.0f} tokens/s, {self.workers} process"
                f"{'es' if self.workers > 1 else ''})",
                file=sys.stderr,
                flush=True,
            )


def finalize_store(entry: Path, corpus, shards: list[Shard], dtype: np.dtype, meta: dict) -> dict:
    """Write doc_offsets.npy and, last, manifest.json from the built shards; returns the manifest."""
    found = [shard_info(entry, s) for s in shards]
    missing = [s.name for s, info in zip(shards, found) if info is None]
    if missing:
        raise IncompleteStoreError(
            f"{entry}: {len(missing)} of {len(shards)} shards are not built (first: {missing[0]}); build them "
            f"(t5explore build-store --shard=I/N, or without --shard), then finalize"
        )
    infos = [info for info in found if info is not None]  # every shard's: none is missing
    bad = [info["name"] for info in infos if info["dtype"] != dtype.name]
    if bad:
        raise IncompleteStoreError(f"{entry}: shard {bad[0]} holds {dtype.name}-incompatible tokens; delete it")
    num_documents = sum(info["num_documents"] for info in infos)
    num_tokens = sum(info["num_tokens"] for info in infos)
    if num_documents == 0:
        raise (
            corpus.no_documents_error()
            if hasattr(corpus, "no_documents_error")
            else EmptyCorpusError(f"corpus {corpus.name} has no documents")
        )
    if num_tokens == 0:
        raise EmptyCorpusError(f"corpus {corpus.name} produced no tokens")
    _write_doc_offsets(entry, infos)
    manifest = {
        **meta,
        "format": STORE_FORMAT,
        "dtype": dtype.name,
        "num_tokens": num_tokens,
        "num_documents": num_documents,
        "shards": [{k: info[k] for k in ("name", "num_tokens", "num_documents")} for info in infos],
    }
    atomic_write_json(entry / MANIFEST, manifest)
    _remove_leftovers(entry / SHARDS_DIR, {s.name for s in shards})
    return manifest


def _write_doc_offsets(entry: Path, infos: list[dict]) -> None:
    tmp = entry / f".doc_offsets.{os.getpid()}.tmp"
    base = 0
    with NpyAppender(tmp, np.int64) as out:
        for info in infos:
            path = entry / SHARDS_DIR / info["name"] / "offsets.npy"
            seen = 0
            for part in read_npy_chunks(path):
                seen += part.size
                out.write((part if seen <= info["num_documents"] else part[:-1]) + base)
            if seen != info["num_documents"] + 1:
                raise IncompleteStoreError(f"{path}: {seen} offsets for {info['num_documents']} documents")
            base += info["num_tokens"]
        out.write(np.array([base], np.int64))
    os.replace(tmp, entry / "doc_offsets.npy")


def _remove_leftovers(shards_dir: Path, keep: set[str]) -> None:
    """Temp dirs of killed builds and shards of another plan (e.g. another shard size)."""
    for path in shards_dir.iterdir():
        if path.name not in keep and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def write_shard(
    entry: Path, shard: Shard, chunks: Iterable[tuple[np.ndarray, np.ndarray]], dtype: np.dtype, **extra
) -> dict:
    """Write a shard from chunks of (tokens, document lengths), which need not line up, for stores not
    tokenised from text (migrated, synthetic); the same layout and atomic rename as a built shard."""
    shards_dir = entry / SHARDS_DIR
    tmp = shards_dir / f".{shard.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    tmp.mkdir(parents=True)
    try:
        num_tokens = num_documents = ends = 0
        with NpyAppender(tmp / "tokens.npy", dtype) as tokens, NpyAppender(tmp / "offsets.npy", np.int64) as offsets:
            offsets.write(np.zeros(1, np.int64))
            for values, lengths in chunks:
                tokens.write(_checked(values, dtype))
                num_tokens += len(values)
                if len(lengths):
                    offsets.write(ends + np.cumsum(lengths, dtype=np.int64))
                    ends += int(np.sum(lengths, dtype=np.int64))
                    num_documents += len(lengths)
        if ends != num_tokens:
            raise ValueError(f"documents of {ends} tokens in all, but {num_tokens} tokens (shard {shard.name})")
        info = {
            "index": shard.index,
            "name": shard.name,
            "spec": shard.spec,
            "dtype": dtype.name,
            "num_tokens": num_tokens,
            "num_documents": num_documents,
            **extra,
        }
        atomic_write_json(tmp / SHARD_INFO, info)
        os.rename(tmp, shards_dir / shard.name)
        return info
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _checked(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    values = np.asarray(values)
    if values.size and (values.min() < np.iinfo(dtype).min or values.max() > np.iinfo(dtype).max):
        raise ValueError(f"token ids {values.min()}..{values.max()} do not fit the store's {dtype.name}")
    return values.astype(dtype, copy=False)
