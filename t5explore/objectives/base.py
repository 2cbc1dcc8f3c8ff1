"""The vocabulary of an objective: the ids it needs and the shape of what it returns.

Objectives are pure functions of (chunks, rng); they never see the sentencepiece model, only a TokenSpace.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from t5explore.special_ids import EOS_ID, PAD_ID, UNK_ID


@dataclasses.dataclass(frozen=True)
class TokenSpace:
    """Token ids an objective may emit. `<extra_id_k>` is `vocab_size - 1 - k` (T5's convention)."""

    vocab_size: int  # including the sentinels
    num_sentinels: int = 100
    pad_id: int = PAD_ID
    eos_id: int = EOS_ID
    unk_id: int = UNK_ID
    mode_token_ids: tuple[tuple[str, int], ...] = ()  # e.g. (("[NLU]", 3), ("[S2S]", 4), ("[NLG]", 5))
    first_regular_id: int = 3  # random-replacement tokens are drawn from [first_regular_id, vocab_size - num_sentinels)

    def sentinel(self, k: npt.ArrayLike) -> np.ndarray:
        """Id of `<extra_id_k>` (vectorised over k: an int gives a 0-d array)."""
        return self.vocab_size - 1 - np.asarray(k)

    def mode_token(self, name: str) -> int:
        ids = dict(self.mode_token_ids)
        if name not in ids:
            raise ValueError(f"vocabulary has no mode token {name!r}; it has {sorted(ids)}")
        return ids[name]

    @property
    def num_regular(self) -> int:
        return self.vocab_size - self.num_sentinels - self.first_regular_id


@dataclasses.dataclass(frozen=True)
class LengthPlan:
    """How long a raw chunk must be so that the encoded inputs are exactly `inputs_length` tokens."""

    raw_length: int
    inputs_length: int
    targets_length: int

    def with_targets_length(self, targets_length: int) -> LengthPlan:
        """A configured targets length replaces the planned one only if nothing would be cut."""
        if int(targets_length) < self.targets_length:
            raise ValueError(
                f"configured targets_length={targets_length} must be at least as large as the "
                f"{self.targets_length} this objective needs at inputs_length={self.inputs_length}"
            )
        return dataclasses.replace(self, targets_length=int(targets_length))


@runtime_checkable
class Objective(Protocol):
    name: str

    def plan(self, inputs_length: int) -> LengthPlan: ...

    def __call__(self, chunks: np.ndarray, rng: np.random.Generator, tokens: TokenSpace) -> dict[str, np.ndarray]:
        """chunks int32 [B, plan.raw_length] -> {'inputs' [B, inputs_length], 'targets' [B, targets_length]},
        each ending in EOS and right-padded with 0."""
        ...


@runtime_checkable
class PartedObjective(Objective, Protocol):
    """An objective whose rows each belong to one of several parts with their own raw lengths (a Mixture).

    The pretraining stream draws each row's part itself, reads a chunk of exactly that part's raw length for
    it (data/chunk_pools.py) and hands the rows over with `encode_parts`."""

    probabilities: np.ndarray

    def part_plans(self, plan: LengthPlan) -> list[LengthPlan]: ...

    def encode_parts(
        self,
        choice: np.ndarray,
        part_chunks: Sequence[np.ndarray],
        rng: np.random.Generator,
        tokens: TokenSpace,
        *,
        plan: LengthPlan,
    ) -> dict[str, np.ndarray]: ...
