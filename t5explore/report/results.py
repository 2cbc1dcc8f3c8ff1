"""Load results directories (`result.json` read through t5explore/results_schema.py, `metrics.jsonl`,
`sweep.json`) into pandas.

The report only reads files, so it works on one sweep directory, several, or a parent directory holding
sweeps written by many machines on a shared filesystem. A run directory is *complete* when it has
`result.json`, *failed* when it has `FAILED` but no `result.json`, and *incomplete* otherwise (still running
or never started). Failed and incomplete runs are kept in their own lists so tables can name them.

`sweep.json` (written by the sweep) is read for the variant order and the baseline:

    {"name": "t5_table7_span_length", "baseline": "i.i.d.",
     "runs": [{"run": "iid__seed_0", "variant": "i.i.d."}, ...],
     "paper_table": "table7",                 # optional: which T5 table the sweep reproduces
     "paper_rows": {"μ = 3": "μ = 3"}}        # optional: variant -> paper row name
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from t5explore.errors import InputError
from t5explore.report.labels import REGISTRY_COLUMN
from t5explore.report.legacy_labels import legacy_registry
from t5explore.results_schema import ResultSchemaError, RunResult
from t5explore.run_layout import FAILED_FILE, METRICS_FILE, RESULT_FILE, RUN_MARKERS, SWEEP_FILE

MAX_DEPTH = 4  # how deep below the given directory to look for sweeps


class ReportError(InputError):
    """A results file is missing or malformed; the message names the file (and field)."""


@dataclass
class SweepInfo:
    """What the report needs from a sweep: its variant order, its baseline, and its paper table."""

    name: str
    variants: list[str] = field(default_factory=list)
    baseline: str | None = None
    paper_table: str | None = None
    paper_rows: dict[str, str] = field(default_factory=dict)
    planned_runs: dict[str, str] = field(default_factory=dict)  # run name -> variant, from sweep.json


@dataclass
class Results:
    """Everything loaded from one or more results directories.

    runs: one row per completed run, nested result.json fields flattened with '.'
          (e.g. `pretrain.final_loss`, `benchmarks.best.glue_average`, `downstream.glue_cola.best.matthews_corr`),
          except `bootstrap` (intervals and replicates over evaluation examples), kept as one dict (or None),
          `registry` (labels, as a RegistryInfo; version-1 files get legacy_labels.py's) and `budgets` (the
          list of per-budget scores of schema 3, or None; budget.py reads it).
    failed / incomplete: columns sweep, run, variant, run_dir, reason.
    """

    runs: pd.DataFrame
    failed: pd.DataFrame
    incomplete: pd.DataFrame
    sweeps: dict[str, SweepInfo]

    def sweep_names(self) -> list[str]:
        return list(self.sweeps)

    def for_sweep(self, name: str) -> Results:
        def pick(df: pd.DataFrame) -> pd.DataFrame:
            return df[df["sweep"] == name].reset_index(drop=True)

        return Results(pick(self.runs), pick(self.failed), pick(self.incomplete), {name: self.sweeps[name]})


def load_results(*paths: str | os.PathLike) -> Results:
    """Load every run under the given sweep directories or parents of sweep directories."""
    if not paths:
        raise ReportError("load_results needs at least one results directory")
    sweep_dirs: list[Path] = []
    for p in paths:
        p = Path(p)
        if not p.is_dir():
            raise ReportError(f"results directory not found: {p}")
        found = find_sweep_dirs(p)
        if not found:
            raise ReportError(f"no sweep or run directories under {p}")
        sweep_dirs += [d for d in found if d not in sweep_dirs]

    sweeps: dict[str, SweepInfo] = {}
    rows: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    incomplete: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for sweep_dir in sweep_dirs:
        info = read_sweep_info(sweep_dir)
        merged = sweeps.setdefault(info.name, SweepInfo(info.name))
        _merge_sweep_info(merged, info)
        present: set[str] = set()
        for run_dir in sorted(d for d in sweep_dir.iterdir() if is_run_dir(d)):
            present.add(run_dir.name)
            status = _run_status(run_dir, info)
            key = (status.get("sweep", info.name), status["run"])
            if key in seen:
                warnings.warn(
                    f"duplicate run {key[1]!r} of sweep {key[0]!r} at {run_dir}; keeping the first", stacklevel=2
                )
                continue
            seen.add(key)
            target = {"complete": rows, "failed": failed, "incomplete": incomplete}[status.pop("status")]
            target.append(status)
        for run, variant in info.planned_runs.items():
            if run not in present and (info.name, run) not in seen:
                incomplete.append(
                    {
                        "sweep": info.name,
                        "run": run,
                        "variant": variant,
                        "run_dir": str(sweep_dir / run),
                        "reason": "not started",
                    }
                )
    # A run reported elsewhere (another machine) as complete is not incomplete here.
    done = {(r["sweep"], r["run"]) for r in rows}
    incomplete = [r for r in incomplete if (r["sweep"], r["run"]) not in done]
    for row in rows:
        info = sweeps.setdefault(row["sweep"], SweepInfo(row["sweep"]))
        if row["variant"] not in info.variants:
            info.variants.append(row["variant"])
        if row.get("baseline") and info.baseline is None:
            info.baseline = row["variant"]
    status_cols = ["sweep", "run", "variant", "run_dir", "reason"]
    runs = (
        pd.DataFrame(rows) if rows else pd.DataFrame(columns=["sweep", "run", "variant", "seed", "baseline", "run_dir"])
    )
    return Results(
        runs=runs,
        failed=pd.DataFrame(failed, columns=status_cols),
        incomplete=pd.DataFrame(incomplete, columns=status_cols),
        sweeps=sweeps,
    )


def load_runs(*paths: str | os.PathLike) -> pd.DataFrame:
    """Just the DataFrame of completed runs."""
    return load_results(*paths).runs


def find_sweep_dirs(path: Path, depth: int = 0) -> list[Path]:
    """`path` if it holds run directories (or a sweep.json), plus every sweep directory below it.

    A results root may hold loose runs (standalone `t5explore train`) beside sweep folders: both count.
    Run directories themselves are not searched (their subfolders are checkpoints and predictions)."""
    found = [path] if (path / SWEEP_FILE).is_file() or any(is_run_dir(c) for c in subdirs(path)) else []
    if depth < MAX_DEPTH:
        for child in subdirs(path):
            if not is_run_dir(child):
                found += find_sweep_dirs(child, depth + 1)
    return found


def read_sweep_info(sweep_dir: Path) -> SweepInfo:
    """Read sweep.json if present; otherwise the sweep is named after its directory."""
    path = sweep_dir / SWEEP_FILE
    if not path.is_file():  # named like its runs say, else like its directory
        for run_dir in subdirs(sweep_dir):
            if (run_dir / RESULT_FILE).is_file():
                return SweepInfo(read_result(run_dir / RESULT_FILE).sweep)
        return SweepInfo(sweep_dir.name)
    data = _read_json_file(path)
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected a JSON object")
    name = data.get("name", sweep_dir.name)
    if not isinstance(name, str):
        raise ReportError(f"{path}: field 'name' must be a string")
    info = SweepInfo(name, baseline=data.get("baseline", data.get("baseline_variant")))
    for i, run in enumerate(data.get("runs", [])):
        if isinstance(run, str):
            continue
        if not isinstance(run, dict) or not isinstance(run.get("variant"), str):
            raise ReportError(f"{path}: runs[{i}] must be an object with a string 'variant'")
        run_name = run.get("run", run.get("name"))
        if not isinstance(run_name, str):
            raise ReportError(f"{path}: runs[{i}] needs a string 'run' (the run directory name)")
        info.planned_runs[run_name] = run["variant"]
        if run["variant"] not in info.variants:
            info.variants.append(run["variant"])
    for v in data.get("variants", []):
        v = v.get("name") if isinstance(v, dict) else v
        if isinstance(v, str) and v not in info.variants:
            info.variants.append(v)
    if info.baseline is not None and not isinstance(info.baseline, str):
        raise ReportError(f"{path}: field 'baseline' must be the baseline variant's name")
    info.paper_table = data.get("paper_table")
    info.paper_rows = dict(data.get("paper_rows", {}))
    return info


def read_result(path: str | os.PathLike) -> RunResult:
    """Read one result.json through the schema (any version up to the current); errors name the file and
    field, or the version the file has when it is newer than this t5explore reads."""
    path = Path(path)
    try:
        return RunResult.from_json(_read_json_file(path), path)
    except ResultSchemaError as e:
        raise ReportError(str(e)) from None


def flatten_result(result: RunResult, path: Path | str = RESULT_FILE) -> dict[str, Any]:
    """One flat row: nested objects joined with '.', numbers checked, bindings kept as JSON text, the
    `bootstrap` object kept whole (its replicate lists are read by the report's paired comparisons) and
    the `registry` record kept whole (the labels; a version-1 file gets the legacy table's) and `budgets`
    kept as its list (scores at each pre-training budget, read by budget.py)."""
    row: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, (list, tuple)):
            row[prefix] = json.dumps(value)
        else:
            row[prefix] = value

    data = result.to_json()
    for key, value in data.items():
        if key == "variant_bindings":
            row[key] = json.dumps(value, sort_keys=True, ensure_ascii=False)
        elif key in ("bootstrap", "budgets"):  # budgets: read per budget by budget.py
            row[key] = value
        elif key != REGISTRY_COLUMN:
            walk(key, value)
    for key, value in row.items():
        numeric_section = key.split(".", 1)[0] in ("pretrain", "benchmarks", "timing", "throughput")
        is_score = key.startswith("downstream.") and (".best." in key or ".last." in key)
        if (numeric_section or is_score) and value is not None and not _is_number(value):
            raise ReportError(f"{path}: field {key!r} must be a number or null, got {value!r}")
    row["baseline"] = bool(row.get("baseline", False))
    row[REGISTRY_COLUMN] = result.registry or legacy_registry(result.downstream or {}, _metrics_of(result))
    return row


def _metrics_of(result: RunResult) -> list[str]:
    return [
        m
        for r in (result.downstream or {}).values()
        if isinstance(r, dict)
        for which in ("best", "last")
        if isinstance(r.get(which), dict)
        for m in r[which]
    ]


def load_metrics(run_dir: str | os.PathLike) -> pd.DataFrame:
    """metrics.jsonl of one run as a DataFrame (empty if absent).

    A torn last line (a run still writing) is skipped; any other bad line is an error naming file:line.
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return pd.DataFrame(columns=["phase", "step", "tokens_seen", "loss"])
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    records = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines) and not text.endswith("\n"):
                break
            raise ReportError(f"{path}:{i}: malformed JSON line: {e}") from None
        if not isinstance(rec, dict) or "phase" not in rec:
            raise ReportError(f"{path}:{i}: each line must be an object with a 'phase'")
        records.append(rec)
    return pd.DataFrame(records)


def _run_status(run_dir: Path, info: SweepInfo) -> dict[str, Any]:
    result_path = run_dir / RESULT_FILE
    variant = info.planned_runs.get(run_dir.name)
    base = {"sweep": info.name, "run": run_dir.name, "variant": variant, "run_dir": str(run_dir)}
    if result_path.is_file():
        try:
            row = flatten_result(read_result(result_path), result_path)
        except ReportError as e:  # a truncated file is one bad run: the table shows the others and names it
            if not isinstance(e.__context__, json.JSONDecodeError):
                raise
            return {**base, "status": "failed", "reason": f"corrupt result.json: {e} (`t5explore sweep` reruns it)"}
        row["run_dir"] = str(run_dir)
        row["status"] = "complete"
        return row
    if (run_dir / FAILED_FILE).is_file():
        return {**base, "status": "failed", "reason": _last_line(run_dir / FAILED_FILE)}
    return {**base, "status": "incomplete", "reason": "no result.json (running or interrupted)"}


def _merge_sweep_info(into: SweepInfo, new: SweepInfo) -> None:
    for v in new.variants:
        if v not in into.variants:
            into.variants.append(v)
    into.baseline = into.baseline or new.baseline
    into.paper_table = into.paper_table or new.paper_table
    into.paper_rows = {**new.paper_rows, **into.paper_rows}
    into.planned_runs = {**new.planned_runs, **into.planned_runs}


def _read_json_file(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: malformed JSON: {e}") from None
    except OSError as e:
        raise ReportError(f"{path}: cannot read: {e}") from None


def _last_line(path: Path) -> str:
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "failed (empty FAILED file)"


def is_run_dir(path: Path) -> bool:
    """A run directory: it holds any file a run writes (result, FAILED, metrics, config, claim, checkpoints)."""
    return path.is_dir() and any((path / m).exists() for m in RUN_MARKERS)


def subdirs(path: Path) -> Iterable[Path]:
    """Visible subdirectories, sorted (hidden ones hold caches)."""
    return sorted(c for c in path.iterdir() if c.is_dir() and not c.name.startswith("."))


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)
