"""`t5explore table` and `t5explore plot`: a results directory -> tables / PNGs next to it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

# pandas, scipy and matplotlib are imported when a command runs, not to build the parser (`--help` stays fast).
FORMAT_NAMES = ("md", "csv", "latex", "html")  # t5explore.report.sweep_tables.FORMATS
BUDGET_MEASURES = ("steps", "flops", "input_tokens", "target_tokens")  # t5explore.report.budget.MEASURES


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_table_command(subparsers)
    add_plot_command(subparsers)


def add_table_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    table = subparsers.add_parser(
        "table",
        help="comparison tables (md, csv, LaTeX, HTML) of a results directory",
        description="Aggregate seeds per variant (mean ± 95% CI over seeds, Student t; one seed: the run's "
        "bootstrap CI over evaluation examples), add Δ vs. the ★ baseline paired by seed (▲ / ▼ "
        "resolved, ≈ tie), bold the best and every variant not significantly worse than it (paired "
        "t-test), and say how many seeds would resolve a 1-point Δ; print Markdown and write the "
        "chosen formats. Also writes <sweep>_vs_paper.* (Kendall τ with a CI over seeds) when the "
        "sweep reproduces a T5 table (2, 4-7), and <sweep>_vs_bart.* (order only: BART's tasks differ) for a BART "
        "noising sweep; rows of different architectures also show Params, FLOPs/example and Table 2's P / M. "
        "With --budget (runs evaluated at several pre-training budgets): "
        "the rows at one matched budget (--at) and/or crossovers and τ along the budget (--crossovers) instead.",
    )
    table.add_argument("dir", help="a sweep directory, several sweeps, or a parent of sweeps")
    table.add_argument(
        "--format", default="md,csv,latex,html", help=f"comma-separated, from {','.join(FORMAT_NAMES)} (default: all)"
    )
    table.add_argument("--out", default=None, help="where to write the tables (default: DIR)")
    table.add_argument("--per_task", action="store_true", help="also write per-task breakdown tables")
    table.add_argument(
        "--baseline_std",
        default=None,
        help="use the paper's rule (bold = within 2σ of the best) instead of the paired test "
        "for the columns given a σ: 'paper' (T5's baseline std over 10 runs) or "
        "'GLUE=0.235,SQuAD EM=0.343' (column label, key or paper column)",
    )
    table.add_argument("--last", action="store_true", help="use the last checkpoint's scores, not the best")
    table.add_argument("--paper_table", default=None, help="compare with T5 table N (4-7) whatever the sweep name")
    table.add_argument(
        "--paper_column",
        default=None,
        metavar="COL",
        help="when the sweep shares no score column with the paper (e.g. scored only on the built-in task), "
        "rank each of our score columns against the paper's column COL (e.g. GLUE; an unknown name lists "
        "them): the tasks differ, so Kendall τ then says only whether the variants come out in the "
        "paper's order, not whether the scores match. Ignored when some column is shared (those are compared)",
    )
    table.add_argument(
        "--findings",
        action="store_true",
        help="also write DIR/FINDINGS.md (one sweep): setting, table, resolved differences and ties, "
        "the paper beside ours with Kendall τ, compute; for runs evaluated at several pre-training budgets also "
        "τ by budget and its trend, crossovers, matched target tokens, a prediction for the paper's steps, "
        "held-out loss and wall time per run",
    )
    table.add_argument(
        "--notes", default=None, help="with --findings: a Markdown file of interpretation, copied in verbatim"
    )
    table.add_argument(
        "--columns",
        default="",
        metavar="NAMES",
        help="comma-separated opt-in columns to add after the default ones, by label or key (e.g. Params: "
        "model.num_params; the list is report/columns.py's OPT_IN_COLUMNS; shown by default when rows differ "
        "in model.architecture); not with --budget",
    )
    table.add_argument(
        "--allow_mixed_numerics",
        action="store_true",
        help="tabulate a sweep whose runs were computed by code of different numerics versions "
        "(t5explore/numerics.py; refused otherwise), with a note under the table naming the mix",
    )
    add_budget_arguments(table)
    table.set_defaults(func=run_table)


def add_budget_arguments(table: argparse.ArgumentParser) -> None:
    """`table`'s options for runs evaluated at several pre-training budgets (report/budget*.py)."""
    table.add_argument(
        "--budget",
        default=None,
        choices=BUDGET_MEASURES,
        help="compare the rows at a matched pre-training budget (runs evaluated at several budgets, "
        "Pretrain.eval_at_steps): with --at, the table at one budget; with --crossovers, along the budget",
    )
    table.add_argument(
        "--at",
        default=None,
        type=float,
        metavar="VALUE",
        help="with --budget: the budget to rank at (e.g. --budget=target_tokens --at=1e6). Each seed uses its "
        "own evaluated point there, else is interpolated linearly in log(budget) between its two nearest "
        "evaluated points (cells marked †); a value outside a row's evaluated range is refused (exit 2)",
    )
    table.add_argument(
        "--crossovers",
        action="store_true",
        help="with --budget: per row, the budget ranges where Δ vs. ★ is resolved ▲, resolved ▼ or tied, "
        "computed at each budget ★ was evaluated at, and Kendall τ against the paper at each",
    )
    table.add_argument(
        "--check_against",
        default=None,
        metavar="DIR",
        help="with --budget, or --findings on a budget sweep: a sweep that pre-trained some of DIR's rows (same names "
        "and seeds) for one budget in between the ladder's evaluated ones; compares its measured scores with the "
        "ladder's interpolated ones at each run's own budget, per seed (the interpolation check, "
        "report/budget_check.py)",
    )


def add_plot_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    plot = subparsers.add_parser(
        "plot",
        help="PNG plots of a results directory",
        description="Loss curves, score bars and ours-vs-paper plots, as PNG; where runs were evaluated at "
        "several pre-training budgets, also score against budget and Kendall τ by budget (see --budget).",
    )
    plot.add_argument("dir", help="a sweep directory, several sweeps, or a parent of sweeps")
    plot.add_argument("--out", default=None, help="where to write the PNGs (default: DIR)")
    plot.add_argument("--last", action="store_true", help="use the last checkpoint's scores, not the best")
    plot.add_argument(
        "--budget",
        action="store_true",
        help="require the budget plots (score against steps, FLOPs and target tokens on a log axis with 95%% CI "
        "bands over seeds; Kendall τ vs. the paper by budget), drawn anyway whenever runs have budgets",
    )
    plot.add_argument(
        "--paper_column",
        default=None,
        metavar="COL",
        help="as for `table`: rank our scores against the paper's column COL (e.g. GLUE) when the sweep shares "
        "none with the paper; the ranks plot then shows whether the variants come out in the paper's order",
    )
    plot.set_defaults(func=run_plot)


def parse_baseline_std(text: str | None) -> dict[str, float] | str | None:
    """'paper' or 'NAME=VALUE,NAME=VALUE'."""
    from t5explore.report.results import ReportError

    if text is None or text.strip() == "paper":
        return None if text is None else "paper"
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, sep, value = item.rpartition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise ReportError(f"--baseline_std: expected NAME=NUMBER, got {item!r}") from None
    return out


def run_table(args: argparse.Namespace, gin_files: Sequence[str], gin_bindings: Sequence[str]) -> int:
    from t5explore.report.consistency import check_numerics
    from t5explore.report.paper import check_paper_column
    from t5explore.report.results import ReportError, load_results
    from t5explore.report.sweep_tables import markdown_table, write_tables

    check = getattr(args, "check_against", None)
    if args.budget is not None or args.at is not None or args.crossovers or (check and not args.findings):
        return run_budget_table(args)
    try:
        which = "last" if args.last else "best"
        std = parse_baseline_std(args.baseline_std)
        paper_column = check_paper_column(args.paper_column)
        formats = [f.strip() for f in args.format.split(",") if f.strip()]
        extra_columns = [c.strip() for c in getattr(args, "columns", "").split(",") if c.strip()]
        results = load_results(args.dir)  # read once, for the files and the printed table
        check_numerics(results, getattr(args, "allow_mixed_numerics", False))  # before any file is written
        paths = write_tables(
            args.dir,
            args.out,
            formats,
            per_task=args.per_task,
            which=which,
            baseline_std=std,
            paper_table=args.paper_table,
            results=results,
            paper_column=paper_column,
            extra_columns=extra_columns,
        )
        print(
            markdown_table(
                args.dir,
                which=which,
                baseline_std=std,
                paper_table=args.paper_table,
                results=results,
                paper_column=paper_column,
                extra_columns=extra_columns,
            )
        )
        if args.findings:
            from t5explore.report.findings import write_findings

            paths.append(
                write_findings(
                    args.dir,
                    notes=args.notes,
                    results=results,
                    paper_table=args.paper_table,
                    paper_column=paper_column,
                    check_against=check,
                )
            )
    except ReportError as e:
        print(f"t5explore table: {e}", file=sys.stderr)
        return 2
    for p in paths:
        print(f"wrote {p}")
    return 0


def run_budget_table(args: argparse.Namespace) -> int:
    """`table --budget=M --at=V` and/or `--crossovers`: the budget tables only (budget_tables.py)."""
    from t5explore.report.budget_tables import write_budget_tables
    from t5explore.report.consistency import check_numerics
    from t5explore.report.paper import check_paper_column
    from t5explore.report.results import ReportError, load_results

    try:
        if args.budget is None:
            raise ReportError("--at and --crossovers need --budget=steps|flops|input_tokens|target_tokens")
        check = getattr(args, "check_against", None)
        if args.at is None and not args.crossovers and check is None:
            raise ReportError(f"--budget={args.budget} needs --at=VALUE, --crossovers or --check_against=DIR")
        if args.findings or args.per_task or getattr(args, "columns", ""):
            raise ReportError("--budget does not combine with --findings, --per_task or --columns")
        formats = [f.strip() for f in args.format.split(",") if f.strip()]
        results = load_results(args.dir)
        check_numerics(results, getattr(args, "allow_mixed_numerics", False))  # as the ordinary tables do
        text, paths = write_budget_tables(
            results,
            args.out if args.out is not None else args.dir,
            formats,
            args.budget,
            args.at,
            args.crossovers,
            which="last" if args.last else "best",
            paper_column=check_paper_column(args.paper_column),
            check_against=load_results(check) if check is not None else None,
        )
    except ReportError as e:
        print(f"t5explore table: {e}", file=sys.stderr)
        return 2
    print(text)
    for p in paths:
        print(f"wrote {p}")
    return 0


def run_plot(args: argparse.Namespace, gin_files: Sequence[str], gin_bindings: Sequence[str]) -> int:
    from t5explore.report.budget_plots import write_budget_plots
    from t5explore.report.plots import write_plots  # matplotlib only when plotting
    from t5explore.report.results import ReportError

    try:
        which = "last" if args.last else "best"
        paths = write_plots(args.dir, args.out, which=which, paper_column=args.paper_column)
        paths += write_budget_plots(args.dir, args.out, which, required=args.budget)
    except ReportError as e:
        print(f"t5explore plot: {e}", file=sys.stderr)
        return 2
    for p in paths:
        print(f"wrote {p}")
    if not paths:
        print("no plots: no completed runs with metrics or scores", file=sys.stderr)
    return 0
