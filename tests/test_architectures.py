"""T5 Table 2's architectures: the shared and half-depth encoder-decoders train, decode and count their
parameters and FLOPs as the paper defines them (P, M), and result.json names every architecture."""

from __future__ import annotations

import dataclasses
import json

import gin
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax.core import meta

from t5explore.config import ConfigError
from t5explore.model import flops
from t5explore.model.decoder_only import DecoderOnly
from t5explore.model.encoder_decoder import EncoderDecoder, HalfDepthEncoderDecoder
from t5explore.model.interface import LOSS_WEIGHTS, TARGET_TOKENS
from t5explore.model.registry import result_fields
from t5explore.model.shared_encoder_decoder import SharedEncoderDecoder, drop_shared, full_params
from t5explore.run_config import Pretrain
from t5explore.seeds import numpy_rng

from tiny_models import tiny_t5_config

CFG = tiny_t5_config("arch_tiny", num_encoder_layers=4, num_decoder_layers=4)
VOCAB = CFG.vocab_size


def leaves(params) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(meta.unbox(params)))


def batch(seed: int, model, rows: int = 8, length: int = 6) -> dict:
    """A copy task: targets = inputs (a learnable mapping), both ending in EOS."""
    tokens = numpy_rng(seed, 0).integers(3, VOCAB, (rows, length)).astype(np.int32)
    tokens[:, -1] = 1
    return model.features(tokens, tokens.copy())


def loss_fn(model, params, b):
    logits = model.apply(params, b)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, b[TARGET_TOKENS])
    return (ce * b[LOSS_WEIGHTS]).sum() / b[LOSS_WEIGHTS].sum()


@pytest.mark.parametrize("cls", [SharedEncoderDecoder, HalfDepthEncoderDecoder])
def test_num_params_is_exactly_what_init_creates(cls):
    for cfg in (CFG, dataclasses.replace(CFG, mlp="relu", tie_embeddings=True)):
        model = cls(cfg)
        shapes = jax.eval_shape(lambda key, m=model: m.init(key, 1), jax.random.PRNGKey(0))
        assert leaves(shapes["params"]) == model.num_params()


def test_shared_parameters_are_about_half_and_exactly_the_encoder_decoder_less_the_decoders_copy():
    """The paper: enc-dec = 2P, shared = P (it ignores the decoder-only cross-attention). Exactly: the shared
    model is the encoder-decoder without the decoder's self-attention, MLP and norms of each layer."""
    full, shared, half = EncoderDecoder(CFG), SharedEncoderDecoder(CFG), HalfDepthEncoderDecoder(CFG)
    layer = flops.attention_params(CFG) + flops.mlp_params(CFG) + 2 * CFG.d_model
    assert full.num_params() - shared.num_params() == CFG.num_decoder_layers * layer + CFG.d_model
    non_embedding = {m.name: m.num_params() - m.embedding_params() for m in (full, shared, half)}
    assert 0.45 < non_embedding["encoder_decoder_shared"] / non_embedding["encoder_decoder"] < 0.6
    assert non_embedding["encoder_decoder_half"] * 2 == pytest.approx(non_embedding["encoder_decoder"], rel=0.02)
    lm = DecoderOnly(CFG, "causal")  # Table 2's P: one stack of L layers
    assert non_embedding["encoder_decoder_shared"] / (lm.num_params() - lm.embedding_params()) < 1.45


def test_flops_follow_the_papers_budgets():
    """M for the encoder-decoder, the shared one and the L-layer (decoder-only) LMs; M/2 for half the layers."""
    full, shared, half = EncoderDecoder(CFG), SharedEncoderDecoder(CFG), HalfDepthEncoderDecoder(CFG)
    lengths = (64, 64)
    m = full.train_flops_per_example(*lengths)
    assert shared.train_flops_per_example(*lengths) == m  # the same computation, fewer distinct weights
    head = 3 * lengths[1] * 2 * CFG.d_model * CFG.vocab_size  # the output layer is not halved
    assert half.train_flops_per_example(*lengths) - head == pytest.approx((m - head) / 2)
    for attention in ("causal", "prefix"):
        lm = DecoderOnly(CFG, attention).train_flops_per_example(*lengths)
        assert 0.8 < lm / m < 1.2  # M up to the cross-attention and the longer self-attention


@pytest.mark.slow  # compiles the shared-stack model and a training step (~10 s)
def test_shared_model_runs_one_stack_as_encoder_and_decoder():
    model = SharedEncoderDecoder(CFG)
    params = meta.unbox(jax.jit(model.init, static_argnums=1)(jax.random.PRNGKey(1), 1)["params"])
    layer0 = params["decoder"]["layer_0"]
    assert set(layer0) == {"encoder_decoder_attention", "pre_cross_attention_norm"}
    assert "final_norm" not in params["decoder"] and "relpos_bias" in params["decoder"]
    b = batch(0, model, rows=2)
    expanded = full_params(params)
    assert expanded["decoder"]["layer_2"]["mlp"] is params["encoder"]["layer_2"]["mlp"]
    np.testing.assert_array_equal(jax.jit(model.apply)(params, b), jax.jit(EncoderDecoder(CFG).apply)(expanded, b))
    assert drop_shared(expanded).keys() == params.keys()
    # A shared weight's gradient is the sum of its encoder and decoder uses.
    grad = jax.jit(jax.grad(lambda p: loss_fn(model, p, b)))(params)
    grad_full = jax.jit(jax.grad(lambda p: loss_fn(EncoderDecoder(CFG), p, b)))(expanded)
    w = ("layer_1", "mlp")
    want = jax.tree.map(jnp.add, grad_full["encoder"][w[0]][w[1]], grad_full["decoder"][w[0]][w[1]])
    jax.tree.map(lambda a, c: np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-7), grad["encoder"][w[0]][w[1]], want)


@pytest.mark.slow
def test_scanned_shared_model_is_the_unscanned_one():
    scanned = SharedEncoderDecoder(dataclasses.replace(CFG, scan_layers=True))
    params = scanned.init_values(jax.random.PRNGKey(2), 1)
    assert set(params["decoder"]["layers"]) == {"encoder_decoder_attention", "pre_cross_attention_norm"}
    plain = scanned.unscanned()
    plain_params = plain.init_values(jax.random.PRNGKey(2), 1)
    b = batch(1, scanned, rows=2)
    np.testing.assert_allclose(scanned.apply(params, b), plain.apply(plain_params, b), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("cls", [SharedEncoderDecoder, HalfDepthEncoderDecoder])
def test_variants_learn_a_copy_task_and_decode_it(cls):
    model = cls(dataclasses.replace(CFG, num_encoder_layers=2, num_decoder_layers=2))
    params = meta.unbox(jax.jit(model.init, static_argnums=1)(jax.random.PRNGKey(3), 1)["params"])
    opt = optax.adam(1e-2)
    state = opt.init(params)

    @jax.jit
    def step(params, state, b):
        loss, grad = jax.value_and_grad(lambda p: loss_fn(model, p, b))(params)
        updates, state = opt.update(grad, state)
        return optax.apply_updates(params, updates), state, loss

    losses = []
    for k in range(80):
        params, state, loss = step(params, state, batch(k % 4, model))
        losses.append(float(loss))
    assert np.mean(losses[-5:]) < 0.3 * np.mean(losses[:5]), losses[::10]
    b = batch(0, model)
    decoded = np.asarray(model.greedy_decode(params, b["encoder_input_tokens"], 6))
    teacher = np.asarray(jnp.argmax(model.apply(params, b), -1))  # the same model, teacher-forced
    first = decoded[:, 0] == teacher[:, 0]
    assert first.all()  # the first token has the same context either way
    assert (decoded == b[TARGET_TOKENS]).mean() > 0.8  # and it learned to copy


def test_bad_layer_counts_are_config_errors_naming_the_field():
    with pytest.raises(ConfigError, match=r"encoder_decoder_half.*T5Config\.num_encoder_layers, which is 3"):
        HalfDepthEncoderDecoder(dataclasses.replace(CFG, num_encoder_layers=3))
    with pytest.raises(ConfigError, match=r"num_encoder_layers \(4\) must equal T5Config\.num_decoder_layers \(2\)"):
        SharedEncoderDecoder(dataclasses.replace(CFG, num_decoder_layers=2))


@pytest.mark.parametrize(
    "gin_file,architecture,expected_model",
    [
        (None, "encoder_decoder", EncoderDecoder),
        ("gin/models/encoder_decoder_shared.gin", "encoder_decoder_shared", SharedEncoderDecoder),
        ("gin/models/encoder_decoder_half.gin", "encoder_decoder_half", HalfDepthEncoderDecoder),
        ("gin/models/decoder_only_lm.gin", "decoder_only_lm", lambda cfg: DecoderOnly(cfg, "causal")),
        ("gin/models/decoder_only_prefix_lm.gin", "decoder_only_prefix_lm", lambda cfg: DecoderOnly(cfg, "prefix")),
    ],
)
def test_result_fields_name_the_architecture_and_its_flops(gin_file, architecture, expected_model):
    from t5explore.config import parse_gin
    from t5explore.objectives.named import span_corruption

    try:
        parse_gin([gin_file] if gin_file else [], [])
        pre = Pretrain(objective=span_corruption(), steps=10, batch_size=8, inputs_length=64)
        fields = result_fields(CFG, pre)
        plan = pre.objective.plan(64)
        model = expected_model(CFG)
        assert fields == {
            "architecture": architecture,
            "embedding_params": flops.embedding_params(CFG),
            "train_flops_per_example": model.flops_per_token(plan.inputs_length, plan.targets_length) * 64,
        }
        assert result_fields(CFG, Pretrain(objective=None, steps=0))["train_flops_per_example"] is None
    finally:
        gin.clear_config()


@pytest.mark.slow
def test_tiny_shared_run_end_to_end_records_its_architecture(tmp_path, cache_dir):
    run_dir = tmp_path / "shared"
    from t5explore.train.run import execute

    try:
        result = execute(
            run_dir,
            ["gin/runs/tiny_cpu.gin", "gin/models/encoder_decoder_shared.gin"],
            [f"Experiment.cache_dir = '{cache_dir}'"],
        )
    finally:
        gin.clear_config()
    assert json.loads((run_dir / "result.json").read_text()) == json.loads(json.dumps(result))
    model = result["model"]
    assert model["architecture"] == "encoder_decoder_shared" and model["train_flops_per_example"] > 0
    tiny = dataclasses.replace(  # gin/models/tiny.gin's sizes; its untied head and embedding give the vocabulary
        CFG, d_model=64, num_heads=4, head_dim=16, d_ff=128, num_encoder_layers=2, num_decoder_layers=2
    )
    tiny = dataclasses.replace(tiny, vocab_size=model["embedding_params"] // (2 * 64))
    assert model["num_params"] == SharedEncoderDecoder(tiny).num_params() < EncoderDecoder(tiny).num_params()
    assert result["pretrain"]["final_loss"] > 0 and result["downstream"]


def test_table2_sweep_rows_meet_the_papers_budgets():
    """experiments/t5_table2_architectures.gin's rows: their architecture and objective, and the P / M budgets
    its comment states (parameters without embeddings, FLOPs of one example at the planned widths)."""
    from t5explore.config import parse_gin
    from t5explore.model.config import T5Config, padded_vocab_size
    from t5explore.model.registry import build_model
    from t5explore.sweep.grid import load_sweep

    budget = {}
    try:
        for run in load_sweep("experiments/t5_table2_architectures.gin").runs:
            if run.seed != 0:
                continue
            parse_gin(run.gin_files, run.bindings)
            cfg = dataclasses.replace(T5Config(), vocab_size=padded_vocab_size(2100))
            pre = Pretrain()
            fields = result_fields(cfg, pre)
            model = build_model(cfg)
            budget[run.variant] = (
                fields["architecture"],
                pre.objective.name,
                model.num_params() - fields["embedding_params"],
                fields["train_flops_per_example"],
            )
    finally:
        gin.clear_config()
    p = budget["Language model / Denoising"][2]
    m = budget["Encoder-decoder / Denoising"][3]
    want = {  # row: (architecture, objective, parameters in P, FLOPs in M at 64 inputs)
        "Encoder-decoder / Denoising": ("encoder_decoder", "iid_replace_spans", 2.31, 1.0),
        "Enc-dec, shared / Denoising": ("encoder_decoder_shared", "iid_replace_spans", 1.31, 1.0),
        "Enc-dec, 6 layers / Denoising": ("encoder_decoder_half", "iid_replace_spans", 1.15, 0.54),
        "Language model / Denoising": ("decoder_only_lm", "iid_replace_spans", 1.0, 1.07),
        "Prefix LM / Denoising": ("decoder_only_prefix_lm", "iid_replace_spans", 1.0, 1.07),
        "Encoder-decoder / LM": ("encoder_decoder", "prefix_lm", 2.31, 1.39),
        "Enc-dec, shared / LM": ("encoder_decoder_shared", "prefix_lm", 1.31, 1.39),
        "Enc-dec, 6 layers / LM": ("encoder_decoder_half", "prefix_lm", 1.15, 0.78),
        "Language model / LM": ("decoder_only_lm", "lm", 1.0, 0.69),
        "Prefix LM / LM": ("decoder_only_prefix_lm", "prefix_lm", 1.0, 1.44),
    }
    assert list(budget) == list(want)
    for row, (arch, objective, params, cost) in want.items():
        got = budget[row]
        assert got[:2] == (arch, objective), row
        assert got[2] / p == pytest.approx(params, abs=0.01) and got[3] / m == pytest.approx(cost, abs=0.01), row
