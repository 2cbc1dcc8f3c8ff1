"""A CPU reproduction run's non-pre-training time, phase by phase: old code against new code, interleaved
(issue 24 §2).

Why two source trees, not a flag: a change that makes fine-tuning or evaluation cheaper without changing any
number has no "old path" worth keeping behind a flag, so the old side is a git commit. Each side is a
snapshot of a commit (`git archive`, so nothing in the repository's working tree, index or worktree list
changes) or the working tree itself ('.'), and every run is `t5explore train` in a subprocess with that
tree first on the path, as a user runs it. Rounds alternate the sides (A B, B A, ...: record.rotated); both
sides share one persistent compilation cache, filled by an untimed warm-up run of each side first (unless
--warmup 0), so that compilations are cache hits on both sides as in a sweep.

Per phase it prints the median with the per-round range for each side and the old/new ratio (result.json's
`timing` breakdown, train/attempts.py: fine-tuning steps, decoding and its compilations, scoring, checkpoint
I/O, every compilation, total), and the subprocess's wall time. It asserts that every run of either side
has the same numbers: downstream scores (best, last, best step, selection scores), benchmark scores, the
bootstrap intervals, every predictions file byte for byte, and every metrics.jsonl row but its wall-clock
fields; evaluation rows on the reported examples are compared at the steps both sides logged (a change may
decode them only where they are needed), and the best and last steps must be among them.

    python benchmarks/nonpretrain_phases.py --old <commit before the change> --new .   # full: cpu_repro
    python benchmarks/nonpretrain_phases.py --smoke                                    # tiny, HEAD vs '.'

Full mode is gin/runs/cpu_repro.gin without pre-training (`Pretrain.steps = 0`: the S7 no-pre-training
runs' config; every budget of a budget sweep repeats this fine-tuning). Time it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import record

NAME = "nonpretrain_phases"
FULL = (["gin/runs/cpu_repro.gin"], ["Pretrain.steps = 0"])
SMOKE = (["gin/runs/tiny_cpu.gin"], ["Pretrain.steps = 0", "Finetune.steps = 4", "Finetune.eval_every = 2"])
# result.json timing keys shown, in order (train/attempts.py: phases() and the totals)
PHASES = (
    "finetune_steps_s",
    "eval_decode_s",
    "eval_decode_compile_s",
    "eval_metrics_s",
    "checkpoint_s",
    "compile_s",
    "compile_all_s",
    "total_s",
)
WALL_CLOCK_KEYS = {"tokens_per_s", "real_tokens_per_s", "data_wait_share"}  # metrics.jsonl: not reproducible
REPORTED_EVAL = "finetune_eval/"


def source_tree(ref: str, scratch: Path) -> tuple[Path, str]:
    """(directory, description) of one side: '.' is the working tree; anything else a git commit's snapshot."""
    if ref == ".":
        return record.REPO, f"working tree at {record.commit()}"
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=record.REPO, capture_output=True, text=True
    )
    if sha.returncode != 0:
        sys.exit(f"--old/--new: {ref!r} is not a commit of {record.REPO} ({sha.stderr.strip()})")
    commit = sha.stdout.strip()
    out = scratch / f"src_{commit[:12]}"
    if not out.exists():
        out.mkdir(parents=True)
        archive = subprocess.Popen(["git", "archive", commit], cwd=record.REPO, stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(out)], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            sys.exit(f"git archive {commit} failed")
    return out, f"git {commit}"


def train(src: Path, run_dir: Path, gin_files: list[str], bindings: list[str], cache: Path) -> tuple[dict, float]:
    """(result.json, wall seconds) of `t5explore train` run from source tree `src`."""
    env = {**os.environ, "PYTHONPATH": str(src), "T5EXPLORE_COMPILE_CACHE": str(cache), "JAX_PLATFORMS": "cpu"}
    cmd = [sys.executable, "-m", "t5explore.cli", "train", *[f"--gin_file={f}" for f in gin_files]]
    cmd += [f"--gin_bindings={b}" for b in bindings] + [f"--run_dir={run_dir}"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=src, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"run failed in {src} ({' '.join(cmd)}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return json.loads((run_dir / "result.json").read_text()), wall


def numbers(run_dir: Path, result: dict) -> dict:
    """Everything of a run that must not change: scores, intervals, predictions, metrics rows (not wall clock)."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rows = [{k: v for k, v in r.items() if k not in WALL_CLOCK_KEYS} for r in rows]
    predictions = {p.name: p.read_bytes() for p in sorted((run_dir / "predictions").glob("*.jsonl"))}
    return {
        "downstream": result["downstream"],
        "benchmarks": result["benchmarks"],
        "bootstrap": result.get("bootstrap"),
        "predictions": predictions,
        "rows": [r for r in rows if not str(r.get("phase", "")).startswith(REPORTED_EVAL)],
        "reported_eval": {
            (r["phase"], r["step"]): r for r in rows if str(r.get("phase", "")).startswith(REPORTED_EVAL)
        },
    }


def check_same(a: dict, b: dict, what: str) -> None:
    """Assert two runs' numbers are identical (reported-example evaluations: at the steps both logged, which
    must include every task's best and last step)."""
    for key in ("downstream", "benchmarks", "bootstrap", "predictions", "rows"):
        assert a[key] == b[key], f"{what}: {key} differ"
    common = a["reported_eval"].keys() & b["reported_eval"].keys()
    for task, rec in a["downstream"].items():
        last = max(s for p, s in a["reported_eval"] if p == REPORTED_EVAL + task)
        for step in {rec["best_step"], last}:
            assert (REPORTED_EVAL + task, step) in common, f"{what}: {task} step {step} not evaluated by both"
    for key in common:
        assert a["reported_eval"][key] == b["reported_eval"][key], f"{what}: {key} differ"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--old", default="HEAD", help="the old side: a git commit, or '.' (the working tree)")
    p.add_argument("--new", default=".", help="the new side: '.' (the working tree, default) or a git commit")
    p.add_argument("--rounds", type=int, default=None, help="timed runs per side (default 3; --smoke: 1)")
    p.add_argument("--warmup", type=int, default=None, help="untimed runs per side first (default 1; --smoke: 0)")
    p.add_argument("--smoke", action="store_true", help="the tiny config, 1 round: checks the script, times nothing")
    p.add_argument("--out", default=None, help="results file ('-': none; default benchmarks/results/NAME.txt)")
    p.add_argument("--scratch", default=None, help="directory for snapshots, runs and the compile cache (temp)")
    return p.parse_args(argv)


def run_rounds(args: argparse.Namespace, scratch: Path) -> None:
    gin_files, bindings = SMOKE if args.smoke else FULL
    rounds = args.rounds or (1 if args.smoke else 3)
    warmup = args.warmup if args.warmup is not None else (0 if args.smoke else 1)
    sides = []
    for label, ref in (("old", args.old), ("new", args.new)):
        src, desc = source_tree(ref, scratch)
        sides.append((f"{label} ({ref})", src))
        print(
            record.config_line(
                f"{label} ({ref})", [f"source = {desc}", *[f"gin_file = {f}" for f in gin_files], *bindings]
            )
        )
    cache = scratch / "jax_cache"
    times: dict[str, dict[str, list[float]]] = {label: {} for label, _ in sides}
    reference: dict | None = None
    for r in range(-warmup, rounds):
        for label, src in record.rotated(sides, r):
            run_dir = scratch / "runs" / f"{label.split()[0]}_{r + warmup}"
            result, wall = train(src, run_dir, gin_files, bindings, cache)
            got = numbers(run_dir, result)
            reference = reference or got
            check_same(reference, got, f"{label} round {r}")
            timing = {k: float(result["timing"].get(k) or 0.0) for k in PHASES} | {"subprocess_wall_s": wall}
            line = "  ".join(f"{k} {v:.1f}" for k, v in timing.items())
            print(f"{'warm-up' if r < 0 else f'round {r}'} {label}: {line}", flush=True)
            if r >= 0:
                for k, v in timing.items():
                    times[label].setdefault(k, []).append(v)
    summarize(times, [label for label, _ in sides])


def summarize(times: dict[str, dict[str, list[float]]], labels: list[str]) -> None:
    old, new = labels
    print(f"\nper phase, seconds: median (per-round range); ratio = {old} / {new}")
    for key in (*PHASES, "subprocess_wall_s"):
        a, b = times[old][key], times[new][key]
        ratio = record.ratio_spread(a, b) if min(b) > 0 else "-"
        print(f"  {key:22s} {record.spread(a, '.1f'):28s} {record.spread(b, '.1f'):28s} {ratio}")
    print("identical numbers: every run of both sides (scores, intervals, predictions, metrics rows)")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    with record.Recorder(NAME, argv, record.default_out(NAME, args.smoke, args.out)):
        if args.scratch:
            Path(args.scratch).mkdir(parents=True, exist_ok=True)
            run_rounds(args, Path(args.scratch))
        else:
            with tempfile.TemporaryDirectory(prefix="nonpretrain_phases_") as tmp:
                run_rounds(args, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
