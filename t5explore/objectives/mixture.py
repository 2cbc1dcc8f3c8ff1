"""A mixture of objectives with rates, chosen per row (UL2's mixture of denoisers, or any user list).

Plan: the largest raw length and the largest targets length of the parts, so one targets width serves every
row (the inputs are `inputs_length` wide, also where a part's are narrower: lm's), and a part's shorter
targets are padded.

Raw tokens: the pretraining stream gives each row a chunk of its own part's raw length
(data/chunk_pools.py), draws the row's part itself and calls `encode_parts`, so no token read goes
unencoded. Called directly on a [batch, raw_length] array (`__call__`, e.g. by the seqio adapter), the
mixture draws each row's part from `rng` before the parts draw their noise, so the batch is a pure
function of the seed, and a row whose part is narrower encodes a prefix of its chunk:
`mean_raw_length(plan) / plan.raw_length` is the share used that way (70.3% for UL2 at 512 inputs, whose
parts need 511 (S), 567 and 587 (R), 599, 765, 907 and 1,004 (X) raw tokens).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from t5explore.objectives.base import LengthPlan, TokenSpace
from t5explore.objectives.denoise import PlannedObjective
from t5explore.special_ids import PAD_ID


@dataclasses.dataclass(eq=False)
class Mixture(PlannedObjective):
    """`parts` (planned objectives) with `rates` (None: equal); after construction `rates` is a tuple of
    floats and `probabilities` the normalised array."""

    name: str
    parts: tuple[PlannedObjective, ...]
    rates: Sequence[float] | None = None

    def __post_init__(self) -> None:
        self.parts = tuple(self.parts)
        if not self.parts:
            raise ValueError(f"{self.name}.objectives must name at least one objective")
        needing = [getattr(part, "name", part) for part in self.parts if getattr(part, "needs_boundaries", False)]
        if needing:  # the stream reads a mixture's rows per part and passes no sentence or document starts
            raise ValueError(f"{self.name}.objectives: {needing} act on sentences or documents and cannot be mixed")
        if self.rates is None:
            self.rates = (1.0,) * len(self.parts)
        rates = np.asarray(self.rates, dtype=np.float64)
        if rates.shape != (len(self.parts),):
            raise ValueError(f"{self.name}.rates has {rates.size} entries for {len(self.parts)} objectives")
        if not np.all(np.isfinite(rates)) or np.any(rates < 0) or rates.sum() <= 0:
            raise ValueError(f"{self.name}.rates={tuple(self.rates)} must be non-negative with a positive sum")
        self.rates = tuple(float(r) for r in rates)
        self.probabilities = rates / rates.sum()
        self._part_plans: dict[int, list[LengthPlan]] = {}

    def plan(self, inputs_length: int) -> LengthPlan:
        part_plans = [part.plan(inputs_length) for part in self.parts]
        plan = LengthPlan(
            max(p.raw_length for p in part_plans), int(inputs_length), max(p.targets_length for p in part_plans)
        )
        self._part_plans[plan.raw_length] = part_plans
        return self._remember(plan)

    def __call__(
        self, chunks: np.ndarray, rng: np.random.Generator, tokens: TokenSpace, *, plan: LengthPlan | None = None
    ) -> dict[str, np.ndarray]:
        plan = self._resolve(chunks, plan)
        part_plans = self.part_plans(plan)
        chunks = np.asarray(chunks)
        choice = self.choose(rng, chunks.shape[0])
        part_chunks = [chunks[choice == k, : p.raw_length] for k, p in enumerate(part_plans)]
        return self.encode_parts(choice, part_chunks, rng, tokens, plan=plan)

    def encode_parts(
        self,
        choice: np.ndarray,
        part_chunks: Sequence[np.ndarray],
        rng: np.random.Generator,
        tokens: TokenSpace,
        *,
        plan: LengthPlan,
    ) -> dict[str, np.ndarray]:
        """Rows whose parts are already chosen: row i is part `choice[i]`, and part_chunks[k] holds the
        chunks of part k's rows in row order, each exactly that part's raw length."""
        part_plans = self.part_plans(plan)
        self._check_parts(part_plans, tokens)
        batch = len(choice)
        inputs = np.full((batch, plan.inputs_length), PAD_ID, np.int32)
        targets = np.full((batch, plan.targets_length), PAD_ID, np.int32)
        for k, (part, part_plan) in enumerate(zip(self.parts, part_plans)):
            rows = np.flatnonzero(choice == k)
            if rows.size == 0:
                continue
            out = part(part_chunks[k], rng, tokens, plan=part_plan)
            inputs[rows, : part_plan.inputs_length] = out["inputs"]  # lm's inputs are narrower
            targets[rows, : part_plan.targets_length] = out["targets"]
        return {"inputs": inputs, "targets": targets}

    def mean_raw_length(self, plan: LengthPlan) -> float:
        """Raw tokens a row encodes on average (each part's own raw length, weighted by its rate)."""
        lengths = np.array([p.raw_length for p in self.part_plans(plan)], dtype=np.float64)
        return float(self.probabilities @ lengths)

    def check_sentinels(self, plan: LengthPlan, tokens: TokenSpace) -> None:
        """Every part must fit the vocabulary's sentinels, checked up front: a part that a small batch
        happens not to draw must not fail only later in the run."""
        self._check_parts(self.part_plans(plan), tokens)

    def part_plans(self, plan: LengthPlan) -> list[LengthPlan]:
        """The parts' plans for `plan`, planned once per (raw length, inputs length), not once per batch."""
        part_plans = self._part_plans.get(plan.raw_length)
        if part_plans is None or part_plans[0].inputs_length != plan.inputs_length:
            self.plan(plan.inputs_length)
            part_plans = self._part_plans[plan.raw_length]
        return part_plans

    def _check_parts(self, part_plans: Sequence[LengthPlan], tokens: TokenSpace) -> None:
        for part, part_plan in zip(self.parts, part_plans):
            part.check_sentinels(part_plan, tokens)

    def choose(self, rng: np.random.Generator, batch: int) -> np.ndarray:
        """The part index of each row, as __call__ draws it (for tests and statistics)."""
        return rng.choice(len(self.parts), size=batch, p=self.probabilities)
