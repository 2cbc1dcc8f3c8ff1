"""The T5 paper's numbers (data in paper/t5_tables.json) and the "paper side by side" comparison.

A sweep reproduces a T5 table when sweep.json names it (`"paper_table": "table7"`) or its name contains it
(`t5_table7_span_length`). Variants are matched to the paper's rows by name or alias (case, spacing, μ/mu and
punctuation ignored), by an explicit mapping, and the sweep's ★ baseline falls back to the table's ★ row.
Rank agreement per column is Kendall's τ-b between our means and the paper's scores, tested by permuting
the rows (stats.kendall_test: exact p over all orders up to 8 rows), also without the no-pre-training row
(the paper puts it far behind every objective, so agreeing on it says nothing about them). Its spread over
seeds is a bootstrap: each replicate draws the sweep's seeds with replacement (the same draw for every
variant, so the comparison stays paired), recomputes every variant's mean over the drawn seeds it has (its
full mean if it has none of them) and τ against the paper; the spread is the 2.5th-97.5th percentile,
and few seeds allow few distinct draws.

A sweep scored on none of the paper's columns (a CPU reproduction scored on the built-in task) can still be
compared by order: `paper_column="GLUE"` ranks every one of our score columns against the paper's GLUE. The
tasks differ, so such a τ says only whether the variants come out in the paper's order, never whether the
scores match; tables and FINDINGS.md label it so (`stdlib acc (ours)` beside `GLUE (paper)`, and a note).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
import pandas as pd

from t5explore.report.aggregate import Column, Summary
from t5explore.report.results import ReportError, SweepInfo
from t5explore.report.stats import (
    RankTest,
    SeedValues,
    distinct_resamples,
    kendall_tau_b,
    kendall_test,
    percentile_interval,
)
from t5explore.seeds import STREAM_REPORT_BOOTSTRAP, numpy_rng

DATA_FILE = "t5_tables.json"
TAU_REPLICATES = 1000


@dataclass(frozen=True)
class PaperRow:
    """One row of a paper table. `params` / `cost`: Table 2's budgets in the paper's notation ("2P", "M/2"),
    empty for the objective tables (every row there is the same model)."""

    name: str
    scores: dict[str, float]
    aliases: tuple[str, ...] = ()
    baseline: bool = False
    params: str = ""
    cost: str = ""


@dataclass(frozen=True)
class PaperTable:
    id: str
    title: str
    rows: tuple[PaperRow, ...]


@dataclass
class PaperComparison:
    """Our means beside the paper's scores for the columns both have, with Kendall τ per column."""

    sweep: str
    table: PaperTable
    source: str
    columns: list[Column]
    frame: pd.DataFrame  # variant, paper_row, then "<label> (ours)", "(ours ci_lo)", "(ours ci_hi)", "(ours ci)",
    #                      "(paper)" per column
    kendall: dict[str, tuple[float, float, int]] = field(default_factory=dict)  # label -> (tau, permutation p, n)
    kendall_ci: dict[str, tuple[float, float]] = field(default_factory=dict)  # label -> 95% spread over seeds
    kendall_resamples: dict[str, int] = field(default_factory=dict)  # label -> distinct seed draws behind the spread
    rank_test: dict[str, RankTest] = field(default_factory=dict)  # label -> τ with its permutation test
    rank_test_without_npt: dict[str, RankTest] = field(default_factory=dict)  # the same without no pre-training
    no_pretraining_row: str = ""  # the paper's name of that row
    unmatched: list[str] = field(default_factory=list)  # our variants with no paper row
    our_scores: list[str] = field(default_factory=list)  # labels of all our score columns
    paper_of: dict[str, str] = field(default_factory=dict)  # label -> the paper column it is compared with
    other_task: str | None = None  # the paper column our (different-task) scores are ranked against, if any

    def paper_key(self, column: Column) -> str:
        """The frame column holding the paper's score compared with `column`: `<label> (paper)` when the
        column is the paper's own, `<label> (paper's GLUE)` when it is a different task ranked against GLUE."""
        if self.other_task is None:
            return f"{column.label} (paper)"
        return f"{column.label} (paper's {self.other_task})"

    def paper_header(self, column: Column) -> str:
        """The header above the paper's numbers: `<label> (paper)` for a shared column, the paper's own
        column name (`GLUE (paper)`) beside a different task of ours."""
        if self.other_task is None:
            return f"{column.label} (paper)"
        return f"{self.other_task} (paper)"

    def different_tasks_line(self) -> str | None:
        """The warning that goes with a comparison across tasks (None when the columns are the paper's own)."""
        if self.other_task is None:
            return None
        ours = ", ".join(c.label for c in self.columns)
        return (
            f"Different tasks: our {ours} is not the paper's {self.other_task}. Kendall τ here measures only "
            f"whether the variants come out in the same order as in the paper's {self.other_task} column "
            "(rank agreement), not whether the scores match."
        )

    def no_shared_columns_line(self) -> str | None:
        """One line saying why there is nothing to compare, or None when some column is shared.

        Why: tiny runs scored only on the built-in task would otherwise print a table of variant names
        with an empty Kendall τ row, which reads like a broken comparison."""
        if self.columns:
            return None
        ours = ", ".join(self.our_scores) or "none"
        return (
            f"{self.sweep} vs. T5 paper {self.table.id}: no score column in common with the paper "
            f"(paper: {', '.join(paper_columns())}; ours: {ours}); comparison skipped."
        )


@functools.lru_cache(maxsize=1)
def paper_data() -> dict:
    """The raw JSON (package data), validated once."""
    text = resources.files("t5explore.report").joinpath("paper", DATA_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    n = len(data["columns"])
    for key in ("baseline", "baseline_std", "no_pretraining"):
        if len(data[key]["scores"]) != n:
            raise ReportError(f"{DATA_FILE}: {key}.scores must have {n} values")
    return data


def paper_columns() -> list[str]:
    return list(paper_data()["columns"])


def check_paper_column(column: str | None) -> str | None:
    """The paper's spelling of `column` (case ignored), None for None; an unknown name is an error listing
    the valid ones."""
    if column is None:
        return None
    known = {c.lower(): c for c in paper_columns()}
    if column.strip().lower() not in known:
        raise ReportError(
            f"--paper_column {column!r} is not a column of the T5 paper's tables; choose one of "
            f"{', '.join(paper_columns())}"
        )
    return known[column.strip().lower()]


def paper_source() -> str:
    return paper_data()["source"]


def paper_baseline_std() -> dict[str, float]:
    """The std of the paper's baseline over 10 runs, per paper column (GLUE, SQuAD, ...)."""
    d = paper_data()
    return dict(zip(d["columns"], d["baseline_std"]["scores"]))


def paper_table(table_id: str) -> PaperTable:
    """One of table2, table4..table7, with the baseline row's scores filled in and 'No pre-training' appended."""
    d = paper_data()
    key = _table_key(table_id)
    if key not in d["tables"]:
        raise ReportError(f"unknown T5 paper table {table_id!r}; known: {', '.join(d['tables'])}")
    cols = d["columns"]
    rows = []
    for r in d["tables"][key]["rows"]:
        scores = d["baseline"]["scores"] if r.get("baseline") else r["scores"]
        aliases, budget = tuple(r.get("aliases", ())), (r.get("params", ""), r.get("cost", ""))
        rows.append(PaperRow(r["name"], dict(zip(cols, scores)), aliases, bool(r.get("baseline")), *budget))
    npt = d["no_pretraining"]
    rows.append(PaperRow(npt["name"], dict(zip(cols, npt["scores"])), tuple(npt["aliases"])))
    return PaperTable(key, d["tables"][key]["title"], tuple(rows))


def detect_paper_table(info: SweepInfo) -> str | None:
    """The T5 table a sweep reproduces: sweep.json's `paper_table`, else 'tableN' in the sweep's name."""
    if info.paper_table:
        return _table_key(info.paper_table)
    m = re.search(r"table[\s_\-]*([24-7])(?!\d)", info.name.lower())
    return f"table{m.group(1)}" if m else None


def match_rows(
    variants: list[str], table: PaperTable, mapping: Mapping[str, str] | None = None, baseline: str | None = None
) -> dict[str, PaperRow]:
    """variant -> paper row. An explicit mapping wins; a mapping to an unknown row is an error."""
    by_name: dict[str, PaperRow] = {}
    for row in table.rows:
        for alias in (row.name, *row.aliases):
            by_name.setdefault(_norm(alias), row)
    out: dict[str, PaperRow] = {}
    for variant, target in (mapping or {}).items():
        if _norm(target) not in by_name:
            names = ", ".join(r.name for r in table.rows)
            raise ReportError(f"paper row {target!r} (for variant {variant!r}) is not in {table.id}: {names}")
        out[variant] = by_name[_norm(target)]
    for v in variants:
        if v not in out and _norm(v) in by_name:
            out[v] = by_name[_norm(v)]
    star = next((r for r in table.rows if r.baseline), None)
    if baseline in variants and baseline not in out and star is not None and star not in out.values():
        out[baseline] = star
    return out


def budget_labels(summary: Summary, table_id: str | None = None) -> dict[str, str]:
    """variant -> the paper's budget notation of its row ("2P, M", "P, M/2"), for the sweep's T5 table when
    that table states budgets (Table 2); empty otherwise. Rows are matched as for the comparison (names,
    aliases, sweep.json `paper_rows`), so a row shows the budget of the paper row it is compared with."""
    info = summary.info or SweepInfo(summary.sweep)
    table_id = table_id or detect_paper_table(info)
    if table_id is None or _table_key(table_id) not in paper_data()["tables"]:
        return {}
    matched = match_rows(summary.variants, paper_table(table_id), info.paper_rows, summary.baseline)
    return {v: ", ".join(b for b in (r.params, r.cost) if b) for v, r in matched.items() if r.params or r.cost}


def compare_with_paper(
    summary: Summary,
    info: SweepInfo,
    table_id: str | None = None,
    mapping: Mapping[str, str] | None = None,
    paper_column: str | None = None,
) -> PaperComparison | None:
    """Side-by-side frame and Kendall τ per compared column; None if the sweep reproduces no T5 table.

    The compared columns are those we share with the paper. Only when there are none does `paper_column`
    (e.g. "GLUE") matter: each of our score columns is then ranked against that paper column."""
    other_task = check_paper_column(paper_column)
    table_id = table_id or detect_paper_table(info)
    if table_id is None:
        return None
    table = paper_table(table_id)
    matched = match_rows(summary.variants, table, {**info.paper_rows, **(mapping or {})}, summary.baseline)
    columns, paper_of, other_task = _compared_columns(summary.columns, other_task)
    cmp = PaperComparison(
        summary.sweep,
        table,
        paper_source(),
        columns,
        pd.DataFrame(),
        unmatched=[v for v in summary.variants if v not in matched],
        our_scores=[c.label for c in summary.columns if c.kind == "score"],
        paper_of=paper_of,
        other_task=other_task,
        no_pretraining_row=paper_data()["no_pretraining"]["name"],
    )
    records = []
    for v in [v for v in summary.variants if v in matched]:
        rec: dict[str, object] = {"variant": v, "paper_row": matched[v].name}
        for c in columns:
            cell = summary.cell(v, c.key)
            rec.update(
                {
                    f"{c.label} (ours)": cell.mean,
                    f"{c.label} (ours ci_lo)": cell.lo,
                    f"{c.label} (ours ci_hi)": cell.hi,
                    f"{c.label} (ours ci)": cell.ci.kind or "",
                    cmp.paper_key(c): matched[v].scores[paper_of[c.label]],
                }
            )
        records.append(rec)
    ours = ("ours", "ours ci_lo", "ours ci_hi", "ours ci")
    names = [name for c in columns for name in [*(f"{c.label} ({s})" for s in ours), cmp.paper_key(c)]]
    cmp.frame = pd.DataFrame(records, columns=["variant", "paper_row", *names])
    pretrained = cmp.frame["paper_row"] != cmp.no_pretraining_row
    for c in columns:
        paper, ours = cmp.frame[cmp.paper_key(c)], cmp.frame[f"{c.label} (ours)"]
        test = cmp.rank_test[c.label] = kendall_test(ours, paper)
        cmp.kendall[c.label] = (test.tau, test.p, test.n)
        if not pretrained.all():
            cmp.rank_test_without_npt[c.label] = kendall_test(ours[pretrained], paper[pretrained])
        seeds = [summary.seed_values.get((v, c.key), SeedValues()) for v in cmp.frame["variant"]]
        cmp.kendall_ci[c.label] = kendall_tau_ci(seeds, list(paper))
        if not math.isnan(cmp.kendall_ci[c.label][0]):
            cmp.kendall_resamples[c.label] = distinct_resamples(seed_draws(_seeds(seeds)))
    return cmp


def _compared_columns(columns: list[Column], other_task: str | None) -> tuple[list[Column], dict[str, str], str | None]:
    """(our columns to compare, label -> paper column, the paper column of a cross-task comparison or None).

    Columns we share with the paper win; `other_task` is used only when there are none."""
    known = set(paper_columns())
    shared = [c for c in columns if c.paper is not None and c.paper in known]
    if shared or other_task is None:
        return shared, {c.label: str(c.paper) for c in shared}, None
    scores = [c for c in columns if c.kind == "score"]
    return scores, {c.label: other_task for c in scores}, other_task


def kendall_tau(ours: Iterable[float | None], paper: Iterable[float | None]) -> tuple[float, float, int]:
    """(τ-b, two-sided permutation p, n) over the pairs where both are known; τ is nan with fewer than 2."""
    test = kendall_test(ours, paper)
    return test.tau, test.p, test.n


def kendall_tau_ci(
    values: list[SeedValues], paper: list[float], replicates: int = TAU_REPLICATES
) -> tuple[float, float]:
    """95% bootstrap spread of τ over seeds (see the module doc); (nan, nan) when no variant has ≥ 2 seeds
    (resampling one seed changes nothing)."""
    seeds = _seeds(values)
    if not seeds or not any(len(sv.values) >= 2 for sv in values):
        return math.nan, math.nan
    table = np.array([[sv.values.get(k, math.nan) for k in seeds] for sv in values], np.float64)  # variant × seed
    full = np.array([np.nanmean(row) if np.isfinite(row).any() else math.nan for row in table])
    taus = []
    for draw in seed_draws(seeds, replicates):
        picked = table[:, draw]
        has = np.isfinite(picked)
        means = np.where(has.any(axis=1), np.nansum(picked, axis=1) / np.maximum(has.sum(axis=1), 1), full)
        taus.append(kendall_tau_b(means, paper))
    return percentile_interval(taus)


def seed_draws(seeds: list, replicates: int = TAU_REPLICATES) -> np.ndarray:
    """The bootstrap's draws of seed positions (replicates × seeds) from one fixed stream, so the spread and
    its count of distinct draws come from the same draws."""
    if not seeds:
        return np.zeros((0, 0), np.intp)
    return numpy_rng(0, STREAM_REPORT_BOOTSTRAP).integers(0, len(seeds), size=(replicates, len(seeds)))


def _seeds(values: list[SeedValues]) -> list:
    return sorted({k for sv in values for k in sv.values}, key=str)


def _table_key(table_id: str) -> str:
    m = re.fullmatch(r"(?:table)?[\s_\-]*([0-9]+)", str(table_id).strip().lower())
    return f"table{m.group(1)}" if m else str(table_id)


def _norm(name: str) -> str:
    s = name.lower().replace("μ", "mu").replace("★", "")
    return re.sub(r"[^a-z0-9%.]", "", s).strip(".")


def _nan(x: object) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


BART_DATA_FILE = "bart_tables.json"


@functools.lru_cache(maxsize=1)
def bart_data() -> dict:
    """BART's Table 1 (package data paper/bart_tables.json), validated once."""
    text = resources.files("t5explore.report").joinpath("paper", BART_DATA_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    n = len(data["columns"])
    bad = [r["name"] for t in data["tables"].values() for r in t["rows"] if len(r["scores"]) != n]
    if len(data["higher_is_better"]) != n or bad:
        raise ReportError(f"{BART_DATA_FILE}: every row and higher_is_better need {n} values ({bad})")
    return data


def bart_table() -> tuple[PaperTable, dict[str, bool]]:
    """BART's Table 1 noising rows, and per column whether higher is better (its perplexities are not).

    BART scores other tasks than ours (SQuAD 1.1, MNLI and four generation perplexities), so a comparison can
    only be by order: rank our scores against a column's scores, negated where lower is better."""
    d = bart_data()
    cols = d["columns"]
    table = d["tables"]["bart_table1"]
    rows = tuple(PaperRow(r["name"], dict(zip(cols, r["scores"])), tuple(r.get("aliases", ()))) for r in table["rows"])
    return PaperTable("bart_table1", table["title"], rows), dict(zip(cols, d["higher_is_better"]))
