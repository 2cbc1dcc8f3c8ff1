"""The model: shapes, masks, relative positions, decoding, partitioning metadata, sizes, and learning."""

from __future__ import annotations

import dataclasses
import functools

import gin
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import linen as nn
from flax.core import meta

from t5explore.config import parse_gin
from t5explore.model.config import T5Config, padded_vocab_size
from t5explore.model.decoding import greedy_decode
from t5explore.model.flops import num_params, train_flops_per_example
from t5explore.model.layers import relative_position_bucket
from t5explore.model.partitioning import DEFAULT_LOGICAL_RULES, LOGICAL_AXIS_NAMES, param_logical_axes, param_shardings
from t5explore.model.t5 import T5
from t5explore.seeds import STREAM_DROPOUT, STREAM_PARAMS, numpy_rng

from tiny_models import tiny_t5_config

TINY = tiny_t5_config("test_tiny", mlp="gated-gelu", tie_embeddings=False, dtype="float32")  # T5.1.1
TINY_T5_1_0 = dataclasses.replace(TINY, mlp="relu", tie_embeddings=True, name="test_tiny_1_0")


def random_tokens(seed: int, shape, vocab: int = 96) -> jnp.ndarray:
    return jnp.asarray(numpy_rng(seed, 0).integers(2, vocab, shape), jnp.int32)


def prng_key(stream: int):
    """A key for (seed 0, stream) in the 'unsafe_rbg' PRNG: XLA on CPU compiles it ~2x faster than threefry,
    and compilation dominates this file's run time."""
    return jax.random.key(int(numpy_rng(0, stream).integers(2**31)), impl="unsafe_rbg")


# Each jitted function is built once per config and reused, for the same reason.
@functools.cache
def init_params(cfg: T5Config):
    enc, dec = jnp.ones((1, 4), jnp.int32), jnp.ones((1, 3), jnp.int32)
    return jax.jit(lambda key: T5(cfg).init(key, enc, dec)["params"])(prng_key(STREAM_PARAMS))


@functools.cache
def _jitted_forward(cfg: T5Config):
    return jax.jit(lambda p, e, d, extra: T5(cfg).apply({"params": p}, e, d, **extra))


def forward(cfg: T5Config, params, enc, dec, **extra):
    """Jitted teacher-forced forward pass; `extra` holds optional array arguments (segment ids, positions)."""
    return _jitted_forward(cfg)(meta.unbox(params), enc, dec, extra)


def param_shapes(cfg: T5Config):
    """Boxed parameter shapes from jax.eval_shape: nothing is materialised."""
    enc, dec = jnp.ones((1, 4), jnp.int32), jnp.ones((1, 3), jnp.int32)
    return jax.eval_shape(lambda: T5(cfg).init(jax.random.PRNGKey(0), enc, dec)["params"])


@pytest.fixture(scope="module")
def tiny_params():
    return init_params(TINY)


@pytest.fixture(scope="module")
def apply_tiny(tiny_params):
    return lambda enc, dec: forward(TINY, tiny_params, enc, dec)


def param_paths(params) -> set[str]:
    flat = jax.tree_util.tree_flatten_with_path(meta.unbox(params))[0]
    return {"/".join(k.key for k in path) for path, _ in flat}


@pytest.mark.parametrize(
    "cfg", [TINY, TINY_T5_1_0, dataclasses.replace(TINY, dtype="bfloat16")], ids=["t5_1_1", "t5_1_0", "bf16"]
)
def test_logits_shape_and_dtype(cfg):
    params = init_params(dataclasses.replace(cfg, dtype="float32"))  # dtype does not change the parameters
    logits = forward(cfg, params, random_tokens(1, (2, 6)), random_tokens(2, (2, 5)))
    assert logits.shape == (2, 5, cfg.vocab_size)
    assert logits.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(logits)))
    # Parameters are float32 whatever the activation dtype.
    assert {x.dtype for x in jax.tree_util.tree_leaves(param_shapes(cfg))} == {jnp.dtype("float32")}


def test_tied_and_untied_parameter_sets():
    untied, tied = param_paths(param_shapes(TINY)), param_paths(param_shapes(TINY_T5_1_0))
    assert "decoder/logits_dense" in untied and "decoder/logits_dense" not in tied
    assert "token_embedder/embedding" in untied and "token_embedder/embedding" in tied
    assert "encoder/layer_0/mlp/wi_0" in untied and "encoder/layer_0/mlp/wi_1" in untied
    assert "encoder/layer_0/mlp/wi" in tied and not any("wi_0" in p for p in tied)
    # One relative position table per stack, none inside layers.
    assert {p for p in untied if "rel_embedding" in p} == {
        "encoder/relpos_bias/rel_embedding",
        "decoder/relpos_bias/rel_embedding",
    }


def test_tied_logits_are_embedding_attend_scaled_by_inverse_sqrt_d_model():
    cfg = TINY_T5_1_0
    params = init_params(cfg)
    enc, dec = random_tokens(3, (2, 6)), random_tokens(4, (2, 5))
    logits, state = jax.jit(lambda p: T5(cfg).apply({"params": p}, enc, dec, capture_intermediates=True))(params)
    hidden = state["intermediates"]["decoder"]["final_norm"]["__call__"][0]
    embedding = meta.unbox(params)["token_embedder"]["embedding"]
    np.testing.assert_allclose(logits, hidden @ embedding.T / np.sqrt(cfg.d_model), rtol=1e-4, atol=1e-5)


def test_relative_position_buckets_match_hand_computed_values():
    # relative = key_pos - query_pos. Encoder (bidirectional): 16 buckets per direction, 8 exact,
    # then 8 + int(log(n/8)/log(128/8)*8); keys after the query get +16.
    rel = np.array([0, -1, -7, -8, -12, -20, -32, -64, -100, -127, -128, -500, 1, 7, 12, 200])
    want = np.array([0, 1, 7, 8, 9, 10, 12, 14, 15, 15, 15, 15, 17, 23, 25, 31])
    np.testing.assert_array_equal(relative_position_bucket(rel, bidirectional=True), want)
    # Decoder (causal): 32 buckets, 16 exact, then 16 + int(log(n/16)/log(8)*16); the future folds to 0.
    rel = np.array([0, -1, -15, -16, -20, -40, -64, -100, -128, -1000, 1, 50])
    want = np.array([0, 1, 15, 16, 17, 23, 26, 30, 31, 31, 0, 0])
    np.testing.assert_array_equal(relative_position_bucket(rel, bidirectional=False), want)
    # The jax path gives the same numbers.
    np.testing.assert_array_equal(relative_position_bucket(jnp.asarray(rel), bidirectional=False), want)


def test_decoder_is_causal(apply_tiny):
    enc, dec = random_tokens(5, (2, 6)), random_tokens(6, (2, 8))
    changed = dec.at[:, 5:].set(random_tokens(7, (2, 3)))
    a, b = apply_tiny(enc, dec), apply_tiny(enc, changed)
    np.testing.assert_allclose(a[:, :5], b[:, :5], rtol=1e-5, atol=1e-5)
    assert not np.allclose(a[:, 5:], b[:, 5:], atol=1e-3)  # the change does reach later positions


def test_encoder_padding_is_masked(tiny_params, apply_tiny):
    enc, dec = random_tokens(8, (2, 6)), random_tokens(9, (2, 5))
    padded = jnp.concatenate([enc, jnp.zeros((2, 4), jnp.int32)], axis=1)
    np.testing.assert_allclose(apply_tiny(enc, dec), apply_tiny(padded, dec), rtol=1e-5, atol=1e-5)
    encode = jax.jit(lambda x: T5(TINY).apply({"params": tiny_params}, x, method=T5.encode))
    np.testing.assert_allclose(encode(enc), encode(padded)[:, :6], rtol=1e-5, atol=1e-5)
    # A real token in place of padding does change the result (the mask is not vacuous).
    filled = padded.at[:, 6].set(7)
    assert not np.allclose(apply_tiny(enc, dec), apply_tiny(filled, dec), atol=1e-3)


def test_all_padding_encoder_input_gives_finite_logits(apply_tiny):
    logits = apply_tiny(jnp.zeros((2, 6), jnp.int32), random_tokens(10, (2, 5)))
    assert bool(jnp.all(jnp.isfinite(logits)))


def test_segment_ids_isolate_packed_examples(tiny_params):
    """Two examples packed in one row give the same logits as each alone (positions restart per segment)."""
    e1, e2, d1, d2 = (
        random_tokens(11, (4,)),
        random_tokens(12, (2,)),
        random_tokens(13, (3,)),
        random_tokens(14, (2,)),
    )

    def pad(x, n):  # alone: padded encoder, trailing decoder tokens unseen
        return jnp.pad(x, (0, n - len(x)))

    alone = forward(TINY, tiny_params, jnp.stack([pad(e1, 6), pad(e2, 6)]), jnp.stack([pad(d1, 5), pad(d2, 5)]))
    packed = forward(
        TINY,
        tiny_params,
        jnp.concatenate([e1, e2])[None],
        jnp.concatenate([d1, d2])[None],
        encoder_segment_ids=jnp.array([[1, 1, 1, 1, 2, 2]]),
        decoder_segment_ids=jnp.array([[1, 1, 1, 2, 2]]),
        encoder_positions=jnp.array([[0, 1, 2, 3, 0, 1]]),
        decoder_positions=jnp.array([[0, 1, 2, 0, 1]]),
    )
    np.testing.assert_allclose(packed[0, :3], alone[0, :3], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(packed[0, 3:], alone[1, :2], rtol=1e-5, atol=1e-5)


def test_every_parameter_has_logical_axis_names():
    shapes = param_shapes(TINY_T5_1_0)
    leaves = jax.tree_util.tree_leaves(shapes, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
    assert leaves and all(isinstance(x, nn.LogicallyPartitioned) for x in leaves)
    for box in leaves:
        assert len(box.names) == box.value.ndim and set(box.names) <= set(LOGICAL_AXIS_NAMES), box
    specs = param_logical_axes(shapes)
    assert tuple(specs["token_embedder"]["embedding"]) == ("vocab", "embed")
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]).reshape(1, 1), ("data", "model"))
    shardings = param_shardings(shapes, mesh)
    assert tuple(shardings["token_embedder"]["embedding"].spec) == ("model", "data")
    assert {r[0] for r in DEFAULT_LOGICAL_RULES} >= set(LOGICAL_AXIS_NAMES)


def stepwise_greedy(cfg, params, enc, max_length, eos_id=1):
    """Reference: re-run the full forward pass on the growing prefix and take the argmax at each step."""
    dec = np.zeros((enc.shape[0], max_length), np.int32)
    out = np.zeros_like(dec)
    done = np.zeros(enc.shape[0], bool)
    for i in range(max_length):
        token = np.asarray(jnp.argmax(forward(cfg, params, enc, jnp.asarray(dec))[:, i], axis=-1))
        token = np.where(done, 0, token)
        out[:, i] = token
        done |= token == eos_id
        if i + 1 < max_length:
            dec[:, i + 1] = token
    return out


def test_greedy_decode_equals_stepwise_argmax(tiny_params):
    enc = random_tokens(15, (2, 6)).at[1, 4:].set(0)  # one row with encoder padding
    max_length = 5
    # Make row 0 emit EOS by step 2: swap EOS's output column with the token it would pick there.
    first = stepwise_greedy(TINY, tiny_params, enc, max_length)
    params = meta.unbox(tiny_params)
    head = params["decoder"]["logits_dense"]
    t = int(first[0, 2])
    head = head.at[:, [1, t]].set(head[:, [t, 1]])
    params = {**params, "decoder": {**params["decoder"], "logits_dense": head}}

    want = stepwise_greedy(TINY, params, enc, max_length)
    got = np.asarray(greedy_decode(T5(TINY), params, enc, max_length))
    np.testing.assert_array_equal(got, want)
    eos_at = int(np.argmax(got[0] == 1))
    assert got[0, eos_at] == 1 and eos_at <= 2 and np.all(got[0, eos_at + 1 :] == 0)
    assert np.any(got[1] != 0)


def test_loss_decreases_on_a_fixed_batch(tiny_params):
    model = T5(TINY)
    enc, targets = random_tokens(16, (4, 8)), random_tokens(17, (4, 6))
    dec = jnp.concatenate([jnp.zeros((4, 1), jnp.int32), targets[:, :-1]], axis=1)
    params = meta.unbox(tiny_params)
    opt = optax.adam(3e-3)

    def loss_fn(p):
        logits = model.apply({"params": p}, enc, dec)
        return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()

    @jax.jit
    def step(p, state):
        loss, grads = jax.value_and_grad(loss_fn)(p)
        updates, state = opt.update(grads, state, p)
        return optax.apply_updates(p, updates), state, loss

    state, losses = opt.init(params), []
    for _ in range(30):
        params, state, loss = step(params, state)
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0], losses


def test_dropout_only_when_enabled():
    cfg = dataclasses.replace(TINY, dropout_rate=0.3)
    params = init_params(TINY)  # dropout adds no parameters
    enc, dec = random_tokens(18, (2, 6)), random_tokens(19, (2, 5))
    apply = jax.jit(
        lambda key, on: T5(cfg).apply({"params": params}, enc, dec, enable_dropout=on, rngs={"dropout": key}),
        static_argnums=1,
    )

    def run(seed, on):
        return apply(jax.random.fold_in(prng_key(STREAM_DROPOUT), seed), on)

    np.testing.assert_array_equal(run(0, False), run(1, False))
    assert not np.allclose(run(0, True), run(1, True))


@pytest.mark.parametrize("name,expected", [("small", 76_961_152), ("base", 247_577_856)])
def test_param_count_of_gin_sizes(name, expected):
    """T5 1.1 sizes with the 32128-id vocabulary (the published checkpoints' counts), without materialising."""
    try:
        parse_gin([f"gin/models/{name}.gin"])
        cfg = dataclasses.replace(T5Config(), vocab_size=padded_vocab_size(32100))
    finally:
        gin.clear_config()
    assert cfg.name == name and cfg.vocab_size == 32128
    shapes = param_shapes(cfg)
    counted = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(meta.unbox(shapes)))
    assert counted == num_params(cfg) == expected


def test_num_params_formula_for_t5_1_0(tiny_params):
    shapes = param_shapes(TINY_T5_1_0)
    assert sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(meta.unbox(shapes))) == num_params(TINY_T5_1_0)


def test_train_flops_match_xla_count_of_matmuls():
    """Our forward FLOPs (train / 3) agree with XLA's count for the compiled forward pass (float32)."""
    cfg = dataclasses.replace(TINY, d_model=128, num_heads=4, head_dim=32, d_ff=512, vocab_size=512)
    params = param_shapes(cfg)
    enc, dec = jnp.ones((1, 64), jnp.int32), jnp.ones((1, 32), jnp.int32)
    analysis = jax.jit(lambda p: T5(cfg).apply({"params": p}, enc, dec)).lower(params).cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    if not analysis or "flops" not in analysis:
        pytest.skip(f"XLA gives no cost analysis on {jax.default_backend()}")
    xla_flops = analysis["flops"]
    ours = train_flops_per_example(cfg, 64, 32) / 3
    assert 0.9 < ours / xla_flops < 1.1, (ours, xla_flops)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="T5Config.mlp"):
        T5Config(mlp="swiglu")
    with pytest.raises(ValueError, match="T5Config.dtype"):
        T5Config(dtype="float16")
    with pytest.raises(ValueError, match="T5Config.vocab_size is not set"):
        init_params(dataclasses.replace(TINY, vocab_size=0))
    assert padded_vocab_size(32100) == 32128 and padded_vocab_size(128) == 128 and padded_vocab_size(129) == 256
