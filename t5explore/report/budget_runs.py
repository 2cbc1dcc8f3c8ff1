"""What a budget sweep's runs say about themselves: which are finished, the held-out loss at every budget, and
each run's wall time. FINDINGS.md states them so a reader can see a partial sweep for what it is, see
overfitting on the repeated epochs of a small corpus (the held-out loss would rise with budget), and see what
each run cost.
"""

from __future__ import annotations

import itertools
import math
from typing import TypeGuard

from t5explore.report.budget import run_points
from t5explore.report.formats import format_count, format_seconds
from t5explore.report.results import Results
from t5explore.report.stats import t_interval
from t5explore.report.tables import MISSING, TextTable

HELD_OUT = "pretrain.eval_loss"  # a budget entry's held_out_loss, as budget._flat names it
TRAIN = "pretrain.final_loss"


def progress_lines(results: Results, sweep: str) -> list[str]:
    """Per row: finished seeds of those planned; the runs still missing (failed or not complete), by name."""
    res = results.for_sweep(sweep)
    info = res.sweeps[sweep]
    done = res.runs
    planned: dict[str, list[str]] = {}
    for run, v in info.planned_runs.items():
        planned.setdefault(v, []).append(run)
    for run, v in zip(done.get("run", []), done.get("variant", [])):
        if run not in planned.setdefault(v, []):
            planned[v].append(run)
    why: dict[str, str] = {}
    for frame, default in ((res.failed, "failed"), (res.incomplete, "not complete")):
        for r, reason in zip(frame.get("run", []), frame.get("reason", [None] * len(frame))):
            why.setdefault(r, reason if isinstance(reason, str) and reason else default)
    finished = set(done.get("run", []))
    lines, missing = [], 0
    for v in info.variants or list(planned):
        runs = planned.get(v, [])
        seeds = sorted(int(s) for s in done[done["variant"] == v]["seed"]) if len(done) else []
        absent = [r for r in runs if r not in finished]
        missing += len(absent)
        gone = "; missing: " + ", ".join(f"{r} ({why.get(r, 'not started')})" for r in absent) if absent else ""
        lines.append(f"- {v}: {len(seeds)} of {len(runs)} runs finished (seeds {_seeds(seeds)}){gone}.")
    head = (
        f"- **Partial sweep**: {missing} planned run(s) have not finished; every number below is from the finished "
        "runs only and will change when the rest land."
        if missing
        else "- Every planned run has finished."
    )
    return [head, *lines]


def loss_table(results: Results, sweep: str) -> TextTable | None:
    """Held-out pre-training loss (mean ± 95% t over seeds) per row and step budget; None without budgets."""
    runs = results.for_sweep(sweep).runs
    cells: dict[str, dict[float, list[float]]] = {}
    train: dict[str, dict[float, list[float]]] = {}
    tokens: dict[float, float] = {}
    for _, r in runs.iterrows():
        for p in run_points(r, "steps") or []:
            rec = p.record or {HELD_OUT: r.get(HELD_OUT), TRAIN: r.get(TRAIN), "pretrain.tokens_seen": None}
            if _finite(rec.get(HELD_OUT)):
                cells.setdefault(r["variant"], {}).setdefault(p.x, []).append(float(rec[HELD_OUT]))
            if _finite(rec.get(TRAIN)):
                train.setdefault(r["variant"], {}).setdefault(p.x, []).append(float(rec[TRAIN]))
            if _finite(rec.get("pretrain.tokens_seen")):
                tokens.setdefault(p.x, float(rec["pretrain.tokens_seen"]))
    if not cells:
        return None
    steps = sorted({x for by in cells.values() for x in by})
    header = ["Variant", *(f"{x:,.0f} steps" + (f" ({format_count(tokens[x])})" if x in tokens else "") for x in steps)]
    header.append("held-out loss rises (mean over seeds)")
    rows = []
    for v, by in cells.items():
        means = {x: sum(vals) / len(vals) for x, vals in by.items()}
        rows.append([v, *(_cell(by.get(x)) for x in steps), _rises(means) or "no"])
    last = steps[-1]
    gaps = [
        f"{v} {sum(cells[v][last]) / len(cells[v][last]) - sum(t[last]) / len(t[last]):+.3f}"
        for v, t in train.items()
        if last in t and last in cells.get(v, {})
    ]
    notes = [
        "Held-out loss: the pre-training loss on the held-out split of the corpus at each budget (result.json "
        "`budgets[].pretrain.held_out_loss`), mean ± 95% t interval over seeds; the header gives the input tokens "
        "seen by then. Compare them with the corpus size to count epochs: a held-out loss that rises from one "
        "budget to the next while the training loss falls is overfitting the repeated corpus.",
    ]
    if gaps:
        notes.append(f"Held-out − training loss at {last:,.0f} steps (mean over seeds): {', '.join(gaps)}.")
    return TextTable(
        f"{sweep}: held-out pre-training loss by budget", header, rows, [[False] * len(header)] * len(rows), notes
    )


def wall_table(results: Results, sweep: str) -> TextTable | None:
    """One line per finished run: its wall time, pre-training and fine-tuning seconds, and the pre-training seconds
    at which it reached each budget (result.json timing and budgets[].wall_s)."""
    runs = results.for_sweep(sweep).runs
    if not len(runs):
        return None
    header = ["Run", "Variant", "wall time", "pre-training", "fine-tuning (all budgets)", "budget reached after"]
    rows = []
    for _, r in runs.sort_values(["variant", "seed"], kind="stable").iterrows():
        shared = r.get("shared_from")
        budgets = r.get("budgets") if isinstance(r.get("budgets"), list) else []
        reached = ", ".join(
            f"{b.get('steps'):,}: {format_seconds(float(b['wall_s']))}"
            for b in budgets
            if isinstance(b, dict) and _finite(b.get("wall_s")) and isinstance(b.get("steps"), int)
        )
        rows.append(
            [
                str(r["run"]),
                str(r["variant"]),
                _seconds(r.get("timing.total_s")) + (f" (copied from {shared})" if isinstance(shared, str) else ""),
                _seconds(r.get("timing.pretrain_s")),
                _seconds(r.get("timing.finetune_s")),
                reached or MISSING,
            ]
        )
    notes = [
        "Wall time as each run's result.json `timing` records it (all attempts summed), on the machine its setting "
        "names; 'budget reached after': pre-training seconds up to that step (`budgets[].wall_s`). Each budget is "
        "then fine-tuned and scored, which the fine-tuning column sums over the budgets."
    ]
    return TextTable(f"{sweep}: wall time of each run", header, rows, [[False] * len(header)] * len(rows), notes)


def _rises(means: dict[float, float]) -> str:
    xs = sorted(means)
    ups = [
        f"{a:,.0f} → {b:,.0f} ({means[b] - means[a]:+.3f})" for a, b in itertools.pairwise(xs) if means[b] > means[a]
    ]
    return ", ".join(ups)


def _cell(values: list[float] | None) -> str:
    if not values:
        return MISSING
    iv = t_interval(values)
    return f"{iv.mean:.3f} ± {iv.half:.3f}" if iv.known else f"{iv.mean:.3f} (n=1)"


def _seconds(v: object) -> str:
    return format_seconds(float(v)) if _finite(v) else MISSING


def _seeds(seeds: list[int]) -> str:
    return ", ".join(map(str, seeds)) or "none"


def _finite(v: object) -> TypeGuard[float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
