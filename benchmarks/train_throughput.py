"""Pretraining throughput of the project's Trainer for model configs measured side by side, interleaved.

    python benchmarks/train_throughput.py --model gin/models/tiny.gin --batch 32 --inputs 64 --targets 16 --steps 20
    python benchmarks/train_throughput.py --model gin/models/small.gin --batch 4 --baseline gin/models/tiny.gin
    python benchmarks/train_throughput.py --model gin/models/base.gin --baseline none \
        --case "scan+remat=T5Config.scan_layers = True; T5Config.remat_policy = 'dots'"

Why cases in one process, interleaved: on a shared machine absolute figures drift by tens of percent from one
minute to the next. Every case is compiled and warmed up first; then each of --rounds rounds times --steps
steps of every case in turn (A, B, A, B, ...), so drift hits all cases alike, and the table reports the
median over rounds and each case's ratio to the first. The default baseline is the same model in the other
activation dtype (bf16 <-> float32); `--baseline PATH.gin` compares against another model, `none` drops it;
`--case LABEL=BINDING; BINDING` (repeatable) adds the model with T5Config bindings on top.

Batches are synthetic (uniform random ordinary ids from a seeded numpy Generator, EOS-terminated, no padding),
so no corpus, vocabulary or objective is needed and data loading costs nothing: this measures the jit step
(forward, backward, optimiser update) alone. Tokens are counted as T5 counts them, batch x inputs_length,
so MFU = flops_per_token(cfg) x tokens/s / peak (`t5explore.model.flops`, `t5explore.train.hardware`);
the peak is only known for GPUs (CPU: MFU n/a). Compilation is timed apart and excluded.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from collections.abc import Sequence

import gin
import jax
import numpy as np
import record  # benchmarks/ is the script's directory

from t5explore.config import ConfigError, parse_gin
from t5explore.data.features import encdec_features
from t5explore.model.config import T5Config, padded_vocab_size
from t5explore.model.encoder_decoder import EncoderDecoder
from t5explore.run_config import Optimizer
from t5explore.seeds import STREAM_OBJECTIVE, numpy_rng
from t5explore.special_ids import EOS_ID
from t5explore.train.hardware import device_info, model_flops_utilization, peak_flops_per_device
from t5explore.train.partitioning import Partitioner
from t5explore.train.state import count_params
from t5explore.train.steps import cross_entropy_impl
from t5explore.train.trainer import Trainer, init_params

# --smoke: the tiny model at test size, and a case only a gin binding read by the Trainer tells apart
SMOKE = [
    "--model",
    "gin/models/tiny.gin",
    "--batch",
    "4",
    "--inputs",
    "16",
    "--targets",
    "4",
    "--steps",
    "2",
    "--rounds",
    "2",
    "--vocab",
    "512",
    "--case",
    "integer labels=Loss.cross_entropy = 'integer_labels'",
]
OTHER_DTYPE = {"bfloat16": "float32", "float32": "bfloat16"}
FIRST_REGULAR_ID = 3  # 0 pad, 1 EOS, 2 UNK
NUM_SENTINELS = 100


@dataclasses.dataclass
class Measurement:
    label: str
    num_params: int
    compile_s: float
    step_s: float  # median over rounds of the mean wall time of one step after compilation
    tokens_per_s: float  # batch x inputs_length per second (the paper's count)
    flops_per_s: float
    mfu: float | None
    final_loss: float
    round_step_s: list[float] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Case:
    """One timed configuration: the model, optimiser, loss and partitioner exactly as its gin bindings made
    them (read while they were parsed), and the operative config those reads left (recorded per case)."""

    label: str
    cfg: T5Config
    optimizer: Optimizer
    cross_entropy: str
    partitioner: Partitioner
    bindings: list[str]  # the case's own bindings (on top of the files and --binding): what distinguishes it
    operative: list[str]  # "Configurable.param = value" lines of everything read while building the case


def operative_lines() -> list[str]:
    """gin's operative config as one "A.b = value" line per parameter (continuation lines joined)."""
    lines: list[str] = []
    for raw in gin.operative_config_str().splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        if raw[0].isspace() and lines:
            lines[-1] += " " + raw.strip()
        else:
            lines.append(raw.strip())
    return lines


def load_case(
    label: str, model_gin: str, optim_gin: str, vocab_size: int, common: Sequence[str], own: Sequence[str] = ()
) -> Case:
    """A case built while its gin is parsed: every gin-configurable the timed step depends on (T5Config,
    Optimizer, Loss.cross_entropy, Partitioner) is read here, then gin is cleared. Raises ConfigError when one
    of the case's own bindings was not read (it would be silently dropped: the step would time the default)."""
    try:
        parse_gin([model_gin, optim_gin], [*common, *own])
        cfg = dataclasses.replace(T5Config(), vocab_size=padded_vocab_size(vocab_size))
        optimizer, cross_entropy, partitioner = Optimizer(), cross_entropy_impl(), Partitioner()
        operative = operative_lines()
    finally:
        gin.clear_config()
    optimizer.validate()
    read = {line.split(" = ", 1)[0] for line in operative}
    for binding in own:
        key = binding.split("=", 1)[0].strip()
        if key not in read:
            raise ConfigError(f"--case {label!r}: gin binding {binding!r} is not read by anything this benchmark times")
    return Case(label, cfg, optimizer, cross_entropy, partitioner, list(own), operative)


def synthetic_batches(
    n: int, batch: int, inputs: int, targets: int, vocab_size: int, seed: int
) -> list[dict[str, np.ndarray]]:
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


class Runner:
    """One case's Trainer, compiled and warmed up; `time(batches)` times len(batches) steps."""

    def __init__(self, case: Case, batches: list[dict], seed: int, total_steps: int):
        self.case, self.partitioner = case, case.partitioner
        self.partitioner.check_batch_size(len(batches[0]["encoder_input_tokens"]), "--batch")
        self.model = model = EncoderDecoder(case.cfg)
        params, shardings = init_params(model, self.partitioner, seed)
        self.num_params = count_params(params)
        self.trainer = Trainer(
            model,
            self.partitioner,
            params,
            shardings,
            case.optimizer,
            total_steps,
            seed,
            cross_entropy=case.cross_entropy,
        )
        del params
        jax.block_until_ready(self.trainer.train_step(batches[0]))  # compile + first step (allocations, autotuning)
        self.round_step_s: list[float] = []
        self.final_loss = float("nan")

    def time(self, batches: list[dict]) -> None:
        t0 = time.perf_counter()
        for batch in batches:
            metrics = self.trainer.train_step(batch)
        self.final_loss = float(jax.device_get(metrics["loss"]))  # blocks on the last step: the timing is real
        jax.block_until_ready(self.trainer.state)
        self.round_step_s.append((time.perf_counter() - t0) / len(batches))

    def measurement(self, batches: list[dict]) -> Measurement:
        step_s = statistics.median(self.round_step_s)
        batch_size, inputs = batches[0]["encoder_input_tokens"].shape
        targets = batches[0]["decoder_target_tokens"].shape[1]
        tokens_per_s = batch_size * inputs / step_s
        flops_per_s = self.model.flops_per_token(inputs, targets) * tokens_per_s
        return Measurement(
            self.case.label,
            self.num_params,
            self.trainer.train_compile_s,
            step_s,
            tokens_per_s,
            flops_per_s,
            model_flops_utilization(flops_per_s),
            self.final_loss,
            self.round_step_s,
        )


def measure_interleaved(cases: Sequence[Case], batches: list[dict], seed: int, rounds: int) -> list[Measurement]:
    """Compile and warm up every case, then `rounds` rounds of len(batches) - 1 timed steps per case, in turn;
    round r starts with case r (mod the number of cases), so no case always runs first."""
    runners = [Runner(case, batches, seed, 1 + rounds * (len(batches) - 1)) for case in cases]
    for r in range(rounds):
        for runner in record.rotated(runners, r):
            runner.time(batches[1:])
    return [runner.measurement(batches) for runner in runners]


def describe(cfg: T5Config) -> str:
    layers = f"{cfg.num_encoder_layers}+{cfg.num_decoder_layers}L"
    return f"{cfg.name} {cfg.dtype} (d{cfg.d_model} {layers} V{cfg.vocab_size})"


def print_row(m: Measurement, reference: Measurement) -> None:
    mfu = f"{100 * m.mfu:.1f}%" if m.mfu is not None else "n/a"
    spread = f"{1e3 * min(m.round_step_s):.1f}-{1e3 * max(m.round_step_s):.1f}"
    print(
        f"{m.label:<56} {m.num_params / 1e6:>8.2f}M {m.compile_s:>9.1f}s {1e3 * m.step_s:>10.1f} {spread:>13} "
        f"{m.tokens_per_s:>12,.0f} {m.flops_per_s / 1e12:>9.3f} {mfu:>6} "
        f"x{reference.step_s / m.step_s:>6.3f} {m.final_loss:>8.4f}",
        flush=True,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="gin/models/tiny.gin", help="model gin file (binds T5Config)")
    ap.add_argument(
        "--baseline",
        default="other-dtype",
        help="'other-dtype' (same model, bf16 <-> float32), another model gin file, or 'none'",
    )
    ap.add_argument(
        "--case",
        action="append",
        default=[],
        metavar="LABEL=BINDING[; BINDING]",
        help='the model with these gin bindings, e.g. "scan=T5Config.scan_layers = True" (repeatable)',
    )
    ap.add_argument("--binding", action="append", default=[], help="gin binding for every case (repeatable)")
    ap.add_argument("--optim", default="gin/optim/adafactor_rsqrt.gin", help="optimiser gin file (binds Optimizer)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--inputs", type=int, default=64)
    ap.add_argument("--targets", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per case per round")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (the median is reported)")
    ap.add_argument("--vocab", type=int, default=32100, help="vocabulary size incl. sentinels (padded to 128)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="the output file (default benchmarks/results/<name>.txt; a --smoke run: none)")
    ap.add_argument("--name", default="train_throughput", help=argparse.SUPPRESS)  # gpu_mfu.py's own file
    ap.add_argument("--smoke", action="store_true", help=f"seconds: {' '.join(SMOKE)} (the numbers mean nothing)")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = ap.parse_args(argv)
    args.argv = argv
    if args.smoke:
        args = ap.parse_args([*argv, *SMOKE])
        args.argv = argv
    for name in ("batch", "inputs", "targets", "steps", "rounds"):
        if getattr(args, name) < (2 if name == "targets" else 1):
            ap.error(f"--{name} must be >= {2 if name == 'targets' else 1}, got {getattr(args, name)}")
    try:
        args.cases = build_cases(args)
    except ConfigError as e:
        ap.error(str(e))
    return args


def build_cases(args) -> list[Case]:
    """The model as the files and --binding bind it, the baseline, then each --case; each built and checked
    while its own gin is parsed (load_case)."""
    common = list(args.binding)
    first = load_case("", args.model, args.optim, args.vocab, common)
    cases = [dataclasses.replace(first, label=describe(first.cfg))]
    if args.baseline == "other-dtype":
        own = [f"T5Config.dtype = '{OTHER_DTYPE[first.cfg.dtype]}'"]
        base = load_case("baseline", args.model, args.optim, args.vocab, common, own)
        cases.append(dataclasses.replace(base, label="baseline: " + describe(base.cfg)))
    elif args.baseline != "none":
        base = load_case("baseline", args.baseline, args.optim, args.vocab, common)
        cases.append(dataclasses.replace(base, label="baseline: " + describe(base.cfg)))
    for spec in args.case:
        label, sep, bindings = spec.partition("=")
        if not sep or not label.strip():
            raise ConfigError(f"--case {spec!r}: expected LABEL=BINDING[; BINDING...]")
        own = [b.strip() for b in bindings.split(";") if b.strip()]
        cases.append(load_case(label.strip(), args.model, args.optim, args.vocab, common, own))
    return cases


def report(args, results: list[Measurement]) -> None:
    """The table, each case's recorded config, and each case's speed against the first: ratio of the medians
    and the range of the per-round ratios (both cases ran in the same round)."""
    print(
        f"{'case':<56} {'params':>9} {'compile':>10} {'ms/step':>10} {'(min-max)':>13} {'tokens/s':>12} "
        f"{'TFLOP/s':>9} {'MFU':>6} {'speed':>7} {'loss':>8}"
    )
    for m in results:
        print_row(m, results[0])
    for case in args.cases:
        print(record.config_line(case.label, case.operative))
    for m in results[1:]:
        speed = record.ratio_spread(results[0].round_step_s, m.round_step_s)
        print(f"ratio {m.label} vs {results[0].label}: tokens/s {speed} (medians of {args.rounds} rotated rounds)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with record.Recorder(args.name, args.argv, record.default_out(args.name, args.smoke, args.out)):
        cfg = args.cases[0].cfg
        batches = synthetic_batches(args.steps + 1, args.batch, args.inputs, args.targets, cfg.vocab_size, args.seed)
        dev = device_info()
        peak = peak_flops_per_device()
        print(
            f"device: {dev['count']} x {dev['kind']} ({dev['platform']}), peak bf16 "
            + (f"{peak / 1e12:.0f} TFLOP/s" if peak else "unknown (MFU n/a)")
            + f"; jax {jax.__version__}; batch {args.batch} x inputs {args.inputs} / targets {args.targets}, "
            f"{args.rounds} rotated rounds x {args.steps} steps per case, optimiser "
            f"{args.cases[0].optimizer.name}/{args.cases[0].optimizer.schedule}",
            flush=True,
        )
        report(args, measure_interleaved(args.cases, batches, args.seed, args.rounds))
        if args.smoke:
            print("smoke run: the numbers above mean nothing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
