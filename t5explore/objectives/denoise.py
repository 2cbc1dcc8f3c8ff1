"""One objective = noise mask x input encoding x target encoding (+ optional mode token), planned exactly.

Planning: the raw chunk length is the largest L whose encoded inputs (+ mode token + EOS) fit
`inputs_length`, found like T5's `random_spans_helper` (start at inputs_length - 1, grow while the next
length still fits; for span masks at noise_density 0.5 drop one raw token when the targets would be longer
than the inputs). The targets length is the encoded maximum at that L, + EOS. For span-corruption this
reproduces `random_spans_helper` exactly (tests/test_objectives_planning.py). An objective whose inputs never
grow (`lm`: empty inputs) gets `inputs_length` tokens of targets and a plan whose inputs are only as wide as
they ever are (EOS, + mode token): its encoder is not padded to `inputs_length` (it was 99.8% padding at 512).

Exactness: fixed-count masks (random spans, prefix, all tokens) always fit by construction. The i.i.d.
mask's encoded length is random, so it is planned for mean + 3 sd, and a row that would overflow (or need
more sentinels than the vocabulary has) is trimmed deterministically: only the longest prefix of its raw
tokens whose encoding fits is kept, and the EOS follows it. Nothing is ever cut after encoding, so every
output decodes to an exact encoding of a prefix of the chunk.
"""

from __future__ import annotations

import abc
import dataclasses

import numpy as np

from t5explore.objectives.base import LengthPlan, TokenSpace
from t5explore.objectives.encodings import INPUTS, TARGETS, Encoding, check_role, pack
from t5explore.objectives.masks import LengthCoeffs, NoiseMask, span_starts

_MAX_GROWTH = 64  # raw length may be at most this many times inputs_length (guards the planning loop)


class PlannedObjective(abc.ABC):
    """Shared plumbing: remembers plans by raw length so `obj(chunks, rng, tokens)` knows its widths.
    The abstract methods are what a Mixture asks of its parts."""

    name: str

    @abc.abstractmethod
    def plan(self, inputs_length: int) -> LengthPlan:
        """The widths for `inputs_length`, remembered (by `_remember`) for later calls."""

    @abc.abstractmethod
    def check_sentinels(self, plan: LengthPlan, tokens: TokenSpace) -> None:
        """Raise ValueError if a row at `plan` could need more sentinels than `tokens` has."""

    @abc.abstractmethod
    def __call__(
        self, chunks: np.ndarray, rng: np.random.Generator, tokens: TokenSpace, *, plan: LengthPlan | None = None
    ) -> dict[str, np.ndarray]:
        """{'inputs', 'targets'} for `chunks` (see objectives.base.Objective)."""

    def _remember(self, plan: LengthPlan) -> LengthPlan:
        self.__dict__.setdefault("_plans", {})[plan.raw_length] = plan
        return plan

    def _resolve(self, chunks: np.ndarray, plan: LengthPlan | None) -> LengthPlan:
        chunks = np.asarray(chunks)
        if chunks.ndim != 2:
            raise ValueError(f"{self.name}: chunks must be [batch, raw_length], got shape {chunks.shape}")
        if plan is None:
            plan = self.__dict__.get("_plans", {}).get(chunks.shape[1])
            if plan is None:
                raise ValueError(
                    f"{self.name}: no plan for raw length {chunks.shape[1]}; call "
                    f"objective.plan(inputs_length) first and pass chunks of plan.raw_length"
                )
        if chunks.shape[1] != plan.raw_length:
            raise ValueError(f"{self.name}: chunks have raw length {chunks.shape[1]}, plan wants {plan.raw_length}")
        return plan


@dataclasses.dataclass(eq=False)
class Denoiser(PlannedObjective):
    """A composed objective. `targets_length` (optional) overrides the planned one if it is large enough.
    The inputs must be an input encoding and the targets a target encoding (encodings.check_role)."""

    name: str
    mask: NoiseMask
    inputs: Encoding
    targets: Encoding
    mode_token: str | None = None
    targets_length: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.mask, NoiseMask):
            raise ValueError(f"{self.name}.mask={self.mask!r} is not a noise mask (masks.NoiseMask)")
        check_role(self.inputs, INPUTS, self.name)
        check_role(self.targets, TARGETS, self.name)

    @property
    def _extra_inputs(self) -> int:
        return 1 + (self.mode_token is not None)  # EOS (+ mode token)

    def _bound(self, length: int, coeffs: LengthCoeffs) -> int:
        return self.mask.length_bound(length, coeffs)

    def plan(self, inputs_length: int) -> LengthPlan:
        inputs_length = int(inputs_length)
        cap = inputs_length - self._extra_inputs
        if cap < 1:
            raise ValueError(f"{self.name}: inputs_length={inputs_length} leaves no room for tokens")
        if self.inputs.coeffs == LengthCoeffs():  # inputs never grow (lm): inputs_length budgets the targets
            raw = inputs_length - 1
            while raw > 1 and self._bound(raw, self.targets.coeffs) + 1 > inputs_length:
                raw -= 1
        else:
            raw = self._largest_fitting(cap, inputs_length)
        if self.mask.keeps_targets_within_inputs:
            encoded_inputs = self._bound(raw, self.inputs.coeffs) + self._extra_inputs
            if self._bound(raw, self.targets.coeffs) + 1 > encoded_inputs:
                raw -= 1  # T5's random_spans_helper: keep targets no longer than inputs at density 0.5
        self.mask.validate(raw, inputs_length)
        targets_length = self._bound(raw, self.targets.coeffs) + 1
        if self.inputs.coeffs == LengthCoeffs():  # lm: the inputs are EOS (+ mode token) alone, at every length,
            inputs_length = self._extra_inputs  # so the encoder gets just them, not inputs_length - 1 pads
        if self.targets_length is not None:
            if int(self.targets_length) < targets_length:
                raise ValueError(
                    f"{self.name}.targets_length={self.targets_length} is too small: at inputs_length="
                    f"{inputs_length} this objective needs {targets_length} (raw length {raw})"
                )
            targets_length = int(self.targets_length)
        return self._remember(LengthPlan(raw, inputs_length, targets_length))

    def _largest_fitting(self, cap: int, inputs_length: int) -> int:
        """T5's search: from the longest raw length whose encoding can fit, grow while the next one fits;
        a mask that cannot be drawn at that length (too short for one span) is an error, not a detour."""
        coeffs = self.inputs.coeffs
        raw = cap
        while raw >= 1 and self._bound(raw, coeffs) > cap:
            raw -= 1
        self.mask.validate(max(raw, 1), inputs_length)
        while self._bound(raw + 1, coeffs) <= cap and self._valid(raw + 1):
            raw += 1
            if raw > _MAX_GROWTH * inputs_length:
                raise ValueError(f"{self.name}: cannot plan a raw length for inputs_length={inputs_length}")
        return raw

    def _valid(self, length: int) -> bool:
        try:
            self.mask.validate(length, length)
        except ValueError:
            return False
        return True

    def check_sentinels(self, plan: LengthPlan, tokens: TokenSpace) -> None:
        """More sentinels needed than the vocabulary has -> one clear error (T5 would silently run into
        ordinary token ids)."""
        for enc in (self.inputs, self.targets):
            which = enc.sentinel_spans
            if which is None:
                continue
            coeffs = LengthCoeffs(noise_spans=1) if which == "noise" else LengthCoeffs(nonnoise_spans=1)
            need = self._bound(plan.raw_length, coeffs)
            if need > tokens.num_sentinels:
                raise ValueError(
                    f"{self.name}: up to {need} {which} spans per row at inputs_length={plan.inputs_length} but "
                    f"tokens.num_sentinels={tokens.num_sentinels}; bind the gin setting "
                    f"vocabulary.num_sentinels = {need} (or more), or lower noise_density, raise "
                    f"mean_noise_span_length or inputs_length"
                )

    def __call__(
        self, chunks: np.ndarray, rng: np.random.Generator, tokens: TokenSpace, *, plan: LengthPlan | None = None
    ) -> dict[str, np.ndarray]:
        plan = self._resolve(chunks, plan)
        self.check_sentinels(plan, tokens)
        chunks = np.asarray(chunks)
        batch, length = chunks.shape
        noise = self.mask.sample(rng, batch, length)
        emit_in, emit_tg = self.inputs.emit(noise), self.targets.emit(noise)
        if not self.mask.exact:
            keep = self._fitting_prefix(noise, emit_in, emit_tg, plan, tokens)
            noise &= keep
            emit_in &= keep
            emit_tg &= keep
        mode = None if self.mode_token is None else tokens.mode_token(self.mode_token)
        inputs = pack(self.inputs.values(chunks, noise, rng, tokens), emit_in, plan.inputs_length, tokens.eos_id, mode)
        targets = pack(self.targets.values(chunks, noise, rng, tokens), emit_tg, plan.targets_length, tokens.eos_id)
        return {"inputs": inputs, "targets": targets}

    def _fitting_prefix(
        self, noise: np.ndarray, emit_in: np.ndarray, emit_tg: np.ndarray, plan: LengthPlan, tokens: TokenSpace
    ) -> np.ndarray:
        """bool [B, L]: the longest prefix of each row whose inputs, targets and sentinels all fit."""
        keep = np.cumsum(emit_in, axis=1) <= plan.inputs_length - self._extra_inputs
        keep &= np.cumsum(emit_tg, axis=1) <= plan.targets_length - 1
        noise_start, nonnoise_start = span_starts(noise)
        for enc in (self.inputs, self.targets):
            if enc.sentinel_spans is not None:  # "noise" or "nonnoise" (register_encoding checks it)
                starts = noise_start if enc.sentinel_spans == "noise" else nonnoise_start
                keep &= np.cumsum(starts, axis=1) <= tokens.num_sentinels
        return keep  # cumsums are monotone, so this is a prefix of each row
