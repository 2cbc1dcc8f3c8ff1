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

    def __post_init__(self):
        for field in ("d_model", "num_heads", "head_dim", "d_ff", "num_encoder_layers", "num_decoder_layers",
                      "relative_attention_num_buckets", "relative_attention_max_distance"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"T5Config.{field} must be a positive int, got {value!r}")
        if not isinstance(self.vocab_size, int) or self.vocab_size < 0:
            raise ValueError(f"T5Config.vocab_size must be an int >= 0 (0 = not set yet), got {self.vocab_size!r}")
        if self.mlp not in MLP_KINDS:
            raise ValueError(f"T5Config.mlp must be one of {MLP_KINDS}, got {self.mlp!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"T5Config.dtype must be one of {DTYPES}, got {self.dtype!r}")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"T5Config.dropout_rate must be in [0, 1), got {self.dropout_rate!r}")
        if self.relative_attention_num_buckets % 2:
            raise ValueError("T5Config.relative_attention_num_buckets must be even (half per direction in the "
                             f"encoder), got {self.relative_attention_num_buckets}")

    def check_ready(self) -> None:
        """Raise unless the config can build a model (vocab_size is set)."""
        if self.vocab_size <= 0:
            raise ValueError(f"T5Config.vocab_size is not set (model {self.name!r}); fill it from the vocabulary "
                             "with dataclasses.replace(cfg, vocab_size=padded_vocab_size(vocab.vocab_size))")


def padded_vocab_size(n: int, multiple: int = 128) -> int:
    """Round a vocabulary size up to a multiple (fast matmuls/even sharding); the extra ids are never produced."""
    if n <= 0 or multiple <= 0:
        raise ValueError(f"padded_vocab_size needs n > 0 and multiple > 0, got n={n}, multiple={multiple}")
    return -(-n // multiple) * multiple
