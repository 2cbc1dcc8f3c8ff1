"""A `TextTable` rendered as Markdown, LaTeX (booktabs) or HTML: the same cells, notes and bold flags in each."""

from __future__ import annotations

import html
import re

from t5explore.report.tables import MISSING, TextTable


def to_markdown(t: TextTable) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    def cell(s: str, b: bool) -> str:
        return f"**{esc(s)}**" if b and s != MISSING else esc(s)

    lines = [
        f"### {t.title}",
        "",
        "| " + " | ".join(map(esc, t.header)) + " |",
        "|" + "|".join([":---"] + ["---:"] * (len(t.header) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(cell(s, b) for s, b in zip(row, bold)) + " |" for row, bold in zip(t.rows, t.bold)]
    return "\n".join([*lines, "", *t.notes]) + "\n"


BOOKTABS_NOTE = r"% requires \usepackage{booktabs} in the document's preamble (for this table's horizontal rules)"


def to_latex(t: TextTable) -> str:
    """A table environment; its first line, a LaTeX comment, says it needs booktabs (a missing package is
    otherwise an 'Undefined control sequence' error far from its cause)."""
    spec = "l" + "r" * (len(t.header) - 1)
    lines = [
        BOOKTABS_NOTE,
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{latex_escape(t.title)}}}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(latex_escape(h) for h in t.header) + r" \\",
        r"\midrule",
    ]
    for row, bold in zip(t.rows, t.bold):
        cells = [rf"\textbf{{{latex_escape(s)}}}" if b and s != MISSING else latex_escape(s) for s, b in zip(row, bold)]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [rf"\par\smallskip{{\footnotesize {latex_escape(n)}}}" for n in t.notes]
    return "\n".join([*lines, r"\end{table}"]) + "\n"


def to_html(t: TextTable, full_document: bool = True) -> str:
    e = html.escape
    parts = [
        f"<table>\n<caption>{e(t.title)}</caption>",
        "<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in t.header) + "</tr></thead>",
        "<tbody>",
    ]
    for row, bold in zip(t.rows, t.bold):
        cells = "".join(
            f"<td><b>{e(s)}</b></td>" if b and s != MISSING else f"<td>{e(s)}</td>" for s, b in zip(row, bold)
        )
        parts.append(f"<tr>{cells}</tr>")
    parts.append("</tbody>\n</table>")
    parts += [f"<p>{e(n)}</p>" for n in t.notes]
    body = "\n".join(parts)
    if not full_document:
        return body + "\n"
    return (
        f'<!DOCTYPE html>\n<html>\n<head><meta charset="utf-8"><title>{e(t.title)}</title></head>\n'
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def latex_escape(s: str) -> str:
    s = re.sub(r"([&%$#_{}])", r"\\\1", s.replace("\\", "\0"))
    s = s.replace("\0", r"\textbackslash{}").replace("~", r"\textasciitilde{}").replace("^", r"\textasciicircum{}")
    for u, tex in (
        ("★", r"$\star$"),
        ("±", r"$\pm$"),
        ("μ", r"$\mu$"),
        ("σ", r"$\sigma$"),
        ("α", r"$\alpha$"),
        ("τ", r"$\tau$"),
        ("≥", r"$\geq$"),
        ("≤", r"$\leq$"),
        ("–", "--"),
        ("−", "-"),
        ("Δ", r"$\Delta$"),
        ("≈", r"$\approx$"),
        ("▲", r"$\uparrow$"),
        ("▼", r"$\downarrow$"),
        ("√", r"$\surd$"),
        ("·", r"$\cdot$"),
        ("×", r"$\times$"),
    ):
        s = s.replace(u, tex)
    return s


RENDERERS = {"md": to_markdown, "latex": to_latex, "html": to_html}
