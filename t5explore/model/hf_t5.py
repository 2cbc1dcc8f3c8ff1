"""Our encoder-decoder's parameters <-> a Hugging Face `transformers` T5 checkpoint (config.json + safetensors).

The layouts differ in three ways, each handled by one entry of `_mapping`:
- kernels: ours are [in, heads, head_dim] / [heads, head_dim, out] einsum kernels, theirs torch Linear weights
  [out, in] with heads flattened head-major (index h * head_dim + d), so each is reshaped and transposed;
- the relative position bias: ours is one table [heads, buckets] per stack, theirs lives in the first block of
  each stack only (`block.0.layer.0.SelfAttention.relative_attention_bias`, [buckets, heads]) and is shared;
- the output layer: T5 1.0 (tied) has no `lm_head` of its own and scales the decoder output by d_model**-0.5
  before the shared embedding, as ours does; T5.1.1 has an untied `lm_head`, ours `decoder/logits_dense`.
Both use no 1/sqrt(head_dim) in attention, RMSNorm with epsilon 1e-6, the tanh GELU (`gelu_new`) in the
gated MLP, and the same relative position buckets, so no number changes on the way.

Writing needs only numpy and safetensors; config.json is written here (not by transformers' T5Config, which
in transformers 5 records `tie_word_embeddings: true` for an untied model and would mislead transformers 4).
Reading accepts what transformers 5 writes, too: `scale_decoder_outputs: false` with the head in `shared.weight`
(no `lm_head.weight`) is a T5.1.1-style model, imported untied with its head starting as the embedding.

It lives in model/ (below train/) because both directions use it: `t5explore export` writes with it and
`Pretrain.init_from_hf` (hf_import.py) reads with it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from t5explore.errors import InputError
from t5explore.model.config import T5Config

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
SPM_FILE = "spiece.model"  # the SentencePiece model in a transformers T5 folder (T5Tokenizer's vocab_file)
EXPORTABLE = ("encoder_decoder", "encoder_decoder_half")  # Model.name values transformers' T5 can hold
# A tensor transformers may leave out because it equals another: the head of a model saved tied.
TIED_FALLBACK = {"lm_head.weight": "shared.weight"}
LAYER_NORM_EPSILON = 1e-6  # t5explore.model.layers.RMSNorm's
FEED_FORWARD = {"relu": "relu", "gated-gelu": "gated-gelu"}  # T5Config.mlp -> transformers' feed_forward_proj


class HfExportError(InputError):
    """A model or checkpoint that cannot be converted; the message says which and why."""


def hf_config(cfg: T5Config) -> dict[str, Any]:
    """transformers' T5 config.json for `cfg` (readable by transformers 4 and 5)."""
    return {
        "architectures": ["T5ForConditionalGeneration"],
        "model_type": "t5",
        "vocab_size": cfg.vocab_size,
        "d_model": cfg.d_model,
        "d_kv": cfg.head_dim,
        "d_ff": cfg.d_ff,
        "num_layers": cfg.num_encoder_layers,
        "num_decoder_layers": cfg.num_decoder_layers,
        "num_heads": cfg.num_heads,
        "relative_attention_num_buckets": cfg.relative_attention_num_buckets,
        "relative_attention_max_distance": cfg.relative_attention_max_distance,
        "dropout_rate": cfg.dropout_rate,
        "layer_norm_epsilon": LAYER_NORM_EPSILON,
        "initializer_factor": 1.0,
        "feed_forward_proj": FEED_FORWARD[cfg.mlp],
        "tie_word_embeddings": cfg.tie_embeddings,
        "is_encoder_decoder": True,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "decoder_start_token_id": 0,
        "use_cache": True,
        "torch_dtype": "float32",
    }


def config_from_hf(hf: dict[str, Any], source: str) -> dict[str, Any]:
    """The T5Config fields a transformers T5 config.json describes (`source` names the file in errors)."""
    proj = hf.get("feed_forward_proj", "relu")
    mlp = {"relu": "relu", "gated-gelu": "gated-gelu"}.get(proj)
    if hf.get("model_type") != "t5" or mlp is None:
        raise HfExportError(
            f"{source}: not a T5 checkpoint this harness can load (model_type={hf.get('model_type')!r}, "
            f"feed_forward_proj={proj!r}; supported: t5 with relu or gated-gelu)"
        )
    return {
        "vocab_size": hf["vocab_size"],
        "d_model": hf["d_model"],
        "head_dim": hf["d_kv"],
        "d_ff": hf["d_ff"],
        "num_encoder_layers": hf["num_layers"],
        "num_decoder_layers": hf.get("num_decoder_layers") or hf["num_layers"],
        "num_heads": hf["num_heads"],
        "relative_attention_num_buckets": hf.get("relative_attention_num_buckets", 32),
        "relative_attention_max_distance": hf.get("relative_attention_max_distance", 128),
        "mlp": mlp,
        "tie_embeddings": scales_decoder_output(hf),
    }


def scales_decoder_output(hf: dict[str, Any]) -> bool:
    """Whether transformers multiplies the decoder output by d_model**-0.5 before the head: T5 1.0 (tied, as
    ours with tie_embeddings). transformers 5 says so in `scale_decoder_outputs`; transformers 4 derived it from
    `tie_word_embeddings` (absent = tied), which transformers 5 always writes as true."""
    scale = hf.get("scale_decoder_outputs")
    return bool(hf.get("tie_word_embeddings", True)) if scale is None else bool(scale)


def check_exportable(name: str, config: Path) -> None:
    """Only the encoder-decoder has a transformers counterpart; say why the others do not."""
    if name in EXPORTABLE:
        return
    if name == "decoder_only":
        why = (
            "it is a decoder-only model (one stack over inputs + targets). transformers' T5 classes are "
            "encoder-decoders (T5ForConditionalGeneration) or an encoder alone (T5EncoderModel), and no "
            "transformers decoder-only class has T5's layers (relative position bias, RMSNorm without mean or "
            "bias, attention without 1/sqrt(head_dim))"
        )
    else:
        why = "its encoder and decoder share one set of layer weights, which transformers' T5 cannot tie"
    raise HfExportError(f"{config}: Model.name = {name!r} cannot be exported to Hugging Face: {why}")


def _attention(hf: str, ours: tuple[str, ...]) -> Iterator[tuple[str, tuple[str, ...], str]]:
    for proj, name in (("q", "query"), ("k", "key"), ("v", "value")):
        yield f"{hf}.{proj}.weight", (*ours, name), "qkv"
    yield f"{hf}.o.weight", (*ours, "out"), "out"


def _mlp(cfg: T5Config, hf: str, ours: tuple[str, ...]) -> Iterator[tuple[str, tuple[str, ...], str]]:
    for name in ("wi",) if cfg.mlp == "relu" else ("wi_0", "wi_1"):
        yield f"{hf}.DenseReluDense.{name}.weight", (*ours, "mlp", name), "dense"
    yield f"{hf}.DenseReluDense.wo.weight", (*ours, "mlp", "wo"), "dense"


def _mapping(cfg: T5Config) -> Iterator[tuple[str, tuple[str, ...], str]]:
    """(transformers name, our parameter path, how to convert) for every parameter of an unscanned T5."""
    yield "shared.weight", ("token_embedder", "embedding"), "copy"
    for stack, layers in (("encoder", cfg.num_encoder_layers), ("decoder", cfg.num_decoder_layers)):
        attn = "layer.0.SelfAttention"
        yield f"{stack}.block.0.{attn}.relative_attention_bias.weight", (stack, "relpos_bias", "rel_embedding"), "t"
        yield f"{stack}.final_layer_norm.weight", (stack, "final_norm", "scale"), "copy"
        for i in range(layers):
            block, ours = f"{stack}.block.{i}", (stack, f"layer_{i}")
            if stack == "encoder":
                yield from _attention(f"{block}.{attn}", (*ours, "attention"))
                yield f"{block}.layer.0.layer_norm.weight", (*ours, "pre_attention_norm", "scale"), "copy"
                yield from _mlp(cfg, f"{block}.layer.1", ours)
                yield f"{block}.layer.1.layer_norm.weight", (*ours, "pre_mlp_norm", "scale"), "copy"
            else:
                yield from _attention(f"{block}.{attn}", (*ours, "self_attention"))
                yield f"{block}.layer.0.layer_norm.weight", (*ours, "pre_self_attention_norm", "scale"), "copy"
                yield from _attention(f"{block}.layer.1.EncDecAttention", (*ours, "encoder_decoder_attention"))
                yield f"{block}.layer.1.layer_norm.weight", (*ours, "pre_cross_attention_norm", "scale"), "copy"
                yield from _mlp(cfg, f"{block}.layer.2", ours)
                yield f"{block}.layer.2.layer_norm.weight", (*ours, "pre_mlp_norm", "scale"), "copy"
    if not cfg.tie_embeddings:
        yield "lm_head.weight", ("decoder", "logits_dense"), "t"


def _to_hf(x: np.ndarray, kind: str) -> np.ndarray:
    if kind == "qkv":  # [embed, heads, head_dim] -> [heads * head_dim, embed]
        return x.reshape(x.shape[0], -1).T
    if kind == "out":  # [heads, head_dim, embed] -> [embed, heads * head_dim]
        return x.reshape(-1, x.shape[-1]).T
    return x.T if kind in ("dense", "t") else x


def _from_hf(x: np.ndarray, kind: str, like: np.ndarray) -> np.ndarray:
    if kind == "qkv":
        return x.T.reshape(like.shape)
    if kind == "out":
        return x.T.reshape(like.shape)
    return x.T if kind in ("dense", "t") else x


def _get(params: Any, path: tuple[str, ...]) -> np.ndarray:
    node = params
    for key in path:
        node = node[key]
    return np.asarray(node, dtype=np.float32)


def to_hf_state(params: Any, cfg: T5Config) -> dict[str, np.ndarray]:
    """Our unboxed, unscanned params -> {transformers name: float32 array} (contiguous, as safetensors needs)."""
    return {name: np.ascontiguousarray(_to_hf(_get(params, path), kind)) for name, path, kind in _mapping(cfg)}


def from_hf_state(state: dict[str, np.ndarray], like: Any, cfg: T5Config, source: str) -> dict:
    """{transformers name: array} -> params shaped like `like` (our unscanned params); a missing tensor or a
    shape that differs is one error naming the tensor and both shapes."""
    out: dict = {}
    for name, path, kind in _mapping(cfg):
        expected = _get(like, path)
        name = name if name in state else TIED_FALLBACK.get(name, name)
        if name not in state:
            raise HfExportError(f"{source}: tensor {name} is missing (our parameter {'/'.join(path)})")
        value = _from_hf(np.asarray(state[name], np.float32), kind, expected)
        if value.shape != expected.shape:
            raise HfExportError(
                f"{source}: tensor {name} has shape {tuple(state[name].shape)}, the configured model needs "
                f"{_to_hf(expected, kind).shape} (our {'/'.join(path)}); bind T5Config to the checkpoint's config.json"
            )
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return out


def write_hf_model(params: Any, cfg: T5Config, out_dir: str | os.PathLike) -> Path:
    """Write config.json and model.safetensors for `params` (unboxed, unscanned) into out_dir."""
    from safetensors.numpy import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file(to_hf_state(params, cfg), str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    (out / CONFIG_FILE).write_text(json.dumps(hf_config(cfg), indent=2, sort_keys=True) + "\n")
    return out


def read_hf_model(hf_dir: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(config.json as a dict, {name: float32 array}) of a local transformers T5 checkpoint (one or several
    safetensors files). Errors name the directory and the missing file."""
    from safetensors.numpy import load_file

    root = Path(hf_dir)
    config_path = root / CONFIG_FILE
    if not config_path.is_file():
        raise HfExportError(f"{config_path}: no such file (not a transformers checkpoint directory)")
    files = sorted(root.glob("*.safetensors"))
    if not files:
        raise HfExportError(
            f"{root}: no *.safetensors weights (a pytorch_model.bin checkpoint can be re-saved as safetensors with "
            "transformers: model.save_pretrained(dir, safe_serialization=True))"
        )
    state: dict[str, np.ndarray] = {}
    for f in files:
        state.update({k: v.astype(np.float32) for k, v in load_file(str(f)).items()})
    return json.loads(config_path.read_text()), state
