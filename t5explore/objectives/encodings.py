"""Input and target encodings: how a (tokens, noise mask) pair becomes a sequence.

Every encoding emits at most one token per raw position, so an encoding is two arrays over the raw row:
`emit` (bool: does this position produce a token) and `values` (which token). `pack` then compacts the
emitted tokens to the left, appends EOS and pads: one cumsum and one scatter for the whole batch.
`emit` depends on the mask only, so lengths can be checked (and rows trimmed) before values are built.

An encoding is one class satisfying `Encoding`, registered by `@register_encoding(NAME, roles=...,
coeffs=..., examples=...)`; `encoding(NAME, **params)` builds one, and `check_role` refuses an input encoding
used as targets (or the reverse). `examples` are keyword sets that each build a valid encoding (`NO_PARAMS`
for one without parameters): the tests check every example against its coeffs and compose it with every
registered mask, so adding an encoding is one registered class and its tests come with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import numpy as np

from t5explore.objectives.base import TokenSpace
from t5explore.objectives.masks import NO_PARAMS, LengthCoeffs, Params, registered_examples, span_starts
from t5explore.special_ids import PAD_ID

INPUTS, TARGETS = "inputs", "targets"


@runtime_checkable
class Encoding(Protocol):
    """One way to turn (chunk, noise) into a sequence; the class attributes are set by `register_encoding`.

    name: its registry name. roles: {"inputs"}, {"targets"} or both. coeffs: its length before EOS as a
    linear function of a row's counts (masks.LengthCoeffs). sentinel_spans: "noise" / "nonnoise" when it
    spends one unique sentinel per noise / non-noise span (checked against the vocabulary), else None."""

    name: ClassVar[str]
    roles: ClassVar[frozenset[str]]
    coeffs: ClassVar[LengthCoeffs]
    sentinel_spans: ClassVar[str | None]

    def emit(self, noise: np.ndarray) -> np.ndarray:
        """bool [B, L]: which raw positions produce a token (a new array: the caller trims it in place)."""

    def values(self, chunks: np.ndarray, noise: np.ndarray, rng: np.random.Generator, tokens: TokenSpace) -> np.ndarray:
        """int [B, L]: the token at each raw position (read only where `emit` is True). `noise` is already
        limited to the kept prefix of each row, so permutations never move tokens across the trim point."""


ENCODINGS: dict[str, type[Any]] = {}
_E = TypeVar("_E", bound=type[Any])  # any class: the decorator adds the attributes


def register_encoding(
    name: str,
    *,
    roles: tuple[str, ...],
    coeffs: LengthCoeffs,
    sentinel_spans: str | None = None,
    examples: Sequence[Mapping[str, Any]] = (),
) -> Callable[[_E], _E]:
    """Class decorator: register an encoding under `name` for `roles` with its length `coeffs`.

    `examples`: keyword sets that each build a valid instance (NO_PARAMS when it has no parameters); the
    registry's tests run every one, and an encoding registered without them fails (`encoding_examples`)."""
    if not roles or set(roles) - {INPUTS, TARGETS} or sentinel_spans not in (None, "noise", "nonnoise"):
        raise ValueError(f"encoding {name!r}: roles {roles!r} / sentinel_spans {sentinel_spans!r} are not valid")

    def register(cls: _E) -> _E:
        if name in ENCODINGS:
            raise ValueError(f"encoding {name!r} is already registered ({ENCODINGS[name].__name__})")
        cls.name, cls.roles, cls.coeffs, cls.sentinel_spans = name, frozenset(roles), coeffs, sentinel_spans
        cls.examples = tuple(dict(example) for example in examples)  # set here, never inherited
        ENCODINGS[name] = cls
        return cls

    return register


def encoding_examples(name: str) -> tuple[Params, ...]:
    """The example parameters registered with encoding `name`; one ValueError saying how to add them if none."""
    return registered_examples(
        ENCODINGS,
        "encoding",
        name,
        f"@register_encoding({name!r}, ..., examples=({{...}}, ...))",
        "NO_PARAMS if it has no parameters",
    )


def encoding(name: str, **params: Any) -> Encoding:
    """The registered encoding `name` built with `params` (e.g. bert_replace's mask_prob)."""
    if name not in ENCODINGS:
        raise ValueError(f"unknown encoding {name!r}; registered: {sorted(ENCODINGS)}")
    enc: Encoding = ENCODINGS[name](**params)
    return enc


def names_for(role: str) -> list[str]:
    """The registered encodings usable as `role` ("inputs" or "targets")."""
    return sorted(name for name, cls in ENCODINGS.items() if role in cls.roles)


def check_role(enc: object, role: str, owner: str) -> Encoding:
    """`enc` if it is an Encoding registered for `role`; otherwise one ValueError naming `owner.role`."""
    if not isinstance(enc, Encoding) or getattr(enc, "name", None) not in ENCODINGS:
        raise ValueError(f"{owner}.{role}={enc!r} is not a registered encoding; {role} encodings: {names_for(role)}")
    if role not in enc.roles:
        other = " and ".join(sorted(enc.roles))
        raise ValueError(
            f"{owner}.{role}: encoding {enc.name!r} is registered for {other} only, not {role}; "
            f"{role} encodings: {names_for(role)}"
        )
    return enc


@register_encoding("original", roles=(INPUTS, TARGETS), coeffs=LengthCoeffs(length=1), examples=NO_PARAMS)
@dataclasses.dataclass(frozen=True)
class Original:
    """Every raw token, unchanged (the targets of BERT-style, MASS-style, deshuffling and lm)."""

    def emit(self, noise: np.ndarray) -> np.ndarray:
        return np.ones_like(noise)

    def values(self, chunks: np.ndarray, noise: np.ndarray, rng: np.random.Generator, tokens: TokenSpace) -> np.ndarray:
        return chunks


@register_encoding("mask_token", roles=(INPUTS,), coeffs=LengthCoeffs(length=1), examples=NO_PARAMS)
@dataclasses.dataclass(frozen=True)
class MaskToken:
    """Every noise token -> the mask token <extra_id_0> (MASS-style)."""

    def emit(self, noise: np.ndarray) -> np.ndarray:
        return np.ones_like(noise)

    def values(self, chunks: np.ndarray, noise: np.ndarray, rng: np.random.Generator, tokens: TokenSpace) -> np.ndarray:
        return np.where(noise, tokens.sentinel(0), chunks)


@register_encoding(
    "bert_replace",
    roles=(INPUTS,),
    coeffs=LengthCoeffs(length=1),
    examples=({}, {"mask_prob": 0.8, "random_prob": 0.1}),
)
@dataclasses.dataclass(frozen=True)
class BertReplace:
    """A noise token -> <extra_id_0> with `mask_prob`, a random regular token with `random_prob`, else kept."""

    mask_prob: float = 1.0
    random_prob: float = 0.0

    def emit(self, noise: np.ndarray) -> np.ndarray:
        return np.ones_like(noise)

    def values(self, chunks: np.ndarray, noise: np.ndarray, rng: np.random.Generator, tokens: TokenSpace) -> np.ndarray:
        u = rng.random(chunks.shape)
        random_ids = rng.integers(tokens.first_regular_id, tokens.vocab_size - tokens.num_sentinels, chunks.shape)
        replaced = np.where(
            u < self.mask_prob, tokens.sentinel(0), np.where(u < self.mask_prob + self.random_prob, random_ids, chunks)
        )
        return np.where(noise, replaced, chunks)


@register_encoding("permute_noise", roles=(INPUTS,), coeffs=LengthCoeffs(length=1), examples=NO_PARAMS)
@dataclasses.dataclass(frozen=True)
class PermuteNoise:
    """The noise tokens shuffled among the noise positions (deshuffling)."""

    def emit(self, noise: np.ndarray) -> np.ndarray:
        return np.ones_like(noise)

    def values(self, chunks: np.ndarray, noise: np.ndarray, rng: np.random.Generator, tokens: TokenSpace) -> np.ndarray:
        return _permute_noise(chunks, noise, rng)


@register_encoding(
    "sentinel_per_noise_span",
    roles=(INPUTS,),
    coeffs=LengthCoeffs(length=1, noise=-1, noise_spans=1),
    sentinel_spans="noise",
    examples=NO_PARAMS,
)
@dataclasses.dataclass(frozen=True)
class SentinelPerNoiseSpan:
    """Each run of noise tokens -> one unique sentinel <extra_id_k>, k counting runs (T5's inputs)."""

    def emit(self, noise: np.ndarray) -> np.ndarray:
        return ~noise | span_starts(noise)[0]

    def values(self, chunks: np.ndarray, noise: np.ndarray, rng: np.random.Generator, tokens: TokenSpace) -> np.ndarray:
        span_index = np.cumsum(span_starts(noise)[0], axis=1, dtype=np.int32) - 1
        return np.where(noise, tokens.sentinel(span_index), chunks)


@register_encoding("drop_noise", roles=(INPUTS,), coeffs=LengthCoeffs(length=1, noise=-1), examples=NO_PARAMS)
@dataclasses.dataclass(frozen=True)
class DropNoise:
    """The non-noise tokens only (drop corrupted tokens; a prefix LM's context)."""

    def emit(self, noise: np.ndarray) -> np.ndarray:
        return ~noise

    def values(self, chunks: np.ndarray, noise: np.ndarray, rng: np.random.Generator, tokens: TokenSpace) -> np.ndarray:
        return chunks


@register_encoding("empty", roles=(INPUTS,), coeffs=LengthCoeffs(), examples=NO_PARAMS)
@dataclasses.dataclass(frozen=True)
class Empty:
    """No tokens (EOS only): full language modelling's inputs."""

    def emit(self, noise: np.ndarray) -> np.ndarray:
        return np.zeros_like(noise)

    def values(self, chunks: np.ndarray, noise: np.ndarray, rng: np.random.Generator, tokens: TokenSpace) -> np.ndarray:
        return chunks


@register_encoding(
    "sentinel_per_nonnoise_span",
    roles=(TARGETS,),
    coeffs=LengthCoeffs(noise=1, nonnoise_spans=1),
    sentinel_spans="nonnoise",
    examples=NO_PARAMS,
)
@dataclasses.dataclass(frozen=True)
class SentinelPerNonnoiseSpan:
    """Each run of non-noise tokens -> one unique sentinel, noise kept (T5's targets: sentinel, span, ...)."""

    def emit(self, noise: np.ndarray) -> np.ndarray:
        return noise | span_starts(noise)[1]

    def values(self, chunks: np.ndarray, noise: np.ndarray, rng: np.random.Generator, tokens: TokenSpace) -> np.ndarray:
        span_index = np.cumsum(span_starts(noise)[1], axis=1, dtype=np.int32) - 1
        return np.where(noise, chunks, tokens.sentinel(span_index))


@register_encoding("noise_only", roles=(TARGETS,), coeffs=LengthCoeffs(noise=1), examples=NO_PARAMS)
@dataclasses.dataclass(frozen=True)
class NoiseOnly:
    """The noise tokens only (drop corrupted tokens' and a prefix LM's targets)."""

    def emit(self, noise: np.ndarray) -> np.ndarray:
        return noise.copy()

    def values(self, chunks: np.ndarray, noise: np.ndarray, rng: np.random.Generator, tokens: TokenSpace) -> np.ndarray:
        return chunks


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
    """Left-compact the emitted tokens of each row, optionally after `prefix_id`, then EOS, then PAD_ID.
    The caller guarantees the row fits (planning + trimming); a row that does not is a bug, never cut."""
    batch = values.shape[0]
    offset = 0 if prefix_id is None else 1
    counts = emit.sum(axis=1) + offset
    if counts.size and counts.max() >= width:
        raise AssertionError(f"encoded row of {counts.max() + 1} tokens does not fit width {width}")
    out = np.full((batch, width), PAD_ID, dtype=np.int32)
    if prefix_id is not None:
        out[:, 0] = prefix_id
    row_counts = counts - offset
    first = np.cumsum(row_counts) - row_counts  # index of each row's first emitted token in values[emit]
    dest = np.arange(int(row_counts.sum())) + np.repeat(np.arange(batch) * width + offset - first, row_counts)
    out.reshape(-1)[dest] = values[emit]
    out[np.arange(batch), counts] = eos_id
    return out
