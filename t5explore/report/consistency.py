"""Whether a sweep's rows can be compared: one numerics version, and one config apart from the variants.

Why: a table puts rows side by side as if only their variant differed. Rows computed by code of different
numerics versions (t5explore/numerics.py) differ in more than their variant, and so do rows of two sweeps with
different configs that shared one results directory. `t5explore table` refuses the first unless given
--allow_mixed_numerics (then a note under the table labels the mix), and notes the second under the table.

Everything here reads data only: result.json's `numerics_version` (absent: version 1, made before the
constant existed) and each run's fingerprint.json (its sorted gin statements as JSON text); no gin is parsed.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd

from t5explore.report.results import ReportError, Results
from t5explore.run_layout import FINGERPRINT_FILE

NUMERICS_COLUMN = "numerics_version"
UNVERSIONED = 1  # result.json written before the numerics version existed
SEED_KEY = "Experiment.seed"
NUMERICS_KEY = "NUMERICS_VERSION"
INCLUDE_KEY = "include"
MIXED_FLAG = "--allow_mixed_numerics"


def numerics_versions(runs: pd.DataFrame) -> dict[int, list[str]]:
    """{numerics version: run names} of the completed runs (a missing version counts as 1)."""
    out: dict[int, list[str]] = defaultdict(list)
    values = runs[NUMERICS_COLUMN] if NUMERICS_COLUMN in runs.columns else [None] * len(runs)
    for run, v in zip(runs["run"], values):
        out[UNVERSIONED if v is None or pd.isna(v) else int(v)].append(str(run))
    return dict(sorted(out.items()))


def _describe(versions: dict[int, list[str]]) -> str:
    def runs(names: list[str]) -> str:
        return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")

    return "; ".join(f"version {v}: {runs(names)}" for v, names in versions.items())


def check_numerics(results: Results, allow_mixed: bool = False) -> None:
    """ReportError naming the versions and their runs when a sweep mixes numerics versions, unless allowed."""
    if allow_mixed:
        return
    for name in results.sweep_names():
        versions = numerics_versions(results.for_sweep(name).runs)
        if len(versions) > 1:
            raise ReportError(
                f"sweep {name} mixes runs computed by code of different numerics versions ({_describe(versions)}); "
                f"re-run the older runs with today's code (`t5explore sweep ... --rerun_changed`), or pass "
                f"{MIXED_FLAG} to tabulate them anyway, labelled"
            )


def notes(results: Results, sweep: str) -> list[str]:
    """Lines for under a sweep's table: a numerics mix (only present when allowed), and the bindings other than
    the variants' in which its rows differ."""
    runs = results.for_sweep(sweep).runs
    out = []
    versions = numerics_versions(runs)
    if len(versions) > 1:
        out.append(
            f"Mixed numerics versions ({_describe(versions)}): these rows were computed by different code "
            "(t5explore/numerics.py), so their differences are not only their variants'."
        )
    differing = differing_bindings(runs)
    if differing:
        out.append(
            "Rows differ in bindings that are not the sweep's variant bindings: "
            + "; ".join(f"{k} ({', '.join(v)})" for k, v in differing.items())
            + ". They were made under different configs (e.g. two sweeps in one results directory)."
        )
    return out


def _config(run_dir: Any) -> dict[str, str] | None:
    """{binding key: value} from a run's fingerprint.json, or None (a run without one)."""
    try:
        data = json.loads((Path(str(run_dir)) / FINGERPRINT_FILE).read_text(encoding="utf-8"))
        return {str(s).split(" = ", 1)[0].strip(): str(s).split(" = ", 1)[-1] for s in data["config"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def differing_bindings(runs: pd.DataFrame, limit: int = 5) -> dict[str, list[str]]:
    """{binding: its distinct values} for bindings that differ between rows for a reason other than the variant.

    A binding a row's variant binds is the variant's. Otherwise it must be one value within every table row
    (a variant's seeds) and, across rows, one value among the rows whose variant includes no gin file (an
    included file may bind anything, so a row with includes may differ from the others)."""
    if "run_dir" not in runs.columns or "variant" not in runs.columns:
        return {}
    configs, variant_keys, includes = [], set(), {}
    for _, row in runs.iterrows():
        cfg = _config(row["run_dir"])
        if cfg is None:
            continue
        bindings = _variant_bindings(row.get("variant_bindings"))
        variant_keys |= set(bindings)
        includes[row["variant"]] = INCLUDE_KEY in bindings
        configs.append((row["variant"], cfg))
    keys = sorted({k for _, cfg in configs for k in cfg} - variant_keys - {SEED_KEY, NUMERICS_KEY})
    out: dict[str, list[str]] = {}
    for key in keys:
        by_variant: dict[str, set[str]] = defaultdict(set)
        for variant, cfg in configs:
            by_variant[variant].add(cfg.get(key, "(unset)"))
        plain = {v for variant, vals in by_variant.items() if not includes.get(variant) for v in vals}
        if any(len(vals) > 1 for vals in by_variant.values()) or len(plain) > 1:
            out[key] = sorted(set().union(*by_variant.values()))[:limit]
    return out


def _variant_bindings(value: Any) -> dict[str, Any]:
    """The row's variant_bindings (JSON text in the runs frame, as results.flatten_result keeps it)."""
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value) if isinstance(value, str) else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
