"""Pretraining throughput of the project's Trainer for one model gin file, against a baseline in the same run.

    python benchmarks/train_throughput.py --model gin/models/tiny.gin --batch 32 --inputs 64 --targets 16 --steps 20
    python benchmarks/train_throughput.py --model gin/models/small.gin --batch 4 --baseline gin/models/tiny.gin

Why a baseline in the same process: on a shared machine absolute figures drift by tens of percent from one
minute to the next, while the ratio of two measurements taken back to back is stable. The default baseline
is the same model in the other activation dtype (bf16 <-> float32); `--baseline PATH.gin` compares against
another model instead.

Batches are synthetic (uniform random ordinary ids from a seeded numpy Generator, EOS-terminated, no padding),
so no corpus, vocabulary or objective is needed and data loading costs nothing: this measures the jit step
(forward, backward, optimiser update) alone. Tokens are counted as T5 counts them, batch x inputs_length,
so MFU = flops_per_token(cfg) x tokens/s / peak (`t5explore.model.flops`, `t5explore.train.hardware`);
the peak is only known for GPUs (CPU: MFU n/a). Compilation is timed apart and excluded.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Optional

import gin
import jax
import numpy as np

from t5explore.config import ConfigError, parse_gin
from t5explore.data.features import EOS_ID, encdec_features
from t5explore.model.config import T5Config, padded_vocab_size
from t5explore.model.flops import flops_per_token
from t5explore.model.t5 import T5
from t5explore.seeds import STREAM_OBJECTIVE, numpy_rng
from t5explore.train.config import Optimizer
from t5explore.train.hardware import device_info, model_flops_utilization, peak_flops_per_device
from t5explore.train.partitioning import Partitioner
from t5explore.train.state import count_params
from t5explore.train.trainer import Trainer, init_params

OTHER_DTYPE = {"bfloat16": "float32", "float32": "bfloat16"}
FIRST_REGULAR_ID = 3  # 0 pad, 1 EOS, 2 UNK
NUM_SENTINELS = 100


@dataclasses.dataclass
class Measurement:
    label: str
    num_params: int
    compile_s: float
    step_s: float  # mean wall time of one step after compilation
    tokens_per_s: float  # batch x inputs_length per second (the paper's count)
    flops_per_s: float
    mfu: Optional[float]
    final_loss: float


def load_config(model_gin: str, optim_gin: str, vocab_size: int) -> tuple[T5Config, Optimizer]:
    """The model and optimiser exactly as the gin files bind them, vocabulary filled like a real run."""
    try:
        parse_gin([model_gin, optim_gin])
        cfg = dataclasses.replace(T5Config(), vocab_size=padded_vocab_size(vocab_size))
        optimizer = Optimizer()
    finally:
        gin.clear_config()
    optimizer.validate()
    return cfg, optimizer


def synthetic_batches(n: int, batch: int, inputs: int, targets: int, vocab_size: int,
                      seed: int) -> list[dict[str, np.ndarray]]:
    """n distinct feature batches of random ordinary ids (never pad/EOS/UNK/sentinels), each row ending in EOS."""
    high = vocab_size - NUM_SENTINELS
    if high <= FIRST_REGULAR_ID:
        raise ConfigError(f"--vocab {vocab_size} leaves no ordinary ids beside {NUM_SENTINELS} sentinels")
    out = []
    for k in range(n):
        rng = numpy_rng(seed, STREAM_OBJECTIVE, k)
        enc = rng.integers(FIRST_REGULAR_ID, high, (batch, inputs), dtype=np.int32)
        dec = rng.integers(FIRST_REGULAR_ID, high, (batch, targets), dtype=np.int32)
        enc[:, -1] = dec[:, -1] = EOS_ID
        out.append(encdec_features(enc, dec))
    return out


def measure(label: str, cfg: T5Config, optimizer: Optimizer, batches: list[dict], seed: int) -> Measurement:
    """Compile (timed apart), one untimed warm-up step, then len(batches) - 1 timed steps."""
    partitioner = Partitioner()
    partitioner.check_batch_size(len(batches[0]["encoder_input_tokens"]), "--batch")
    model = T5(cfg)
    params, shardings = init_params(model, partitioner, seed)
    n_params = count_params(params)
    trainer = Trainer(model, partitioner, params, shardings, optimizer, len(batches), seed)
    del params
    jax.block_until_ready(trainer.train_step(batches[0]))  # compile + first step (allocations, autotuning)
    t0 = time.perf_counter()
    for batch in batches[1:]:
        metrics = trainer.train_step(batch)
    final_loss = float(jax.device_get(metrics["loss"]))  # blocks on the last step, so the timing is real
    jax.block_until_ready(trainer.state)
    step_s = (time.perf_counter() - t0) / (len(batches) - 1)
    batch_size, inputs = batches[0]["encoder_input_tokens"].shape
    targets = batches[0]["decoder_target_tokens"].shape[1]
    tokens_per_s = batch_size * inputs / step_s
    flops_per_s = flops_per_token(cfg, inputs, targets) * tokens_per_s
    return Measurement(label, n_params, trainer.train_compile_s, step_s, tokens_per_s, flops_per_s,
                       model_flops_utilization(flops_per_s), final_loss)


def describe(cfg: T5Config) -> str:
    return f"{cfg.name} {cfg.dtype} (d{cfg.d_model} {cfg.num_encoder_layers}+{cfg.num_decoder_layers}L V{cfg.vocab_size})"


def print_row(m: Measurement) -> None:
    mfu = f"{100 * m.mfu:.1f}%" if m.mfu is not None else "n/a"
    print(f"{m.label:<56} {m.num_params / 1e6:>8.2f}M {m.compile_s:>9.1f}s {1e3 * m.step_s:>10.1f} "
          f"{m.tokens_per_s:>12,.0f} {m.flops_per_s / 1e12:>9.3f} {mfu:>6} {m.final_loss:>8.4f}", flush=True)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="gin/models/tiny.gin", help="model gin file (binds T5Config)")
    ap.add_argument("--baseline", default="other-dtype",
                    help="'other-dtype' (same model, bf16 <-> float32) or another model gin file")
    ap.add_argument("--optim", default="gin/optim/adafactor_rsqrt.gin", help="optimiser gin file (binds Optimizer)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--inputs", type=int, default=64)
    ap.add_argument("--targets", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20, help="timed steps (plus one compile/warm-up step)")
    ap.add_argument("--vocab", type=int, default=32100, help="vocabulary size incl. sentinels (padded to 128)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    for name in ("batch", "inputs", "targets", "steps"):
        if getattr(args, name) < (2 if name == "targets" else 1):
            ap.error(f"--{name} must be >= {2 if name == 'targets' else 1}, got {getattr(args, name)}")

    try:
        cfg, optimizer = load_config(args.model, args.optim, args.vocab)
        if args.baseline == "other-dtype":
            base_cfg, base_opt = dataclasses.replace(cfg, dtype=OTHER_DTYPE[cfg.dtype]), optimizer
        else:
            base_cfg, base_opt = load_config(args.baseline, args.optim, args.vocab)
        batches = synthetic_batches(args.steps + 1, args.batch, args.inputs, args.targets, cfg.vocab_size, args.seed)
    except ConfigError as e:
        ap.error(str(e))

    dev = device_info()
    peak = peak_flops_per_device()
    print(f"device: {dev['count']} x {dev['kind']} ({dev['platform']}), peak bf16 "
          + (f"{peak / 1e12:.0f} TFLOP/s" if peak else "unknown (MFU n/a)")
          + f"; jax {jax.__version__}; batch {args.batch} x inputs {args.inputs} / targets {args.targets}, "
          f"{args.steps} timed steps, optimiser {optimizer.name}/{optimizer.schedule}", flush=True)
    print(f"{'model':<56} {'params':>9} {'compile':>10} {'ms/step':>10} {'tokens/s':>12} {'TFLOP/s':>9} "
          f"{'MFU':>6} {'loss':>8}")
    model = measure(describe(cfg), cfg, optimizer, batches, args.seed)
    print_row(model)
    baseline = measure("baseline: " + describe(base_cfg), base_cfg, base_opt, batches, args.seed)
    print_row(baseline)
    print(f"ratio {cfg.name}/{cfg.dtype} vs baseline {base_cfg.name}/{base_cfg.dtype}: "
          f"tokens/s x{model.tokens_per_s / baseline.tokens_per_s:.3f}, "
          f"ms/step x{model.step_s / baseline.step_s:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
