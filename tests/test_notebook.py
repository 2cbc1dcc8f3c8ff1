"""notebooks/analysis.ipynb runs top to bottom on a tiny hand-made results directory (so it cannot rot)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient
from test_report_helpers import SWEEP, known_sweep

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "analysis.ipynb"


def test_analysis_notebook_executes(tmp_path, monkeypatch):
    results_dir = known_sweep(tmp_path / "results").parent
    monkeypatch.setenv("T5EXPLORE_RESULTS", str(results_dir))
    monkeypatch.setenv("T5EXPLORE_REPORT_OUT", str(tmp_path / "report"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # "python3" is ipykernel's own kernelspec; jupyter_client starts it with this interpreter (sys.executable).
    NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(str(o.get("data", {}).get("text/markdown", "")) + o.get("text", "") for o in outputs)
    assert "| ★ i.i.d. | 3 | 82.00 ± 4.97 | ★ |" in text  # mean ± 95% t CI over 3 seeds, then Δ vs ★
    assert f"{SWEEP}_vs_paper.png" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert any("Kendall τ" in o.get("data", {}).get("text/html", "") for o in outputs)
    assert (tmp_path / "report" / f"{SWEEP}_loss.png").stat().st_size > 10_000
