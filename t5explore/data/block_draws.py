"""Which part of a mixture each item of a stream belongs to, as a pure function of the item's index.

Mixtures draw a part per item (a fine-tuning task per packed example, a denoiser per pretraining row). A
resumable stream needs the n-th draw without replaying the first n-1, and a stream that hands each part
its own data also needs the n-th item's *rank*: how many earlier items drew the same part, which is where
that part's own sequence continues. Draws come in blocks of `block` from one Generator per block
(`rng_for_block(b)`), so both are random access: rank(n) = (draws of the part in whole blocks before n's)
+ (draws of it earlier in n's block). The per-block counts are computed once and kept, so resuming at
item n costs one pass over n/block blocks, not a replay of the stream.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np


class BlockDraws:
    """i.i.d. draws of a part index with `probabilities`; the n-th draw and its rank are pure functions of n.

    With one part nothing is drawn: every item is part 0 and its rank is n."""

    def __init__(
        self,
        probabilities: Sequence[float] | np.ndarray,
        rng_for_block: Callable[[int], np.random.Generator],
        block: int,
    ):
        p = np.asarray(probabilities, dtype=np.float64)
        if p.ndim != 1 or p.size == 0 or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
            raise ValueError(f"probabilities must be a non-empty distribution, got {tuple(probabilities)}")
        if block < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        self.probabilities, self.rng_for_block, self.block = p, rng_for_block, int(block)
        self._starts = [np.zeros(p.size, np.int64)]  # _starts[b][j]: draws of part j before block b
        self._cached: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()

    @property
    def num_parts(self) -> int:
        return int(self.probabilities.size)

    def part(self, n: int) -> int:
        """The part of item n (a scalar path for samplers that draw one item at a time)."""
        if self.num_parts == 1:
            return 0
        b, within = divmod(int(n), self.block)
        return int(self._block(b)[0][within])

    def parts_and_ranks(self, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(part, rank) of items first .. first+count-1; rank = earlier items of the same part."""
        if first < 0 or count < 0:
            raise ValueError(f"items must be non-negative, got first={first} count={count}")
        n = np.arange(first, first + count, dtype=np.int64)
        if self.num_parts == 1:
            return np.zeros(count, np.int64), n
        parts, ranks = np.empty(count, np.int64), np.empty(count, np.int64)
        blocks, within = np.divmod(n, self.block)
        for b in np.unique(blocks):
            sel = blocks == b
            block_parts, block_ranks = self._block(int(b))
            parts[sel], ranks[sel] = block_parts[within[sel]], block_ranks[within[sel]]
        return parts, ranks

    def _block(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Parts and absolute ranks of block b's items (the last two blocks used are kept)."""
        with self._lock:
            if b not in self._cached:
                while len(self._starts) <= b:  # counts of every earlier block, each drawn once
                    earlier = self._draw(len(self._starts) - 1)
                    self._starts.append(self._starts[-1] + np.bincount(earlier, minlength=self.num_parts))
                parts = self._draw(b)
                if len(self._starts) == b + 1:  # the next block's counts, so reading on never draws b again
                    self._starts.append(self._starts[b] + np.bincount(parts, minlength=self.num_parts))
                ranks = np.empty(self.block, np.int64)
                for j in range(self.num_parts):
                    rows = np.flatnonzero(parts == j)
                    ranks[rows] = self._starts[b][j] + np.arange(rows.size)
                if len(self._cached) >= 2:
                    self._cached.pop(min(self._cached))
                self._cached[b] = (parts, ranks)
            return self._cached[b]

    def _draw(self, b: int) -> np.ndarray:
        return self.rng_for_block(b).choice(self.num_parts, self.block, p=self.probabilities).astype(np.int64)
