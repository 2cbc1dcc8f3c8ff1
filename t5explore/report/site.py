"""`t5explore site RESULTS_DIR`: one static HTML page of every sweep under a results directory, to open in a
browser or publish as it is: each sweep's comparison table (styled: numbers right-aligned, intervals, tie and
significance marks, the legend), its plots, its FINDINGS.md rendered, and links to each run's files.

The page is self-contained apart from the PNGs and run files it links by relative path, and uses no network.
A small script marks any figure that fails to load (moved results), so a broken page says so.
"""

from __future__ import annotations

import argparse
import html
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from t5explore.run_layout import CONFIG_FILE, METRICS_FILE, RESULT_FILE

if TYPE_CHECKING:  # the report modules are imported when the site is written, not to build the parser
    from t5explore.report.tables import TextTable

SITE_DIR = "site"
MARKS = {"▲": "up", "▼": "down", "≈": "tie", "★": "star"}
CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem; color: #222; }
nav a { margin-right: 1rem; }
table.results { border-collapse: collapse; margin: 1rem 0; font-variant-numeric: tabular-nums; }
table.results caption { text-align: left; font-weight: 600; padding-bottom: .4rem; }
table.results th, table.results td { padding: .25rem .6rem; border-bottom: 1px solid #ddd; }
table.results thead th { border-bottom: 2px solid #444; text-align: right; }
table.results th:first-child, table.results td:first-child { text-align: left; }
table.results td.num { text-align: right; white-space: nowrap; }
table.results td.best { font-weight: 700; }
.mark.up { color: #1a7f37; } .mark.down { color: #c62828; } .mark.tie { color: #777; } .mark.star { color: #b8860b; }
.legend { font-size: 13px; color: #555; max-width: 1000px; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figure.broken::after { content: "figure failed to load"; color: #c62828; }
.findings { border-left: 3px solid #ddd; padding-left: 1rem; }
"""
SCRIPT = """
window.addEventListener("load", () => {
  const imgs = [...document.images];
  imgs.forEach(i => { i.dataset.loaded = i.complete && i.naturalWidth > 0 ? "yes" : "no";
                      if (i.dataset.loaded === "no") i.closest("figure").classList.add("broken"); });
  document.body.dataset.images = imgs.length;
  document.body.dataset.imagesLoaded = imgs.filter(i => i.dataset.loaded === "yes").length;
  const num = document.querySelector("td.num");  // what the reader sees: numbers aligned right
  if (num) document.body.dataset.numberAlign = getComputedStyle(num).textAlign;
});
"""


def sweep_dirs(results_dir: Path) -> list[Path]:
    """The sweeps under results_dir (folders holding run folders with result.json), or results_dir itself."""
    if any(results_dir.glob(f"*/{RESULT_FILE}")):
        return [results_dir]
    return sorted({p.parent.parent for p in results_dir.glob(f"*/*/{RESULT_FILE}") if p.parent.parent.name != SITE_DIR})


def cell_html(text: str, bold: bool, numeric: bool) -> str:
    """A table cell: escaped, its marks (▲ ▼ ≈ ★) coloured, right-aligned when numeric."""
    body = html.escape(text)
    for mark, name in MARKS.items():
        body = body.replace(mark, f'<span class="mark {name}">{mark}</span>')
    classes = " ".join(c for c, on in (("num", numeric), ("best", bold)) if on)
    return f'<td class="{classes}">{body}</td>' if classes else f"<td>{body}</td>"


def table_html(table: TextTable) -> str:
    """A report.tables.TextTable as a styled table with its notes as the legend below it."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    rows = []
    for row, bold in zip(table.rows, table.bold):
        rows.append("<tr>" + "".join(cell_html(s, b, i > 0) for i, (s, b) in enumerate(zip(row, bold))) + "</tr>")
    legend = "".join(f"<p>{html.escape(n)}</p>" for n in table.notes)
    return (
        f'<table class="results"><caption>{html.escape(table.title)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f'<div class="legend">{legend}</div>'
    )


def markdown_html(text: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render(text)


def _anchor(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name)


def sweep_section(sweep_dir: Path, out: Path) -> tuple[str, str]:
    """(sweep name, HTML section): tables, plots (written under out/<sweep>/), findings and run links."""
    from t5explore.report.aggregate import summarize
    from t5explore.report.plots import write_plots
    from t5explore.report.results import load_results
    from t5explore.report.tables import summary_table

    results = load_results(sweep_dir)
    parts = []
    for name in results.sweep_names():
        parts.append(table_html(summary_table(summarize(results, name))))
    figures = write_plots(sweep_dir, out / _anchor(sweep_dir.name))
    for path in figures:
        src = os.path.relpath(path, out)
        parts.append(f'<figure><img src="{html.escape(src)}" alt="{html.escape(path.stem)}"></figure>')
    findings = sweep_dir / "FINDINGS.md"
    if findings.is_file():
        parts.append(f'<div class="findings">{markdown_html(findings.read_text(encoding="utf-8"))}</div>')
    links = []
    for run in sorted(p.parent for p in sweep_dir.glob(f"*/{RESULT_FILE}")):
        files = [f for f in (RESULT_FILE, CONFIG_FILE, METRICS_FILE) if (run / f).is_file()]
        hrefs = " ".join(f'<a href="{html.escape(os.path.relpath(run / f, out))}">{f}</a>' for f in files)
        links.append(f"<li>{html.escape(run.name)}: {hrefs}</li>")
    parts.append(f"<details><summary>{len(links)} runs</summary><ul>{''.join(links)}</ul></details>")
    body = "\n".join(parts)
    return (
        sweep_dir.name,
        f'<section id="{_anchor(sweep_dir.name)}"><h2>{html.escape(sweep_dir.name)}</h2>{body}</section>',
    )


def write_site(results_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Path:
    """Write out_dir/index.html (default RESULTS_DIR/site) and the plots it shows; returns the index's path."""
    from t5explore.report.results import ReportError

    root = Path(results_dir)
    sweeps = sweep_dirs(root)
    if not sweeps:
        raise ReportError(f"{root}: no sweep with finished runs (no */result.json below it)")
    out = Path(out_dir) if out_dir is not None else root / SITE_DIR
    out.mkdir(parents=True, exist_ok=True)
    sections = [sweep_section(s, out) for s in sweeps]
    nav = "".join(f'<a href="#{_anchor(n)}">{html.escape(n)}</a>' for n, _ in sections)
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8">'
        f"<title>t5explore results: {html.escape(root.name)}</title>\n<style>{CSS}</style>\n"
        f"<script>{SCRIPT}</script></head>\n<body>\n<h1>t5explore results: {html.escape(root.name)}</h1>\n"
        f"<nav>{nav}</nav>\n" + "\n".join(s for _, s in sections) + "\n</body>\n</html>\n"
    )
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "site",
        help="a static HTML page of every sweep: styled tables, plots, FINDINGS.md, links to the runs",
    )
    p.add_argument("dir", help="a results directory (its sweeps) or one sweep directory")
    p.add_argument("--out", default=None, help=f"where to write index.html and the plots (default: DIR/{SITE_DIR})")
    p.set_defaults(func=_site)


def _site(args: argparse.Namespace, gin_files: Sequence[str], gin_bindings: Sequence[str]) -> int:
    print(write_site(args.dir, args.out))
    return 0
