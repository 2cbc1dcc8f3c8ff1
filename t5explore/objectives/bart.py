"""BART's noising functions (Lewis et al. 2020, §2.2 and Table 1), mirroring fairseq's `DenoisingDataset`
(fairseq/data/denoising_dataset.py), as objectives of this harness: the targets are always the original text.

- Token masking: i.i.d. tokens -> the mask token (`iid` mask + `mask_token` encoding).
- Token deletion: i.i.d. tokens dropped (`iid` mask + `drop_noise` encoding).
- Text infilling (`poisson_spans` mask + `single_mask_per_span` encoding): a masking budget of
  ceil(r * L) tokens is split into span lengths drawn from Poisson(λ) until they add up to it, the last span
  trimmed to the budget (fairseq's `add_whole_word_mask` with mask_length='span-poisson'); each span of
  length k >= 1 becomes ONE mask token (replace_length=1), and each zero-length span inserts one mask token
  at a uniformly chosen gap (fairseq's `add_insertion_noise`).
- Sentence permutation: the sentences of each document in the row shuffled (`permute_sentences`).
- Document rotation: each document in the row rotated to start at a uniformly chosen token (`rotate`).

Choices, where fairseq leaves room or where the harness differs:
- Subword, not whole-word, masking: fairseq masks whole words only with --mask-whole-words; without it
  every token is a word start, as here. (Whole words would need the vocabulary's pieces in the objective.)
- Spans never overlap: fairseq draws span starts independently, so spans can overlap and merge and its
  masked share falls below r (about 26 % instead of 30 % at λ = 3). Here the spans are laid out like T5's
  random segmentation (a uniform arrangement with at least one kept token between two spans), so exactly
  ceil(r * L) tokens are masked and each span gives exactly one mask token, as the paper describes.
- The mask token is `<extra_id_0>`, as in MASS-style and BERT-style (no random replacement: the paper's
  Table 1 rows do not use it).
- Units: fairseq splits sentences at full stops of a sentence-per-line corpus and rotates a block. Here the
  pre-training stream passes each row's `Boundaries` (data/sentences.py: sentence starts from a splitter over
  the vocabulary's pieces, document starts from the token store): sentences are permuted within their
  document and each document is rotated on its own, so neither moves text across a document boundary. The
  row's first token starts a unit (a row cut mid-sentence treats its first partial sentence as one).
- Lengths: the document is the target, as in BART, so every row's raw length is inputs_length - 1 and its
  targets are inputs_length wide, whatever the noise. Text infilling's inputs are then L - ceil(rL) + spans
  tokens; in the rare row with more spans than masked tokens, the last insertions (by position) are dropped
  so the row fits (counted by the tests).
- Text infilling then sentence permutation apply in fairseq's order: permute, then mask (then insert).
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, NamedTuple

import numpy as np

from t5explore.objectives.base import LengthPlan, TokenSpace
from t5explore.objectives.denoise import PlannedObjective
from t5explore.objectives.encodings import INPUTS, Encoding, check_role, pack, register_encoding
from t5explore.objectives.masks import NO_PARAMS, LengthCoeffs, NoiseMask, _check_rate, register_mask, span_starts

POISSON_TAIL = 1e-7  # fairseq: the span-length distribution stops at the first k with P(k) < 1e-7


class Boundaries(NamedTuple):
    """Where units start in each row, bool [B, L]: sentences (a document start is also a sentence start) and
    documents. The row's first token starts both kinds of unit (data/sentences.py builds them)."""

    sentence_start: np.ndarray
    document_start: np.ndarray


def poisson_pmf(lam: float) -> np.ndarray:
    """fairseq's span-length distribution: P(k) for k = 0, 1, ... up to the first k with P(k) < 1e-7,
    normalised (torch.distributions.Categorical normalises)."""
    ps, k = [], 0
    while True:
        ps.append(math.exp(-lam) * lam**k / math.factorial(k))
        if ps[-1] < POISSON_TAIL or k >= 127:
            break
        k += 1
    p = np.array(ps)
    return p / p.sum()


def poisson_span_lengths(rng: np.random.Generator, budget: int, pmf: np.ndarray) -> np.ndarray:
    """Span lengths (zeros included) for a budget of masked tokens, as fairseq draws them: `budget` draws at a
    time until they sum to at least `budget`, cut at the first span that reaches it, that span trimmed."""
    lengths = rng.choice(pmf.size, size=budget, p=pmf)
    while lengths.sum() < budget:
        lengths = np.concatenate([lengths, rng.choice(pmf.size, size=budget, p=pmf)])
    cum = np.cumsum(lengths)
    last = int(np.searchsorted(cum, budget))  # the first span whose cumulative length reaches the budget
    lengths = lengths[: last + 1].copy()
    lengths[last] = budget - (cum[last - 1] if last else 0)
    return lengths


@register_mask(
    "poisson_spans",
    examples=({"noise_density": 0.3, "poisson_lambda": 3.0}, {"noise_density": 0.15, "poisson_lambda": 1.0}),
)
@dataclasses.dataclass(frozen=True)
class PoissonSpansMask:
    """BART's text-infilling spans: exactly ceil(noise_density * L) noise tokens in non-overlapping spans of
    Poisson(poisson_lambda) lengths, plus one insertion per zero-length span (`sample_with_insertions`)."""

    noise_density: float = 0.3
    poisson_lambda: float = 3.0
    owner: str = "poisson_spans_mask"
    exact: ClassVar[bool] = False  # the span count is random (BartDenoiser plans and fits it)
    keeps_targets_within_inputs: ClassVar[bool] = False

    def __post_init__(self) -> None:
        _check_rate(self.owner, "noise_density", self.noise_density)
        if not float(self.poisson_lambda) > 0:
            raise ValueError(f"{self.owner}.poisson_lambda={self.poisson_lambda!r} must be > 0")

    def budget(self, length: int) -> int:
        return math.ceil(length * self.noise_density)

    def validate(self, length: int, inputs_length: int) -> None:
        if length < 2 or length - self.budget(length) < 1:
            raise ValueError(f"{self.owner}: inputs_length={inputs_length} is too short for a masking budget")

    def sample(self, rng: np.random.Generator, batch: int, length: int) -> np.ndarray:
        return self.sample_with_insertions(rng, batch, length)[0]

    def sample_with_insertions(self, rng: np.random.Generator, batch: int, length: int) -> tuple[np.ndarray, ...]:
        """(noise bool [B, L], insert bool [B, L + 1]): insert[:, i] puts one mask token before raw token i
        (i = L: after the last). Each row: span lengths by `poisson_span_lengths`, the non-zero spans in a
        uniformly random arrangement with >= 1 kept token between spans, the insertions at distinct gaps."""
        self.validate(length, length)
        pmf, budget = poisson_pmf(self.poisson_lambda), self.budget(length)
        noise = np.zeros((batch, length), bool)
        insert = np.zeros((batch, length + 1), bool)
        for row in range(batch):
            lengths = poisson_span_lengths(rng, budget, pmf)
            spans = lengths[lengths > 0]
            inserts = int((lengths == 0).sum())
            k, kept = spans.size, length - budget
            if kept < k - 1:  # unreachable at r <= 0.5 with L >= 4; kept for other settings
                raise ValueError(f"{self.owner}: {k} spans of {budget} tokens do not fit apart in {length}")
            extra = kept - (k - 1)  # kept tokens beyond the one separating each pair of spans
            bars = np.sort(rng.choice(extra + k, size=k, replace=False))
            gaps = np.diff(np.concatenate([[-1], bars])) - 1  # k gaps before the spans, >= 0, sum <= extra
            gaps[1:] += 1
            starts = np.cumsum(gaps + np.concatenate([[0], spans[:-1]]))
            cover = np.zeros(length + 1, np.int64)
            np.add.at(cover, starts, 1)
            np.add.at(cover, starts + spans, -1)
            noise[row] = np.cumsum(cover)[:length] > 0
            insert[row, rng.choice(length + 1, size=inserts, replace=False)] = True
        return noise, insert

    def length_bound(self, length: int, coeffs: LengthCoeffs) -> int:
        """Planning bound with every token its own span (BartDenoiser plans the document as the target)."""
        n = self.budget(length)
        return coeffs.length * length + coeffs.noise * n + coeffs.noise_spans * n + coeffs.nonnoise_spans * (n + 1)


@register_encoding(
    "single_mask_per_span",
    roles=(INPUTS,),
    coeffs=LengthCoeffs(length=1, noise=-1, noise_spans=1),
    examples=NO_PARAMS,
)
@dataclasses.dataclass(frozen=True)
class SingleMaskPerSpan:
    """Each run of noise tokens -> one mask token <extra_id_0>, the same for every run (BART's text
    infilling, replace_length=1); T5's `sentinel_per_noise_span` gives each run its own sentinel instead."""

    def emit(self, noise: np.ndarray) -> np.ndarray:
        return ~noise | span_starts(noise)[0]

    def values(self, chunks: np.ndarray, noise: np.ndarray, rng: np.random.Generator, tokens: TokenSpace) -> np.ndarray:
        return np.where(noise, tokens.sentinel(0), chunks)


def _units(starts: np.ndarray) -> np.ndarray:
    """int [B, L]: the index of the unit (sentence or document) each token is in; position 0 starts one."""
    starts = starts.copy()
    starts[:, 0] = True
    return np.cumsum(starts, axis=1) - 1


def permute_sentences(chunks: np.ndarray, bounds: Boundaries, rng: np.random.Generator) -> np.ndarray:
    """Each document's sentences in a uniformly random order (fairseq's permute_sentences with p = 1),
    every sentence kept whole and in place within its document's span of the row."""
    batch, length = chunks.shape
    sentence, document = _units(bounds.sentence_start | bounds.document_start), _units(bounds.document_start)
    keys = np.take_along_axis(rng.random((batch, length)), sentence, axis=1)  # one random key per sentence
    order = np.lexsort((np.broadcast_to(np.arange(length), chunks.shape), keys, document), axis=-1)
    return np.take_along_axis(chunks, order, axis=1)


def rotate_documents(chunks: np.ndarray, bounds: Boundaries, rng: np.random.Generator) -> np.ndarray:
    """Each document in the row rotated to begin with a token chosen uniformly from it (fairseq's
    add_rolling_noise: a start token uniform over the document; the first token leaves it as it was)."""
    batch, length = chunks.shape
    pos = np.broadcast_to(np.arange(length), chunks.shape)
    document = _units(bounds.document_start)
    first = np.zeros((batch, length), np.int64)  # each document's first position, and its length
    first[:, 1:] = np.where(document[:, 1:] != document[:, :-1], pos[:, 1:], 0)
    first = np.maximum.accumulate(first, axis=1)
    last = np.full((batch, length), length, np.int64)
    last[:, :-1] = np.where(document[:, 1:] != document[:, :-1], pos[:, 1:], length)
    last = np.minimum.accumulate(last[:, ::-1], axis=1)[:, ::-1]
    size = last - first
    offset = np.take_along_axis(np.floor(rng.random((batch, length)) * size).astype(np.int64), first, axis=1)
    source = first + (pos - first + offset) % size
    return np.take_along_axis(chunks, source, axis=1)


@dataclasses.dataclass(eq=False)
class BartDenoiser(PlannedObjective):
    """A BART noising function: [sentence permutation] -> [mask + encoding (+ insertions)] or [rotation];
    targets = the original document. `needs_boundaries` tells the pre-training stream to pass `Boundaries`."""

    name: str
    mask: NoiseMask | None = None  # a NoiseMask (iid or poisson_spans) or None
    inputs: Encoding | None = None  # how the mask's noise is encoded (mask_token, drop_noise, single_mask_per_span)
    permute: bool = False
    rotate: bool = False

    def __post_init__(self) -> None:
        if (self.mask is None) != (self.inputs is None):
            raise ValueError(f"{self.name}: a mask needs an input encoding and an encoding a mask")
        if self.inputs is not None:
            check_role(self.inputs, INPUTS, self.name)
        if self.rotate and self.mask is not None:
            raise ValueError(f"{self.name}: document rotation is BART's own row; it is not combined with masking")

    @property
    def needs_boundaries(self) -> bool:
        return self.permute or self.rotate

    def plan(self, inputs_length: int) -> LengthPlan:
        """The document (raw_length = inputs_length - 1 tokens + EOS) is the target, as in BART."""
        inputs_length = int(inputs_length)
        if inputs_length < 4:
            raise ValueError(f"{self.name}: inputs_length={inputs_length} is too short (at least 4)")
        if self.mask is not None:
            self.mask.validate(inputs_length - 1, inputs_length)
        return self._remember(LengthPlan(inputs_length - 1, inputs_length, inputs_length))

    def check_sentinels(self, plan: LengthPlan, tokens: TokenSpace) -> None:
        if self.mask is not None and tokens.num_sentinels < 1:
            raise ValueError(f"{self.name}: the mask token is <extra_id_0>; bind vocabulary.num_sentinels >= 1")

    def __call__(
        self,
        chunks: np.ndarray,
        rng: np.random.Generator,
        tokens: TokenSpace,
        *,
        plan: LengthPlan | None = None,
        boundaries: Boundaries | None = None,
    ) -> dict[str, np.ndarray]:
        plan = self._resolve(chunks, plan)
        self.check_sentinels(plan, tokens)
        chunks = np.asarray(chunks)
        if self.needs_boundaries and boundaries is None:
            raise ValueError(
                f"{self.name} permutes sentences or rotates documents and needs each row's Boundaries "
                "(the pre-training stream passes them; see data/sentences.py)"
            )
        source = chunks
        if self.permute:
            source = permute_sentences(source, boundaries, rng)  # type: ignore[arg-type]
        if self.rotate:
            source = rotate_documents(source, boundaries, rng)  # type: ignore[arg-type]
        emit, values = np.ones(chunks.shape, bool), source
        if self.mask is not None and self.inputs is not None:
            emit, values = _noise(self.mask, self.inputs, source, rng, tokens, plan)
        inputs = pack(values, emit, plan.inputs_length, tokens.eos_id)
        targets = pack(chunks, np.ones(chunks.shape, bool), plan.targets_length, tokens.eos_id)
        return {"inputs": inputs, "targets": targets}


def _noise(
    mask: NoiseMask,
    inputs: Encoding,
    source: np.ndarray,
    rng: np.random.Generator,
    tokens: TokenSpace,
    plan: LengthPlan,
) -> tuple[np.ndarray, np.ndarray]:
    """(emit, values) of the masked source; with insertions (a mask with `sample_with_insertions`), over
    2L + 1 interleaved slots (slot 2i: the insertion before raw token i, slot 2i + 1: token i, slot 2L: the
    insertion after the last)."""
    batch, length = source.shape
    sampler = getattr(mask, "sample_with_insertions", None)
    if sampler is None:
        noise = mask.sample(rng, batch, length)
        return inputs.emit(noise), inputs.values(source, noise, rng, tokens)
    noise, insert = sampler(rng, batch, length)
    emit_tokens = inputs.emit(noise)
    room = plan.inputs_length - 1 - emit_tokens.sum(axis=1)  # insertions beyond it are dropped (last first)
    insert &= np.cumsum(insert, axis=1) <= room[:, None]
    emit = np.zeros((batch, 2 * length + 1), bool)
    values = np.full((batch, 2 * length + 1), tokens.sentinel(0), np.int32)
    emit[:, 0::2], emit[:, 1::2] = insert, emit_tokens
    values[:, 1::2] = inputs.values(source, noise, rng, tokens)
    return emit, values
