"""The run's SentencePiece vocabulary as a `transformers` tokenizer (tokenizer.json + spiece.model).

transformers converts the SentencePiece model itself (T5Tokenizer.from_pretrained on a folder holding
spiece.model, with the run's sentinel count), so the normaliser, the pre-tokeniser and the `</s>` template are
T5's. Two things are then set that transformers 5's T5Tokenizer leaves out and our vocabulary has: byte
fallback (characters outside the vocabulary become their UTF-8 byte pieces, not `<unk>`) and a decoder that
turns byte pieces back into text. Because T5Tokenizer rebuilds its model with byte fallback off when it loads,
the folder names the generic fast tokenizer class, `PreTrainedTokenizerFast`, which loads tokenizer.json as
written; `AutoTokenizer.from_pretrained(OUT_DIR)` therefore tokenises exactly as the harness does.
spiece.model is written too, for T5Tokenizer(vocab_file=...) users (they lose only the byte fallback).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from t5explore.model.hf_t5 import SPM_FILE
from t5explore.special_ids import EOS_ID, PAD_ID, UNK_ID

TOKENIZER_CLASS = "PreTrainedTokenizerFast"
BYTE_FALLBACK_DECODER = [
    {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
    {"type": "ByteFallback"},
    {"type": "Fuse"},
    {"type": "Strip", "content": " ", "start": 1, "stop": 0},
]


def write_hf_tokenizer(vocab: Any, out_dir: str | os.PathLike) -> Path:
    """Write `vocab` (t5explore.data.vocab.Vocab) as tokenizer.json, tokenizer_config.json, spiece.model."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast, T5Tokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(vocab.sp_path, Path(tmp) / SPM_FILE)
        converted = T5Tokenizer.from_pretrained(tmp, extra_ids=vocab.extra_ids)
    spec = json.loads(converted.backend_tokenizer.to_str())
    spec["model"]["byte_fallback"] = True
    spec["decoder"] = {"type": "Sequence", "decoders": BYTE_FALLBACK_DECODER}
    sentinels = [f"<extra_id_{i}>" for i in range(vocab.extra_ids)]
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        additional_special_tokens=sentinels,
        model_max_length=int(1e30),
    )
    ids = (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id)
    if ids != (PAD_ID, EOS_ID, UNK_ID) or tokenizer.convert_tokens_to_ids("<extra_id_0>") != vocab.vocab_size - 1:
        raise ValueError(f"{vocab.sp_path}: converted tokenizer's special ids differ from the vocabulary's")
    tokenizer.save_pretrained(str(out))
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = TOKENIZER_CLASS
    config["extra_ids"] = vocab.extra_ids
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    shutil.copyfile(vocab.sp_path, out / SPM_FILE)
    return out
