"""The budget sections of a budget sweep's FINDINGS.md (issue 20 §3), written by the tool from result.json.

findings.write_findings adds them whenever some run of the sweep was evaluated at several pre-training budgets.
They answer the issue's questions with numbers and intervals from whatever runs have finished (a partial sweep
says which runs are missing): does τ against the paper rise with budget (τ with its permutation p and seed
spread at every budget, and the trend of τ); where does each row cross ★ (the crossover tables, Holm-adjusted
marks); are the whole-input objectives still ahead at matched target tokens; what would the paper's step counts
give (Δ's trend per seed, extrapolated only where the trend is resolved); and the held-out loss per budget and
each run's wall time. With a measured sweep (`--check_against`), the interpolation check as well. Everything is
a pure function of the records, so the file regenerates byte for byte.
"""

from __future__ import annotations

import math

from t5explore.report.aggregate import BETTER, TIE, WORSE
from t5explore.report.budget import Along, has_budgets, read_along, total_dependent_note, total_dependent_rows
from t5explore.report.budget_check import check_table, interpolation_check
from t5explore.report.budget_runs import loss_table, progress_lines, wall_table
from t5explore.report.budget_tables import crossover_table, crossovers, mark_ranges
from t5explore.report.budget_tau import PAPER_STEPS, tau_by_budget, tau_table, tau_trend
from t5explore.report.budget_trends import Trend, delta_trends, pair_steps, still_ahead
from t5explore.report.budget_trends import whole_input_rows as split_rows
from t5explore.report.results import ReportError, Results
from t5explore.report.stats import EXACT_UP_TO, kendall_test
from t5explore.report.table_render import to_markdown
from t5explore.report.tables import MISSING, TextTable, format_p

PAPER_TOKENS_PER_STEP = 128 * 512  # the paper's batch (gin/runs/paper_scale.gin): 2^16 tokens per step


def budget_sections(
    results: Results, sweep: str, which: str = "best", paper_column: str | None = None, check: Results | None = None
) -> list[str]:
    """The Markdown parts (headings and blocks) after the ordinary findings; [] when no run has budgets."""
    res = results.for_sweep(sweep)
    if not has_budgets(res.runs):
        return []
    parts = ["## Along the pre-training budget\n", "\n".join(progress_lines(res, sweep)) + "\n"]
    warning = total_dependent_note(total_dependent_rows(res, sweep))
    parts += [f"**{warning}**\n"] if warning else []
    steps = read_along(res, sweep, "steps", which)
    tokens = _target_tokens(res, sweep, which)
    parts += tau_section(res, sweep, steps, paper_column)
    parts += [
        "### Where does each row cross ★?\n",
        to_markdown(crossover_table(res, sweep, "steps", which, crossovers(res, sweep, "steps", which, steps))),
    ]
    if tokens is not None:
        parts.append(
            to_markdown(
                crossover_table(
                    res, sweep, "target_tokens", which, crossovers(res, sweep, "target_tokens", which, tokens)
                )
            )
        )
    parts += matched_section(res, sweep, steps, tokens)
    parts += prediction_section(res, sweep, steps, paper_column)
    for table in (loss_table(res, sweep), wall_table(res, sweep)):  # each table's title is its heading
        parts += [to_markdown(table)] if table is not None else []
    if check is not None:
        checks = interpolation_check(res, check, "target_tokens", which)
        parts.append(to_markdown(check_table(checks, "target_tokens", sweep, check.sweep_names()[0])))
    return parts


def _target_tokens(res: Results, sweep: str, which: str) -> Along | None:
    """The sweep along target tokens, or None where some run did not record them (written before budgets)."""
    try:
        return read_along(res, sweep, "target_tokens", which)
    except ReportError:
        return None


def tau_section(res: Results, sweep: str, steps: Along, paper_column: str | None) -> list[str]:
    every = tau_by_budget(res, sweep, "steps", paper_column=paper_column, read=steps)
    pretrained = tau_by_budget(res, sweep, "steps", paper_column=paper_column, pretrained_only=True, read=steps)
    table = tau_table(every, sweep, "steps", pretrained)
    head = "### Does τ against the paper rise with budget?\n"
    if table is None:
        return [head, "- Fewer than 2 rows match the paper's rows at any budget: no τ.\n"]
    n = max(t.n for _, t in pretrained if t is not None) if any(t for _, t in pretrained) else 0
    lines = [_p_line(n)]
    trend = tau_trend(steps, res.sweeps[sweep], paper_column)
    if trend is None:
        lines.append("- τ of the pre-trained rows is known at fewer than 2 budgets: no trend.")
    else:
        verdict = (
            ("**rises** with budget" if trend.slope > 0 else "**falls** with budget")
            if trend.resolved
            else "not resolved: these runs do not say whether τ rises with budget"
        )
        lines.append(
            f"- Trend of τ (pre-trained rows only, {trend.rows} rows): {trend.slope:+.3f} per doubling of the steps "
            f"(least squares over {trend.budgets} budgets); its spread over seed-bootstrap resamples is "
            f"{_pair(trend.lo, trend.hi)} ({trend.resamples} distinct resamples of the seeds; a spread, not a "
            f"test): {verdict}."
        )
    return [head, to_markdown(table), "\n".join(lines) + "\n"]


def _p_line(n: int) -> str:
    if n <= 1:
        return "- p: too few rows for a permutation test."
    if n > EXACT_UP_TO:
        return f"- p: Monte Carlo permutation p over random orders of the {n} rows (two-sided)."
    floor = kendall_test(list(range(n)), list(range(n))).min_p
    return (
        f"- p: exact two-sided permutation p over all {math.factorial(n)} orders of the {n} pre-trained rows "
        f"(the smallest p {n} untied rows allow is {format_p(floor)}); the CI is the seed-bootstrap spread."
    )


def matched_section(res: Results, sweep: str, steps: Along, tokens: Along | None) -> list[str]:
    """Whole-input rows against the other pre-trained rows at equal steps and at equal target tokens."""
    head = "### At matched target tokens, are the whole-input objectives still ahead?\n"
    whole, others = split_rows(res, sweep)
    if tokens is None:
        return [head, "- The runs did not record target tokens: no matched comparison.\n"]
    if not whole or not others:
        missing = "no whole-input row" if not whole else "no other pre-trained row"
        return [head, f"- {missing.capitalize()} has finished a run yet: nothing to compare.\n"]
    by_steps, by_tokens = pair_steps(steps, whole, others), pair_steps(tokens, whole, others)
    header = ["Whole-input − other", "equal steps: ▲", "▼", TIE, "equal target tokens: ▲", "▼", TIE, "Δ first → last"]
    rows = []
    for pair, seq in by_tokens.items():
        known = [s for s in seq if s.delta is not None]
        ends = f"{known[0].delta.mean:+.2f} → {known[-1].delta.mean:+.2f}" if known else MISSING  # type: ignore[union-attr]
        cells = [
            mark_ranges(m, q, k) or MISSING
            for m, q in (("steps", by_steps[pair]), ("target_tokens", seq))
            for k in (BETTER, WORSE, TIE)
        ]
        rows.append([f"{pair[0]} − {pair[1]}", *cells, ends])
    every, some, never = still_ahead(by_tokens)
    notes = [
        f"Whole-input rows (target tokens ≥ 90% of input tokens at every budget): {', '.join(whole)}; the other "
        f"pre-trained rows: {', '.join(others)}. Δ = whole-input − other, paired by seed, at each budget of the "
        "crossover tables (steps, then target tokens; a seed not evaluated there interpolated, a row outside its "
        "range left out); ▲ / ▼ / ≈ after Holm over the pairs of that budget. Δ first → last: at matched target "
        "tokens, the first and last budgets both rows can be read at.",
    ]
    table = TextTable(
        f"{sweep}: whole-input objectives against the others", header, rows, [[False] * len(header)] * len(rows), notes
    )
    answer = [
        f"- Still resolved ahead at every matched target-token budget: {', '.join(every) or 'none'}.",
        f"- Ahead at some matched budgets only: {', '.join(some) or 'none'}.",
        f"- Never resolved ahead at matched target tokens: {', '.join(never) or 'none'}.",
    ]
    return [head, to_markdown(table), "\n".join(answer) + "\n"]


def prediction_section(res: Results, sweep: str, steps: Along, paper_column: str | None) -> list[str]:
    """Δ's trend per row, and an extrapolation to the paper's step counts only where it is resolved."""
    head = "### What would the paper's step counts give?\n"
    trends = delta_trends(steps, res.sweeps[sweep].baseline)
    if not trends:
        return [head, "- No row shares seeds with ★ at 2 or more budgets: no trend to extrapolate.\n"]
    targets = " | ".join(f"Δ at 2^{int(math.log2(t))} steps" for t in PAPER_STEPS)
    header = ["Variant", "Δ per doubling of steps", "p (raw / Holm)", "trend", *targets.split(" | ")]
    rows = [_trend_row(t) for t in trends]
    top = max(x for x, _, _ in steps.points)
    span = math.log2(top / min(x for x, _, _ in steps.points))
    ours = _tokens_per_step(res)
    notes = [
        "Per seed, a least-squares line of its paired Δ vs. ★ against log2(steps) over the budgets it can be read at; "
        "'±' = 95% t interval over seeds of the slopes (and of each seed's line at the paper's steps), p = one-sample "
        "t on the slopes, Holm-adjusted over the rows. ▲ = Δ rises with budget, ▼ = falls, ≈ = not resolved.",
    ]
    lines = [
        f"- The fits span {span:.1f} doublings (up to {top:,.0f} steps); 2^18 steps lie {math.log2(2**18 / top):.1f} "
        f"doublings beyond the largest budget and 2^19 (the paper's pre-training, gin/runs/paper_scale.gin) "
        f"{math.log2(2**19 / top):.1f}.",
        "- A Δ is extrapolated only where its trend is resolved; elsewhere the runs do not say which way it goes and "
        "no prediction is made. Where one is made, its interval covers the seeds' noise about each line, not whether "
        "Δ stays linear in log(steps) that far out: read it as a direction, not a number.",
    ]
    if ours:
        lines.append(
            f"- Our steps are {ours:,.0f} input tokens, the paper's {PAPER_TOKENS_PER_STEP:,}: at equal steps the "
            f"paper's model has seen {PAPER_TOKENS_PER_STEP / ours:,.0f}× the tokens, a further "
            f"{math.log2(PAPER_TOKENS_PER_STEP / ours):.1f} doublings along input tokens."
        )
    trend = tau_trend(steps, res.sweeps[sweep], paper_column)
    if trend is not None and trend.predicted:
        at = ", ".join(f"2^{int(math.log2(t))}: {v[0]:.2f} {_pair(v[1], v[2])}" for t, v in trend.predicted.items())
        lines.append(
            f"- τ (pre-trained rows), extrapolated along its resolved trend (spread over seed resamples): {at}."
        )
    elif trend is not None:
        lines.append("- τ at the paper's steps: not predicted, since the trend of τ is not resolved.")
    table = TextTable(f"{sweep}: Δ vs. ★ against log2(steps)", header, rows, [[False] * len(header)] * len(rows), notes)
    return [head, to_markdown(table), "\n".join(lines) + "\n"]


def _trend_row(t: Trend) -> list[str]:
    s = t.slope
    slope = f"{s.mean:+.2f} ± {s.half:.2f}" if s.known else f"{s.mean:+.2f}"
    p = f"{format_p(s.p)} / {format_p(t.p_holm)}"
    verdict = t.mark or "n/a (one seed)"
    cells = []
    for target in PAPER_STEPS:
        iv = t.predicted.get(target)
        cells.append(f"{iv.mean:+.1f} ± {iv.half:.1f}" if iv is not None and iv.known else "not predicted")
    return [t.variant, slope, p, f"{verdict} over {t.budgets} budgets", *cells]


def _tokens_per_step(res: Results) -> float | None:
    runs = res.runs
    if "pretrain.tokens_seen" not in runs or "pretrain.steps" not in runs:
        return None
    pre = runs[(runs["pretrain.steps"].fillna(0) > 0)]
    if not len(pre):
        return None
    return float((pre["pretrain.tokens_seen"] / pre["pretrain.steps"]).median())


def _pair(lo: float, hi: float) -> str:
    return "n/a" if math.isnan(lo) else f"[{lo:+.2f}, {hi:+.2f}]"
