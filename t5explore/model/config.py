"""`T5Config`: every number that decides a T5's shape, bound from gin/models/*.gin.

A frozen dataclass so a config can be hashed (jit static argument, decode cache key) and copied with
`dataclasses.replace` — the trainer fills `vocab_size` from the vocabulary at run time, which is why it
defaults to 0 ("not set yet") and the model refuses to build until it is set.
"""

from __future__ import annotations

import dataclasses

import gin

MLP_KINDS = ("relu", "gated-gelu")
DTYPES = ("bfloat16", "float32")
# Rematerialisation of each encoder/decoder layer in the backward pass (t5explore.model.scan.REMAT_POLICIES).
REMAT_POLICIES = ("none", "full", "dots", "dots_no_batch")
# 'xla': the einsum attention below (the default); 'dot_product': jax.nn.dot_product_attention, cuDNN's fused
# kernel on a GPU where it applies (bf16/fp16), XLA's elsewhere; 'cudnn': the fused kernel or an error.
ATTENTION_IMPLS = ("xla", "dot_product", "cudnn")


@gin.configurable("T5Config")
@dataclasses.dataclass(frozen=True)
class T5Config:
    """T5 1.0 = relu MLP + tied embeddings; T5 1.1 = gated-gelu MLP + untied head. Defaults: T5 1.1 small."""

    vocab_size: int = 0  # filled from the vocabulary at run time (see padded_vocab_size)
    d_model: int = 512
    num_heads: int = 6
    head_dim: int = 64
    d_ff: int = 1024
    num_encoder_layers: int = 8
    num_decoder_layers: int = 8
    mlp: str = "gated-gelu"
    tie_embeddings: bool = False
    dropout_rate: float = 0.0
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    dtype: str = "float32"  # activations/matmuls; parameters are always float32
    name: str = "small"
    # Efficiency options, numerically the default model (within float rounding) and off by default:
    scan_layers: bool = False  # nn.scan over each stack's layers: params gain a leading 'layers' axis
    remat_policy: str = "none"  # recompute each layer's activations in the backward pass (see REMAT_POLICIES)
    attention_impl: str = "xla"  # see ATTENTION_IMPLS
    float32_logits: bool = False  # output projection in float32 whatever `dtype` is (as t5x does)

    def __post_init__(self) -> None:
        for field in (
            "d_model",
            "num_heads",
            "head_dim",
            "d_ff",
            "num_encoder_layers",
            "num_decoder_layers",
            "relative_attention_num_buckets",
            "relative_attention_max_distance",
        ):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"T5Config.{field} must be a positive int, got {value!r}")
        if not isinstance(self.vocab_size, int) or self.vocab_size < 0:
            raise ValueError(f"T5Config.vocab_size must be an int >= 0 (0 = not set yet), got {self.vocab_size!r}")
        if self.mlp not in MLP_KINDS:
            raise ValueError(f"T5Config.mlp must be one of {MLP_KINDS}, got {self.mlp!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"T5Config.dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.remat_policy not in REMAT_POLICIES:
            raise ValueError(f"T5Config.remat_policy must be one of {REMAT_POLICIES}, got {self.remat_policy!r}")
        if self.attention_impl not in ATTENTION_IMPLS:
            raise ValueError(f"T5Config.attention_impl must be one of {ATTENTION_IMPLS}, got {self.attention_impl!r}")
        for field in ("scan_layers", "float32_logits"):
            if not isinstance(getattr(self, field), bool):
                raise ValueError(f"T5Config.{field} must be True or False, got {getattr(self, field)!r}")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"T5Config.dropout_rate must be in [0, 1), got {self.dropout_rate!r}")
        if self.relative_attention_num_buckets % 2:
            raise ValueError(
                "T5Config.relative_attention_num_buckets must be even (half per direction in the "
                f"encoder), got {self.relative_attention_num_buckets}"
            )

    def check_ready(self) -> None:
        """Raise unless the config can build a model (vocab_size is set)."""
        if self.vocab_size <= 0:
            raise ValueError(
                f"T5Config.vocab_size is not set (model {self.name!r}); fill it from the vocabulary "
                "with dataclasses.replace(cfg, vocab_size=padded_vocab_size(vocab.vocab_size))"
            )


def padded_vocab_size(n: int, multiple: int = 128) -> int:
    """Round a vocabulary size up to a multiple (fast matmuls/even sharding); the extra ids are never produced."""
    if n <= 0 or multiple <= 0:
        raise ValueError(f"padded_vocab_size needs n > 0 and multiple > 0, got n={n}, multiple={multiple}")
    return -(-n // multiple) * multiple
