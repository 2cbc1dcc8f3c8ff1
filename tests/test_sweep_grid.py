"""Sweep gin files expand to exactly the expected runs, names and bindings; malformed grids fail clearly."""

from __future__ import annotations

import pytest

from t5explore.config import ConfigError
from t5explore.sweep.grid import load_sweep

pytestmark = pytest.mark.usefixtures("clean_gin")


def write(tmp_path, text: str, name: str = "grid.gin") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_axes_expand_to_full_product_in_declared_order(tmp_path):
    f = write(
        tmp_path,
        """
Sweep.axes = {'iid_replace_spans.noise_density': ['0.1', '0.5'],
              'span_corruption.mean_noise_span_length': [2, 3, 10]}
Sweep.seeds = [0]
""",
    )
    spec = load_sweep(f)
    assert spec.name == "grid"
    assert [r.name for r in spec.runs] == [
        f"noise_density_{d}__mean_noise_span_length_{m}__seed_0" for d in ("0.1", "0.5") for m in (2, 3, 10)
    ]
    r = spec.runs[4]
    assert r.bindings == (
        "iid_replace_spans.noise_density = 0.5",
        "span_corruption.mean_noise_span_length = 3",
        "Experiment.seed = 0",
    )
    assert r.variant_bindings == {
        "iid_replace_spans.noise_density": "0.5",
        "span_corruption.mean_noise_span_length": "3",
    }
    assert r.gin_files == (f,) and r.seed == 0 and r.index == 4


def test_variants_keep_declared_order_and_are_not_a_product(tmp_path):
    f = write(
        tmp_path,
        """
Sweep.name = 'table5'
Sweep.variants = {
    'mass_style': {'Pretrain.objective': '@mass_style()'},
    'bert_style': {'Pretrain.objective': '@bert_style()', 'bert_style.noise_density': 0.15},
}
Sweep.seeds = [3]
Sweep.baseline = 'bert_style'
Sweep.display_names = {'mass_style': 'MASS-style', 'bert_style': 'BERT-style'}
""",
    )
    spec = load_sweep(f)
    assert spec.name == "table5"
    assert [(r.name, r.variant, r.baseline) for r in spec.runs] == [
        ("mass_style__seed_3", "MASS-style", False),
        ("bert_style__seed_3", "BERT-style", True),
    ]
    assert spec.runs[1].bindings == (
        "Pretrain.objective = @bert_style()",
        "bert_style.noise_density = 0.15",
        "Experiment.seed = 3",
    )
    assert spec.runs[1].metadata("table5") == {
        "sweep": "table5",
        "run": "bert_style__seed_3",
        "point": "bert_style",
        "variant": "BERT-style",
        "variant_bindings": {"Pretrain.objective": "@bert_style()", "bert_style.noise_density": "0.15"},
        "seed": 3,
        "baseline": True,
    }


def test_variants_times_axes_times_seeds_with_includes_and_overrides(tmp_path):
    inc = write(tmp_path, "# an objective building block\n", "prefix.gin")
    extra = write(tmp_path, "# a scale override\n", "scale.gin")
    f = write(
        tmp_path,
        f"""
Sweep.variants = [
    ['prefix', {{'include': '{inc}'}}],
    {{'name': 'spans', 'span_corruption.mean_noise_span_length': '3'}},
]
Sweep.axes = {{'Pretrain.steps': [0, 100]}}
Sweep.seeds = [0, 1]
""",
    )
    spec = load_sweep(f, overrides=["Experiment.notes = 'cli'", "Sweep.seeds = [0, 1]"], gin_files=[extra])
    assert [r.name for r in spec.runs] == [
        f"{v}__steps_{s}__seed_{seed}" for v in ("prefix", "spans") for s in (0, 100) for seed in (0, 1)
    ]
    first, last = spec.runs[0], spec.runs[-1]
    assert first.gin_files == (f, extra, inc)
    assert first.bindings == ("Pretrain.steps = 0", "Experiment.seed = 0", "Experiment.notes = 'cli'")
    assert first.variant_bindings == {"include": inc, "Pretrain.steps": "0"}
    assert last.gin_files == (f, extra)
    assert last.bindings == (
        "span_corruption.mean_noise_span_length = 3",
        "Pretrain.steps = 100",
        "Experiment.seed = 1",
        "Experiment.notes = 'cli'",
    )
    assert last.variant == "spans, steps = 100"


def test_sweep_overrides_change_the_grid_but_are_not_run_bindings(tmp_path):
    f = write(tmp_path, "Sweep.variants = {'a': {'Pretrain.steps': '0'}}\nSweep.seeds = [0]\n")
    spec = load_sweep(f, overrides=["Sweep.seeds = [4, 5, 6]", "Sweep.name = 'renamed'"])
    assert spec.name == "renamed"
    assert [r.name for r in spec.runs] == ["a__seed_4", "a__seed_5", "a__seed_6"]
    assert all(not any(b.startswith("Sweep.") for b in r.bindings) for r in spec.runs)


def test_no_seeds_means_no_seed_binding(tmp_path):
    f = write(tmp_path, "Sweep.axes = {'Pretrain.steps': [1, 2]}\nSweep.seeds = None\n")
    spec = load_sweep(f)
    assert [r.name for r in spec.runs] == ["steps_1", "steps_2"]
    assert spec.runs[0].bindings == ("Pretrain.steps = 1",) and spec.runs[0].seed is None


def test_axes_sharing_a_parameter_name_get_full_labels(tmp_path):
    f = write(tmp_path, "Sweep.axes = {'a.rate': [1], 'b.rate': [2]}\n")
    assert [r.name for r in load_sweep(f).runs] == ["a-rate_1__b-rate_2__seed_0"]


def test_axis_display_names_and_point_baseline(tmp_path):
    f = write(
        tmp_path,
        """
Sweep.axes = {'iid_replace_spans.noise_density': ['0.1', '0.15']}
Sweep.baseline = 'noise_density_0.15'
Sweep.display_names = {'noise_density_0.1': '10 %', 'noise_density_0.15': '15 %'}
""",
    )
    runs = load_sweep(f).runs
    assert [(r.variant, r.baseline, r.point) for r in runs] == [
        ("10 %", False, "noise_density_0.1"),
        ("15 %", True, "noise_density_0.15"),
    ]


@pytest.mark.parametrize(
    "body, message",
    [
        (
            "Sweep.variants = {'v': {'noise_density': '0.1'}}",
            "Sweep.variants['v']: 'noise_density' is not a gin binding",
        ),
        ("Sweep.variants = {'v': ['Pretrain.steps', 0]}", "Sweep.variants['v'] must be a dict"),
        ("Sweep.variants = {'v': {'include': 'gin/nowhere/missing.gin'}}", "Sweep.variants['v']['include']"),
        ("Sweep.variants = {'v': {'Pretrain.steps': ''}}", "Sweep.variants['v']['Pretrain.steps']: empty value"),
        ("Sweep.axes = {'Pretrain.steps': []}", "Sweep.axes['Pretrain.steps'] must be a non-empty list"),
        ("Sweep.axes = {'Pretrain.steps': [1, 1]}", "repeats a value"),
        ("Sweep.axes = {'steps': [1]}", "'steps' is not a gin binding"),
        ("Sweep.axes = {'Experiment.seed': [1, 2]}", "use Sweep.seeds"),
        ("Sweep.axes = {'Pretrain.steps': [1]}\nSweep.seeds = ['0']", "Sweep.seeds must be a list of integers"),
        ("Sweep.axes = {'Pretrain.steps': [1]}\nSweep.baseline = 'nope'", "Sweep.baseline = 'nope'"),
        (
            "Sweep.axes = {'Pretrain.steps': [1]}\nSweep.display_names = {'typo': 'X'}",
            "Sweep.display_names names 'typo'",
        ),
        (
            "Sweep.variants = {'v': {'Pretrain.steps': '1'}}\nSweep.axes = {'Pretrain.steps': [2]}",
            "Pretrain.steps is bound both by Sweep.variants['v'] and by Sweep.axes",
        ),
        ("Sweep.seeds = [0]", "declares neither Sweep.variants nor Sweep.axes"),
        ("Sweep.name = '../escape'\nSweep.axes = {'Pretrain.steps': [1]}", "Sweep.name: unsafe"),
    ],
)
def test_malformed_grids_name_the_binding(tmp_path, body, message):
    with pytest.raises(ConfigError) as e:
        load_sweep(write(tmp_path, body + "\n"))
    assert message in str(e.value)


def test_unknown_configurable_in_sweep_file_names_the_file(tmp_path):
    f = write(tmp_path, "no_such_configurable_xyz.value = 1\nSweep.axes = {'Pretrain.steps': [1]}\n")
    with pytest.raises(ConfigError, match=r"grid\.gin"):
        load_sweep(f)
