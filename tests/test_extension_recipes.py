"""ARCHITECTURE.md's extension recipes say how many files a new objective, task, architecture, report column
and launcher touch; these tests check the counts where that is cheap.

The objective and task recipes are checked by doing them: a pytest plugin written to a temp folder registers
a throwaway mask, named objective and local task before collection, and the existing tests run against them.
The tests a recipe says pick the new piece up must pass untouched, and exactly the hand lists the recipe names
must fail (so each listed test edit is needed, and no unlisted one is); copies of those tests with the listed
one-line edits made then pass (so the edits are enough). The other recipes are checked against the registries
and files the code really reads.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "ARCHITECTURE.md"

PLUGIN = '''
"""Registers a throwaway objective (its own mask) and a throwaway local task, as the recipes say."""
import dataclasses
import gin

from t5explore.data.tasks.benchmarks import GlueSource
from t5explore.data.tasks.registry import TaskSpec, register_task
from t5explore.objectives import masks, named


@masks.register_mask("throwaway_iid", examples=({"noise_density": 0.2},))
@dataclasses.dataclass(frozen=True)
class ThrowawayIid(masks.IidMask):
    """i.i.d. noise under another name: a new mask as far as every registry can tell."""


@gin.configurable
def throwaway_objective(noise_density: float = 0.2):
    mask = masks.noise_mask("throwaway_iid", noise_density=noise_density, owner="throwaway_objective")
    return named._denoiser(
        "throwaway_objective", mask, "sentinel_per_noise_span", "sentinel_per_nonnoise_span"
    )


named.NAMED_OBJECTIVES["throwaway_objective"] = throwaway_objective
SOURCE = GlueSource(
    "throwaway", None, "", ("sentence",), ("no", "yes"),
    columns={"sentence": 0, "label": 1}, tsv_header=False, tsv_width=2,
)
register_task(TaskSpec("throwaway_task", "Throwaway", SOURCE, ("accuracy",), data_dir="/nonexistent/throwaway"))
'''

OBJECTIVE_TESTS = [
    "tests/test_objectives_registry.py",
    "tests/test_objectives_gin.py",
    "tests/test_objectives_named.py",
    "tests/test_objectives_pinned.py",
]
TASK_TESTS = ["tests/test_tasks_local.py", "tests/test_tasks_registry.py", "tests/test_tasks_generation.py"]
# Tests that read a registry whole (not parametrized over it), selected by name along with the throwaway's.
WHOLE_REGISTRY = (
    "one_gin_file or every_named_objective_is_pinned or scoring_gold_targets or each_benchmark_fact or paper_tfds"
)


def recipes() -> dict[str, tuple[int, list[str]]]:
    """recipe -> (the file count its heading states, the numbered items under it)."""
    section = DOC.read_text(encoding="utf-8").split("## Extension recipes", 1)[1].split("\n## ", 1)[0]
    out = {}
    for m in re.finditer(r"^### A new ([\w ]+): (\d+) files?\n(.*?)(?=^### |\Z)", section, re.M | re.S):
        out[m.group(1)] = (int(m.group(2)), re.findall(r"^\d+\. (.+)$", m.group(3), re.M))
    return out


def test_each_recipe_lists_as_many_files_as_it_says_and_the_fixed_paths_exist():
    found = recipes()
    assert set(found) == {"objective", "task", "architecture", "report column", "launcher"}
    for name, (count, items) in found.items():
        assert len(items) == count, f"recipe '{name}': heading says {count} files, lists {len(items)}"
        for item in items:
            path = re.match(r"`([^`]+)`", item).group(1)
            if "NAME" not in path:
                assert (REPO / path).exists(), f"recipe '{name}' names {path}, which does not exist"


def _run_with_throwaways(tmp_path: Path, files: list[str], select: str, cwd: Path = REPO) -> dict[str, str]:
    """Run the selected tests in a fresh pytest with the throwaway plugin loaded; node id -> outcome."""
    from conftest import SHARED_DATA

    (tmp_path / "throwaway_plugin.py").write_text(PLUGIN, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env["T5EXPLORE_SHARED_DATA"] = str(SHARED_DATA)  # a copied conftest.py would look beside its copy
    cmd = [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "throwaway_plugin", "-p", "no:cacheprovider"]
    proc = subprocess.run([*cmd, "-k", select, *files], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    outcomes = dict(
        (m.group(2), m.group(1)) for m in re.finditer(r"^(PASSED|FAILED|ERROR|SKIPPED) (\S+)", proc.stdout, re.M)
    )
    assert outcomes, proc.stdout[-3000:] + proc.stderr[-3000:]
    return outcomes


@pytest.mark.slow
def test_a_new_objective_needs_exactly_the_recipes_test_edits(tmp_path):
    outcomes = _run_with_throwaways(tmp_path, OBJECTIVE_TESTS, f"throwaway or {WHOLE_REGISTRY}")
    failed = {k for k, v in outcomes.items() if v != "PASSED"}
    assert failed == {
        # item 3, the gin file:
        "tests/test_objectives_gin.py::test_one_gin_file_per_named_objective",
        "tests/test_objectives_gin.py::test_gin_file_binds_pretrain_objective_and_builds_it[throwaway_objective]",
        # item 4, CASES and PINNED:
        "tests/test_objectives_pinned.py::test_every_named_objective_is_pinned",
    }, outcomes
    picked_up = "tests/test_objectives_named.py::test_same_seed_same_batch_different_seed_different_batch"
    assert outcomes[f"{picked_up}[throwaway_objective]"] == "PASSED"
    registry = "tests/test_objectives_registry.py::test_every_"  # the mask's examples ride on its registration
    for test in ("registered_mask_satisfies_the_protocol_and_its_bound", "mask_example_composes_with_every_encoding"):
        assert [v for k, v in outcomes.items() if k.startswith(registry + test) and "[throwaway_iid]" in k] == [
            "PASSED"
        ], test


def _insert_after(path: Path, anchor: str, line: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(anchor) == 1, f"{path.name}: the recipe's anchor {anchor!r} moved; update this test"
    path.write_text(text.replace(anchor, anchor + line), encoding="utf-8")


@pytest.mark.slow
def test_the_objective_recipes_test_edits_are_all_it_needs(tmp_path):
    """Copies of the objective tests with items 3 and 4 done (one line each) pass for the throwaway objective."""
    from test_objectives_pinned import batches_digest

    from t5explore.numerics import NUMERICS_VERSION
    from t5explore.objectives import masks, named

    same = masks.noise_mask("iid", noise_density=0.2, owner="throwaway_objective")  # the plugin's mask's twin
    digest = batches_digest(
        named._denoiser("throwaway_objective", same, "sentinel_per_noise_span", "sentinel_per_nonnoise_span"), 128
    )
    tests = tmp_path / "tests"
    tests.mkdir()
    for name in ("conftest.py", *(Path(f).name for f in OBJECTIVE_TESTS)):
        shutil.copy(REPO / "tests" / name, tests / name)
    gin_dir = shutil.copytree(REPO / "gin" / "objectives", tmp_path / "gin_objectives")  # not the shared checkout
    (gin_dir / "throwaway_objective.gin").write_text("Pretrain.objective = @throwaway_objective()\n")  # item 3
    pinned = tests / "test_objectives_pinned.py"  # item 4: the case and its digest
    case = '"throwaway_objective@128": ("throwaway_objective", named.NAMED_OBJECTIVES["throwaway_objective"], 128),'
    _insert_after(pinned, "CASES = {\n", f"    {case}\n")
    _insert_after(pinned, f"    {NUMERICS_VERSION}: {{\n", f'        "throwaway_objective@128": "{digest}",\n')
    copy_dir = f" / {str(gin_dir)!r}"  # a path joined with an absolute one is the absolute one
    _insert_after(tests / "test_objectives_gin.py", 'GIN_DIR = REPO_ROOT / "gin" / "objectives"', copy_dir)
    files = [f"tests/{Path(f).name}" for f in OBJECTIVE_TESTS]
    outcomes = _run_with_throwaways(tmp_path, files, f"throwaway or {WHOLE_REGISTRY}", cwd=tmp_path)
    assert {
        "tests/test_objectives_pinned.py::test_batches_are_bit_identical_to_the_pinned_digest[throwaway_objective@128]",
        "tests/test_objectives_registry.py::test_every_registered_mask_satisfies_the_protocol_and_its_bound"
        "[throwaway_iid]",
        "tests/test_objectives_gin.py::test_gin_file_binds_pretrain_objective_and_builds_it[throwaway_objective]",
    } <= set(outcomes)
    assert {k for k, v in outcomes.items() if v != "PASSED"} == set(), outcomes


@pytest.mark.slow
def test_a_new_local_task_needs_no_edit_to_the_existing_tests(tmp_path):
    outcomes = _run_with_throwaways(tmp_path, TASK_TESTS, WHOLE_REGISTRY)
    assert "tests/test_tasks_local.py::test_scoring_gold_targets_is_perfect_and_wrong_labels_are_not" in outcomes
    assert {k for k, v in outcomes.items() if v != "PASSED"} == set(), outcomes


def test_the_architecture_recipe_names_the_real_registry_and_gin_files():
    """Every architecture but the default has a gin file binding `Model.name` to it (recipe item 3)."""
    from t5explore.model import registry

    default = registry.EncoderDecoder.name  # what Model.name defaults to
    bound = {
        m.group(1)
        for p in (REPO / "gin" / "models").glob("*.gin")
        for m in re.finditer(r"^Model\.name\s*=\s*['\"](\w+)['\"]", p.read_text(encoding="utf-8"), re.M)
    }
    assert set(registry.ARCHITECTURES) - {default} <= bound


def test_the_report_column_recipe_is_one_registry_line():
    """Run-level columns come from the two registries only, and every cost column names its formatter."""
    from t5explore.report import columns

    for col in (*columns.RUN_COLUMNS, *columns.OPT_IN_COLUMNS):
        assert col.kind != "cost" or col.fmt is not None, col
    assert "Params" in [c.label for c in columns.OPT_IN_COLUMNS]


def test_the_launcher_recipe_names_every_place_a_launcher_lives():
    """Each remote launcher is in LAUNCHERS, BACKENDS, SETTINGS, GIN_NAMES, has a module with `launch`, a
    pyproject extra named like it that installs the package BACKENDS names, and its test file."""
    from t5explore.sweep import launch
    from t5explore.sweep.launch import settings

    remote = set(launch.LAUNCHERS) - {"local"}
    assert remote == set(launch.BACKENDS) == set(settings.SETTINGS) == set(settings.GIN_NAMES)
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for name in remote:
        module, package = launch.BACKENDS[name]
        source = (REPO / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8")
        assert re.search(r"^def launch\(", source, re.M), module
        assert any(req.startswith(package) for req in extras[name]), (name, extras[name])
        assert (REPO / "tests" / f"test_launch_{name}.py").exists()
