"""Hugging Face export and import against the real transformers + torch (the hf extra, installed by make test):
the same logits (fp32, within 1e-4) for T5.1.1- and T5 1.0-style models, the same greedy outputs after
fine-tuning, the same tokenisation of real text, a round trip through `Pretrain.init_from_hf`'s loader, and one
clear error for a decoder-only run."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from flax import linen as nn
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from t5explore.export.hf_tokenizer import write_hf_tokenizer
from t5explore.model.config import T5Config, padded_vocab_size
from t5explore.model.encoder_decoder import EncoderDecoder
from t5explore.model.hf_import import hf_params
from t5explore.model.hf_t5 import HfExportError, write_hf_model
from t5explore.model.interface import LOSS_WEIGHTS, TARGET_TOKENS
from t5explore.model.scan import stack_layers

TOLERANCE = 1e-4  # the bar for fp32 logits; the measured difference is ~1e-6
CONFIGS = {
    "t5.1.1": dict(mlp="gated-gelu", tie_embeddings=False),
    "t5.1.0": dict(mlp="relu", tie_embeddings=True),
}


def tiny(vocab_size: int, decoder_layers: int = 3, **overrides) -> EncoderDecoder:
    """2 encoder layers and (by default) 3 decoder layers, so a mix-up of the two stacks' depths shows."""
    cfg = T5Config(
        vocab_size=padded_vocab_size(vocab_size), d_model=64, num_heads=4, head_dim=16, d_ff=96,
        num_encoder_layers=2, num_decoder_layers=decoder_layers, name="tiny", **overrides,
    )  # fmt: skip
    return EncoderDecoder(cfg)


def random_params(model: EncoderDecoder, seed: int = 0) -> dict:
    """Initialised params with every norm scale and bias table randomised too (init leaves norms at 1)."""
    params = nn.meta.unbox(model.init(jax.random.key(seed), 1)["params"])
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    noisy = [x * (1 + 0.5 * jax.random.normal(k, x.shape)) for x, k in zip(leaves, keys)]
    return jax.tree.map(np.asarray, jax.tree.unflatten(tree, noisy))


def hf_logits(hf_dir, enc: np.ndarray, dec: np.ndarray) -> np.ndarray:
    model = AutoModelForSeq2SeqLM.from_pretrained(hf_dir).eval()
    with torch.no_grad():
        out = model(
            input_ids=torch.tensor(enc, dtype=torch.long),
            attention_mask=torch.tensor(enc != 0, dtype=torch.long),
            decoder_input_ids=torch.tensor(dec, dtype=torch.long),
        )
    return out.logits.float().numpy()


def our_logits(model: EncoderDecoder, params, enc: np.ndarray, dec: np.ndarray) -> np.ndarray:
    return np.asarray(model.module.apply({"params": params}, jnp.asarray(enc), jnp.asarray(dec)))


def token_batch(vocab_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Encoder rows of different lengths (right-padded, ending in EOS) and decoder rows starting with 0."""
    rng = np.random.default_rng(seed)
    enc = rng.integers(3, vocab_size, (3, 24))
    for row, length in enumerate((24, 15, 7)):
        enc[row, length - 1] = 1
        enc[row, length:] = 0
    dec = rng.integers(3, vocab_size, (3, 11))
    dec[:, 0] = 0
    return enc, dec


@pytest.mark.slow  # the first case imports torch and transformers (~15 s)
@pytest.mark.parametrize("version", sorted(CONFIGS))
def test_same_logits_in_transformers(version, tmp_path):
    model = tiny(500, **CONFIGS[version])
    params = random_params(model)
    write_hf_model(params, model.cfg, tmp_path)
    hf_config = json.loads((tmp_path / "config.json").read_text())
    assert hf_config["tie_word_embeddings"] is CONFIGS[version]["tie_embeddings"]
    enc, dec = token_batch(500)
    ours, theirs = our_logits(model, params, enc, dec), hf_logits(tmp_path, enc, dec)
    assert ours.shape == theirs.shape == (3, 11, model.cfg.vocab_size)
    diff = float(np.abs(ours - theirs).max())
    print(f"{version}: max |logits difference| = {diff:.3g}")
    assert diff < TOLERANCE
    assert np.abs(ours).max() > 1.0  # not a comparison of near-zero numbers


def test_round_trip_import_gives_the_same_params_and_logits(tmp_path):
    """Export, then load into a freshly initialised (scanned) model as Pretrain.init_from_hf does."""
    model = tiny(500)
    params = random_params(model, seed=3)
    write_hf_model(params, model.cfg, tmp_path)
    scanned = EncoderDecoder(dataclasses.replace(model.cfg, scan_layers=True))
    fresh = scanned.init_values(jax.random.key(9), 1)
    loaded = hf_params(tmp_path, scanned, fresh)
    jax.tree.map(np.testing.assert_array_equal, loaded, jax.tree.map(np.asarray, stack_layers(params, model.cfg)))
    enc, dec = token_batch(500, seed=1)
    batch = {"encoder_input_tokens": enc, "decoder_input_tokens": dec}
    ours = our_logits(model, params, enc, dec)  # scanning reorders float sums: equal to rounding
    np.testing.assert_allclose(np.asarray(scanned.apply(loaded, batch)), ours, atol=1e-5)


def test_import_refuses_a_checkpoint_of_another_shape(tmp_path):
    model = tiny(500)
    write_hf_model(random_params(model), model.cfg, tmp_path)
    other = EncoderDecoder(dataclasses.replace(model.cfg, d_ff=128, num_decoder_layers=2))
    with pytest.raises(HfExportError, match=r"T5Config.d_ff = 128 \(checkpoint: 96\).*num_decoder_layers = 2"):
        hf_params(tmp_path, other, other.init_values(jax.random.key(0), 1))


def finetune(model: EncoderDecoder, params, batch: dict, steps: int = 60) -> dict:
    """A few Adam steps on one batch of a real task, enough that greedy decoding says label words."""
    tx = optax.adam(3e-3)

    def loss(p):
        logits = model.apply(p, batch)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch[TARGET_TOKENS])
        return (ce * batch[LOSS_WEIGHTS]).sum() / batch[LOSS_WEIGHTS].sum()

    @jax.jit
    def step(p, opt):
        grads = jax.grad(loss)(p)
        updates, opt = tx.update(grads, opt, p)
        return optax.apply_updates(p, updates), opt

    opt = tx.init(params)
    for _ in range(steps):
        params, opt = step(params, opt)
    return jax.tree.map(np.asarray, params)


@pytest.mark.slow  # jit-compiles a training step and two decoders
def test_same_greedy_outputs_after_finetuning(builtin_vocab, tmp_path):
    from t5explore.data.tasks import get_task
    from t5explore.train.finetune_data import tokenize

    examples = get_task("stdlib_module").examples("train")[:32]
    inputs = tokenize([e.inputs for e in examples], builtin_vocab, 32, "inputs")
    targets = tokenize([e.targets for e in examples], builtin_vocab, 8, "targets")
    # Equal depths: transformers 5.25's generate() sizes its decoder cache by the encoder's depth.
    model = tiny(builtin_vocab.vocab_size, decoder_layers=2)
    params = finetune(model, random_params(model), model.features(inputs, targets))
    ours = np.asarray(model.greedy_decode(params, inputs, 8))
    write_hf_model(params, model.cfg, tmp_path)
    hf = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        generated = hf.generate(
            input_ids=torch.tensor(inputs, dtype=torch.long),
            attention_mask=torch.tensor(inputs != 0, dtype=torch.long),
            max_new_tokens=8,
            do_sample=False,
            num_beams=1,
        ).numpy()[:, 1:]  # drop the decoder start token
    theirs = np.zeros_like(ours)
    theirs[:, : generated.shape[1]] = generated
    np.testing.assert_array_equal(theirs, ours)
    decoded = [builtin_vocab.decode(row) for row in ours]
    assert len(set(decoded)) > 1 and sum(d in {e.targets for e in examples} for d in decoded) >= len(decoded) // 2


def test_same_tokenisation_of_real_text(builtin_vocab, shared_data, tmp_path):
    """CoLA and SQuAD text (accents, dashes and quotes included) through AutoTokenizer and our vocabulary."""
    write_hf_tokenizer(builtin_vocab, tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    lines = (shared_data / "glue" / "CoLA" / "train.tsv").read_text(encoding="utf-8").splitlines()[:200]
    texts = [line.split("\t")[3] for line in lines]
    squad = json.loads(next((shared_data / "squad").rglob("*.json")).read_text(encoding="utf-8"))
    texts += [p["context"] for article in squad["data"][:3] for p in article["paragraphs"][:5]]
    texts += ["naïve café — “quoted” 東京 [NLU] <extra_id_0> end"]
    assert any(ord(c) > 127 for t in texts for c in t)
    ours = [[*builtin_vocab.encode(t), 1] for t in texts]
    assert tokenizer(texts)["input_ids"] == ours
    assert tokenizer.convert_tokens_to_ids("<extra_id_0>") == builtin_vocab.vocab_size - 1
    assert [tokenizer.decode(ids, skip_special_tokens=True) for ids in ours[:200]] == texts[:200]


def test_a_decoder_only_run_cannot_be_exported(tmp_path, sweep_cli, monkeypatch):
    from t5explore import cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", ("t5explore.export.commands",))
    run = tmp_path / "run"
    (run / "checkpoints" / "3").mkdir(parents=True)
    (run / "config.gin").write_text("Model.name = 'decoder_only'\n")
    assert cli.main(["export", str(run), str(tmp_path / "out"), "--to=hf"]) == 2
    with pytest.raises(HfExportError, match="'decoder_only' cannot be exported to Hugging Face: it is a decoder-only"):
        from t5explore.export.run_dir import load_run_model

        load_run_model(run)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # two tiny runs (pre-training only) and an export
@pytest.mark.usefixtures("clean_gin")
def test_export_a_run_then_start_a_run_from_it(tmp_path, cache_dir):
    """`t5explore export RUN --to=hf --checkpoint=best`, then a run with Pretrain.init_from_hf = that folder: at
    learning rate 1e-30 (0 is refused; this is below every weight's float32 spacing) its checkpoints hold exactly
    the exported weights, which give transformers' logits."""
    from t5explore import cli
    from t5explore.export.run_dir import choose_step, load_run_model
    from t5explore.train.run import execute

    files = ["gin/runs/tiny_scale.gin", "gin/objectives/span_corruption.gin"]
    bindings = [f"Experiment.cache_dir = '{cache_dir}'", "Finetune.tasks = []", "Pretrain.steps = 4"]
    bindings += ["Pretrain.checkpoint_every = 2", "Pretrain.eval_every = 2"]
    execute(tmp_path / "run", files, bindings)
    best = choose_step(tmp_path / "run", "best")
    assert cli.main(["export", str(tmp_path / "run"), str(tmp_path / "hf"), "--to=hf", "--checkpoint=best"]) == 0
    assert json.loads((tmp_path / "hf" / "t5explore_export.json").read_text())["step"] == best
    exported = load_run_model(tmp_path / "run", "best")

    frozen = [*bindings, f"Pretrain.init_from_hf = '{tmp_path / 'hf'}'", "Optimizer.learning_rate = 1e-30"]
    execute(tmp_path / "imported", files, frozen)
    imported = load_run_model(tmp_path / "imported", "last")
    jax.tree.map(np.testing.assert_array_equal, imported.params, exported.params)

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "hf")
    enc = tokenizer(["The dog barked at the mailman.", "A short one."], padding=True, return_tensors="np")
    enc = enc["input_ids"]
    dec = np.concatenate([np.zeros((2, 1), np.int64), enc[:, :5]], axis=1)
    model = EncoderDecoder(exported.cfg)
    diff = float(np.abs(our_logits(model, exported.params, enc, dec) - hf_logits(tmp_path / "hf", enc, dec)).max())
    print(f"exported run, step {best}: max |logits difference| = {diff:.3g}")
    assert diff < TOLERANCE
