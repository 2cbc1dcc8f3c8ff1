"""A finished (or checkpointed) run directory -> its model: the config, the vocabulary and the parameters of a
pre-training checkpoint, and then a Hugging Face export of them.

The run's own operative config.gin rebuilds exactly its model and vocabulary (the vocabulary comes from the
cache, or is trained again: it is deterministic). Fine-tuning's final checkpoint holds no parameters (only the
data position), so what can be exported is a pre-training checkpoint: the last one kept, the one with the
lowest held-out loss among those kept (`best`, from metrics.jsonl's `pretrain_eval` rows), or a given step.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from t5explore.model.hf_t5 import HfExportError, check_exportable
from t5explore.run_layout import CHECKPOINTS_DIR, CONFIG_FILE, METRICS_FILE


@dataclasses.dataclass
class RunModel:
    params: Any  # unboxed, unscanned, numpy
    cfg: Any  # the built T5Config (vocab_size set, scan_layers off)
    vocab: Any
    step: int


def checkpoint_steps(run_dir: Path) -> list[int]:
    ckpt = run_dir / CHECKPOINTS_DIR
    return sorted(int(p.name) for p in ckpt.iterdir() if p.name.isdigit()) if ckpt.is_dir() else []


def choose_step(run_dir: Path, which: str) -> int:
    """`last`, `best` (lowest held-out pre-training loss among the kept checkpoints) or a step number."""
    steps = checkpoint_steps(run_dir)
    if not steps:
        raise HfExportError(
            f"{run_dir / CHECKPOINTS_DIR}: no pre-training checkpoint to export (a run without pre-training, or one "
            "whose checkpoints were deleted or never committed)"
        )
    if which == "last":
        return steps[-1]
    if which == "best":
        losses = held_out_losses(run_dir)
        scored = [s for s in steps if s in losses]
        if not scored:
            raise HfExportError(
                f"{run_dir / METRICS_FILE}: no held-out loss at the kept checkpoint steps {steps} "
                "(Pretrain.eval_every does not divide Pretrain.checkpoint_every); use --checkpoint=last or a step"
            )
        return min(scored, key=lambda s: (losses[s], -s))
    if which.isdigit() and int(which) in steps:
        return int(which)
    raise HfExportError(f"--checkpoint={which}: not 'last', 'best' or a kept step of {run_dir} ({steps})")


def held_out_losses(run_dir: Path) -> dict[int, float]:
    """{step: held-out loss} from the run's `pretrain_eval` metrics rows."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {int(r["step"]): float(r["loss"]) for r in rows if r.get("phase") == "pretrain_eval" and "loss" in r}


def load_run_model(run_dir: str | os.PathLike, which: str = "last") -> RunModel:
    """The model of `run_dir` at checkpoint `which`; a decoder-only or shared-stack run is one clear error."""
    import gin
    import jax
    import numpy as np
    import orbax.checkpoint as ocp

    from t5explore.config import parse_gin
    from t5explore.data.vocab import vocabulary
    from t5explore.model.registry import architecture
    from t5explore.model.scan import unstack_layers
    from t5explore.run_config import Experiment, Pretrain
    from t5explore.train.run import build_model, cache_dir_for

    root = Path(run_dir)
    config = root / CONFIG_FILE
    if not config.is_file():
        raise HfExportError(f"{config}: no such file (not a t5explore run directory)")
    parse_gin([str(config)])
    try:
        check_exportable(architecture(), config)
        step = choose_step(root, which)
        pre = Pretrain()
        vocab = vocabulary(corpus=pre.corpus, cache_dir=str(cache_dir_for(Experiment())))
        model, _ = build_model(vocab)
    finally:
        gin.clear_config()
    manager = ocp.CheckpointManager(root / CHECKPOINTS_DIR, item_names=("state", "data"))
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
    params = jax.tree.map(np.asarray, restored["state"]["params"])
    if model.cfg.scan_layers:
        params = jax.tree.map(np.asarray, unstack_layers(params, model.cfg, model.layer_stacks))
    return RunModel(params, dataclasses.replace(model.cfg, scan_layers=False), vocab, step)


def export_run(run_dir: str | os.PathLike, out_dir: str | os.PathLike, which: str = "last") -> dict:
    """Write `run_dir`'s model (checkpoint `which`) and tokenizer as a transformers checkpoint in out_dir;
    return what was written (for the command's summary)."""
    from t5explore.export.hf_tokenizer import write_hf_tokenizer
    from t5explore.model.hf_t5 import write_hf_model

    run = load_run_model(run_dir, which)
    out = write_hf_model(run.params, run.cfg, out_dir)
    write_hf_tokenizer(run.vocab, out)
    summary = {
        "run_dir": str(run_dir),
        "checkpoint": which,
        "step": run.step,
        "t5_version": "1.0 (relu, tied)" if run.cfg.mlp == "relu" and run.cfg.tie_embeddings else "1.1-style",
        "out_dir": str(out),
    }
    (out / "t5explore_export.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
