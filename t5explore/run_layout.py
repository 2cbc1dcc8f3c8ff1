"""The layout of a results directory and of every run directory in it: each shared file name, said once.

    <results_dir>/.cache/             vocab, token stores and the JAX compilation cache, shared by sweeps
    <results_dir>/.by_fingerprint/    which run computed which config (sweep/sharing.py)
    <results_dir>/<sweep>/sweep.json  the expanded grid: run names, rows, baseline, display names
    <results_dir>/<sweep>/table.md    the comparison table, written after the sweep
    <results_dir>/<sweep>/.stale/<run>.<UTC time>/   a run made under an older config, kept aside
    <results_dir>/<sweep>/<run>/      fingerprint.json config.gin metrics.jsonl checkpoints/ ... result.json
                                      FAILED CLAIM

The run writes result.json last (atomically): it is the run's completion mark. Hidden directories (`.stale`,
`.cache`, `.by_fingerprint`) are never read as sweeps or runs.

Why one module: the trainer writes these files, the sweep judges a run's state from them and the report reads
them, three layers apart; a name spelled in each of them could drift in one. A file only one module reads and
writes keeps its name there (attempts.json: train/attempts.py; launch.json: sweep/launch/task.py). This module
sits at the bottom of the package order (docs/ARCHITECTURE.md) so that every layer can import it. `METADATA_KEYS`,
the fields of result.json that name a run rather than measure it, are read off `RunResult` (results_schema.py) for
the same reason: the trainer fills them and the sweep replaces them when it shares a run, from the one list.
"""

from __future__ import annotations

import dataclasses

from t5explore.results_schema import RunResult

# A run directory.
RESULT_FILE = "result.json"  # written last: a readable one means the run is done
CORRUPT_RESULT_FILE = "result.corrupt.json"  # an unreadable result.json, kept when its run runs again
NONFINITE_RESULT_FILE = "result.nonfinite.json"  # a result.json with a NaN score, kept when its run fails
FAILED_FILE = "FAILED"  # a failed run's traceback
METRICS_FILE = "metrics.jsonl"  # one JSON row per logged step and evaluation
CHECKPOINTS_DIR = "checkpoints"  # pre-training's; fine-tuning's and the budgets' below it
CONFIG_FILE = "config.gin"  # the run's operative gin config
PREDICTIONS_DIR = "predictions"  # each task's best predictions, <task>.jsonl
FINGERPRINT_FILE = "fingerprint.json"  # the config fingerprint the run was made under (sweep/fingerprint.py)
CLAIM_FILE = "CLAIM"  # the worker running it (sweep/claim.py)
CLAIM_LOCK_FILE = "CLAIM.takeover"  # held while a worker takes over a stale claim

# A sweep directory.
SWEEP_FILE = "sweep.json"
TABLE_FILE = "table.md"
STALE_DIR = ".stale"

# A results directory.
CACHE_DIR = ".cache"
INDEX_DIR = ".by_fingerprint"

# Any of these marks a directory as a run directory (the report's and `status`'s search).
RUN_MARKERS = (RESULT_FILE, FAILED_FILE, METRICS_FILE, CONFIG_FILE, CLAIM_FILE, CHECKPOINTS_DIR)

# result.json's run-identity fields (sweep, run, variant, ...): given by the sweep, not measured by the run.
METADATA_KEYS = tuple(f.name for f in dataclasses.fields(RunResult) if f.metadata.get("identity"))
