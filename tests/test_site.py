"""`t5explore site` rendered in a real headless Chromium (installed from Debian by .ci/run): the table's cells,
right-aligned numbers and marks, every figure loaded, and a screenshot kept as a test artifact
($T5EXPLORE_TEST_ARTIFACTS, default test-artifacts/ in the repository)."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from t5explore.report.site import cell_html, write_site

REPO = Path(__file__).resolve().parent.parent
SWEEP = REPO / "experiments" / "results" / "transductive" / "t5_table7_span_length"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def test_cells_are_escaped_marked_and_aligned():
    assert (
        cell_html("+6.03 ± 4.85 ≈", False, True) == '<td class="num">+6.03 ± 4.85 <span class="mark tie">≈</span></td>'
    )
    assert cell_html("<b>", True, False) == '<td class="best">&lt;b&gt;</td>'
    assert 'class="mark up"' in cell_html("+1 ▲", False, True) and 'class="mark star"' in cell_html("★ x", False, False)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("site") / "results"
    shutil.copytree(SWEEP, root / SWEEP.name, ignore=shutil.ignore_patterns("*.png"))
    return write_site(root)


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get("T5EXPLORE_SKIP_BROWSER") == "1":
            pytest.skip("no chromium and T5EXPLORE_SKIP_BROWSER=1")
        pytest.fail("chromium not found: apt-get install chromium (.ci/run does), or set T5EXPLORE_SKIP_BROWSER=1")
    command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def test_index_lists_the_sweep_its_table_plots_findings_and_runs(site):
    page = site.read_text()
    assert page.count('<section id="t5_table7_span_length">') == 1
    assert page.count("<img ") == 3 and all((site.parent / src).is_file() for src in re.findall(r'src="([^"]+)"', page))
    assert '<div class="findings"><h1>' in page and "**" not in page  # FINDINGS.md rendered to HTML
    assert len(re.findall(r'<a href="[^"]*result\.json">', page)) == 18


@pytest.mark.slow  # two headless Chromium runs
def test_the_page_renders_in_headless_chromium(site, tmp_path):
    dom = chromium("--dump-dom", site.as_uri(), profile=tmp_path / "profile").stdout
    body = re.search(r"<body([^>]*)>", dom).group(1)
    assert 'data-images="3"' in body and 'data-images-loaded="3"' in body
    assert 'data-number-align="right"' in body
    (table,) = re.findall(r'<table class="results">(.*?)</table>', dom, re.S)  # FINDINGS.md's tables are others
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    cells = [
        [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows
    ]
    body_rows = [c for c in cells if c]
    assert [r[0] for r in body_rows] == ["★ i.i.d.", "μ = 2", "μ = 3", "μ = 5", "μ = 10", "No pre-training"]
    assert body_rows[1][2] == "52.79 ± 3.63" and body_rows[1][3].endswith("≈")  # as in the committed table.md
    assert all(re.search(r'<td class="num[^"]*">', r) for r in rows if "<td" in r)

    artifacts = Path(os.environ.get("T5EXPLORE_TEST_ARTIFACTS", REPO / "test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "site_screenshot.png"
    chromium(f"--screenshot={shot}", "--window-size=1280,2000", site.as_uri(), profile=tmp_path / "profile2")
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[:2] == (2000, 1280) and len({tuple(p) for p in pixels[::20, ::20, :3].reshape(-1, 3)}) > 20
