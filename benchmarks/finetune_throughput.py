"""Real (non-pad) tokens per second of multi-task fine-tuning: packed vs length-bucketed vs fixed-width, side by side.

    python benchmarks/finetune_throughput.py                      # gin/runs/gpu_ablation.gin's mixture and model
    python benchmarks/finetune_throughput.py --model gin/models/tiny.gin --rounds 7
    python benchmarks/finetune_throughput.py --smoke              # seconds: checks that it works, times nothing

The mixture is the run file's Finetune config (default gin/runs/gpu_ablation.gin: GLUE + BoolQ + SQuAD read
from ../shared/data, examples-proportional mixing, its batch size and lengths), tokenised with the run's own
vocabulary (built once and cached like a run's, under $T5EXPLORE_CACHE). Three sides train the same model from
the same initial params with the fine-tuning optimiser:

  packed       PackedSampler: as many whole examples per row as fit (Finetune.packing = True, the default)
  bucketed     one example per row (Finetune.packing = False), length-grouped as HF's group_by_length and
               tf.data's bucket_by_sequence_length do: a mega-batch of --mega batches is drawn, sorted by input
               length, cut into batches (in a seeded random order), and each batch is padded only to the
               bucket boundary above its longest input (--bucket_width) and target (multiples of 8). This is
               the unpacked baseline at its best, and the headline compares packed with it.
  fixed-width  MixtureSampler as is: one example per row, padded to the full lengths (Finetune.packing =
               False): the weakest baseline, kept as a secondary line.

A bucketed batch of a shape not seen before compiles the step again (JAX compiles per shape); that step is
timed apart like the first step of every side, and is excluded from the rates.

Each side's time includes building its batches on the host (sampling, packing, features), moving them to
the device and the jit train step (forward, backward, optimiser update), waited for at the end of every timed
block; compilation is timed apart and excluded, and there is no evaluation. After one warm-up block per side,
--rounds rounds time --steps steps of each side in turn, the order rotated every round (benchmarks/record.py),
so that drift on a shared machine hits all alike. Reported: medians over rounds with per-round ranges of real
tokens/s (encoder and decoder tokens that are not padding), token slots/s (padded, encoder + decoder),
examples/s, the packing ratio, and packed / bucketed (the headline) and packed / fixed-width ratios. Each
side's Finetune config is recorded, and each side checks that the samplers it times are the ones its
binding of Finetune.packing selects (make_sampler). Output: benchmarks/results/finetune_throughput.txt.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np
import record  # benchmarks/ is the script's directory

REPO = Path(__file__).resolve().parent.parent
SMOKE_BINDINGS = (
    "Finetune.max_train_examples = 300",
    "Finetune.batch_size = 8",
    "Finetune.inputs_length = 128",
    "Finetune.targets_length = 16",
    "vocabulary.sp_vocab_size = 1000",
)
RECORDED_FIELDS = ("packing", "mode", "batch_size", "inputs_length", "targets_length", "mixing_cap", "tasks")
SIDES = ("packed", "bucketed", "fixed-width")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gin_file", default="gin/runs/gpu_ablation.gin", help="run file: the mixture and model")
    p.add_argument("--model", default=None, help="a gin/models/*.gin to use instead of the run file's model")
    p.add_argument("--gin", action="append", default=[], help="extra gin binding (repeatable)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=4, help="steps per side per round")
    p.add_argument("--mega", type=int, default=16, help="bucketed: batches per length-sorted mega-batch")
    p.add_argument("--bucket_width", type=int, default=64, help="bucketed: encoder widths are multiples of this")
    p.add_argument("--out", help="output file (default benchmarks/results/finetune_throughput.txt; --smoke: none)")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="tiny model, built-in corpus vocabulary, 300 examples per "
        "task, 2 rounds of 2 steps: checks that the benchmark runs (its numbers mean nothing)",
    )
    argv = list(sys.argv[1:] if argv is None else argv)
    args = p.parse_args(argv)
    args.argv = argv
    if args.smoke:
        args.model, args.rounds, args.steps, args.bucket_width = "gin/models/tiny.gin", 2, 2, 32
        args.gin = ["Pretrain.corpus = @builtin_corpus()", *SMOKE_BINDINGS, *args.gin]
    return args


class BucketedSampler:
    """Unpacked batches grouped by length, the way HF's `group_by_length` and tf.data's
    `bucket_by_sequence_length(pad_to_bucket_boundary=True)` do: `mega` batches of the MixtureSampler (the
    same examples fixed-width would train on) are sorted by input length and cut into batches, served in a
    seeded random order; each is padded only to the bucket boundary above its longest input (a multiple of
    `bucket_width`) and target (a multiple of 8), so JAX compiles a few shapes, not one per batch."""

    def __init__(self, base, mega: int, bucket_width: int, inputs_length: int, targets_length: int, seed: int):
        from t5explore.data.packing import example_lengths

        self.base, self.mega, self.bucket_width = base, mega, bucket_width
        self.inputs_length, self.targets_length = inputs_length, targets_length
        self.lengths = example_lengths
        self.rng = np.random.default_rng(seed)
        self.drawn = 0  # base batches drawn
        self.queue: list[dict[str, np.ndarray]] = []

    def _refill(self) -> None:
        parts = [self.base.batch(self.drawn + j) for j in range(self.mega)]
        self.drawn += self.mega
        inputs = np.concatenate([b["inputs"] for b in parts])
        targets = np.concatenate([b["targets"] for b in parts])
        order = np.argsort(self.lengths(inputs), kind="stable")
        size = len(parts[0]["inputs"])
        chunks = [order[i : i + size] for i in range(0, len(order), size)]
        for k in self.rng.permutation(len(chunks)):
            rows = chunks[k]
            width = _round_up(int(self.lengths(inputs[rows]).max()), self.bucket_width, self.inputs_length)
            tg = _round_up(int(self.lengths(targets[rows]).max()), 8, self.targets_length)
            self.queue.append({"inputs": inputs[rows, :width], "targets": targets[rows, :tg]})

    def batch(self, step: int) -> dict[str, np.ndarray]:
        if not self.queue:
            self._refill()
        return self.queue.pop()


class PerShapeTrainer:
    """A Trainer whose step is compiled once per batch shape, as jax.jit does (the Trainer itself compiles ahead
    of time for the first shape it sees and refuses others): its jitted step is called directly, so each
    bucket shape compiles on first use and is served from jit's cache after. Same step, same state."""

    def __init__(self, trainer):
        self.trainer = trainer

    @property
    def state(self):
        return self.trainer.state

    def train_step(self, batch: dict[str, np.ndarray]):
        from t5explore.train.trainer import to_features

        t = self.trainer
        sharded = t.partitioner.shard_batch(to_features(batch, t.model))
        t.state, metrics = t._train(t.state, sharded)
        return metrics


def _round_up(n: int, multiple: int, cap: int) -> int:
    return min(-(-max(n, 1) // multiple) * multiple, cap)


def _shape(batch: dict[str, np.ndarray]) -> tuple:
    return tuple(sorted((k, v.shape) for k, v in batch.items()))


@dataclasses.dataclass
class Side:
    label: str
    sampler: object
    trainer: object
    config: list[str]  # the operative Finetune fields and sampler this side runs with (recorded)
    step: int = 0
    compile_s: float = 0.0
    shapes: set = dataclasses.field(default_factory=set)
    rounds: list = dataclasses.field(default_factory=list)  # (seconds, real tokens, slots, examples) per round

    def run(self, steps: int) -> tuple[float, int, int, int]:
        """`steps` steps; a step on a batch shape not seen before (a compilation) is timed into compile_s and
        left out of the seconds and counts returned."""
        from t5explore.train.finetune_data import batch_token_counts

        real = slots = examples = 0
        seconds, t0 = 0.0, time.perf_counter()
        for _ in range(steps):
            batch = self.sampler.batch(self.step)
            self.step += 1
            if _shape(batch) not in self.shapes:
                jax.block_until_ready(self.trainer.state)
                t1 = time.perf_counter()
                seconds += t1 - t0
                self.trainer.train_step(batch)
                jax.block_until_ready(self.trainer.state)
                self.shapes.add(_shape(batch))
                t0 = time.perf_counter()
                self.compile_s += t0 - t1
                continue
            r, s = batch_token_counts(batch)
            real, slots = real + r, slots + s
            seg = batch.get("decoder_segment_ids")
            examples += int(seg.max(axis=1).sum()) if seg is not None else len(batch["targets"])
            self.trainer.train_step(batch)
        jax.block_until_ready(self.trainer.state)
        return seconds + time.perf_counter() - t0, real, slots, examples


def side_config(name: str, ft, sampler) -> list[str]:
    """The recorded config of a side: the Finetune fields as constructed under its binding, and the sampler."""
    fields = [f"Finetune.{k} = {getattr(ft, k)!r}" for k in RECORDED_FIELDS]
    return [*fields, f"sampler = {type(sampler).__name__}"]


def build_sides(args):
    import gin

    from t5explore.config import parse_gin
    from t5explore.data.vocab import vocabulary
    from t5explore.run_config import Experiment, Finetune, Pretrain
    from t5explore.train.finetune_data import MixtureSampler, PackedSampler, load_task, make_sampler, prepare_tasks
    from t5explore.train.partitioning import Partitioner
    from t5explore.train.run import build_model, cache_dir_for
    from t5explore.train.trainer import Trainer, init_params

    files = [str(REPO / args.gin_file)] + ([str(REPO / args.model)] if args.model else [])
    parse_gin(files, args.gin)

    def finetune_config(packing: bool):
        gin.bind_parameter("Finetune.packing", packing)  # the side's binding, read by the Finetune it makes
        ft = Finetune()
        if ft.data_dir and not Path(ft.data_dir).is_absolute():
            ft = dataclasses.replace(ft, data_dir=str((REPO / ft.data_dir).resolve()))
        ft = dataclasses.replace(ft, mode="multi_task", steps=max(ft.steps, 1))
        ft.validate()
        return ft

    ft, pre, experiment = finetune_config(True), Pretrain(), Experiment()
    vocab = vocabulary(corpus=pre.corpus, cache_dir=str(cache_dir_for(experiment)))
    tasks = prepare_tasks(ft)
    loaded = [load_task(name, task, ft, vocab) for name, task in tasks.items()]
    model, model_cfg = build_model(vocab)
    partitioner = Partitioner()
    params, shardings = init_params(model, partitioner, seed=0)
    ids = list(range(len(loaded)))
    sides = []
    for label in SIDES:
        side_ft = finetune_config(label == "packed")
        sampler = make_sampler(loaded, side_ft, 0, ids)
        expected = PackedSampler if label == "packed" else MixtureSampler
        if type(sampler) is not expected:
            raise AssertionError(f"{label}: Finetune.packing = {side_ft.packing} made a {type(sampler).__name__}")
        if label == "bucketed":
            sampler = BucketedSampler(
                sampler, args.mega, args.bucket_width, side_ft.inputs_length, side_ft.targets_length, seed=0
            )
        config = side_config(label, side_ft, sampler)
        if label == "bucketed":
            config.append(f"mega = {args.mega}; bucket_width = {args.bucket_width}")
        trainer = Trainer(model, partitioner, params, shardings, side_ft.get_optimizer(), 10**6, seed=0)
        if label == "bucketed":
            trainer = PerShapeTrainer(trainer)
        sides.append(Side(label, sampler, trainer, config))
    gin.clear_config()
    return sides, ft, model_cfg


def measure(args, sides) -> None:
    """Compile (timed apart), one untimed warm-up block per side, then rotated rounds."""
    for side in sides:
        side.run(1)
        side.run(args.steps)
    for r in range(args.rounds):
        for side in record.rotated(sides, r):
            side.rounds.append(side.run(args.steps))


def report(args, sides) -> None:
    print(
        f"\n{'side':<12s} {'real tok/s (per-round range)':>36s} {'slots/s':>10s} {'examples/s':>11s} "
        f"{'packing':>8s} {'compile s':>10s} {'shapes':>7s}"
    )
    per_round = {}
    for side in sides:
        real = [n / s for s, n, _, _ in side.rounds]
        slots = statistics.median(n / s for s, _, n, _ in side.rounds)
        examples = statistics.median(n / s for s, _, _, n in side.rounds)
        ratio = sum(n for _, n, _, _ in side.rounds) / max(sum(n for _, _, n, _ in side.rounds), 1)
        per_round[side.label] = (real, [n / s for s, _, n, _ in side.rounds])
        print(
            f"{side.label:<12s} {record.spread(real):>36s} {slots:10.1f} {examples:11.2f} {ratio:8.3f} "
            f"{side.compile_s:10.2f} {len(side.shapes):7d}"
        )
    for side in sides:
        print(record.config_line(side.label, side.config))
    packed_real, packed_slots = per_round["packed"]
    for other, what in (("bucketed", "headline"), ("fixed-width", "secondary")):
        real, slots = per_round[other]
        print(
            f"packed / {other} ({what}): real tokens/s {record.ratio_spread(packed_real, real)}; "
            f"slots/s {record.ratio_spread(packed_slots, slots)}"
        )


def main(argv=None) -> int:
    args = parse_args(argv)
    with record.Recorder(
        "finetune_throughput", args.argv, record.default_out("finetune_throughput", args.smoke, args.out)
    ):
        sides, ft, model_cfg = build_sides(args)
        print(
            f"model {model_cfg.name} ({model_cfg.dtype}), {jax.device_count()} {jax.default_backend()} device(s); "
            f"tasks {', '.join(ft.tasks)}; batch {ft.batch_size} x {ft.inputs_length} inputs / "
            f"{ft.targets_length} targets; {args.rounds} rotated rounds x {args.steps} steps per side",
            flush=True,
        )
        measure(args, sides)
        report(args, sides)
        if args.smoke:
            print("smoke run: the numbers above mean nothing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
