"""Tables and plots along the pre-training budget, on hand-made schema-3 results with known per-seed curves.

The sweep (k = log2(steps / 100); seeds s = 0, 1, 2):
  ★ BERT-style           steps 100, 200, 400, 800: stdlib acc 50 + 10k + s;        target tokens 1000 per step
  Prefix language model  steps 100, 200, 400:      61 + 2k + s + e_s, e = 0/.4/-.4; target tokens  300 per step
  Deshuffling            steps 100, 400, 800:      ★ + d(k) + f_s, f = 0/1/-1, d = 20, -0.5, +0.5
  No pre-training        no budgets:               10 + s
so prefix LM − ★ = 11 − 8k + e_s crosses 0 at k = 11/8 (259 steps), and deshuffling − ★ is +20 at 100 steps,
+9.75 at 200 (interpolated half-way in log steps) and a tie from 400 on.
"""

from __future__ import annotations

import argparse
import math

import pytest
from test_report_helpers import write_sweep_json

from t5explore.io_utils import atomic_write_json, atomic_write_text
from t5explore.report.budget import INTERPOLATED, matched_results, read_at, run_points
from t5explore.report.budget_plots import budget_figure, tau_figure
from t5explore.report.budget_tables import budget_table, crossover_table, crossovers
from t5explore.report.budget_tau import tau_by_budget
from t5explore.report.commands import add_commands
from t5explore.report.results import ReportError, load_results
from t5explore.report.table_render import to_markdown
from t5explore.results_schema import RunResult

SWEEP = "budget_test"
STAR, PLM, DES, NPT = "BERT-style", "Prefix language modeling", "Deshuffling", "No pre-training"
E, F = (0.0, 0.4, -0.4), (0.0, 1.0, -1.0)
D_DES = {100: 20.0, 400: -0.5, 800: 0.5}
KEY = "downstream.stdlib_module.best.accuracy"


def star_score(steps: int, s: int) -> float:
    return 50 + 10 * math.log2(steps / 100) + s


def score(variant: str, steps: int, s: int) -> float:
    if variant == STAR:
        return star_score(steps, s)
    if variant == PLM:
        return 61 + 2 * math.log2(steps / 100) + s + E[s]
    return star_score(steps, s) + D_DES[steps] + F[s]


def npt_score(s: int) -> float:
    return 10.0 + s


STEPS = {STAR: (100, 200, 400, 800), PLM: (100, 200, 400), DES: (100, 400, 800)}
TARGET_PER_STEP = {STAR: 1000, PLM: 300, DES: 500}


def _downstream(acc: float) -> dict:
    scores = {"accuracy": acc, "invalid_predictions": 1.0}
    return {"stdlib_module": {"best": scores, "last": scores, "best_step": 600, "primary_metric": "accuracy"}}


def _result(variant: str, seed: int) -> RunResult:
    name = f"{variant.split()[0].lower()}__seed_{seed}"
    common = dict(sweep=SWEEP, run=name, variant=variant, seed=seed, baseline=variant == STAR, scale="test")
    if variant == NPT:
        pre = {"steps": 0, "tokens_seen": 0, "final_loss": None, "eval_loss": None}
        return RunResult(**common, pretrain=pre, downstream=_downstream(npt_score(seed)))
    budgets = [
        {
            "steps": k,
            "input_tokens": k * 2048,
            "target_tokens": k * TARGET_PER_STEP[variant],
            "flops": k * 1e9,
            "wall_s": k * 0.5,
            "pretrain": {"loss": 5.0 - math.log2(k / 100), "held_out_loss": 5.1 - math.log2(k / 100)},
            "downstream": _downstream(score(variant, k, seed)),
            "benchmarks": {"best": {}, "last": {}},
            "bootstrap": None,
        }
        for k in STEPS[variant]
    ]
    last = STEPS[variant][-1]
    pre = {"steps": last, "tokens_seen": last * 2048, "final_loss": 1.0, "eval_loss": 1.1}
    return RunResult(
        **common,
        objective=variant.lower(),
        pretrain=pre,
        downstream=_downstream(score(variant, last, seed)),
        budgets=budgets,
    )


@pytest.fixture()
def sweep_dir(tmp_path):
    return _write_sweep(tmp_path / "results" / SWEEP)


def _write_sweep(root):
    planned = []
    for variant in (STAR, PLM, DES, NPT):
        for seed in range(3):
            result = _result(variant, seed)
            atomic_write_text(root / result.run / "config.gin", "# test\n")
            atomic_write_json(root / result.run / "result.json", result.to_json())
            planned.append((result.run, variant))
    write_sweep_json(root, SWEEP, planned, STAR)
    return root


def _points(sweep_dir, run, measure="steps"):
    runs = load_results(sweep_dir).runs
    return run_points(runs[runs["run"] == run].iloc[0], measure)


def test_interpolation_is_exact_at_evaluated_points_and_linear_in_log_budget_between(sweep_dir):
    points = _points(sweep_dir, "bert-style__seed_1")
    assert [p.x for p in points] == [100, 200, 400, 800]
    for k in (100, 200, 400, 800):
        rec, _, between = read_at(points, k, "★", "steps")
        assert rec[KEY] == star_score(k, 1) and not between
    rec, _, between = read_at(points, 150, "★", "steps")
    w = math.log(1.5) / math.log(2)  # log-linear: 0.585 of the way from 100 to 200, not 0.5
    assert between and rec[KEY] == pytest.approx((1 - w) * 51 + w * 61)
    assert rec[KEY] == pytest.approx(star_score(150, 1))  # the curve is linear in log(steps), so exact
    assert rec["pretrain.final_loss"] == pytest.approx(5.0 - math.log2(1.5))
    # Deshuffling has no 200-step point: half-way in log steps between its 100- and 400-step scores.
    rec, _, between = read_at(_points(sweep_dir, "deshuffling__seed_2"), 200, "D", "steps")
    assert between and rec[KEY] == pytest.approx((score(DES, 100, 2) + score(DES, 400, 2)) / 2)


def test_matched_runs_are_ordinary_rows_and_interpolated_seeds_are_recorded(sweep_dir):
    results = load_results(sweep_dir)
    m = matched_results(results, SWEEP, "steps", 200)
    runs = m.results.runs.set_index("run")
    assert runs.loc["deshuffling__seed_0", KEY] == pytest.approx(star_score(200, 0) + 9.75)
    assert runs.loc["bert-style__seed_2", KEY] == star_score(200, 2)
    assert runs.loc["no__seed_1", KEY] == 11.0  # budget 0, as it is
    assert m.interpolated == {DES: {0, 1, 2}} and m.unbudgeted == {NPT}
    # target tokens: prefix LM's 400-step point is 120k target tokens (its own point); ★ is read at 120 steps.
    m = matched_results(results, SWEEP, "target_tokens", 120_000)
    runs = m.results.runs.set_index("run")
    assert runs.loc["prefix__seed_0", KEY] == score(PLM, 400, 0)
    assert runs.loc["bert-style__seed_0", KEY] == pytest.approx(star_score(120, 0))
    assert set(m.interpolated) == {STAR, DES}


def test_budget_table_marks_interpolated_cells_and_says_where_it_is(sweep_dir):
    table, _, _ = budget_table(load_results(sweep_dir), SWEEP, "steps", 200)
    text = to_markdown(table)
    assert table.title == f"{SWEEP} at steps = 200"
    rows = {r[0]: r for r in table.rows}
    acc = table.header.index("stdlib acc")
    assert rows[DES][acc].endswith(INTERPOLATED) and rows[DES][acc + 1].endswith(f"▲ {INTERPOLATED}")
    assert rows[DES][acc + 1].startswith("+9.75 ± 2.48")  # t(0.975, 2) · 1 / √3 = 2.48
    assert not any(INTERPOLATED in c for c in rows[f"★ {STAR}"] + rows[PLM] + rows[NPT])
    assert "steps = 200" in text and f"(seeds interpolated: {DES} 3/3)" in text
    assert f"{NPT}: budget 0" in text
    assert "Kendall τ-b" in text and "rank agreement only" in text


def test_extrapolation_is_refused_naming_the_row(sweep_dir):
    with pytest.raises(ReportError, match=r"row 'Prefix language modeling' .*100 to 400 only; 800 is outside"):
        budget_table(load_results(sweep_dir), SWEEP, "steps", 800)
    with pytest.raises(ReportError, match="outside that range"):
        budget_table(load_results(sweep_dir), SWEEP, "steps", 50)


def test_crossovers_find_the_known_ranges_and_crossing(sweep_dir):
    results = load_results(sweep_dir)
    steps = crossovers(results, SWEEP, "steps")
    assert [s.mark for s in steps[PLM]] == ["▲", "▲", "▼", ""] and steps[PLM][3].delta is None
    assert [round(s.delta.mean, 6) for s in steps[PLM][:3]] == [11, 3, -5]
    table = crossover_table(results, SWEEP, "steps")
    rows = {r[0]: r for r in table.rows}
    assert rows[PLM][1:5] == ["100–200", "400", "–", "≈ 259"]  # 100 · 2^(11/8) = 259.4
    assert rows[DES][1:5] == ["100–200", "–", "400–800", "≈ 387, ≈ 566"]
    assert rows[f"{NPT} (budget 0, constant)"][2] == "100–800"  # labelled: no budget axis
    assert any("Prefix language modeling (800)" in n for n in table.notes)


def test_tau_by_budget_uses_the_paper_order(sweep_dir):
    taus = dict(tau_by_budget(load_results(sweep_dir), SWEEP, "steps"))
    # paper (GLUE): ★ 82.96 > PLM 80.69 > Des 73.17 > NPT 66.22.
    # 100 steps: ours Des 71 > PLM 62 > ★ 51 > NPT 11: 3 of 6 pairs agree, τ = 0.
    # 400 steps: ours ★ 71 > Des 70.5 > PLM 66 > NPT 11: 5 of 6 agree, τ = 2/3.
    assert taus[100].tau == pytest.approx(0.0) and taus[100].n == 4 and taus[100].paper_column == "GLUE"
    assert taus[400].tau == pytest.approx(2 / 3)
    assert taus[800].n == 3  # prefix LM cannot be read at 800 steps
    # Without no pre-training (last in both orders) at 400 steps: ★ > Des > PLM vs. ★ > PLM > Des: τ = 1/3.
    pretrained = dict(tau_by_budget(load_results(sweep_dir), SWEEP, "steps", pretrained_only=True))
    assert pretrained[400].tau == pytest.approx(1 / 3) and pretrained[400].n == 3
    assert not math.isnan(taus[100].lo)


def test_budget_plots_have_log_axes_labelled_with_units(sweep_dir):
    from t5explore.report.aggregate import summarize

    results = load_results(sweep_dir)
    fig = budget_figure(results, SWEEP, summarize(results, SWEEP))
    axes = [ax for ax in fig.axes if ax.get_xlabel()]
    assert [ax.get_xlabel() for ax in axes] == [
        "pre-training steps (optimizer updates), log scale",
        "pre-training compute (FLOPs), log scale",
        "loss-bearing target tokens seen (tokens), log scale",
    ]
    assert all(ax.get_xscale() == "log" for ax in axes)
    assert all("stdlib" in ax.get_ylabel() for ax in axes)
    line = next(ln for ln in axes[0].get_lines() if ln.get_label().startswith(f"★ {STAR}"))
    assert list(line.get_xdata()) == [100, 200, 400, 800] and list(line.get_ydata()) == [51, 61, 71, 81]
    assert any(ln.get_label().startswith(f"{NPT} (budget 0") for ln in axes[0].get_lines())
    assert any("Paper's GLUE order" in t.get_text() for t in fig.texts)
    (tau,) = tau_figure(results, SWEEP, measures=("steps",)).axes
    assert tau.get_xscale() == "log" and tau.get_ylabel() == "Kendall τ-b vs. paper's GLUE"
    assert tau.get_xlabel() == "pre-training steps (optimizer updates), log scale"
    assert list(tau.get_lines()[0].get_xdata()) == [100, 200, 400, 800]  # ★'s evaluated budgets
    assert tau.get_lines()[0].get_ydata()[2] == pytest.approx(2 / 3)


def _cli(argv):
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args, [], [])


def test_cli_end_to_end(sweep_dir, tmp_path, capsys):
    out = tmp_path / "tables"
    assert _cli(["table", str(sweep_dir), "--budget=steps", "--at=300", "--crossovers", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"### {SWEEP} at steps = 300" in printed and f"### {SWEEP}: crossovers against ★ along steps" in printed
    assert (out / f"{SWEEP}_at_steps_300.md").is_file() and (out / f"{SWEEP}_crossovers_steps.tex").is_file()
    assert (out / f"{SWEEP}_tau_by_steps.csv").is_file()
    row = next(ln for ln in printed.splitlines() if ln.startswith("| 400 | 0.67 |")).split(" | ")
    assert row[3] == "4" and row[5:8:2] == ["0.33", "3"]  # τ and n of all rows, then of the pre-trained rows
    assert _cli(["table", str(sweep_dir), "--budget=steps", "--at=600", "--format=md"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "row 'Prefix language modeling'" in err[0] and "extrapolation is refused" in err[0]
    assert _cli(["table", str(sweep_dir), "--at=300"]) == 2
    assert "need --budget" in capsys.readouterr().err


@pytest.mark.slow  # ~10 s on 2 busy cores: τ's bootstrap at every budget of three measures, and PNG rendering
def test_cli_plot_writes_the_budget_pngs(sweep_dir, tmp_path, capsys):
    assert _cli(["plot", str(sweep_dir), "--out", str(tmp_path / "p")]) == 0  # budgets: the budget plots too
    paths = [tmp_path / "p" / f"{SWEEP}_{kind}.png" for kind in ("budget", "budget_tau")]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)
    assert f"wrote {paths[0]}" in capsys.readouterr().out


def test_plot_budget_without_budgets_is_an_error(tmp_path, capsys):
    root = tmp_path / "old"
    result = _result(NPT, 0)
    atomic_write_text(root / result.run / "config.gin", "# test\n")
    atomic_write_json(root / result.run / "result.json", result.to_json())
    assert _cli(["plot", str(root), "--budget"]) == 2
    assert "no run under" in capsys.readouterr().err
    assert _cli(["plot", str(root), "--out", str(tmp_path / "p")]) == 0  # without --budget: the usual plots only
    assert [p.name for p in (tmp_path / "p").iterdir()] == [f"{SWEEP}_scores.png"]


def test_budget_objectives_sweep_validates_and_matches_its_paper_rows(clean_gin):
    """Every run of experiments/budget_objectives.gin builds a valid Pretrain config (budgets 200-3,200 on a
    schedule that does not depend on the total; the no-pre-training row without budgets), and its row names
    find their own rows of the paper's Tables 4-7 (so τ along the budget compares each with its paper score)."""
    from t5explore.config import parse_gin
    from t5explore.report.aggregate import summarize
    from t5explore.report.budget_tau import paper_rows
    from t5explore.run_config import Pretrain
    from t5explore.sweep.grid import load_sweep

    spec = load_sweep("experiments/budget_objectives.gin")
    budgets = {}
    for r in spec.runs:
        parse_gin(r.gin_files, r.bindings)
        pre = Pretrain()
        pre.validate()
        budgets[r.variant] = pre.budget_steps()
    assert budgets.pop(NPT) == []
    assert len(budgets) == 5 and all(list(b) == [200, 400, 800, 1600, 3200] for b in budgets.values())
    results = load_results_for_names([r.variant for r in spec.runs if r.seed == 0], spec.runs[0].variant)
    glue = {v: row.scores["GLUE"] for v, row in paper_rows(summarize(results), results.sweeps["x"]).items()}
    assert glue == {
        STAR: 82.96,
        "Replace corrupted spans": 83.28,
        "μ = 3": 83.49,
        DES: 73.17,
        PLM: 80.69,
        NPT: 66.22,
    }
    # Not a paper table's sweep: names only, so an alias of another table's row (Table 5's 'span corruption')
    # and the paper's ★ do not stand in for rows the paper does not have.
    other = load_results_for_names(["T5 span corruption", "UL2 mixture of denoisers"], "T5 span corruption")
    assert paper_rows(summarize(other), other.sweeps["x"]) == {}


def load_results_for_names(variants, baseline):
    """A Results with one empty run per variant name (enough for paper-row matching)."""
    import pandas as pd

    from t5explore.report.results import Results, SweepInfo

    runs = pd.DataFrame({"sweep": "x", "run": variants, "variant": variants, "seed": 0, "baseline": False})
    empty = pd.DataFrame(columns=["sweep", "run", "variant", "run_dir", "reason"])
    return Results(runs, empty, empty, {"x": SweepInfo("x", list(variants), baseline)})


def test_csv_files_carry_the_numbers(sweep_dir, tmp_path):
    import pandas as pd

    from t5explore.report.budget_tables import write_budget_tables

    _, paths = write_budget_tables(load_results(sweep_dir), tmp_path, ["csv"], "steps", 200, along=True)
    at, cross, tau = (pd.read_csv(p) for p in paths)
    assert at.set_index("variant")["interpolated seeds"].to_dict() == {STAR: 0, PLM: 0, DES: 3, NPT: 0}
    assert at.set_index("variant").loc[DES, "stdlib acc"] == pytest.approx(star_score(200, 1) + 9.75)
    plm = cross[cross["variant"] == PLM]
    assert list(plm["steps"]) == [100, 200, 400, 800] and list(plm["delta"].round(6)[:3]) == [11, 3, -5]
    assert plm["delta"].isna().iloc[3] and list(tau["n"]) == [4, 4, 4, 3]


def test_a_total_dependent_schedule_is_labelled_in_every_table_and_plot(sweep_dir, tmp_path):
    import json

    from t5explore.report.aggregate import summarize
    from t5explore.report.budget_tables import write_budget_tables

    path = sweep_dir / "deshuffling__seed_1" / "result.json"
    data = json.loads(path.read_text())
    for entry in data["budgets"][:-1]:  # the final step is a run of its own length
        entry["schedule_depends_on_total"] = True
    atomic_write_json(path, data)
    results = load_results(sweep_dir)
    text, _ = write_budget_tables(results, tmp_path, ["md"], "steps", 200, along=True)
    assert text.count(f"Schedule depends on the total: {DES} evaluated budgets") == 3  # at 200, crossovers, τ
    fig = budget_figure(results, SWEEP, summarize(results, SWEEP), measures=("steps",))
    assert f"schedule depends on the total steps for {DES}" in fig._suptitle.get_text().replace("\n", " ")


def test_zero_crossings_need_a_change_of_sign():
    from t5explore.report.budget_tables import Step, zero_crossings
    from t5explore.report.stats import Interval

    def seq(*deltas):
        return [Step(100.0 * 2**i, Interval(d), "") for i, d in enumerate(deltas)]

    assert zero_crossings(seq(1.0, -3.0)) == [pytest.approx(100 * 2**0.25)]  # a quarter of the way in log
    assert zero_crossings(seq(2.0, 0.0, 0.0, -1.0)) == [200.0]  # exactly 0 between the signs: where it starts
    assert zero_crossings(seq(0.0, 0.0, 0.0)) == [] and zero_crossings(seq(1.0, 0.0, 2.0)) == []


def test_scores_without_an_order_give_no_tau_plot_instead_of_failing(tmp_path, monkeypatch):
    """Every row scoring the same (as tiny smoke-test runs all score 0) leaves τ undefined at every budget:
    the τ figure is left out and its table cells say n/a."""
    from t5explore.report.budget_tau import tau_table

    monkeypatch.setattr(__import__(__name__), "score", lambda variant, steps, s: 0.0)
    monkeypatch.setattr(__import__(__name__), "npt_score", lambda s: 0.0)
    root = _write_sweep(tmp_path / SWEEP)
    results = load_results(root)
    table = tau_table(tau_by_budget(results, SWEEP, "steps"), SWEEP, "steps")
    assert table is not None and {row[1] for row in table.rows} == {"–"}
    assert tau_figure(results, SWEEP, measures=("steps",)) is None  # was: a log axis with no data, a crash
