"""Issue 23 on real runs: three rows of experiments/t5_table2_architectures.gin at the tiny scale, run through
the CLI (`t5explore sweep`), then `t5explore table --findings` and `t5explore export`.

- each run's result.json names its architecture, and its parameter count and training FLOPs per example are
  those of the model the run's own config.gin builds (the parameters `init` creates; model/flops.py);
- the table shows them beside the paper's P / M label of each row, and that label is what the sweep file's
  comment says the row is; FINDINGS.md carries the same columns;
- the half-depth model exports to Hugging Face with the same parameter count; the shared one is refused with
  one error saying why.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import gin
import jax
import numpy as np
import pandas as pd
import pytest

from t5explore.report.tables import BUDGET_HEADER

pytestmark = pytest.mark.usefixtures("clean_gin")

SWEEP_FILE = "experiments/t5_table2_architectures.gin"
ROWS = {  # run -> (variant, architecture): the rows `--only='[esh]*_denoising*'` selects
    "encoder_decoder_denoising__seed_0": ("Encoder-decoder / Denoising", "encoder_decoder"),
    "shared_denoising__seed_0": ("Enc-dec, shared / Denoising", "encoder_decoder_shared"),
    "half_denoising__seed_0": ("Enc-dec, 6 layers / Denoising", "encoder_decoder_half"),
}


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    from t5explore import cli

    results = tmp_path_factory.mktemp("table2")
    args = ["sweep", SWEEP_FILE, "--gin_file=gin/runs/tiny_scale.gin", f"--results_dir={results}"]
    assert cli.main([*args, "--gin.Sweep.seeds=[0]", "--only=[esh]*_denoising*"]) == 0
    return results / "t5_table2_architectures"


def sweep_file_budgets() -> dict[str, str]:
    """Architecture -> the paper's P / M as the sweep file's comment states it (`#   Enc-dec, shared   P,  M ...`)."""
    text = Path(SWEEP_FILE).read_text(encoding="utf-8")
    names = "Encoder-decoder|Enc-dec, shared|Enc-dec, 6 layers|Language model|Prefix LM"
    found = re.findall(rf"^#\s+({names})\s{{2,}}(\d?P),\s+(M(?:/2)?)\s", text, re.M)
    assert len(found) == 5, found
    return {arch: f"{p}, {m}" for arch, p, m in found}


def built_model(run_dir: Path) -> tuple[int, float, int]:
    """(parameters `init` creates, training FLOPs of one example by model/flops.py's formula for the stacks
    built, embedding parameters) of the model the run's own config.gin builds. Every encoder-decoder row
    computes as an L + L encoder-decoder of its built config (the shared one runs its stack twice)."""
    from t5explore.config import parse_gin
    from t5explore.data.vocab import vocabulary
    from t5explore.model import flops
    from t5explore.run_config import Experiment, Pretrain
    from t5explore.train.run import build_model, cache_dir_for

    parse_gin([str(run_dir / "config.gin")])
    try:
        pre = Pretrain()
        vocab = vocabulary(corpus=pre.corpus, cache_dir=str(cache_dir_for(Experiment())))
        model, _ = build_model(vocab)
        plan = pre.objective.plan(pre.inputs_length)
        params = model.init_values(jax.random.key(0), 1)
    finally:
        gin.clear_config()
    count = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(params))
    train_flops = flops.train_flops_per_example(model.cfg, plan.inputs_length, plan.targets_length)
    return count, float(train_flops), model.embedding_params()


@pytest.mark.slow  # three tiny runs through the CLI (module fixture)
def test_result_json_records_each_architecture_with_its_real_counts(sweep_dir):
    counted = {}
    for run, (variant, arch) in ROWS.items():
        result = json.loads((sweep_dir / run / "result.json").read_text())
        model = result["model"]
        params, train_flops, embedding = built_model(sweep_dir / run)
        assert (result["variant"], model["architecture"]) == (variant, arch)
        assert model["num_params"] == params and model["embedding_params"] == embedding, run
        assert model["train_flops_per_example"] == pytest.approx(train_flops, rel=1e-12), run
        assert result["downstream"]["stdlib_module"]["best"], run  # fine-tuned and decoded
        counted[arch] = (params - embedding, train_flops)
    full, shared, half = counted["encoder_decoder"], counted["encoder_decoder_shared"], counted["encoder_decoder_half"]
    assert shared[1] == full[1] and 0.5 * full[1] < half[1] < 0.65 * full[1]  # M, M, ~M/2 (the head is not halved)
    assert shared[0] < 0.7 * full[0] and half[0] == pytest.approx(full[0] / 2, rel=0.01)  # ~P vs 2P


@pytest.mark.slow  # three tiny runs through the CLI (module fixture)
def test_table_and_findings_show_params_flops_beside_the_sweep_files_paper_labels(sweep_dir, tmp_path, capsys):
    from t5explore import cli
    from t5explore.report.formats import format_count

    assert cli.main(["table", str(sweep_dir), f"--out={tmp_path}", "--format=md,csv", "--findings"]) == 0
    capsys.readouterr()
    frame = pd.read_csv(tmp_path / "t5_table2_architectures.csv", keep_default_na=False).set_index("variant")
    budgets = sweep_file_budgets()
    md = (tmp_path / "t5_table2_architectures.md").read_text(encoding="utf-8")
    header = next(line for line in md.splitlines() if line.startswith("| Variant"))
    assert f"| {BUDGET_HEADER} | Params | FLOPs/example |" in header
    findings = (sweep_dir / "FINDINGS.md").read_text(encoding="utf-8")
    assert f"| {BUDGET_HEADER} | Params | FLOPs/example |" in findings and "3 architectures" in findings
    for run, (variant, _) in ROWS.items():
        params, train_flops, _ = built_model(sweep_dir / run)
        row = frame.loc[variant]
        assert row[BUDGET_HEADER] == budgets[variant.split(" / ")[0]], variant
        assert float(row["Params"]) == params and float(row["FLOPs/example"]) == pytest.approx(train_flops, rel=1e-12)
        cells = f"| {budgets[variant.split(' / ')[0]]} | {format_count(params)} | {format_count(train_flops)} |"
        assert cells in md and cells in findings, variant


@pytest.mark.slow  # three tiny runs through the CLI (module fixture)
def test_half_depth_exports_with_its_parameter_count_and_shared_is_refused(sweep_dir, tmp_path, capsys):
    from transformers import AutoModelForSeq2SeqLM

    from t5explore import cli

    half = sweep_dir / "half_denoising__seed_0"
    assert cli.main(["export", str(half), str(tmp_path / "half"), "--to=hf"]) == 0
    hf = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "half")
    result = json.loads((half / "result.json").read_text())
    assert sum(p.numel() for p in hf.parameters()) == result["model"]["num_params"]
    assert hf.config.num_layers == hf.config.num_decoder_layers == 1  # half of tiny.gin's 2 + 2
    capsys.readouterr()
    shared = sweep_dir / "shared_denoising__seed_0"
    assert cli.main(["export", str(shared), str(tmp_path / "shared"), "--to=hf"]) == 2
    err = capsys.readouterr().err
    assert "Model.name = 'encoder_decoder_shared' cannot be exported to Hugging Face" in err
    assert "share one set of layer weights" in err and err.count("\n") <= 2
    assert not (tmp_path / "shared").exists()


def test_a_shared_run_is_refused_by_the_hf_export_with_one_error_saying_why(tmp_path, monkeypatch, capsys):
    """transformers' T5 has no shared-stack model, so `export --to=hf` refuses it (exit 2) before anything is
    read or written, as it refuses the decoder-only model (the slow test above does so on a real run)."""
    from t5explore import cli
    from t5explore.errors import InputError
    from t5explore.export.run_dir import load_run_model

    monkeypatch.setattr(cli, "COMMAND_MODULES", ("t5explore.export.commands",))
    run = tmp_path / "run"
    (run / "checkpoints" / "3").mkdir(parents=True)
    (run / "config.gin").write_text("Model.name = 'encoder_decoder_shared'\n")
    assert cli.main(["export", str(run), str(tmp_path / "out"), "--to=hf"]) == 2
    err = capsys.readouterr().err
    assert "'encoder_decoder_shared' cannot be exported to Hugging Face" in err and "share one set of layer" in err
    with pytest.raises(InputError, match="its encoder and decoder share one set of layer weights"):
        load_run_model(run)
    assert not (tmp_path / "out").exists()
