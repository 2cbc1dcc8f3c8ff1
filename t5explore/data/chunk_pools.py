"""Where each pretraining row reads its raw tokens: one chunk pool per part of the objective.

A plain objective has one part and one chunk width. A mixture (UL2's denoisers) has parts with different
raw lengths: at 512 inputs UL2's S-denoiser encodes 511 raw tokens and its widest X-denoiser 1,004. If
every row read a chunk of the widest length, a row given a narrower part would leave the chunk's tail
unread (29% of UL2's raw tokens at equal rates). So the split is cut into *groups* of width W = the sum
of the used parts' raw lengths, each group one chunk of every part side by side:

    group g = [ part 0: L_0 tokens | part 1: L_1 tokens | ... ]      (parts with rate 0 take no room)

Part j's pool is the j-th chunk of every group, so the pools are disjoint and each covers the whole split
evenly. Every row of part j takes the next chunk of pool j, in an order shuffled per epoch of that pool,
and reads exactly L_j tokens. Which part a row gets is a BlockDraws draw (data/block_draws.py), so a
row's part and its position in its pool are pure functions of (seed, row index), and batch k needs no
replay of batches 0..k-1.

Equal rates consume the pools at the same speed, so one epoch reads every token of the split once.
Unequal rates cycle the busier pools faster (their text repeats sooner); a row never reads a token it
does not encode either way. With one part the groups are the chunks, and the chunk order is
numpy_rng(seed, STREAM_CHUNK_ORDER, epoch) exactly as before pools existed, so single-objective
numbers did not change.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from t5explore.data.block_draws import BlockDraws
from t5explore.seeds import STREAM_CHUNK_ORDER, STREAM_PRETRAIN_PART, numpy_rng

PART_BLOCK = 1 << 16  # rows per Generator of part draws: resuming at row n draws n / PART_BLOCK blocks


class ChunkPools:
    """The layout of one split: `rows(first, count)` gives each row's part and its first token."""

    def __init__(
        self, first_token: int, num_tokens: int, widths: Sequence[int], probabilities: Sequence[float], seed: int
    ):
        """widths[j]: part j's raw length; probabilities[j]: its rate (normalised); 0 gives it no pool."""
        p = np.asarray(probabilities, dtype=np.float64)
        if len(widths) != p.size or p.size == 0:
            raise ValueError(f"{len(widths)} widths for {p.size} probabilities")
        self.widths = np.array([int(w) if q > 0 else 0 for w, q in zip(widths, p)], np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.widths)[:-1]])
        self.group_width = int(self.widths.sum())
        self.first_token, self.seed, self.probabilities = int(first_token), int(seed), p
        self.num_groups = int(num_tokens) // self.group_width
        self.draws = BlockDraws(p, lambda b: numpy_rng(self.seed, STREAM_PRETRAIN_PART, b), PART_BLOCK)
        self._orders: dict[tuple[int, int], np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def num_parts(self) -> int:
        return int(self.probabilities.size)

    @property
    def rows_per_epoch(self) -> float:
        """Rows that read, on average, as many tokens as the groups hold (the whole split once)."""
        mean_width = float(self.probabilities @ self.widths)
        return self.num_groups * self.group_width / mean_width

    def max_rows_per_pool(self, batch_size: int) -> int:
        """The most rows of one part a batch expects (the pool must hold them without repeating a chunk)."""
        return int(np.ceil(batch_size * self.probabilities.max()))

    def order(self, part: int, epoch: int) -> np.ndarray:
        """Pool `part`'s group order in `epoch` (one part: the key of the single-pool stream)."""
        key = (part, epoch)
        with self._lock:
            if key not in self._orders:
                if len(self._orders) >= 2 * self.num_parts:
                    self._orders.pop(min(self._orders, key=lambda k: k[1]))
                index = (epoch,) if self.num_parts == 1 else (epoch, part)
                self._orders[key] = numpy_rng(self.seed, STREAM_CHUNK_ORDER, *index).permutation(self.num_groups)
            return self._orders[key]

    def rows(self, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(part, first token) of rows first .. first+count-1 of the stream."""
        parts, ranks = self.draws.parts_and_ranks(first, count)
        epochs, within = np.divmod(ranks, self.num_groups)
        groups = np.empty_like(ranks)
        for part, epoch in {(int(j), int(e)) for j, e in zip(parts, epochs)}:
            sel = (parts == part) & (epochs == epoch)
            groups[sel] = self.order(part, epoch)[within[sel]]
        return parts, self.first_token + groups * self.group_width + self.offsets[parts]

    def read(self, tokens: np.ndarray, first: int, count: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """(part of each row, per part the int32 [rows of that part, width] tokens in row order)."""
        parts, starts = self.rows(first, count)
        chunks = []
        for j, width in enumerate(self.widths):
            part_starts = starts[parts == j]
            chunks.append(np.asarray(tokens[part_starts[:, None] + np.arange(width)], dtype=np.int32))
        return parts, chunks
