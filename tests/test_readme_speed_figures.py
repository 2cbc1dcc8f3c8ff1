"""Every speed ratio the README quotes comes from a committed benchmark output (issue 24): each ratio in the
README's Benchmarks section ("1.42x", "19-24x", with its per-round range) appears verbatim in one of the files
benchmarks/record.py wrote under benchmarks/results/, and each of those files says when, on which commit and
CPU, and under what load it was measured."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
RATIO = re.compile(r"(?<![\w.])\d+(?:\.\d+)?x\b")  # "5.85x": a ratio as the scripts print it
RANGE = re.compile(r"\(\d+(?:\.\d+)?-\d+(?:\.\d+)? per round\)")  # "(1.03-1.67 per round)"


def benchmarks_section(readme: str) -> str:
    start = readme.index("\n## Benchmarks\n")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end != -1 else None]


def quoted_figures(text: str) -> list[str]:
    return RATIO.findall(text) + RANGE.findall(text)


def results_text() -> str:
    return "\n".join(p.read_text() for p in sorted(RESULTS.glob("*.txt")))


def test_every_readme_ratio_is_in_a_results_file():
    section = benchmarks_section((REPO / "README.md").read_text())
    figures = quoted_figures(section)
    assert figures, "the Benchmarks section quotes no ratio: this test would check nothing"
    results = results_text()
    missing = [f for f in figures if f not in results]
    assert not missing, f"README ratios not in any benchmarks/results/*.txt: {missing}"


def test_results_files_carry_their_context():
    files = sorted(RESULTS.glob("*.txt"))
    assert files
    fields = ("# date: ", "# commit: ", "# cpu: ", "# load average at the start: ", "# load average at the end: ")
    for path in files:
        text = path.read_text()
        for field in fields:
            assert field in text, (path.name, field)


def test_the_check_catches_a_figure_from_nowhere():
    """A ratio the results do not hold is reported (the test above would fail on it)."""
    section = "## Benchmarks\n- packed is 9.99x faster (1.00-2.00 per round), 17x in all\n"
    figures = quoted_figures(section)
    assert figures == ["9.99x", "17x", "(1.00-2.00 per round)"]
    assert [f for f in figures if f not in "measured 2.50x (1.00-2.00 per round)"] == ["9.99x", "17x"]
