"""The decoder-only LM behind the model interface: its text-to-text features, masks that are really causal
(or prefix-visible), target-only loss, cached greedy decoding against a plain reference, parameter count,
scanned layers, the gin registry, and training through the same loops as the encoder-decoder."""

from __future__ import annotations

import dataclasses
import functools

import gin
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.core import meta
from jax.sharding import PartitionSpec

from t5explore.config import ConfigError, parse_gin
from t5explore.data.packing import RowPacker
from t5explore.model.decoder_only import DecoderOnly, decoder_only_features
from t5explore.model.encoder_decoder import EncoderDecoder
from t5explore.model.partitioning import LOGICAL_AXIS_NAMES
from t5explore.model.registry import build_model
from t5explore.model.scan import stack_layers
from t5explore.seeds import numpy_rng
from t5explore.train.steps import loss_and_metrics

from tiny_models import tiny_t5_config

TINY = tiny_t5_config("test_tiny_decoder_only", num_encoder_layers=1)
EOS = 1


@functools.cache
def model_and_params(attention: str, tie: bool = False):
    model = DecoderOnly(dataclasses.replace(TINY, tie_embeddings=tie), attention)
    return model, jax.jit(lambda key: model.init_values(key, 1))(jax.random.key(7))


@functools.cache
def jitted_logits(attention: str):
    model, _ = model_and_params(attention)
    return jax.jit(lambda p, tokens, prefix: model.module.apply({"params": p}, tokens, prefix))


def logits(attention: str, tokens, prefix) -> np.ndarray:
    params = model_and_params(attention)[1]
    return np.asarray(jitted_logits(attention)(params, jnp.asarray(tokens), jnp.asarray(prefix)))


def test_features_concatenate_inputs_and_targets_and_weight_only_targets():
    inputs = np.array([[5, 6, 1, 0], [7, 1, 0, 0]])
    targets = np.array([[8, 1, 0], [9, 10, 1]])
    f = decoder_only_features(inputs, targets)
    np.testing.assert_array_equal(f["decoder_target_tokens"], [[5, 6, 1, 8, 1, 0, 0], [7, 1, 9, 10, 1, 0, 0]])
    np.testing.assert_array_equal(f["decoder_input_tokens"], [[0, 5, 6, 1, 8, 1, 0], [0, 7, 1, 9, 10, 1, 0]])
    np.testing.assert_array_equal(f["decoder_loss_weights"], [[0, 0, 0, 1, 1, 0, 0], [0, 0, 1, 1, 1, 0, 0]])
    # the prefix a prefix LM sees fully: the start token and the inputs, as decoder inputs
    np.testing.assert_array_equal(f["decoder_causal_attention"], [[1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0]])
    assert set(f) == set(DecoderOnly.feature_keys)


def test_packed_rows_become_one_sequence_per_example():
    """A packed encoder-decoder row (data/packing.py) of two examples -> inputs + targets of each, in turn."""
    packer = RowPacker(rows=1, inputs_length=5, targets_length=4)
    assert packer.add(np.array([5, 6, 1]), np.array([8, 1])) and packer.add(np.array([7, 1]), np.array([9, 1]))
    f = DecoderOnly(TINY, "prefix").packed_features(packer.features())
    np.testing.assert_array_equal(f["decoder_target_tokens"], [[5, 6, 1, 8, 1, 7, 1, 9, 1]])
    np.testing.assert_array_equal(f["decoder_input_tokens"], [[0, 5, 6, 1, 8, 0, 7, 1, 9]])
    np.testing.assert_array_equal(f["decoder_segment_ids"], [[1, 1, 1, 1, 1, 2, 2, 2, 2]])
    np.testing.assert_array_equal(f["decoder_positions"], [[0, 1, 2, 3, 4, 0, 1, 2, 3]])
    np.testing.assert_array_equal(f["decoder_loss_weights"], [[0, 0, 0, 1, 1, 0, 0, 1, 1]])
    np.testing.assert_array_equal(f["decoder_causal_attention"], [[1, 1, 1, 1, 0, 1, 1, 1, 0]])


@pytest.mark.parametrize("attention", ["causal", "prefix"])
def test_a_packed_example_sees_only_itself(attention):
    """The second example of a packed row gets the logits it gets alone in its own row."""
    first, second = (np.array([5, 6, 7, 1]), np.array([8, 9, 1])), (np.array([10, 11, 1]), np.array([12, 1]))
    packer = RowPacker(rows=1, inputs_length=8, targets_length=6)
    assert packer.add(*first) and packer.add(*second)
    model, params = model_and_params(attention)
    packed = model.apply(params, model.packed_features(packer.features()))
    alone = model.apply(params, decoder_only_features(second[0][None], second[1][None]))
    np.testing.assert_allclose(packed[0, 7:12], alone[0, :5], atol=1e-5)  # the 5 tokens of the second example


def test_causal_mask_is_causal():
    tokens = np.asarray(numpy_rng(0, 1).integers(2, 96, (1, 10)), np.int32)
    prefix = np.zeros_like(tokens)
    base = logits("causal", tokens, prefix)
    for k in (0, 4, 9):
        changed = tokens.copy()
        changed[0, k] = 3 + (changed[0, k] - 2) % 90
        out = logits("causal", changed, prefix)
        np.testing.assert_array_equal(out[:, :k], base[:, :k])  # earlier positions cannot see position k
        assert not np.allclose(out[:, k], base[:, k])


def test_prefix_mask_sees_the_whole_prefix_and_targets_causally():
    tokens = np.asarray(numpy_rng(0, 2).integers(2, 96, (1, 10)), np.int32)
    prefix = (np.arange(10) < 5)[None].astype(np.int32)  # positions 0..4 form the prefix
    base = logits("prefix", tokens, prefix)
    changed = tokens.copy()
    changed[0, 4] = 3 + (changed[0, 4] - 2) % 90  # the prefix's last token: every prefix position sees it
    assert not np.allclose(logits("prefix", changed, prefix)[:, :4], base[:, :4])
    changed = tokens.copy()
    changed[0, 7] = 3 + (changed[0, 7] - 2) % 90  # a target position: only later positions see it
    out = logits("prefix", changed, prefix)
    np.testing.assert_array_equal(out[:, :7], base[:, :7])
    assert not np.allclose(out[:, 7:], base[:, 7:])


def test_loss_is_on_the_target_tokens_only():
    inputs = np.array([[5, 6, 7, 1], [8, 1, 0, 0]])
    targets = np.array([[9, 1, 0], [10, 11, 1]])
    batch = decoder_only_features(inputs, targets)
    model, params = model_and_params("causal")
    out = np.asarray(model.apply(params, {k: jnp.asarray(v) for k, v in batch.items()}), np.float64)
    loss, metrics = loss_and_metrics(jnp.asarray(out, jnp.float32), batch)
    log_probs = out - np.log(np.exp(out).sum(-1, keepdims=True))
    target_positions = [(0, 4), (0, 5), (1, 2), (1, 3), (1, 4)]  # after each row's inputs, by hand
    want = -np.mean([log_probs[b, t, batch["decoder_target_tokens"][b, t]] for b, t in target_positions])
    assert float(loss) == pytest.approx(want, rel=1e-5) and float(metrics["num_tokens"]) == 5
    every_token = [(b, t) for b in range(2) for t in range(7) if batch["decoder_target_tokens"][b, t]]
    assert -np.mean([log_probs[b, t, batch["decoder_target_tokens"][b, t]] for b, t in every_token]) != pytest.approx(
        want, rel=1e-3
    )  # the inputs' tokens would change it


def reference_decode(attention: str, inputs: np.ndarray, max_length: int) -> np.ndarray:
    """Unoptimised greedy decoding: per row, the whole sequence [start, inputs, generated] through the
    teacher-forced model at every step, no cache, no batching, no shifted positions (right-padded to one
    length, so one compilation serves every step: later padding is invisible to a causal position)."""
    out = np.zeros((len(inputs), max_length), np.int32)
    width = 1 + inputs.shape[1] + max_length
    for row, x in enumerate(inputs):
        prompt = [0] + [int(t) for t in x[: int(np.flatnonzero(x)[-1]) + 1]]
        generated: list[int] = []
        while len(generated) < max_length and (not generated or generated[-1] != EOS):
            sequence = prompt + generated
            tokens = np.array([sequence + [0] * (width - len(sequence))], np.int32)
            prefix = (np.arange(width) < len(prompt))[None].astype(np.int32)
            generated.append(int(np.argmax(logits(attention, tokens, prefix)[0, len(sequence) - 1])))
        out[row, : len(generated)] = generated
    return out


@pytest.mark.parametrize("attention", ["causal", "prefix"])
def test_greedy_decode_equals_unoptimised_reference(attention):
    inputs = np.asarray(numpy_rng(0, 3).integers(2, 96, (3, 6)), np.int32)
    inputs[0, 5], inputs[1, 2:], inputs[2, 4:] = EOS, 0, 0  # prompts of 6, 2 and 4 tokens (right-aligned in the cache)
    inputs[1, 1] = inputs[2, 3] = EOS
    model, params = model_and_params(attention)
    max_length = 5
    got = np.asarray(model.greedy_decode(params, inputs, max_length))
    np.testing.assert_array_equal(got, reference_decode(attention, inputs, max_length))
    assert len({tuple(r) for r in got}) > 1 and len(set(got.ravel())) > 2  # rows differ: not a degenerate model


def test_greedy_decode_stops_at_eos_and_pads():
    model, params = model_and_params("prefix")
    inputs = np.array([[4, 5, 1, 0]], np.int32)
    first = int(np.asarray(model.greedy_decode(params, inputs, 1))[0, 0])
    p = meta.unbox(params)
    head = p["decoder"]["logits_dense"]  # swap EOS's output column with the first token's: EOS comes first
    p = {**p, "decoder": {**p["decoder"], "logits_dense": head.at[:, [EOS, first]].set(head[:, [first, EOS]])}}
    np.testing.assert_array_equal(np.asarray(model.greedy_decode(p, inputs, 4)), [[EOS, 0, 0, 0]])


@pytest.mark.parametrize("tie", [False, True])
def test_num_params_matches_init(tie):
    model, params = model_and_params("causal", tie)
    assert sum(x.size for x in jax.tree.leaves(params)) == model.num_params()
    assert ("logits_dense" in params["decoder"]) is not tie


def test_every_parameter_has_logical_axes():
    model, params = model_and_params("prefix")
    specs = jax.tree.leaves(model.logical_axes(), is_leaf=lambda x: isinstance(x, PartitionSpec) or x is None)
    assert len(specs) == len(jax.tree.leaves(params))
    assert all(isinstance(s, PartitionSpec) and set(s) <= set(LOGICAL_AXIS_NAMES) for s in specs), specs


def test_flops_match_xla_count_of_one_stack_over_inputs_and_targets():
    """Forward FLOPs (train / 3) of one example agree with XLA's count for the compiled forward pass."""
    cfg = dataclasses.replace(TINY, d_model=128, num_heads=4, head_dim=32, d_ff=512, vocab_size=512)
    model = DecoderOnly(cfg, "prefix")
    params = jax.eval_shape(lambda: model.init(jax.random.key(0), 1))["params"]
    tokens = jnp.ones((1, 64 + 32), jnp.int32)
    analysis = jax.jit(lambda p: model.module.apply({"params": p}, tokens, tokens)).lower(params).cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    if not analysis or "flops" not in analysis:
        pytest.skip(f"XLA gives no cost analysis on {jax.default_backend()}")
    ours = model.flops_per_token(64, 32) * 64 / 3
    assert 0.9 < ours / analysis["flops"] < 1.1, (ours, analysis["flops"])


def test_scanned_layers_start_from_the_same_numbers_and_compute_the_same():
    model, params = model_and_params("prefix")
    scanned = DecoderOnly(dataclasses.replace(model.cfg, scan_layers=True), "prefix")
    scanned_params = jax.jit(lambda key: scanned.init_values(key, 1))(jax.random.key(7))
    want = stack_layers(params, model.cfg, DecoderOnly.layer_stacks)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), scanned_params, want))
    batch = decoder_only_features(np.array([[5, 6, 1, 0]]), np.array([[7, 1]]))
    np.testing.assert_allclose(scanned.apply(scanned_params, batch), model.apply(params, batch), atol=1e-5)


def test_registry_builds_the_gin_choice_and_names_the_binding_when_unknown():
    try:
        parse_gin(["gin/models/decoder_only_lm.gin"])
        lm = build_model(TINY)
        assert isinstance(lm, DecoderOnly) and lm.attention == "causal"
        parse_gin(["gin/models/decoder_only_prefix_lm.gin"])
        assert build_model(TINY).attention == "prefix"
        gin.clear_config()
        assert isinstance(build_model(TINY), EncoderDecoder)  # the default
        parse_gin([], ["Model.name = 'encoder_only'"])
        with pytest.raises(ConfigError, match=r"gin binding Model.name = 'encoder_only'.*decoder_only"):
            build_model(TINY)
        parse_gin([], ["Model.name = 'decoder_only'", "DecoderOnly.attention = 'bidirectional'"])
        with pytest.raises(ConfigError, match=r"gin binding DecoderOnly\.attention"):
            build_model(TINY)
    finally:
        gin.clear_config()
