"""Real (non-pad) tokens per second of multi-task fine-tuning, packed vs unpacked, measured side by side.

    python benchmarks/finetune_throughput.py                      # gin/runs/gpu_ablation.gin's mixture and model
    python benchmarks/finetune_throughput.py --model gin/models/tiny.gin --rounds 7
    python benchmarks/finetune_throughput.py --smoke              # seconds: checks that it works, times nothing

The mixture is the run file's Finetune config (default gin/runs/gpu_ablation.gin: GLUE + BoolQ + SQuAD read
from ../shared/data, examples-proportional mixing, its batch size and lengths), tokenised with the run's own
vocabulary (built once and cached like a run's, under $T5EXPLORE_CACHE). Two sides train the same model from
the same initial params with the fine-tuning optimiser:

  packed    PackedSampler: as many whole examples per row as fit (Finetune.packing = True, the default)
  unpacked  MixtureSampler: one example per row, right-padded (Finetune.packing = False)

Each side's time includes building its batches on the host (sampling, packing, features), moving them to
the device and the jit train step (forward, backward, optimiser update), waited for at the end of every timed
block; compilation (the first step) is timed apart and excluded, and there is no evaluation. After one
warm-up block per side, --rounds rounds time --steps steps of each side in turn (packed, unpacked, packed, ...)
so that drift on a shared machine hits both alike. Reported: medians over rounds of real tokens/s (encoder and
decoder tokens that are not padding), token slots/s (padded, encoder + decoder), examples/s, the packing
ratio, and packed / unpacked ratios. The goal of issue 10 is >= 2x real tokens/s.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import jax

REPO = Path(__file__).resolve().parent.parent
SMOKE_BINDINGS = (
    "Finetune.max_train_examples = 300",
    "Finetune.batch_size = 8",
    "Finetune.inputs_length = 128",
    "Finetune.targets_length = 16",
    "vocabulary.sp_vocab_size = 1000",
)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gin_file", default="gin/runs/gpu_ablation.gin", help="run file: the mixture and model")
    p.add_argument("--model", default=None, help="a gin/models/*.gin to use instead of the run file's model")
    p.add_argument("--gin", action="append", default=[], help="extra gin binding (repeatable)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=4, help="steps per side per round")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="tiny model, built-in corpus vocabulary, 300 examples per "
        "task, 2 rounds of 2 steps: checks that the benchmark runs (its numbers mean nothing)",
    )
    args = p.parse_args(argv)
    if args.smoke:
        args.model, args.rounds, args.steps = "gin/models/tiny.gin", 2, 2
        args.gin = ["Pretrain.corpus = @builtin_corpus()", *SMOKE_BINDINGS, *args.gin]
    return args


@dataclasses.dataclass
class Side:
    label: str
    sampler: object
    trainer: object
    step: int = 0
    compile_s: float = 0.0
    rounds: list = dataclasses.field(default_factory=list)  # (seconds, real tokens, slots, examples) per round

    def run(self, steps: int) -> tuple[float, int, int, int]:
        from t5explore.train.finetune_data import batch_token_counts

        real = slots = examples = 0
        t0 = time.perf_counter()
        for _ in range(steps):
            batch = self.sampler.batch(self.step)
            r, s = batch_token_counts(batch)
            real, slots = real + r, slots + s
            seg = batch.get("decoder_segment_ids")
            examples += int(seg.max(axis=1).sum()) if seg is not None else len(batch["targets"])
            self.trainer.train_step(batch)
            self.step += 1
        jax.block_until_ready(self.trainer.state)
        return time.perf_counter() - t0, real, slots, examples


def build_sides(args):
    from t5explore.config import parse_gin
    from t5explore.data.vocab import vocabulary
    from t5explore.train.config import Experiment, Finetune, Pretrain
    from t5explore.train.finetune_data import MixtureSampler, PackedSampler, load_task, prepare_tasks
    from t5explore.train.partitioning import Partitioner
    from t5explore.train.run import build_model, cache_dir_for
    from t5explore.train.trainer import Trainer, init_params

    files = [str(REPO / args.gin_file)] + ([str(REPO / args.model)] if args.model else [])
    parse_gin(files, args.gin)
    ft, pre, experiment = Finetune(), Pretrain(), Experiment()
    if ft.data_dir and not Path(ft.data_dir).is_absolute():
        ft = dataclasses.replace(ft, data_dir=str((REPO / ft.data_dir).resolve()))
    ft = dataclasses.replace(ft, mode="multi_task", steps=max(ft.steps, 1))
    ft.validate()
    vocab = vocabulary(corpus=pre.corpus, cache_dir=str(cache_dir_for(experiment)))
    tasks = prepare_tasks(ft)
    loaded = [load_task(name, task, ft, vocab) for name, task in tasks.items()]
    model, model_cfg = build_model(vocab)
    partitioner = Partitioner()
    params, shardings = init_params(model, partitioner, seed=0)
    ids = list(range(len(loaded)))
    samplers = {
        "packed": PackedSampler(loaded, ft.batch_size, 0, ft.mixing_cap, ids, ft.inputs_length, ft.targets_length),
        "unpacked": MixtureSampler(loaded, ft.batch_size, 0, ft.mixing_cap, ids),
    }
    sides = [
        Side(label, sampler, Trainer(model, partitioner, params, shardings, ft.get_optimizer(), 10**6, seed=0))
        for label, sampler in samplers.items()
    ]
    return sides, ft, model_cfg


def main(argv=None) -> int:
    args = parse_args(argv)
    sides, ft, model_cfg = build_sides(args)
    print(
        f"model {model_cfg.name} ({model_cfg.dtype}), {jax.device_count()} {jax.default_backend()} device(s); "
        f"tasks {', '.join(ft.tasks)}; batch {ft.batch_size} x {ft.inputs_length} inputs / {ft.targets_length} "
        f"targets; {args.rounds} rounds x {args.steps} steps per side",
        flush=True,
    )
    for side in sides:  # compile (timed apart), then one untimed warm-up block
        t0 = time.perf_counter()
        side.run(1)
        side.compile_s = time.perf_counter() - t0
        side.run(args.steps)
    for _ in range(args.rounds):
        for side in sides:
            side.rounds.append(side.run(args.steps))
    print(
        f"\n{'side':<10s} {'real tok/s':>12s} {'slots/s':>12s} {'examples/s':>11s} {'packing':>8s} "
        f"{'first step s':>13s}"
    )
    medians = {}
    for side in sides:
        real = statistics.median(n / s for s, n, _, _ in side.rounds)
        slots = statistics.median(n / s for s, _, n, _ in side.rounds)
        examples = statistics.median(n / s for s, _, _, n in side.rounds)
        ratio = sum(n for _, n, _, _ in side.rounds) / max(sum(n for _, _, n, _ in side.rounds), 1)
        medians[side.label] = (real, slots, examples)
        print(f"{side.label:<10s} {real:12.1f} {slots:12.1f} {examples:11.2f} {ratio:8.3f} {side.compile_s:13.2f}")
    (pr, ps, pe), (ur, us, ue) = medians["packed"], medians["unpacked"]
    print(
        f"\npacked / unpacked: real tokens/s x{pr / ur:.2f}, slots/s x{ps / us:.2f}, examples/s x{pe / ue:.2f} "
        f"(goal: real tokens/s >= 2x)"
    )
    if args.smoke:
        print("smoke run: the numbers above mean nothing", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
