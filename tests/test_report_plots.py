"""Plots are written as real, non-trivial PNGs; the loss band is the seeds' mean ± std."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from test_report_helpers import SWEEP, known_sweep, make_result, write_run

from t5explore.report.commands import add_commands
from t5explore.report.aggregate import summarize
from t5explore.report.plots import MAX_WIDTH_IN, mean_curve, score_bars_figure, write_plots
from t5explore.report.results import load_results

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plot_command_writes_three_pngs_next_to_the_tables(tmp_path, capsys):
    sweep_dir = known_sweep(tmp_path)
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["plot", str(sweep_dir)])
    assert args.func(args, [], []) == 0
    names = sorted(p.name for p in sweep_dir.glob("*.png"))
    assert names == [f"{SWEEP}_loss.png", f"{SWEEP}_scores.png", f"{SWEEP}_vs_paper.png"]
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
