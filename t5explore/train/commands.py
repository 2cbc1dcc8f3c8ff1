"""`t5explore train`: one run from gin files into a run directory (see t5explore/cli.py for dispatch)."""

from __future__ import annotations

import argparse
import json


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="pretrain, fine-tune and evaluate one run into --run_dir",
        description="One run: parse gin, pretrain (resuming from run_dir/checkpoints), fine-tune, evaluate, "
        "write config.gin, metrics.jsonl, TensorBoard events, predictions/ and result.json.",
        epilog="example: t5explore train --gin_file=gin/runs/quickstart.gin --gin.Pretrain.steps=100 "
        "--run_dir=results/one",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--run_dir", required=True, help="output directory (re-running the same directory resumes)")
    p.set_defaults(func=run_train)


def execute_recording_failure(execute, run_dir: str, gin_files, gin_bindings) -> dict:
    """`execute`; if it raises, the traceback goes to run_dir/FAILED (as a sweep's runs do) and the error,
    re-raised, carries that path (`failed_file`) for the one line the CLI prints."""
    import traceback
    from pathlib import Path

    from t5explore.errors import mark_failed_file, one_line
    from t5explore.run_layout import FAILED_FILE
    from t5explore.sweep import rundir

    path = Path(run_dir)
    rundir.clear_failed(path)
    try:
        return execute(run_dir, gin_files, gin_bindings)
    except Exception as e:
        text = traceback.format_exc().rstrip()
        if text.splitlines()[-1] != one_line(e):
            text += "\n" + one_line(e)  # the last line is the reason `status` and tables show
        try:
            rundir.write_failed(path, f"run {run_dir} failed\n{text}\n")
        except OSError:  # e.g. the disk that filled up: the error itself still says what went wrong
            raise e from None
        mark_failed_file(e, path / FAILED_FILE)
        raise


def run_train(args, gin_files, gin_bindings) -> int:
    from t5explore.train.run import execute

    if not gin_files and not gin_bindings:
        from t5explore.config import ConfigError

        raise ConfigError("t5explore train needs at least one --gin_file (e.g. gin/runs/quickstart.gin)")
    from t5explore.sweep.fingerprint import guard_run_dir

    guard_run_dir(args.run_dir, gin_files, gin_bindings)  # never resume or overwrite another config's run
    result = execute_recording_failure(execute, args.run_dir, gin_files, gin_bindings)
    print(json.dumps(summary(args.run_dir, result), indent=2))
    return 0


def summary(run_dir: str, result: dict) -> dict:
    """What `train` prints of result.json: sections only where the run has numbers (a run without tasks has no
    benchmarks), and token accuracies in percent as the console's other lines show them (result.json keeps its
    fractions, which metrics.jsonl and the committed results use)."""
    out: dict = {"run_dir": run_dir, "pretrain": _percent_accuracies(result.get("pretrain") or {})}
    benchmarks = {k: v for k, v in (result.get("benchmarks") or {}).items() if v}
    if benchmarks:
        out["benchmarks"] = benchmarks
    downstream = {t: r["best"] for t, r in (result.get("downstream") or {}).items()}
    if downstream:
        out["downstream"] = downstream
    out["total_s"] = round(float((result.get("timing") or {}).get("total_s") or 0.0), 1)
    return out


def _percent_accuracies(pretrain: dict) -> dict:
    """final_accuracy / eval_accuracy (fractions) shown as final_accuracy_pct / eval_accuracy_pct (0-100)."""
    out = {}
    for key, value in pretrain.items():
        if key.endswith("accuracy") and isinstance(value, (int, float)):
            out[f"{key}_pct"] = round(100.0 * value, 2)
        else:
            out[key] = value
    return out
