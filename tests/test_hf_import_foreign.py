"""Fine-tuning a downloaded T5 (issue 22 §2, Import): a transformers checkpoint with a SentencePiece model of its
own, which is not the harness's vocabulary. Built here as a public T5 is laid out: `save_pretrained` of
transformers' T5ForConditionalGeneration (T5.1.1-style, which transformers 5 saves with the head in
`shared.weight`), T5's special ids (pad 0, eos 1, unk 2) and 100 sentinels, its embedding padded to a multiple of
128 rows, spiece.model beside it; the SentencePiece model is trained on Wikipedia intros, not the run's corpus.

A run with `vocabulary.sp_model_file = 'DIR/spiece.model'` and `Pretrain.init_from_hf = 'DIR'` tokenises with
that model, starts from those weights (its logits are transformers' within 1e-4) and fine-tunes; without the
binding, or with other sentinels or another embedding size, it is refused with the binding to change."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest
import sentencepiece as spm
from test_export_hf import TOLERANCE, hf_logits, our_logits
from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration, T5Tokenizer

from t5explore.data.vocab import VocabError, load_sp_model_file
from t5explore.model.config import T5Config as OurConfig
from t5explore.model.config import padded_vocab_size
from t5explore.model.encoder_decoder import EncoderDecoder
from t5explore.model.hf_import import hf_params
from t5explore.model.hf_t5 import HfExportError

PIECES, SENTINELS = 500, 100
ROWS = padded_vocab_size(PIECES + SENTINELS)  # 640: T5's padding (32,100 ids -> 32,128 rows)
TINY = dict(d_model=64, num_heads=4, head_dim=16, d_ff=128, num_encoder_layers=2, num_decoder_layers=2)  # tiny.gin


def wiki_lines(shared_data: Path, n: int) -> list[str]:
    lines = []
    for f in sorted((shared_data / "pretrain" / "wiki_intros").glob("*.jsonl")):
        for row in f.read_text(encoding="utf-8").splitlines():
            lines += [s.strip() for s in json.loads(row)["text"].split("\n") if s.strip()]
            if len(lines) >= n:
                return lines[:n]
    return lines


@pytest.fixture(scope="module")
def foreign(tmp_path_factory, shared_data) -> Path:
    """A T5.1.1-style checkpoint folder as transformers writes one, with its own spiece.model."""
    out = tmp_path_factory.mktemp("foreign_t5")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(wiki_lines(shared_data, 4000)),
        model_prefix=str(out / "spiece"),
        vocab_size=PIECES,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    (out / "spiece.vocab").unlink()
    tokenizer = T5Tokenizer.from_pretrained(str(out), extra_ids=SENTINELS)  # converts spiece.model
    assert tokenizer.convert_tokens_to_ids("<extra_id_0>") == PIECES + SENTINELS - 1
    cfg = T5Config(
        vocab_size=ROWS, d_model=64, d_kv=16, num_heads=4, d_ff=128, num_layers=2, num_decoder_layers=2,
        feed_forward_proj="gated-gelu", tie_word_embeddings=False, dropout_rate=0.0, decoder_start_token_id=0,
    )  # fmt: skip
    T5ForConditionalGeneration(cfg).save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


def our_model(**overrides) -> EncoderDecoder:
    cfg = OurConfig(vocab_size=ROWS, mlp="gated-gelu", tie_embeddings=False, name="tiny", **TINY)
    return EncoderDecoder(OurConfig(**{**cfg.__dict__, **overrides}))


def test_its_spiece_model_loads_as_a_foreign_vocabulary(foreign, shared_data, tmp_path):
    vocab = load_sp_model_file(foreign / "spiece.model")
    assert vocab.vocab_size == PIECES + SENTINELS and vocab.foreign
    assert vocab.token_space().mode_token_ids == ()  # no UL2 mode tokens: an objective needing one says so
    with pytest.raises(VocabError, match=r"vocabulary.sp_model_file = '.*nowhere.model': no such file"):
        load_sp_model_file(tmp_path / "nowhere.model")
    (tmp_path / "junk.model").write_bytes(b"not a model")
    with pytest.raises(VocabError, match="vocabulary.sp_model_file = .*junk.model'"):
        load_sp_model_file(tmp_path / "junk.model")
    lines = wiki_lines(shared_data, 500)
    spm.SentencePieceTrainer.train(  # sentencepiece's own ids: unk 0, bos 1, eos 2
        sentence_iterator=iter(lines), model_prefix=str(tmp_path / "other"), vocab_size=300, minloglevel=2
    )
    with pytest.raises(VocabError, match=r"special ids are not T5's \(pad 0, eos 1, unk 2"):
        load_sp_model_file(tmp_path / "other.model")


def test_a_run_without_its_vocabulary_or_with_other_ids_is_refused(foreign, shared_data, tmp_path):
    model = our_model()
    like = model.init_values(jax.random.key(0), 1)
    spm.SentencePieceTrainer.train(  # T5's ids too, but other pieces: a run's own vocabulary
        sentence_iterator=iter(wiki_lines(shared_data, 800)[400:]), model_prefix=str(tmp_path / "own"),
        vocab_size=PIECES, pad_id=0, eos_id=1, unk_id=2, bos_id=-1, minloglevel=2,
    )  # fmt: skip
    with pytest.raises(HfExportError, match=r"not the run's vocabulary.*--gin.vocabulary.sp_model_file=\"'.*spiece"):
        hf_params(foreign, model, like, load_sp_model_file(tmp_path / "own.model"))
    more = load_sp_model_file(foreign / "spiece.model", num_sentinels=200)
    with pytest.raises(HfExportError, match="its tokenizer has 100 sentinels.*vocabulary.num_sentinels = 100"):
        hf_params(foreign, model, like, more)
    vocab = load_sp_model_file(foreign / "spiece.model")
    for rows, message in (
        (512, "512 rows .* fewer than the run's 600 token ids"),
        (768, "768 rows, the run's model 640"),
    ):
        copy = tmp_path / f"rows{rows}"
        shutil.copytree(foreign, copy)
        config = json.loads((copy / "config.json").read_text())
        (copy / "config.json").write_text(json.dumps({**config, "vocab_size": rows}))
        with pytest.raises(HfExportError, match=message):
            hf_params(copy, model, like, vocab)
    (tmp_path / "rows512" / "spiece.model").unlink()
    with pytest.raises(HfExportError, match="spiece.model is missing"):
        hf_params(tmp_path / "rows512", model, like, vocab)


def test_its_weights_load_with_the_head_transformers_5_saved_in_the_embedding(foreign):
    """transformers 5 writes tie_word_embeddings: true, scale_decoder_outputs: false and no lm_head.weight for
    a T5.1.1 model: it imports untied, its head starting as the embedding, and gives transformers' logits."""
    config = json.loads((foreign / "config.json").read_text())
    assert config["tie_word_embeddings"] is True and config["scale_decoder_outputs"] is False
    model = our_model()
    params = hf_params(
        foreign, model, model.init_values(jax.random.key(0), 1), load_sp_model_file(foreign / "spiece.model")
    )
    rng = np.random.default_rng(0)
    enc, dec = rng.integers(3, PIECES + SENTINELS, (2, 12)), rng.integers(3, PIECES + SENTINELS, (2, 6))
    enc[:, -1], dec[:, 0] = 1, 0
    diff = float(np.abs(our_logits(model, params, enc, dec) - hf_logits(foreign, enc, dec)).max())
    assert diff < TOLERANCE
    tied = our_model(tie_embeddings=True)  # the other reading (T5 1.0: scaled, tied) would not match
    with pytest.raises(HfExportError, match="T5Config.tie_embeddings = True \\(checkpoint: False\\)"):
        hf_params(foreign, tied, tied.init_values(jax.random.key(0), 1))


@pytest.mark.slow  # a tiny run: 2 pre-training steps at a vanishing learning rate, then fine-tuning
@pytest.mark.usefixtures("clean_gin")
def test_a_run_starts_from_it_with_its_tokenizer_and_fine_tunes(foreign, cache_dir, shared_data, tmp_path):
    from t5explore.export.run_dir import load_run_model
    from t5explore.train.run import execute

    files = ["gin/runs/tiny_scale.gin", "gin/objectives/span_corruption.gin"]
    bindings = [
        f"Experiment.cache_dir = '{cache_dir}'",
        f"vocabulary.sp_model_file = '{foreign / 'spiece.model'}'",
        f"Pretrain.init_from_hf = '{foreign}'",
        "Pretrain.steps = 2",
        "Pretrain.checkpoint_every = 2",
        "Pretrain.eval_every = 2",
        "Optimizer.learning_rate = 1e-30",  # the pre-training checkpoint holds the imported weights
        "Finetune.tasks = ['stdlib_module']",
    ]
    result = execute(tmp_path / "run", files, bindings)
    run = load_run_model(tmp_path / "run", "last")
    assert run.vocab.sp_path == foreign / "spiece.model" and run.cfg.vocab_size == ROWS

    texts = wiki_lines(shared_data, 4100)[4000:4006]  # real text the tokenizer was not trained on
    tokenizer = AutoTokenizer.from_pretrained(str(foreign))
    assert [[*run.vocab.encode(t), 1] for t in texts] == tokenizer(texts)["input_ids"]
    enc = tokenizer(texts, padding=True, return_tensors="np")["input_ids"]
    dec = np.concatenate([np.zeros((len(texts), 1), np.int64), enc[:, :7]], axis=1)
    diff = float(np.abs(our_logits(EncoderDecoder(run.cfg), run.params, enc, dec) - hf_logits(foreign, enc, dec)).max())
    print(f"foreign T5 checkpoint: max |logits difference| = {diff:.3g}")
    assert diff < TOLERANCE

    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if r.get("phase") == "finetune/stdlib_module"]
    assert losses and all(math.isfinite(v) for v in losses)
    assert "accuracy" in result["downstream"]["stdlib_module"]["best"]
