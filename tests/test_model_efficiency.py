"""The opt-in efficiency options compute the default model: scanned layers (with remat), fused attention,
float32 logits and the integer-label cross entropy agree with the default path within float tolerance, and each
really does what it says (a scan, a checkpoint, a dot_product_attention call, a 'layers' axis)."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from flax.core import meta

from t5explore.config import ConfigError, parse_gin
from t5explore.model import layers
from t5explore.model.config import T5Config
from t5explore.model.decoding import greedy_decode
from t5explore.model.flops import num_params
from t5explore.model.partitioning import BATCH_LENGTH_EMBED, activation_sharding, constrain
from t5explore.model.scan import stack_layers, unstack_layers
from t5explore.model.t5 import T5
from t5explore.seeds import numpy_rng
from t5explore.train.steps import cross_entropy_impl, loss_and_metrics, token_losses

BASE = T5Config(
    vocab_size=96, d_model=32, num_heads=4, head_dim=8, d_ff=64, num_encoder_layers=2, num_decoder_layers=3, name="eff"
)
ENC = jnp.asarray(numpy_rng(0, 0).integers(2, 96, (2, 7)), jnp.int32).at[1, 5:].set(0)  # row 1 padded
DEC = jnp.asarray(numpy_rng(0, 1).integers(2, 96, (2, 5)), jnp.int32)


@functools.cache
def base_params():
    return meta.unbox(jax.jit(lambda k: T5(BASE).init(k, ENC, DEC)["params"])(jax.random.key(0)))


def params_for(cfg: T5Config):
    return stack_layers(base_params(), cfg) if cfg.scan_layers else base_params()


def loss_fn(cfg: T5Config):
    def loss(params):
        logits = T5(cfg).apply({"params": params}, ENC, DEC)
        return jnp.mean(jax.nn.log_softmax(logits)[..., 3])

    return loss


@functools.cache
def logits_and_grads(cfg: T5Config):
    params = params_for(cfg)
    logits = jax.jit(lambda p: T5(cfg).apply({"params": p}, ENC, DEC))(params)
    grads = jax.jit(jax.grad(loss_fn(cfg)))(params)
    return logits, unstack_layers(grads, cfg) if cfg.scan_layers else grads


VARIANTS = {
    "scan": dict(scan_layers=True),
    "scan+remat_full": dict(scan_layers=True, remat_policy="full"),
    "remat_dots": dict(remat_policy="dots"),
    "scan+remat_dots_no_batch": dict(scan_layers=True, remat_policy="dots_no_batch"),
    "dot_product": dict(attention_impl="dot_product"),
    "all": dict(scan_layers=True, remat_policy="dots", attention_impl="dot_product"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_computes_the_default_model(name):
    cfg = dataclasses.replace(BASE, **VARIANTS[name])
    ref_logits, ref_grads = logits_and_grads(BASE)
    logits, grads = logits_and_grads(cfg)
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-5, atol=1e-5)
    assert jax.tree.structure(grads) == jax.tree.structure(ref_grads)
    for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-6)
    if name in ("scan", "all"):  # the decode cache under scan, and the fused path's fallback while decoding
        decoded = greedy_decode(T5(cfg), params_for(cfg), ENC, 6)
        np.testing.assert_array_equal(decoded, greedy_decode(T5(BASE), base_params(), ENC, 6))


def jaxpr_of(cfg: T5Config) -> str:
    return str(jax.make_jaxpr(loss_fn(cfg))(params_for(cfg)))


def test_scan_and_remat_are_really_applied():
    plain = jaxpr_of(BASE)
    assert "scan[" not in plain and "remat" not in plain
    scanned = jaxpr_of(dataclasses.replace(BASE, scan_layers=True))
    assert "scan[" in scanned and "remat" not in scanned
    remat = jaxpr_of(dataclasses.replace(BASE, scan_layers=True, remat_policy="dots"))
    assert "scan[" in remat and "remat" in remat and "policy=DotsSaveable(only_if_no_batch_dims=False)" in remat
    full = jaxpr_of(dataclasses.replace(BASE, remat_policy="full"))
    assert "scan[" not in full and full.count("remat") >= 5 and "policy=None" in full  # one per layer


def test_scanned_params_have_a_layers_axis_and_the_same_count():
    cfg = dataclasses.replace(BASE, scan_layers=True)
    shapes = jax.eval_shape(lambda k: T5(cfg).init(k, ENC, DEC), jax.random.key(0))["params"]
    specs = nn.get_partition_spec(shapes)
    assert set(shapes["encoder"]) == {"layers", "relpos_bias", "final_norm"}
    assert tuple(specs["encoder"]["layers"]["attention"]["query"]) == ("layers", "embed", "heads", "kv")
    assert tuple(specs["decoder"]["layers"]["mlp"]["wo"]) == ("layers", "mlp", "embed")
    assert meta.unbox(shapes)["decoder"]["layers"]["mlp"]["wo"].shape == (3, 64, 32)
    assert sum(x.size for x in jax.tree.leaves(meta.unbox(shapes))) == num_params(cfg)
    roundtrip = unstack_layers(stack_layers(base_params(), cfg), cfg)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), roundtrip, base_params()))


@pytest.mark.slow  # trains unscanned, then scanned from its numbers (~12 s)
def test_a_scanned_run_starts_from_the_unscanned_runs_numbers():
    from t5explore.model.encoder_decoder import EncoderDecoder
    from t5explore.train.partitioning import Partitioner
    from t5explore.train.trainer import init_params

    cfg = dataclasses.replace(BASE, scan_layers=True)
    flat, _ = init_params(EncoderDecoder(BASE), Partitioner(), seed=4)
    scanned, shardings = init_params(EncoderDecoder(cfg), Partitioner(), seed=4)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), scanned, stack_layers(flat, cfg)))
    assert jax.tree.structure(shardings) == jax.tree.structure(scanned)


def test_dot_product_path_calls_jax_with_t5_scaling(monkeypatch):
    calls = []
    real = jax.nn.dot_product_attention

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(jax.nn, "dot_product_attention", spy)
    cfg = dataclasses.replace(BASE, attention_impl="dot_product")
    T5(cfg).apply({"params": base_params()}, ENC, DEC)
    assert len(calls) == 2 + 2 * 3  # encoder self; decoder self + cross, per layer
    assert all(c["scale"] == 1.0 and c["implementation"] == "xla" for c in calls)  # CPU: XLA's
    calls.clear()
    T5(BASE).apply({"params": base_params()}, ENC, DEC)
    assert not calls  # the default stays on the einsum path


def test_fused_attention_falls_back_where_it_cannot_apply():
    cfg = dataclasses.replace(BASE, attention_impl="dot_product", dropout_rate=0.1)
    assert layers.fused_attention_implementation(cfg, jnp.float32, deterministic=False, decode=False) is None
    assert layers.fused_attention_implementation(cfg, jnp.float32, deterministic=True, decode=True) is None
    assert layers.fused_attention_implementation(cfg, jnp.bfloat16, deterministic=True, decode=False) == "xla"
    forced = dataclasses.replace(BASE, attention_impl="cudnn")
    assert layers.fused_attention_implementation(forced, jnp.bfloat16, deterministic=True, decode=False) == "cudnn"
    assert layers.fused_attention_implementation(BASE, jnp.bfloat16, deterministic=True, decode=False) is None


@pytest.mark.parametrize("tied", [False, True], ids=["t5_1_1", "t5_1_0_tied"])
def test_float32_logits_are_closer_to_a_float32_model(tied):
    f32 = dataclasses.replace(BASE, tie_embeddings=tied, mlp="relu" if tied else BASE.mlp)
    params = meta.unbox(jax.jit(lambda k: T5(f32).init(k, ENC, DEC)["params"])(jax.random.key(1)))

    def logits(**kw):
        return jax.jit(lambda p: T5(dataclasses.replace(f32, **kw)).apply({"params": p}, ENC, DEC))(params)

    ref = logits()
    plain, better = logits(dtype="bfloat16"), logits(dtype="bfloat16", float32_logits=True)
    assert float(jnp.abs(better - ref).max()) < float(jnp.abs(plain - ref).max())
    np.testing.assert_array_equal(logits(float32_logits=True), ref)  # a no-op in float32


@pytest.mark.parametrize(
    "field, value",
    [("remat_policy", "some"), ("attention_impl", "flash"), ("scan_layers", 1), ("float32_logits", "yes")],
)
def test_config_rejects_unknown_options(field, value):
    with pytest.raises(ValueError, match=f"T5Config.{field}"):
        dataclasses.replace(BASE, **{field: value})


@pytest.mark.parametrize("z_loss, smoothing", [(0.0, 0.0), (1e-4, 0.0), (0.0, 0.1), (1e-3, 0.2)])
def test_integer_label_cross_entropy_matches_one_hot(z_loss, smoothing):
    rng = numpy_rng(3, 0)
    logits = jnp.asarray(rng.normal(size=(3, 5, 40)).astype(np.float32) * 3)
    batch = {
        "decoder_target_tokens": jnp.asarray(rng.integers(0, 40, (3, 5)), jnp.int32),
        "decoder_loss_weights": jnp.asarray(rng.random((3, 5)) > 0.3, jnp.float32),
    }
    ce_a, z_a = token_losses(logits, batch["decoder_target_tokens"], z_loss, smoothing, "one_hot")
    ce_b, z_b = token_losses(logits, batch["decoder_target_tokens"], z_loss, smoothing, "integer_labels")
    np.testing.assert_allclose(ce_b, ce_a, rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(z_b, z_a)  # the same logsumexp in both

    def grad(impl):
        return jax.grad(lambda x: loss_and_metrics(x, batch, z_loss, smoothing, impl)[0])(logits)

    np.testing.assert_allclose(grad("integer_labels"), grad("one_hot"), rtol=1e-5, atol=1e-8)


def test_cross_entropy_is_a_gin_choice():
    try:
        parse_gin([], ["Loss.cross_entropy = 'integer_labels'"])
        assert cross_entropy_impl() == "integer_labels"
        parse_gin([], ["Loss.cross_entropy = 'dense'"])
        with pytest.raises(ConfigError, match="Loss.cross_entropy"):
            cross_entropy_impl()
    finally:
        import gin

        gin.clear_config()
    assert cross_entropy_impl() == "one_hot"


def test_constrain_is_a_no_op_outside_the_partitioners_context():
    x = jnp.ones((2, 3, 4))
    assert constrain(x, BATCH_LENGTH_EMBED) is x
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]).reshape(1, 1), ("data", "model"))

    def f(y):
        with activation_sharding(mesh, (("batch", "data"),)):
            return constrain(y, BATCH_LENGTH_EMBED)

    assert "sharding_constraint" in str(jax.make_jaxpr(f)(x))
    assert "sharding_constraint" not in str(jax.make_jaxpr(lambda y: constrain(y, BATCH_LENGTH_EMBED))(x))
