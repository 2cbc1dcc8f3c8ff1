"""The README's commands and paths are real: a renamed file, flag or subcommand fails here, not for a reader."""

from __future__ import annotations

import argparse
import itertools
import re
import shlex
from pathlib import Path

import pytest

from t5explore import cli

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
TOP_LEVEL = ("benchmarks/", "docs/", "experiments/", "gin/", "t5explore/", "tests/", "notebooks/", ".ci/")
PLACEHOLDER = re.compile(r"[<>*]")


def readme_paths() -> list[str]:
    """Backticked repository paths (brace lists expanded; placeholders like <sweep> and globs left out)."""
    paths = set()
    for quoted in re.findall(r"`([^`\s]+)`", README):
        if not quoted.startswith(TOP_LEVEL) and quoted not in ("constraints.txt", "pyproject.toml", "Makefile"):
            continue
        if PLACEHOLDER.search(quoted) or "results/" in quoted:  # results are written by runs, not shipped
            continue
        head, braces, tail = re.match(r"([^{]*)(?:\{([^}]*)\})?(.*)", quoted).groups()
        paths.update(f"{head}{part}{tail}" for part in (braces.split(",") if braces else [""]))
    return sorted(paths)


def readme_commands() -> list[list[str]]:
    """Every `t5explore SUBCOMMAND ...` line of the README's code blocks, as argv (comments dropped)."""
    blocks = [b.replace("\\\n", " ") for b in re.findall(r"```\n(.*?)```", README, flags=re.S)]
    lines = [line.split("  #")[0].strip() for line in itertools.chain(*(b.splitlines() for b in blocks))]
    commands = []
    for line in lines:
        words = shlex.split(line) if "t5explore " in line else []
        for i, word in enumerate(words):
            if word.endswith("t5explore") and i + 1 < len(words) and not words[i + 1].startswith("-"):
                commands.append(words[i + 1 :])
    return commands


def test_the_readme_names_only_files_that_exist():
    paths = readme_paths()
    assert len(paths) > 30 and "gin/models/cpu_repro.gin" in paths  # the brace list was expanded
    missing = [p for p in paths if not (REPO / p).exists()]
    assert not missing, f"README.md names files that do not exist: {missing}"


def test_the_readme_commands_use_real_subcommands_and_flags():
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands = readme_commands()
    assert {c[0] for c in commands} >= {"sweep", "table", "plot", "status", "train"}
    for argv in commands:
        assert argv[0] in subparsers.choices, f"README runs `t5explore {argv[0]}`, which is no subcommand"
        known = {s for a in subparsers.choices[argv[0]]._actions for s in a.option_strings}
        for flag in (w.split("=")[0] for w in argv[1:] if w.startswith("--")):
            if flag.startswith(("--gin_file", "--gin.", "--gin_bindings", "--verbose")):
                continue  # gin flags are taken by every subcommand before argparse sees them
            assert flag in known, f"README passes {flag} to `t5explore {argv[0]}`, which does not take it"
        for word in argv[1:]:
            path = word.split("=", 1)[-1]
            if path.startswith(("gin/", "experiments/")) and path.endswith(".gin"):
                assert (REPO / path).exists(), f"README's `t5explore {argv[0]}` reads {path}, which does not exist"


@pytest.mark.parametrize("target", ["quickstart", "test"])
def test_the_two_readme_commands_are_make_targets_and_ci_runs_the_test_one(target):
    assert f"make {target}" in README
    assert re.search(rf"^{target}:", (REPO / "Makefile").read_text(), flags=re.M)
    assert re.search(r"^test: .*\blint\b", (REPO / "Makefile").read_text(), flags=re.M)  # lint runs in make test
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_the_readme_states_the_collected_test_counts(collected_tests):
    if not collected_tests.whole_suite:
        pytest.skip("only a run of the whole suite collects every test the README counts")
    stated = re.search(r"There are ([\d,]+) tests\. (\d+) are marked\s+`slow`", README)
    assert stated, "README's Tests section no longer says 'There are N tests. M are marked `slow`'"
    assert (int(stated[1].replace(",", "")), int(stated[2])) == (collected_tests.total, collected_tests.slow)
