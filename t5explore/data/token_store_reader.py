"""An opened token store: the manifest, the shards' tokens as one array, the held-out split.

Documents are concatenated without separators, as T5's `reduce_concat_tokens` does before splitting into
chunks; `doc_offsets[i]:doc_offsets[i+1]` is document i. `tokens` reads as one int32 array over the store's
shards (stored as uint16 where the vocabulary fits); `doc_offsets` is a memory-mapped int64 .npy. The
layout is in token_shards.py; building, caching and migrating stores is in token_store.py. A store is
complete once its manifest exists; stores of the first format (one int32 tokens.npy) and of a future
format are refused with `OldStoreFormatError`.

The held-out split is positional: tokens `[split_point, num_tokens)` (the last `eval_fraction`) are validation
and no training chunk ever reaches into them, whatever the chunk length.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from t5explore.data.token_shards import MANIFEST, SHARDS_DIR, STORE_FORMAT, IncompleteStoreError
from t5explore.errors import InputError
from t5explore.io_utils import read_json
from t5explore.objectives.base import TokenSpace

SPLITS = ("train", "validation")
DEFAULT_EVAL_FRACTION = 0.02  # small corpora (the built-in ~0.7M tokens) still get a few eval batches


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
