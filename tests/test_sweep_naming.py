"""Run names are readable, stable, unique within a sweep and can never leave the results directory."""

from __future__ import annotations

import gin
import pytest

from t5explore.sweep import naming, rundir
from t5explore.sweep.grid import load_sweep


@pytest.mark.parametrize(
    "text, expected",
    [
        ("@prefix_lm()", "prefix_lm"),
        ("'c4/en'", "c4-en"),
        ("0.25", "0.25"),
        ("../../etc", "etc"),
        ("i.i.d.", "i.i.d"),
        ("a__b", "a_b"),
        ("μ = 3", "3"),
        ("...", "x"),
        ("[1, 2]", "1-2"),
    ],
)
def test_slug_is_safe_and_readable(text, expected):
    assert naming.slug(text) == expected
    naming.check_safe_name(naming.slug(text))


@pytest.mark.parametrize("bad", ["..", ".", ".hidden", "a/b", "a\\b", "", "x" * 300, "a b", "../x"])
def test_unsafe_names_are_refused_and_cannot_make_run_dirs(tmp_path, bad):
    with pytest.raises(ValueError):
        naming.check_safe_name(bad)
    with pytest.raises(ValueError):
        rundir.run_dir(tmp_path, bad)


def test_long_names_are_cut_with_a_hash_and_stay_distinct():
    a = naming.join_parts(["v" * 80, "rate_0.1", "seed_0"])
    b = naming.join_parts(["v" * 80, "rate_0.2", "seed_0"])
    assert len(a) <= naming.MAX_NAME_LENGTH and len(b) <= naming.MAX_NAME_LENGTH
    assert a != b and a.startswith("v" * 40)
    assert a == naming.join_parts(["v" * 80, "rate_0.1", "seed_0"])  # stable


def test_hostile_variant_names_stay_inside_the_sweep_dir_and_collisions_are_disambiguated(tmp_path):
    f = tmp_path / "hostile.gin"
    f.write_text("""
Sweep.variants = {'../../outside': {'Pretrain.steps': '1'}, 'outside': {'Pretrain.steps': '2'},
                  'a/b': {'Pretrain.steps': '3'}, 'a-b': {'Pretrain.steps': '4'}}
""")
    try:
        runs = load_sweep(str(f)).runs
    finally:
        gin.clear_config()
    names = [r.name for r in runs]
    assert len(set(names)) == 4
    assert names[0].startswith("outside__seed_0-") and names[1].startswith("outside__seed_0-")
    assert names[2].startswith("a-b__seed_0-") and names[3].startswith("a-b__seed_0-")
    for n in names:
        assert rundir.run_dir(tmp_path, n).resolve().parent == tmp_path.resolve()
    # stable: the same file gives the same names again
    try:
        assert [r.name for r in load_sweep(str(f)).runs] == names
    finally:
        gin.clear_config()


def test_identical_runs_declared_twice_are_an_error():
    with pytest.raises(ValueError, match="identical runs"):
        naming.make_unique(["a", "a"], ["same", "same"])
