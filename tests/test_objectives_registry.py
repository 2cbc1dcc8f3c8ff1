"""Encodings and noise masks are registered, typed pieces: each satisfies its Protocol, is built by name, and
an encoding is refused in a role it was not registered for, with one error naming the objective."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from t5explore.objectives import encodings, masks, named
from t5explore.objectives.base import TokenSpace
from t5explore.objectives.denoise import Denoiser
from t5explore.objectives.encodings import ENCODINGS, INPUTS, TARGETS, Encoding, encoding, register_encoding
from t5explore.objectives.masks import NOISE_MASKS, LengthCoeffs, NoiseMask, noise_mask

MASK_PARAMS = {
    "iid": {"noise_density": 0.15},
    "random_spans": {"noise_density": 0.15, "mean_noise_span_length": 3.0},
    "prefix": {},
    "all_tokens": {},
    "poisson_spans": {"noise_density": 0.3, "poisson_lambda": 3.0},
}


def test_every_registered_encoding_satisfies_the_protocol_and_emits_what_its_coeffs_say():
    rng = np.random.default_rng(0)
    noise = rng.random((64, 50)) < 0.3
    noise_start, nonnoise_start = masks.span_starts(noise)
    counts = (50, noise.sum(1), noise_start.sum(1), nonnoise_start.sum(1))
    tokens = TokenSpace(vocab_size=300, num_sentinels=100, first_regular_id=6)
    chunks = rng.integers(6, 200, noise.shape).astype(np.int32)
    assert set(ENCODINGS) == set(encodings.names_for(INPUTS)) | set(encodings.names_for(TARGETS))
    for name in ENCODINGS:
        enc = encoding(name)
        assert isinstance(enc, Encoding) and enc.name == name
        emit = enc.emit(noise)
        assert emit.dtype == bool and emit.shape == noise.shape and not np.shares_memory(emit, noise)
        a, b, c, d = enc.coeffs
        assert np.array_equal(emit.sum(1), a * counts[0] + b * counts[1] + c * counts[2] + d * counts[3]), name
        assert enc.values(chunks, noise, np.random.default_rng(1), tokens).shape == noise.shape


@pytest.mark.parametrize("name", sorted(NOISE_MASKS))
def test_every_registered_mask_satisfies_the_protocol_and_its_bound(name):
    mask = noise_mask(name, owner=f"test_{name}", **MASK_PARAMS[name])
    assert isinstance(mask, NoiseMask) and type(mask).mask_name == name
    noise = mask.sample(np.random.default_rng(0), 200, 60)
    assert noise.dtype == bool and noise.shape == (200, 60)
    bound = mask.length_bound(60, LengthCoeffs(noise=1))
    assert noise.sum(1).max() <= bound or not mask.exact


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
