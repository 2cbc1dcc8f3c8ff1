"""Noise masks: which raw tokens an objective corrupts. Batched numpy, one Generator per batch.

Every mask also answers "how long can the encoded sequence get?" for length planning. An encoding's
length (before EOS) is linear in four counts of a row: `a*L + b*noise + c*noise_spans + d*nonnoise_spans`
(`LengthCoeffs`). Masks with a fixed number of noise tokens give an exact maximum over their extremal
outcomes; the i.i.d. mask gives mean + `IID_PLAN_Z` standard deviations (exact moments of a 1-dependent
sum), and the objective trims the rare row that would not fit (see denoise.py).

A mask is any class satisfying `NoiseMask`; `@register_mask(NAME, examples=...)` adds it to `NOISE_MASKS`,
and `noise_mask(NAME, **params)` builds one by name. `examples` are keyword sets that each build a valid mask:
the tests build, sample and bound every example of every registered mask and compose it with every
registered encoding, so adding a mask is one registered class and its tests come with it.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple, Protocol, TypeVar, runtime_checkable

import numpy as np

# Rows planned for mean + Z sd; with Z = 3 about 0.1 % of i.i.d. rows lose their last raw tokens.
IID_PLAN_Z = 3.0


class LengthCoeffs(NamedTuple):
    """Encoded length = length*L + noise*n + noise_spans*s + nonnoise_spans*t (EOS not included)."""

    length: int = 0
    noise: int = 0
    noise_spans: int = 0
    nonnoise_spans: int = 0


@runtime_checkable
class NoiseMask(Protocol):
    """Which raw tokens an objective corrupts, and how long an encoding of them can get.

    `owner` names the objective (or gin binding) in error messages. `exact` is True when every row's
    encoded length is at most `length_bound` (fixed-count masks); False when the bound is statistical and
    the objective must trim the rare overflowing row. `keeps_targets_within_inputs` asks the planner for
    T5's `random_spans_helper` rule (drop one raw token if the targets would outgrow the inputs)."""

    owner: str
    exact: ClassVar[bool]

    @property
    def keeps_targets_within_inputs(self) -> bool: ...

    def validate(self, length: int, inputs_length: int) -> None:
        """Raise ValueError naming `owner` and `inputs_length` if a row of `length` raw tokens can't be drawn."""

    def sample(self, rng: np.random.Generator, batch: int, length: int) -> np.ndarray:
        """bool [batch, length]: True where the token is noise. Draws only from `rng`."""

    def length_bound(self, length: int, coeffs: LengthCoeffs) -> int:
        """Largest encoded length (before EOS) over the mask's outcomes (exact) or its planning bound."""


NOISE_MASKS: dict[str, type[Any]] = {}
_M = TypeVar("_M", bound=type[Any])  # any class: the decorator adds `mask_name` and `examples` to it

Params = dict[str, Any]  # keyword arguments of a registered class (its gin-visible parameters)
NO_PARAMS: tuple[Params, ...] = ({},)  # the examples of a class whose every parameter has a default


def register_mask(name: str, *, examples: Sequence[Mapping[str, Any]] = ()) -> Callable[[_M], _M]:
    """Class decorator: register a NoiseMask under `name` (a second class under one name is an error).

    `examples`: keyword sets that each build a valid mask (`owner` aside), covering its parameters' kinds
    (e.g. with and without `random_roll`); the registry's tests run every one. A mask registered without
    them fails those tests (`mask_examples`), so a new mask cannot go untested."""

    def register(cls: _M) -> _M:
        if name in NOISE_MASKS:
            raise ValueError(f"noise mask {name!r} is already registered ({NOISE_MASKS[name].__name__})")
        NOISE_MASKS[name] = cls
        cls.mask_name = name
        cls.examples = tuple(dict(example) for example in examples)  # set here, never inherited
        return cls

    return register


def registered_examples(
    registry: Mapping[str, Any], kind: str, name: str, register_call: str, no_params_hint: str
) -> tuple[Params, ...]:
    """The example parameters registered with `name` in `registry` (masks and encodings alike); one ValueError
    saying how to add them if none."""
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r}; registered: {sorted(registry)}")
    examples: tuple[Params, ...] = registry[name].examples
    if not examples:
        raise ValueError(
            f"{kind} {name!r} ({registry[name].__name__}) has no example parameters: register it with "
            f"{register_call}, keyword sets that each build a valid {kind.split()[-1]} ({no_params_hint})"
        )
    return examples


def mask_examples(name: str) -> tuple[Params, ...]:
    """The example parameters registered with mask `name`; one ValueError saying how to add them if none."""
    return registered_examples(
        NOISE_MASKS,
        "noise mask",
        name,
        f"@register_mask({name!r}, examples=({{...}}, ...))",
        "NO_PARAMS if every parameter has a default",
    )


def noise_mask(name: str, **params: Any) -> NoiseMask:
    """The registered mask `name` built with `params` (owner=... names it in errors)."""
    if name not in NOISE_MASKS:
        raise ValueError(f"unknown noise mask {name!r}; registered: {sorted(NOISE_MASKS)}")
    mask: NoiseMask = NOISE_MASKS[name](**params)
    return mask


def span_starts(noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first token of each noise span, first token of each non-noise span), both bool [B, L]."""
    change = np.empty_like(noise)
    change[:, 0] = True
    np.not_equal(noise[:, 1:], noise[:, :-1], out=change[:, 1:])
    return change & noise, change & ~noise


def _check_rate(owner: str, name: str, value: float, upper_inclusive: bool = False) -> float:
    value = float(value)
    ok = 0.0 < value < 1.0 or (upper_inclusive and value == 1.0)
    if not ok or math.isnan(value):
        raise ValueError(f"{owner}.{name}={value!r} must be in (0, 1)")
    return value


def t5_noise_counts(length: int, noise_density: float, mean_noise_span_length: float) -> tuple[int, int]:
    """The counts T5's `random_spans_noise_mask` draws, in its TF float32 arithmetic, rounding half to even:
    noise = round(float32(L) * float32(r)) clamped to [1, L-1]; spans = max(1, round(float32(noise) /
    float32(mu))). The float32 product is not the float64 one: at L = 190, r = 0.15 it is 28.500002 (29
    tokens) where float64's is 28.5 (28, half to even). tests/test_objectives_planning.py pins every L in
    2..2048 against a numpy float32 oracle."""
    f32 = np.float32
    num_noise = min(max(int(np.rint(f32(length) * f32(noise_density))), 1), length - 1)
    num_spans = max(1, int(np.rint(f32(num_noise) / f32(mean_noise_span_length))))
    return num_noise, num_spans


def t5_planner_counts(length: int, noise_density: float, mean_noise_span_length: float) -> tuple[int, int]:
    """The counts T5's `random_spans_helper` plans lengths with: Python float64 `round` (half to even),
    clamped like the mask's. Where they differ from `t5_noise_counts` the mask draws the float32 counts and
    the planner bounds both (RandomSpansMask.outcomes), so a row always fits its plan."""
    num_noise = min(max(round(length * noise_density), 1), length - 1)
    num_spans = max(1, round(num_noise / mean_noise_span_length))
    return num_noise, num_spans


@register_mask("iid", examples=({"noise_density": 0.15}, {"noise_density": 0.5}))
@dataclasses.dataclass(frozen=True)
class IidMask:
    """Each token is noise independently with probability `noise_density` (T5's iid_noise_mask)."""

    noise_density: float
    owner: str = "iid_mask"
    exact: ClassVar[bool] = False
    keeps_targets_within_inputs: ClassVar[bool] = False

    def __post_init__(self) -> None:
        _check_rate(self.owner, "noise_density", self.noise_density)

    def validate(self, length: int, inputs_length: int) -> None:
        if length < 1:
            raise ValueError(f"{self.owner}: inputs_length={inputs_length} is too short for one raw token")

    def sample(self, rng: np.random.Generator, batch: int, length: int) -> np.ndarray:
        return rng.random((batch, length)) < self.noise_density

    def moments(self, length: int, coeffs: LengthCoeffs) -> tuple[float, float]:
        """Exact mean and variance of the encoded length: a sum of terms f(m[i-1], m[i]), 1-dependent."""
        a, b, c, d = coeffs
        r = self.noise_density
        p = {0: 1.0 - r, 1: r}

        def f(prev: int, cur: int) -> int:  # contribution of a token given its predecessor's noise bit
            return b * cur + c * cur * (1 - prev) + d * (1 - cur) * prev

        def f0(cur: int) -> int:  # the first token starts a span of whatever kind it is
            return f(1 - cur, cur)

        e0 = sum(p[x] * f0(x) for x in (0, 1))
        v0 = sum(p[x] * f0(x) ** 2 for x in (0, 1)) - e0**2
        pairs = list(itertools.product((0, 1), repeat=2))
        e1 = sum(p[x] * p[y] * f(x, y) for x, y in pairs)
        v1 = sum(p[x] * p[y] * f(x, y) ** 2 for x, y in pairs) - e1**2
        c01 = sum(p[x] * p[y] * f0(x) * f(x, y) for x, y in pairs) - e0 * e1
        c11 = sum(p[x] * p[y] * p[w] * f(x, y) * f(y, w) for x, y, w in itertools.product((0, 1), repeat=3)) - e1**2
        n = length
        mean = a * n + e0 + (n - 1) * e1
        var = v0 + (n - 1) * v1 + 2 * c01 * (n >= 2) + 2 * max(n - 2, 0) * c11
        return mean, max(var, 0.0)

    def length_bound(self, length: int, coeffs: LengthCoeffs) -> int:
        mean, var = self.moments(length, coeffs)
        return math.ceil(mean + IID_PLAN_Z * math.sqrt(var) - 1e-9)


class _FixedCounts:
    """A mask whose rows take one of a few (noise, noise spans, non-noise spans) outcomes: the bound is exact."""

    exact: ClassVar[bool] = True

    @property
    def keeps_targets_within_inputs(self) -> bool:  # a property, so that RandomSpansMask can compute it
        return False

    def outcomes(self, length: int) -> list[tuple[int, int, int]]:
        raise NotImplementedError

    def length_bound(self, length: int, coeffs: LengthCoeffs) -> int:
        return max(
            coeffs.length * length + coeffs.noise * n + coeffs.noise_spans * s + coeffs.nonnoise_spans * t
            for n, s, t in self.outcomes(length)
        )


@register_mask(
    "random_spans",
    examples=(
        {"noise_density": 0.15, "mean_noise_span_length": 3.0},
        {"noise_density": 0.15, "mean_noise_span_length": 3.0, "random_roll": True},
        {"noise_density": 0.5, "mean_noise_span_length": 8.0},
    ),
)
@dataclasses.dataclass(frozen=True)
class RandomSpansMask(_FixedCounts):
    """T5's `random_spans_noise_mask`: noise and non-noise tokens each split into `num_spans` non-empty
    segments uniformly at random, interleaved non-noise first; `random_roll` rotates the pattern by a
    uniform offset in [0, L) so the row need not end in noise (one span may then be split in two)."""

    noise_density: float
    mean_noise_span_length: float
    random_roll: bool = False
    owner: str = "random_spans_mask"

    def __post_init__(self) -> None:
        _check_rate(self.owner, "noise_density", self.noise_density)
        mu = float(self.mean_noise_span_length)
        if not mu >= 1.0:
            raise ValueError(f"{self.owner}.mean_noise_span_length={self.mean_noise_span_length!r} must be >= 1")

    @property
    def keeps_targets_within_inputs(self) -> bool:
        """T5's random_spans_helper applies its targets-no-longer-than-inputs rule at density 0.5 only."""
        return self.noise_density == 0.5

    def counts(self, length: int) -> tuple[int, int]:
        return t5_noise_counts(length, self.noise_density, self.mean_noise_span_length)

    def validate(self, length: int, inputs_length: int) -> None:
        """T5's segmentation needs >= 2 tokens and a non-noise token before every noise span."""
        num_noise, num_spans = self.counts(length) if length >= 2 else (0, 1)
        if length < 2 or length - num_noise < num_spans:
            raise ValueError(
                f"{self.owner}: inputs_length={inputs_length} (raw length {length}) is too short for one noise "
                f"span (each needs a non-noise token before it) with noise_density={self.noise_density} and "
                f"mean_noise_span_length={self.mean_noise_span_length}"
            )

    def outcomes(self, length: int) -> list[tuple[int, int, int]]:
        """The drawn counts' outcomes, and the planner's (float64) where they differ: T5's helper plans with
        those, and bounding both keeps the plan T5's wherever the two agree (every standard length)."""
        counts = {self.counts(length), t5_planner_counts(length, self.noise_density, self.mean_noise_span_length)}
        out = []
        for n, s in sorted(counts):
            out += [(n, s, s), (n, s + 1, s), (n, s, s + 1)] if self.random_roll else [(n, s, s)]
        return out

    def sample(self, rng: np.random.Generator, batch: int, length: int) -> np.ndarray:
        self.validate(length, length)
        num_noise, num_spans = self.counts(length)
        noise_lengths = _random_segmentation(rng, batch, num_noise, num_spans)
        nonnoise_lengths = _random_segmentation(rng, batch, length - num_noise, num_spans)
        interleaved = np.stack([nonnoise_lengths, noise_lengths], axis=2).reshape(-1)
        pattern = np.tile(np.array([False, True]), batch * num_spans)
        mask = np.repeat(pattern, interleaved).reshape(batch, length)
        if self.random_roll:
            offset = rng.integers(0, length, size=batch)
            idx = (np.arange(length)[None, :] - offset[:, None]) % length
            mask = np.take_along_axis(mask, idx, axis=1)
        return mask


def _random_segmentation(rng: np.random.Generator, batch: int, num_items: int, num_segments: int) -> np.ndarray:
    """[batch, num_segments] positive lengths summing to num_items; all compositions equally likely
    (the num_segments - 1 cut points are a uniform subset of the num_items - 1 gaps)."""
    if num_segments == 1:
        return np.full((batch, 1), num_items, dtype=np.int64)
    keys = rng.random((batch, num_items - 1))
    cuts = np.argpartition(keys, num_segments - 2, axis=1)[:, : num_segments - 1] + 1
    cuts.sort(axis=1)
    edges = np.concatenate([np.zeros((batch, 1), np.int64), cuts, np.full((batch, 1), num_items, np.int64)], axis=1)
    return np.diff(edges, axis=1)


@register_mask("prefix", examples=({}, {"noise_density": 0.25}))
@dataclasses.dataclass(frozen=True)
class PrefixMask(_FixedCounts):
    """Prefix LM split (T5's random_prefix_noise_mask): the first k tokens are context, the rest is noise
    (the target), k uniform in [max(1, round((1 - 2r)(L - 1))), L - 1]; r = 0.5 gives k uniform in [1, L-1]."""

    noise_density: float = 0.5
    owner: str = "prefix_mask"

    def __post_init__(self) -> None:
        _check_rate(self.owner, "noise_density", self.noise_density)
        if self.noise_density > 0.5:
            raise ValueError(
                f"{self.owner}.noise_density={self.noise_density!r} must not exceed 0.5 for a prefix split"
            )

    def min_prefix(self, length: int) -> int:
        return min(length - 1, max(1, int(np.round((1 - 2 * self.noise_density) * (length - 1)))))

    def validate(self, length: int, inputs_length: int) -> None:
        if length < 2:
            raise ValueError(
                f"{self.owner}: inputs_length={inputs_length} is too short to split into a prefix and a suffix"
            )

    def outcomes(self, length: int) -> list[tuple[int, int, int]]:
        return [(1, 1, 1), (length - self.min_prefix(length), 1, 1)]

    def sample(self, rng: np.random.Generator, batch: int, length: int) -> np.ndarray:
        self.validate(length, length)
        k = rng.integers(self.min_prefix(length), length, size=batch, endpoint=False)  # [min, L-1]
        return np.arange(length)[None, :] >= k[:, None]


@register_mask("all_tokens", examples=NO_PARAMS)
@dataclasses.dataclass(frozen=True)
class AllTokensMask(_FixedCounts):
    """Every token is noise (deshuffling, full language modelling)."""

    owner: str = "all_tokens_mask"

    def validate(self, length: int, inputs_length: int) -> None:
        if length < 1:
            raise ValueError(f"{self.owner}: inputs_length={inputs_length} is too short for one raw token")

    def outcomes(self, length: int) -> list[tuple[int, int, int]]:
        return [(length, 1, 0)]

    def sample(self, rng: np.random.Generator, batch: int, length: int) -> np.ndarray:
        return np.ones((batch, length), dtype=bool)
