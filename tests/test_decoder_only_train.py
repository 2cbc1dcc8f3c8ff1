"""The decoder-only LM trained by the encoder-decoder's loops: the pretraining loop on {inputs, targets}
batches (loss goes down), and one tiny end-to-end `execute` (pre-training with span corruption, fine-tuning,
greedy decoding, scores in result.json) selected by gin alone."""

from __future__ import annotations

import json

import gin
import numpy as np
import pytest

from t5explore.model.config import T5Config
from t5explore.model.decoder_only import DecoderOnly
from t5explore.run_config import Optimizer, Pretrain
from t5explore.seeds import numpy_rng
from t5explore.train.partitioning import Partitioner
from t5explore.train.pretrain import pretrain
from t5explore.train.run import execute
from t5explore.train.trainer import Trainer, init_params
from t5explore.train.writers import MetricsWriter, read_metrics

VOCAB = 128


class CopyStream:
    """Batch k (a pure function of k): inputs are runs of consecutive ids, targets the same run continued."""

    def __init__(self, batch_size=8, length=8):
        self.batch_size, self.length, self.k = batch_size, length, 0

    def __iter__(self):
        return self

    def __next__(self):
        start = numpy_rng(0, 99, self.k).integers(3, VOCAB, size=(self.batch_size, 1))
        self.k += 1
        run = (3 + (start + np.arange(2 * self.length)) % (VOCAB - 3)).astype(np.int32)
        inputs, targets = run[:, : self.length].copy(), run[:, self.length :].copy()
        inputs[:, -1] = targets[:, -1] = 1
        return {"inputs": inputs, "targets": targets}

    def state(self):
        return {"next_batch": self.k}

    def restore(self, state):
        self.k = int(state["next_batch"])


@pytest.mark.parametrize("attention", ["causal", "prefix"])
def test_pretraining_loop_lowers_the_decoder_only_loss(tmp_path, attention):
    cfg = T5Config(vocab_size=VOCAB, d_model=32, num_heads=4, head_dim=8, d_ff=64, num_decoder_layers=2)
    model, part = DecoderOnly(cfg, attention), Partitioner()
    params, shardings = init_params(model, part, seed=0)
    trainer = Trainer(
        model,
        part,
        params,
        shardings,
        Optimizer(name="adamw", schedule="constant", learning_rate=1e-2, warmup_steps=0),
        12,
        0,
    )
    pre = Pretrain(objective=object(), steps=12, batch_size=8, inputs_length=8, log_every=1, checkpoint_every=12)
    out = pretrain(
        trainer,
        pre,
        CopyStream(),
        [next(CopyStream())],
        MetricsWriter(tmp_path, tensorboard=False),
        tmp_path / "checkpoints",
    )
    losses = [r["loss"] for r in read_metrics(tmp_path / "metrics.jsonl") if r["phase"] == "pretrain"]
    assert len(losses) == 12 and np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses
    assert out.eval_loss is not None and out.eval_loss < losses[0]


def test_tiny_decoder_only_run_end_to_end(tmp_path, cache_dir):
    run_dir = tmp_path / "decoder_only"
    try:
        result = execute(
            run_dir,
            ["gin/runs/tiny_cpu.gin", "gin/models/decoder_only_tiny.gin"],
            [f"Experiment.cache_dir = '{cache_dir}'"],
        )
    finally:
        gin.clear_config()
    assert json.loads((run_dir / "result.json").read_text()) == json.loads(json.dumps(result))
    assert result["model"]["name"] == "tiny_decoder_only"
    assert "Model.name = 'decoder_only'" in (run_dir / "config.gin").read_text()
    assert result["objective"] == "span_corruption" and result["pretrain"]["steps"] == 6
    assert result["pretrain"]["final_loss"] > 0 and result["pretrain"]["eval_loss"] > 0
    task = result["downstream"]["stdlib_module"]
    assert 0 <= task["best"]["accuracy"] <= 100 and task["best_step"] in (2, 4)
    assert result["bootstrap"]["best"]["examples"]["stdlib_module"]["n"] == 16
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert {r["step"] for r in rows if r["phase"] == "pretrain"} == {2, 4, 6}
    assert {r["step"] for r in rows if r["phase"] == "finetune_eval/stdlib_module"} == {2, 4}
    preds = [json.loads(line) for line in (run_dir / "predictions" / "stdlib_module.jsonl").read_text().splitlines()]
    assert len(preds) == 16 and all(isinstance(p["prediction"], str) for p in preds)
