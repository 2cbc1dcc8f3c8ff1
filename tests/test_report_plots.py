"""Plots are written as real, non-trivial PNGs; the loss band is the seeds' mean ± std."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer
from test_report_helpers import GLUE_LABEL, SWEEP, known_sweep, loss_metrics, make_result, write_run

from t5explore.report.aggregate import summarize
from t5explore.report.commands import add_commands
from t5explore.report.plots import (
    LOSS_UNIT,
    MAX_WIDTH_IN,
    TOKENS_UNIT,
    delta_forest_figure,
    loss_curves_figure,
    mean_curve,
    score_bars_figure,
    write_plots,
)
from t5explore.report.results import load_results

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plot_command_writes_three_pngs_next_to_the_tables(tmp_path, capsys):
    sweep_dir = known_sweep(tmp_path)
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["plot", str(sweep_dir)])
    assert args.func(args, [], []) == 0
    names = sorted(p.name for p in sweep_dir.glob("*.png"))
    assert names == [
        f"{SWEEP}_delta.png",
        f"{SWEEP}_loss.png",
        f"{SWEEP}_scores.png",
        f"{SWEEP}_vs_paper.png",
        f"{SWEEP}_vs_paper_ranks.png",
    ]
    for p in sweep_dir.glob("*.png"):
        data = p.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, p
    assert "wrote" in capsys.readouterr().out


def test_no_loss_plot_without_metrics_and_no_paper_plot_for_other_sweeps(tmp_path):
    write_run(tmp_path / "quickstart", make_result("quickstart", "a", "A", 0, glue=70.0))
    paths = write_plots(tmp_path, tmp_path / "png")
    assert [p.name for p in paths] == ["quickstart_scores.png"]


def test_mean_curve_over_seeds():
    x = np.array([0.0, 10.0, 20.0])
    grid, mean, std = mean_curve([(x, np.array([4.0, 3.0, 2.0])), (x[:2], np.array([6.0, 5.0]))])
    np.testing.assert_allclose(grid, [0.0, 10.0])  # only where every seed has data
    np.testing.assert_allclose(mean, [5.0, 4.0])
    np.testing.assert_allclose(std, [np.sqrt(2), np.sqrt(2)])
    grid, mean, _ = mean_curve([(np.array([0.0, 10.0]), np.array([2.0, 4.0])), (np.array([5.0]), np.array([1.0]))])
    assert mean[0] == pytest.approx((2.0 + 1.0) / 2)  # interpolated onto the union of x values


@pytest.mark.parametrize("sweep", ["quickstart", "a_rather_long_sweep_name_" * 6])
def test_one_panel_scores_title_lies_inside_the_figure(tmp_path, sweep):
    write_run(tmp_path / "s", make_result(sweep, "a", "A", 0, glue=70.0))
    results = load_results(tmp_path)
    fig = score_bars_figure(summarize(results, sweep))
    assert len(fig.axes) == 1  # one score column: the narrowest figure
    renderer = fig.canvas.get_renderer()
    title, frame = fig.get_suptitle(), fig.bbox
    box = fig._suptitle.get_window_extent(renderer)
    assert sweep[:20] in title.replace("\n", "")
    assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, (box, frame)
    assert fig.get_figwidth() <= MAX_WIDTH_IN


def test_score_bars_carry_the_tables_intervals_values_and_metric_names(tmp_path):
    summary = summarize(load_results(known_sweep(tmp_path)))
    fig = score_bars_figure(summary)
    glue = fig.axes[0]
    assert glue.get_title() == GLUE_LABEL and glue.get_ylabel() == "GLUE average score"
    assert fig.axes[2].get_ylabel() == "stdlib accuracy (%)"
    assert [t.get_text() for t in glue.texts] == ["82.0", "86.0", "79.0", "–"]
    errorbars = next(c for c in glue.containers if isinstance(c, ErrorbarContainer))
    segments = errorbars.lines[2][0].get_segments()
    spans = {round(seg[0, 0]): (seg[:, 1].min(), seg[:, 1].max()) for seg in segments}  # bar index -> span
    cells = [summary.cell(v, "benchmarks.best.glue_average") for v in summary.variants]
    assert spans == {i: pytest.approx((c.lo, c.hi)) for i, c in enumerate(cells) if c.ci.known}  # the table's CIs
    assert spans[0] == pytest.approx((82 - 4.968275, 82 + 4.968275)) and 2 not in spans  # μ = 3: one seed, none
    title = " ".join(fig.get_suptitle().split())
    assert "error bars = 95% CI over seeds (Student t); none for one seed without a bootstrap" in title


def test_loss_band_and_paper_scatter_are_labelled(tmp_path):
    from t5explore.report.paper import compare_with_paper
    from t5explore.report.plots import loss_curves_figure, paper_scatter_figure

    results = load_results(known_sweep(tmp_path))
    summary = summarize(results)
    loss = loss_curves_figure(results, SWEEP, summary)
    assert "band: 95% CI of the mean, Student t" in " ".join(loss.get_suptitle().split())
    scatter = paper_scatter_figure(compare_with_paper(summary, results.sweeps[SWEEP]))
    assert scatter.axes[0].get_title() == f"{GLUE_LABEL}: Kendall τ = 0.33 [0.33, 0.33] (n=3)"
    assert scatter.axes[0].get_xlabel() == "ours (bars: 95% CI)"


def _loss_sweep(root, bindings: dict) -> tuple:
    for i, (variant, loss) in enumerate((("A", 3.0), ("B", 4.0))):
        result = make_result("s", f"run_{i}", variant, 0, baseline=i == 0, stdlib=50.0 + i, loss=loss)
        result["variant_bindings"] = bindings[variant]
        write_run(root / "s", result, loss_metrics(loss))
    results = load_results(root)
    return results, summarize(results, "s")


def test_loss_plot_has_units_and_one_panel_per_objective_when_losses_differ_in_meaning(tmp_path):
    results, summary = _loss_sweep(tmp_path / "a", {"A": {"Pretrain.steps": "100"}, "B": {"Pretrain.steps": "200"}})
    (ax,) = loss_curves_figure(results, "s", summary).axes  # same objective, same targets: one shared panel
    assert LOSS_UNIT in ax.get_ylabel() and ax.get_xlabel() == TOKENS_UNIT and len(ax.lines) == 2

    rates = {"A": {"span_corruption.noise_density": "0.15"}, "B": {"span_corruption.noise_density": "0.5"}}
    results, summary = _loss_sweep(tmp_path / "b", rates)
    fig = loss_curves_figure(results, "s", summary)
    assert [len(ax.lines) for ax in fig.axes] == [1, 1]  # one panel per row: nothing to compare across
    assert all(LOSS_UNIT in ax.get_ylabel() for ax in fig.axes) and "one panel per row" in fig.get_suptitle()
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata()[-1], 4.0)


def test_forest_plot_draws_each_delta_with_its_interval_and_mark(tmp_path):
    results = load_results(known_sweep(tmp_path))
    summary = summarize(results, SWEEP)
    fig = delta_forest_figure(summary)
    scores = [c for c in summary.columns if c.kind == "score" and c.better is not None]
    assert len(fig.axes) == len(scores)
    ax, col = fig.axes[0], scores[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["μ = 10", "μ = 3", "μ = 2"]  # ★ has no row; the first row on top; μ = 10 failed: no point
    cell = summary.cell("μ = 2", col.key)
    y = labels.index("μ = 2")
    points = [ln for ln in ax.lines if list(ln.get_ydata()) == [y] and ln.get_marker() not in ("", "None")]
    bars = [ln for ln in ax.lines if list(ln.get_ydata()) == [y, y]]
    assert points[0].get_xdata()[0] == pytest.approx(cell.delta.mean)
    assert list(bars[0].get_xdata()) == pytest.approx([cell.delta.lo, cell.delta.hi])
    assert any(ln.get_linestyle() == "--" and list(ln.get_xdata()) == [0, 0] for ln in ax.lines)  # the ★ line


def test_no_forest_plot_without_a_baseline(tmp_path):
    write_run(tmp_path / "q", make_result("q", "a", "A", 0, glue=70.0))
    assert delta_forest_figure(summarize(load_results(tmp_path), "q")) is None


def test_ranks_plot_joins_our_rank_to_the_papers_with_tau(tmp_path):
    from t5explore.report.paper import compare_with_paper
    from t5explore.report.plots import paper_rank_figure

    results = load_results(known_sweep(tmp_path))
    cmp = compare_with_paper(summarize(results), results.sweeps[SWEEP])
    fig = paper_rank_figure(cmp)
    ax = fig.axes[0]
    col = cmp.columns[0]
    frame = cmp.frame.dropna(subset=[f"{col.label} (ours)", cmp.paper_key(col)])
    ours = frame[f"{col.label} (ours)"].rank(ascending=False).tolist()
    paper = frame[cmp.paper_key(col)].rank(ascending=False).tolist()
    assert [list(ln.get_ydata()) for ln in ax.lines] == [[a, b] for a, b in zip(ours, paper)]
    assert ax.get_title().startswith(f"Kendall τ = {cmp.kendall[col.label][0]:.2f}")


def test_plot_paper_column_ranks_another_task_against_the_paper(tmp_path):
    for i, (variant, seed_scores) in enumerate((("i.i.d.", 30.0), ("μ = 2", 40.0), ("μ = 3", 35.0))):
        result = make_result(SWEEP, f"r{i}", variant, 0, baseline=i == 0, stdlib=seed_scores)
        write_run(tmp_path / SWEEP, result)
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["plot", str(tmp_path / SWEEP), "--paper_column=GLUE"])
    assert args.func(args, [], []) == 0
    assert (tmp_path / SWEEP / f"{SWEEP}_vs_paper_ranks.png").is_file()
    from t5explore.report.paper import compare_with_paper
    from t5explore.report.plots import paper_rank_figure

    results = load_results(tmp_path)
    fig = paper_rank_figure(compare_with_paper(summarize(results), results.sweeps[SWEEP], paper_column="GLUE"))
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["ours (stdlib acc)", "T5 paper (GLUE)"]
