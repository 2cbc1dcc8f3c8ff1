"""`Pretrain.init_from_hf = DIR`: start a run (pre-training, or fine-tuning with `Pretrain.steps = 0`) from a
local transformers T5 checkpoint instead of a random initialisation.

The run's own config decides the model: the checkpoint must have the same shape (d_model, heads, layers, MLP,
tied or untied head, vocabulary size), and a mismatch is one error naming the T5Config field and both values,
so nothing is silently reshaped. The vocabulary must be the one the weights were trained with: when DIR holds
the spiece.model `t5explore export` writes, it must be the run's own (byte for byte).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from t5explore.export.hf import HfExportError, config_from_hf, from_hf_state, read_hf_model
from t5explore.export.hf_tokenizer import SPM_FILE


def check_config(hf_fields: dict[str, Any], cfg: Any, source: str) -> None:
    """Every T5Config field the checkpoint fixes must equal the run's; the error names each that differs."""
    differ = [
        f"T5Config.{k} = {getattr(cfg, k)!r} (checkpoint: {v!r})" for k, v in hf_fields.items() if getattr(cfg, k) != v
    ]
    if differ:
        raise HfExportError(
            f"Pretrain.init_from_hf = {source!r}: the checkpoint's config.json differs from the run's model: "
            + "; ".join(differ)
            + " (bind the run's T5Config to the checkpoint's; vocab_size follows the vocabulary)"
        )


def check_vocabulary(hf_dir: Path, vocab: Any) -> None:
    spm = hf_dir / SPM_FILE
    if vocab is None or not spm.is_file():
        return
    if hashlib.sha256(spm.read_bytes()).digest() != hashlib.sha256(Path(vocab.sp_path).read_bytes()).digest():
        raise HfExportError(
            f"Pretrain.init_from_hf: {spm} is not the run's vocabulary ({vocab.sp_path}); the weights' token ids "
            "would mean other pieces"
        )


def hf_params(hf_dir: str | os.PathLike, model: Any, like_params: Any, vocab: Any = None) -> Any:
    """Params for `model` (a t5explore Model) read from the transformers checkpoint in hf_dir, laid out like
    `like_params` (scanned or not), as float32 numpy arrays."""
    import jax
    import numpy as np

    from t5explore.export.run_dir import check_exportable
    from t5explore.model.scan import stack_layers, unstack_layers

    root = Path(hf_dir)
    check_exportable(model.name, root)  # the same architectures can be imported as exported
    hf_cfg, state = read_hf_model(root)
    check_config(config_from_hf(hf_cfg, str(root / "config.json")), model.cfg, str(root))
    check_vocabulary(root, vocab)
    cfg = model.cfg
    like = jax.tree.map(np.asarray, like_params)
    if cfg.scan_layers:
        like = unstack_layers(like, cfg, model.layer_stacks)
    params = from_hf_state(state, like, cfg, str(root))
    if cfg.scan_layers:
        params = jax.tree.map(np.asarray, stack_layers(params, cfg, model.layer_stacks))
    return params


def init_from_hf(hf_dir: str | os.PathLike, model: Any, params: Any, shardings: Any, vocab: Any = None) -> Any:
    """`params` (as init_params made them, placed by `shardings`) replaced by the checkpoint's, placed alike."""
    import jax

    loaded = hf_params(hf_dir, model, params, vocab)
    return jax.device_put(loaded, shardings)
