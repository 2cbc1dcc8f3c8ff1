"""Encodings and noise masks are registered, typed pieces: each satisfies its Protocol, is built by name, and
an encoding is refused in a role it was not registered for, with one error naming the objective.

The cases come from the registries: every registered mask and encoding is tested with the example parameters
its registry entry carries, so a new one is tested by registering it (no hand list here)."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from t5explore.objectives import encodings, masks, named
from t5explore.objectives.base import TokenSpace
from t5explore.objectives.denoise import Denoiser
from t5explore.objectives.encodings import (
    ENCODINGS,
    INPUTS,
    TARGETS,
    Encoding,
    encoding,
    encoding_examples,
    register_encoding,
)
from t5explore.objectives.masks import NOISE_MASKS, LengthCoeffs, NoiseMask, mask_examples, noise_mask, register_mask

TOKENS = TokenSpace(vocab_size=300, num_sentinels=100, first_regular_id=6)


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_every_registered_encoding_satisfies_the_protocol_and_emits_what_its_coeffs_say(name):
    """Every example of every registered encoding (its registry entry's `examples`): a new encoding is tested
    by registering it, and one registered without examples fails here with encoding_examples' message."""
    rng = np.random.default_rng(0)
    noise = rng.random((64, 50)) < 0.3
    noise_start, nonnoise_start = masks.span_starts(noise)
    counts = (50, noise.sum(1), noise_start.sum(1), nonnoise_start.sum(1))
    chunks = rng.integers(6, 200, noise.shape).astype(np.int32)
    assert name in set(encodings.names_for(INPUTS)) | set(encodings.names_for(TARGETS))
    for params in encoding_examples(name):
        enc = encoding(name, **params)
        assert isinstance(enc, Encoding) and enc.name == name, params
        emit = enc.emit(noise)
        assert emit.dtype == bool and emit.shape == noise.shape and not np.shares_memory(emit, noise)
        a, b, c, d = enc.coeffs
        assert np.array_equal(emit.sum(1), a * counts[0] + b * counts[1] + c * counts[2] + d * counts[3]), params
        assert enc.values(chunks, noise, np.random.default_rng(1), TOKENS).shape == noise.shape, params


@pytest.mark.parametrize("name", sorted(NOISE_MASKS))
def test_every_registered_mask_satisfies_the_protocol_and_its_bound(name):
    """Every example of every registered mask (see the encodings' test above)."""
    for params in mask_examples(name):
        mask = noise_mask(name, owner=f"test_{name}", **params)
        assert isinstance(mask, NoiseMask) and type(mask).mask_name == name, params
        noise = mask.sample(np.random.default_rng(0), 200, 60)
        assert noise.dtype == bool and noise.shape == (200, 60), params
        bound = mask.length_bound(60, LengthCoeffs(noise=1))
        assert noise.sum(1).max() <= bound or not mask.exact, params


@pytest.mark.parametrize("name", sorted(NOISE_MASKS))
def test_every_mask_example_composes_with_every_encoding_into_batches_that_fit_their_plan(name):
    """Each example of the mask, with every example of every input and every target encoding, plans and
    encodes a batch: each row is its emitted tokens, then EOS, then padding, in the planned widths (a row
    that outgrew its plan would fail in `pack`). A combination that cannot be planned (all tokens dropped:
    inputs that never grow) is refused by plan() with an error naming it; each example must plan with some."""
    chunks_rng = np.random.default_rng(5)
    inputs = [encoding(e, **p) for e in encodings.names_for(INPUTS) for p in encoding_examples(e)]
    targets = [encoding(e, **p) for e in encodings.names_for(TARGETS) for p in encoding_examples(e)]
    for params in mask_examples(name):
        mask = noise_mask(name, owner=f"test_{name}", **params)
        planned = 0
        for inp, tgt in itertools.product(inputs, targets):
            obj = Denoiser(f"{name}+{inp.name}+{tgt.name}", mask, inp, tgt)
            try:
                plan = obj.plan(48)
            except ValueError as e:
                assert str(e).startswith((obj.name, mask.owner)), e
                continue
            planned += 1
            chunks = chunks_rng.integers(6, 200, (8, plan.raw_length)).astype(np.int32)
            out = obj(chunks, np.random.default_rng(0), TOKENS)
            for key, width in (("inputs", plan.inputs_length), ("targets", plan.targets_length)):
                rows = out[key]
                assert rows.shape == (8, width) and rows.dtype == np.int32, (obj.name, params, key)
                ends = (rows == TOKENS.eos_id).argmax(axis=1)
                after = np.arange(width)[None, :] > ends[:, None]
                assert (rows[np.arange(8), ends] == TOKENS.eos_id).all(), (obj.name, params, key)
                assert (rows[after] == TOKENS.pad_id).all() and (rows[~after] != TOKENS.pad_id).all(), (obj.name, key)
        assert planned, f"{name} {params}: no encodings could be planned with it"


def test_a_mask_or_encoding_registered_without_examples_is_one_error_saying_how_to_add_them():
    @register_mask("test_no_examples")
    @dataclasses.dataclass(frozen=True)
    class NoExamples(masks.IidMask):  # inherits nothing from iid's registry entry
        pass

    @register_encoding("test_no_examples", roles=(INPUTS,), coeffs=LengthCoeffs(length=1))
    @dataclasses.dataclass(frozen=True)
    class NoExamplesEncoding(encodings.Original):
        pass

    try:
        with pytest.raises(ValueError, match=r"noise mask 'test_no_examples' \(NoExamples\) has no example param"):
            mask_examples("test_no_examples")
        with pytest.raises(ValueError, match=r"@register_encoding\('test_no_examples', \.\.\., examples="):
            encoding_examples("test_no_examples")
        assert mask_examples("iid") and encoding_examples("original") == ({},)
    finally:
        del NOISE_MASKS["test_no_examples"], ENCODINGS["test_no_examples"]


@pytest.mark.parametrize(
    "inputs,targets,match",
    [
        ("noise_only", "original", r"bad\.inputs: encoding 'noise_only' is registered for targets only, not inputs"),
        ("drop_noise", "drop_noise", r"bad\.targets: encoding 'drop_noise' is registered for inputs only, not targets"),
        ("sentinel_per_noise_span", "sentinel_per_noise_span", r"bad\.targets: .*targets encodings: \['noise_only'"),
    ],
)
def test_an_encoding_in_the_wrong_role_is_one_error_naming_the_objective(inputs, targets, match):
    with pytest.raises(ValueError, match=match):
        named._denoiser("bad", noise_mask("iid", noise_density=0.15), inputs, targets)


def test_unknown_names_and_non_pieces_are_errors_listing_what_is_registered():
    with pytest.raises(ValueError, match=r"unknown encoding 'sentinel'; registered: \["):
        encoding("sentinel")
    with pytest.raises(ValueError, match=r"unknown noise mask 'spans'; registered: \['all_tokens', 'iid'"):
        noise_mask("spans")
    with pytest.raises(ValueError, match=r"bad\.mask='random' is not a noise mask"):
        Denoiser("bad", "random", encoding("original"), encoding("original"))
    with pytest.raises(ValueError, match=r"bad\.inputs='original' is not a registered encoding"):
        Denoiser("bad", noise_mask("all_tokens"), "original", encoding("original"))
    with pytest.raises(ValueError, match="already registered"):
        register_encoding("original", roles=(INPUTS,), coeffs=LengthCoeffs(length=1))(type("Twin", (), {}))


def test_adding_an_encoding_is_one_registered_class():
    """A new input encoding (reverse the noise tokens of the row in place) plugs into a Denoiser unchanged."""

    @register_encoding("test_reverse_noise", roles=(INPUTS,), coeffs=LengthCoeffs(length=1))
    @dataclasses.dataclass(frozen=True)
    class ReverseNoise:
        def emit(self, noise):
            return np.ones_like(noise)

        def values(self, chunks, noise, rng, tokens):
            return np.where(noise, chunks[:, ::-1], chunks)

    try:
        obj = named._denoiser("rev", noise_mask("all_tokens", owner="rev"), "test_reverse_noise", "original")
        plan = obj.plan(16)
        chunks = np.arange(6, 6 + plan.raw_length)[None, :].repeat(2, axis=0)
        out = obj(chunks, np.random.default_rng(0), TokenSpace(vocab_size=200))
        assert out["inputs"][0, : plan.raw_length].tolist() == chunks[0, ::-1].tolist()
    finally:
        del ENCODINGS["test_reverse_noise"]
