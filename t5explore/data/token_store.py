"""The token store: a corpus tokenised once into one flat int32 array, memory-mapped by every run.

Documents are concatenated without separators, as T5's `reduce_concat_tokens` does before splitting into
chunks; `doc_offsets[i]:doc_offsets[i+1]` is document i. Cached by hash(corpus fingerprint, vocab fingerprint),
built in a temp dir and published by one rename, so a sweep's runs share it and never read half a store.
The vocab fingerprint includes the sentinel count: sentinel ids (`vocab_size - 1 - k`) and the saved token
space change with it, so a 100-sentinel store is never opened for a 200-sentinel vocabulary (and
`get_token_store` checks the saved token space against the vocabulary's on every open).

The held-out split is positional: tokens `[split_point, num_tokens)` (the last `eval_fraction`) are validation
and no training chunk ever reaches into them, whatever the chunk length.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from t5explore.data.cache import build_lock, building_entry, content_key, resolve_cache_dir
from t5explore.io_utils import atomic_write_json, read_json
from t5explore.objectives.base import TokenSpace

SPLITS = ("train", "validation")
DEFAULT_EVAL_FRACTION = 0.02  # small corpora (the built-in ~0.7M tokens) still get a few eval batches
ENCODE_BATCH_CHARS = 4_000_000  # text handed to sentencepiece's thread pool per call
PROGRESS_EVERY_S = 10.0


class TokenStore:
    """An opened store: `tokens` (int32, memory-mapped), `doc_offsets` (int64), the vocab's `token_space`."""

    def __init__(self, directory: str | os.PathLike, eval_fraction: float = DEFAULT_EVAL_FRACTION):
        if not 0.0 <= eval_fraction < 1.0:
            raise ValueError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
        self.directory = Path(directory)
        self.tokens = np.load(self.directory / "tokens.npy", mmap_mode="r")
        self.doc_offsets = np.load(self.directory / "doc_offsets.npy")
        self.meta = read_json(self.directory / "meta.json")
        self.eval_fraction = float(eval_fraction)
        self.token_space = TokenSpace(**{k: (tuple(map(tuple, v)) if k == "mode_token_ids" else v)
                                         for k, v in self.meta["token_space"].items()})

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
        return self.num_tokens - int(round(self.num_tokens * self.eval_fraction))

    def split_bounds(self, split: str) -> tuple[int, int]:
        """Token range [start, stop) of a split."""
        if split == "train":
            return 0, self.split_point
        if split == "validation":
            return self.split_point, self.num_tokens
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")

    def document(self, i: int) -> np.ndarray:
        return np.asarray(self.tokens[self.doc_offsets[i]:self.doc_offsets[i + 1]])

    def __repr__(self) -> str:
        return f"TokenStore({self.directory}, tokens={self.num_tokens}, documents={self.num_documents})"


def _text_batches(documents: Iterable[str]) -> Iterator[list[str]]:
    batch, chars = [], 0
    for doc in documents:
        batch.append(doc)
        chars += len(doc)
        if chars >= ENCODE_BATCH_CHARS:
            yield batch
            batch, chars = [], 0
    if batch:
        yield batch


def tokenize_to_files(documents: Iterable[str], vocab, out_dir: Path, name: str, progress: bool = True) -> dict:
    """Encode documents in batches into out_dir/tokens.npy and doc_offsets.npy; returns counts."""
    start = last_report = time.perf_counter()
    lengths: list[int] = []
    raw_path = out_dir / "tokens.bin"
    with open(raw_path, "wb") as raw:
        for texts in _text_batches(documents):
            encoded = vocab.encode_batch(texts)
            batch_lengths = [len(ids) for ids in encoded]
            flat = np.fromiter(itertools.chain.from_iterable(encoded), dtype=np.int32, count=sum(batch_lengths))
            raw.write(flat.tobytes())
            lengths.extend(batch_lengths)
            now = time.perf_counter()
            if progress and now - last_report >= PROGRESS_EVERY_S:
                last_report = now
                total = sum(lengths)
                print(f"tokenising {name}: {len(lengths):,} documents, {total:,} tokens "
                      f"({total / (now - start):,.0f} tokens/s)", file=sys.stderr, flush=True)
    total = int(sum(lengths))
    if total == 0:
        raise ValueError(f"corpus {name} produced no tokens")
    flat = np.memmap(raw_path, dtype=np.int32, mode="r", shape=(total,))
    out = np.lib.format.open_memmap(out_dir / "tokens.npy", mode="w+", dtype=np.int32, shape=(total,))
    for i in range(0, total, 1 << 24):
        out[i:i + (1 << 24)] = flat[i:i + (1 << 24)]
    out.flush()
    del out, flat
    raw_path.unlink()
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    np.save(out_dir / "doc_offsets.npy", offsets)
    return {"num_tokens": total, "num_documents": len(lengths), "seconds": round(time.perf_counter() - start, 2)}


def _token_space_json(ts: TokenSpace) -> dict:
    return {f: getattr(ts, f) for f in TokenSpace.__dataclass_fields__}


def write_token_store(directory: str | os.PathLike, documents: Iterable[np.ndarray], token_space: TokenSpace,
                      eval_fraction: float = DEFAULT_EVAL_FRACTION, **meta) -> TokenStore:
    """Write already-tokenised documents as a store (synthetic stores for tests and tools); returns it opened."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    docs = [np.asarray(d, dtype=np.int32).reshape(-1) for d in documents]
    offsets = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum([len(d) for d in docs], out=offsets[1:])
    np.save(directory / "tokens.npy", np.concatenate(docs) if docs else np.zeros(0, np.int32))
    np.save(directory / "doc_offsets.npy", offsets)
    atomic_write_json(directory / "meta.json", {**meta, "num_tokens": int(offsets[-1]), "num_documents": len(docs),
                                                "token_space": _token_space_json(token_space)})
    return TokenStore(directory, eval_fraction)


def store_cache_key(corpus, vocab) -> str:
    """`vocab.fingerprint()` covers the model bytes and the sentinel count (see the module docstring)."""
    return content_key("tokens-v1", corpus.fingerprint(), vocab.fingerprint())


def _build_store(entry: Path, corpus, vocab, progress: bool) -> None:
    with building_entry(entry) as tmp:
        counts = tokenize_to_files(corpus.documents(), vocab, tmp, corpus.name, progress)
        atomic_write_json(tmp / "meta.json", {
            **counts, "corpus": corpus.name, "corpus_fingerprint": corpus.fingerprint(),
            "vocab": str(vocab.sp_path), "vocab_fingerprint": vocab.fingerprint(),
            "token_space": _token_space_json(vocab.token_space())})
        if progress:
            print(f"tokenised {corpus.name}: {counts['num_documents']:,} documents, {counts['num_tokens']:,} "
                  f"tokens in {counts['seconds']} s -> {entry}", file=sys.stderr, flush=True)


def get_token_store(corpus, vocab, cache_dir: str | os.PathLike | None = None,
                    eval_fraction: float = DEFAULT_EVAL_FRACTION, progress: bool = True) -> TokenStore:
    """Open the cached store of (corpus, vocab), tokenising the corpus first if it is not cached yet."""
    entry = resolve_cache_dir(cache_dir) / "tokens" / store_cache_key(corpus, vocab)
    if not (entry / "meta.json").is_file():
        with build_lock(entry, "token store"):  # concurrent workers tokenise once; the others wait, then open it
            if not (entry / "meta.json").is_file():
                _build_store(entry, corpus, vocab, progress)
    store = TokenStore(entry, eval_fraction)
    if store.token_space != vocab.token_space():  # a stale entry: the key missed something the store embeds
        raise ValueError(f"token store {entry} was built for {store.token_space}, not for this vocabulary's "
                         f"{vocab.token_space()} ({vocab!r}); delete that directory to rebuild it")
    return store
