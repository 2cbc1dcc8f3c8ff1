"""A mixture of objectives with rates, chosen per row (UL2's mixture of denoisers, or any user list).

Plan: the largest raw length and the largest targets length of the parts, so one chunk width and one
targets width serve every row (the inputs are `inputs_length` wide, also where a part's are narrower: lm's);
a row given to a part uses the first `part.raw_length` tokens of its chunk, and that part's shorter targets
are padded. The part of each row is drawn from the batch's
Generator before the parts draw their noise, so the whole batch is a pure function of the seed.

Raw tokens: the stream (data/pretrain_stream.py) cuts the corpus into chunks of one width, the plan's
raw length, and gives each row one chunk, so a row whose part is shorter leaves the chunk's tail unread:
`raw_token_share(plan)` is the expected share used. For UL2 (equal rates) it is 70.3% at 512 inputs:
the widest part (X μ64 r.5) needs 1,004 raw tokens, the others 511 (S), 567 and 587 (R), 599, 765 and 907
(X). The tail is not handed to another row: a row stays one contiguous stretch of text, and using the
tails would need the stream to read a length per row (e.g. a chunk pool per part length), which it does not.
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

    def __post_init__(self):
        self.parts = tuple(self.parts)
        if not self.parts:
            raise ValueError(f"{self.name}.objectives must name at least one objective")
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
        self._check_parts(part_plans, tokens)
        chunks = np.asarray(chunks)
        batch = chunks.shape[0]
        choice = self.choose(rng, batch)
        inputs = np.full((batch, plan.inputs_length), PAD_ID, np.int32)
        targets = np.full((batch, plan.targets_length), PAD_ID, np.int32)
        for k, (part, part_plan) in enumerate(zip(self.parts, part_plans)):
            rows = np.flatnonzero(choice == k)
            if rows.size == 0:
                continue
            out = part(chunks[rows, : part_plan.raw_length], rng, tokens, plan=part_plan)
            inputs[rows, : part_plan.inputs_length] = out["inputs"]  # lm's inputs are narrower
            targets[rows, : part_plan.targets_length] = out["targets"]
        return {"inputs": inputs, "targets": targets}

    def raw_token_share(self, plan: LengthPlan) -> float:
        """Expected share of a chunk's `plan.raw_length` tokens that a row encodes (1.0: none unread)."""
        lengths = np.array([p.raw_length for p in self.part_plans(plan)], dtype=np.float64)
        return float(self.probabilities @ lengths / plan.raw_length)

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

    def _check_parts(self, part_plans, tokens: TokenSpace) -> None:
        for part, part_plan in zip(self.parts, part_plans):
            part.check_sentinels(part_plan, tokens)

    def choose(self, rng: np.random.Generator, batch: int) -> np.ndarray:
        """The part index of each row, as __call__ draws it (for tests and statistics)."""
        return rng.choice(len(self.parts), size=batch, p=self.probabilities)
