"""Input and target encodings: how a (tokens, noise mask) pair becomes a sequence.

Every encoding emits at most one token per raw position, so an encoding is two arrays over the raw row:
`emit` (bool: does this position produce a token) and `values` (which token). `pack` then compacts the
emitted tokens to the left, appends EOS and pads: one cumsum and one scatter for the whole batch.
`emit` depends on the mask only, so lengths can be checked (and rows trimmed) before values are built.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from t5explore.objectives.base import TokenSpace
from t5explore.objectives.masks import LengthCoeffs, span_starts


@dataclasses.dataclass(frozen=True)
class Encoding:
    """One way to turn (chunk, noise) into a sequence. `kind` is one of INPUT_KINDS / TARGET_KINDS."""

    kind: str
    mask_prob: float = 1.0  # bert_replace only: noise token -> <extra_id_0>
    random_prob: float = 0.0  # bert_replace only: noise token -> random regular token (rest: kept)

    def __post_init__(self):
        if self.kind not in _COEFFS:
            raise ValueError(f"unknown encoding {self.kind!r}; choose from {sorted(_COEFFS)}")

    @property
    def coeffs(self) -> LengthCoeffs:
        return _COEFFS[self.kind]

    @property
    def sentinel_spans(self) -> str | None:
        """Which spans get one unique sentinel each ('noise', 'nonnoise') or None."""
        return {"sentinel_per_noise_span": "noise", "sentinel_per_nonnoise_span": "nonnoise"}.get(self.kind)

    def emit(self, noise: np.ndarray) -> np.ndarray:
        k = self.kind
        if k in ("original", "mask_token", "bert_replace", "permute_noise"):
            return np.ones_like(noise)
        if k == "drop_noise":
            return ~noise
        if k == "noise_only":
            return noise.copy()
        if k == "empty":
            return np.zeros_like(noise)
        noise_start, nonnoise_start = span_starts(noise)
        if k == "sentinel_per_noise_span":
            return ~noise | noise_start
        return noise | nonnoise_start  # sentinel_per_nonnoise_span

    def values(self, chunks: np.ndarray, noise: np.ndarray, rng: np.random.Generator, tokens: TokenSpace) -> np.ndarray:
        """Token at each raw position (only read where `emit` is True). `noise` is already limited to the
        kept prefix of each row, so permutations never move tokens across the trim point."""
        k = self.kind
        if k in ("original", "drop_noise", "noise_only", "empty"):
            return chunks
        if k == "mask_token":
            return np.where(noise, tokens.sentinel(0), chunks)
        if k == "bert_replace":
            u = rng.random(chunks.shape)
            random_ids = rng.integers(tokens.first_regular_id, tokens.vocab_size - tokens.num_sentinels, chunks.shape)
            replaced = np.where(u < self.mask_prob, tokens.sentinel(0),
                                np.where(u < self.mask_prob + self.random_prob, random_ids, chunks))
            return np.where(noise, replaced, chunks)
        if k == "permute_noise":
            return _permute_noise(chunks, noise, rng)
        noise_start, nonnoise_start = span_starts(noise)
        if k == "sentinel_per_noise_span":
            span_index = np.cumsum(noise_start, axis=1, dtype=np.int32) - 1
            return np.where(noise, tokens.sentinel(span_index), chunks)
        span_index = np.cumsum(nonnoise_start, axis=1, dtype=np.int32) - 1  # sentinel_per_nonnoise_span
        return np.where(noise, chunks, tokens.sentinel(span_index))


# Length of each encoding (before EOS) as a linear function of the row's counts.
_COEFFS = {
    "original": LengthCoeffs(length=1),
    "mask_token": LengthCoeffs(length=1),
    "bert_replace": LengthCoeffs(length=1),
    "permute_noise": LengthCoeffs(length=1),
    "sentinel_per_noise_span": LengthCoeffs(length=1, noise=-1, noise_spans=1),
    "drop_noise": LengthCoeffs(length=1, noise=-1),
    "empty": LengthCoeffs(),
    "sentinel_per_nonnoise_span": LengthCoeffs(noise=1, nonnoise_spans=1),
    "noise_only": LengthCoeffs(noise=1),
}
INPUT_KINDS = ("mask_token", "bert_replace", "sentinel_per_noise_span", "drop_noise", "permute_noise", "empty",
               "original")
TARGET_KINDS = ("original", "sentinel_per_nonnoise_span", "noise_only")


def _permute_noise(chunks: np.ndarray, noise: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shuffle the noise tokens of each row among the noise positions (T5's permute_noise_tokens)."""
    batch, length = chunks.shape
    pos = np.arange(length)[None, :]
    # Noise positions first, in position order / in random order; non-noise after, in position order.
    by_position = np.argsort(np.where(noise, pos, length + pos), axis=1, kind="stable")
    keys = rng.random((batch, length))
    by_random = np.argsort(np.where(noise, keys, 2.0 + pos), axis=1, kind="stable")
    out = np.empty_like(chunks)
    np.put_along_axis(out, by_position, np.take_along_axis(chunks, by_random, axis=1), axis=1)
    return out


def pack(values: np.ndarray, emit: np.ndarray, width: int, eos_id: int, prefix_id: int | None = None) -> np.ndarray:
    """Left-compact the emitted tokens of each row, optionally after `prefix_id`, then EOS, then 0 padding.
    The caller guarantees the row fits (planning + trimming); a row that does not is a bug, never cut."""
    batch = values.shape[0]
    offset = 0 if prefix_id is None else 1
    counts = emit.sum(axis=1) + offset
    if counts.size and counts.max() >= width:
        raise AssertionError(f"encoded row of {counts.max() + 1} tokens does not fit width {width}")
    out = np.zeros((batch, width), dtype=np.int32)
    if prefix_id is not None:
        out[:, 0] = prefix_id
    row_counts = counts - offset
    first = np.cumsum(row_counts) - row_counts  # index of each row's first emitted token in values[emit]
    dest = np.arange(int(row_counts.sum())) + np.repeat(np.arange(batch) * width + offset - first, row_counts)
    out.reshape(-1)[dest] = values[emit]
    out[np.arange(batch), counts] = eos_id
    return out
