"""`t5explore train`: one run from gin files into a run directory (see t5explore/cli.py for dispatch)."""

from __future__ import annotations

import argparse
import json


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="pretrain, fine-tune and evaluate one run into --run_dir",
        description="One run: parse gin, pretrain (resuming from run_dir/checkpoints), fine-tune, evaluate, "
                    "write config.gin, metrics.jsonl, TensorBoard events, predictions/ and result.json.",
        epilog="example: t5explore train --gin_file=gin/runs/quickstart.gin --gin.Pretrain.steps=100 "
               "--run_dir=results/one",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run_dir", required=True, help="output directory (re-running the same directory resumes)")
    p.set_defaults(func=run_train)


def run_train(args, gin_files, gin_bindings) -> int:
    from t5explore.train.run import execute

    if not gin_files and not gin_bindings:
        from t5explore.config import ConfigError

        raise ConfigError("t5explore train needs at least one --gin_file (e.g. gin/runs/quickstart.gin)")
    from t5explore.sweep.fingerprint import guard_run_dir

    guard_run_dir(args.run_dir, gin_files, gin_bindings)  # never resume or overwrite another config's run
    result = execute(args.run_dir, gin_files, gin_bindings)
    print(json.dumps({"run_dir": args.run_dir, "pretrain": result["pretrain"], "benchmarks": result["benchmarks"],
                      "downstream": {t: r["best"] for t, r in result["downstream"].items()},
                      "total_s": round(result["timing"]["total_s"], 1)}, indent=2))
    return 0
