"""`Pretrain.init_from_hf = DIR`: start a run (pre-training, or fine-tuning with `Pretrain.steps = 0`) from a
local transformers T5 checkpoint instead of a random initialisation: one `t5explore export` wrote, or a public
T5 checkpoint a user downloaded.

The run's own config decides the model: the checkpoint must have the same shape (d_model, heads, layers, MLP,
T5 1.0 tied or T5.1.1 untied head), and a mismatch is one error naming the T5Config field and both values, so
nothing is silently reshaped.

The token ids must mean what they meant in training, so the vocabulary is checked before any weight is read:
- DIR's spiece.model must exist and be the run's SentencePiece model, byte for byte. A checkpoint with a
  tokenizer of its own (a public T5's 32,000 pieces) is used with `vocabulary.sp_model_file =
  'DIR/spiece.model'`, which makes the run tokenise (pre-training corpus and tasks alike) with it; without that
  binding the run is refused.
- The sentinel count must be the checkpoint's (`extra_ids` in tokenizer_config.json, T5's 100):
  `vocabulary.num_sentinels`, since `<extra_id_k>` is the id `vocab_size - 1 - k` on both sides.
- Embedding rows: the run's model has `padded_vocab_size(vocab_size)` rows (a multiple of 128), as T5's own
  checkpoints do (32,000 pieces + 100 sentinels = 32,100 ids in 32,128 rows). The rows past the vocabulary are
  loaded as they are: no token maps to them and the harness never uses them as targets, and they stay in the
  softmax exactly as in transformers, so the logits agree. A checkpoint with fewer rows than the vocabulary
  has ids has ids without weights, and one with another padding would change the softmax: both are refused,
  naming the counts.

It lives below train/ (train/run.py calls `init_from_hf`); model/hf_t5.py holds the layout both ways.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from t5explore.model.config import padded_vocab_size
from t5explore.model.hf_t5 import (
    SPM_FILE,
    HfExportError,
    check_exportable,
    config_from_hf,
    from_hf_state,
    read_hf_model,
)

TOKENIZER_CONFIG = "tokenizer_config.json"


def check_config(hf_fields: dict[str, Any], cfg: Any, source: str) -> None:
    """Every T5Config field the checkpoint fixes must equal the run's; the error names each that differs
    (vocab_size is checked with the vocabulary, by check_vocabulary)."""
    differ = [
        f"T5Config.{k} = {getattr(cfg, k)!r} (checkpoint: {v!r})"
        for k, v in hf_fields.items()
        if k != "vocab_size" and getattr(cfg, k) != v
    ]
    if differ:
        raise HfExportError(
            f"Pretrain.init_from_hf = {source!r}: the checkpoint's config.json differs from the run's model: "
            + "; ".join(differ)
            + " (bind the run's T5Config to the checkpoint's)"
        )


def checkpoint_sentinels(hf_dir: Path) -> int | None:
    """The sentinel count the checkpoint's tokenizer declares (`extra_ids`, else its `<extra_id_k>` tokens),
    or None when DIR has no tokenizer_config.json saying so."""
    try:
        config = json.loads((hf_dir / TOKENIZER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    if isinstance(config.get("extra_ids"), int) and config["extra_ids"] > 0:
        return int(config["extra_ids"])
    listed = config.get("extra_special_tokens") or config.get("additional_special_tokens") or []
    count = sum(isinstance(t, str) and t.startswith("<extra_id_") for t in listed)
    return count or None


def check_vocabulary(hf_dir: Path, vocab: Any, rows: int, run_rows: int) -> None:
    """The checkpoint's token ids mean the run's: same SentencePiece model, same sentinels, the run's padding of
    the embedding (see the module docstring). `rows`: the checkpoint's embedding rows; `run_rows`: the run's."""
    source = f"Pretrain.init_from_hf = {str(hf_dir)!r}"
    spm = hf_dir / SPM_FILE
    if vocab is not None and not spm.is_file():
        raise HfExportError(
            f"{source}: {spm} is missing, so nothing shows that the weights' token ids are the run's; put the "
            f"checkpoint's SentencePiece model there (transformers' T5 folders ship it as {SPM_FILE})"
        )
    if vocab is not None and _sha256(spm) != _sha256(Path(vocab.sp_path)):
        raise HfExportError(
            f"{source}: {spm} is not the run's vocabulary ({vocab.sp_path}), so the weights' token ids would mean "
            f"other pieces; to use the checkpoint's own tokenizer add --gin.vocabulary.sp_model_file=\"'{spm}'\""
        )
    sentinels = checkpoint_sentinels(hf_dir)
    if vocab is not None and sentinels is not None and sentinels != vocab.extra_ids:
        raise HfExportError(
            f"{source}: its tokenizer has {sentinels} sentinels (<extra_id_k>), the run's vocabulary "
            f"{vocab.extra_ids}; bind vocabulary.num_sentinels = {sentinels} so that the sentinel ids agree"
        )
    ids = vocab.vocab_size if vocab is not None else run_rows
    if rows < ids:
        raise HfExportError(
            f"{source}: its embedding has {rows} rows (config.json vocab_size), fewer than the run's {ids} token "
            "ids: the ids past its rows have no weights; the checkpoint was trained with another vocabulary"
        )
    if rows != run_rows:
        raise HfExportError(
            f"{source}: its embedding has {rows} rows, the run's model {run_rows} (its {ids} ids padded to a "
            f"multiple of 128, as T5's {padded_vocab_size(32_100)} rows for 32,100 ids); other padding rows would "
            "change the softmax, so it is not loaded"
        )


def _sha256(path: Path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


def hf_params(hf_dir: str | os.PathLike, model: Any, like_params: Any, vocab: Any = None) -> Any:
    """Params for `model` (a t5explore Model) read from the transformers checkpoint in hf_dir, laid out like
    `like_params` (scanned or not), as float32 numpy arrays. `vocab`: the run's vocabulary (checked against the
    checkpoint's when given)."""
    import jax
    import numpy as np

    from t5explore.model.scan import stack_layers, unstack_layers

    root = Path(hf_dir)
    check_exportable(model.name, root)  # the same architectures can be imported as exported
    hf_cfg, state = read_hf_model(root)
    fields = config_from_hf(hf_cfg, str(root / "config.json"))
    check_config(fields, model.cfg, str(root))
    check_vocabulary(root, vocab, int(fields["vocab_size"]), model.cfg.vocab_size)
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
