"""Parameter counts and training FLOPs from the config alone (for result.json and MFU).

FLOPs count matmuls (2 per multiply-add) including attention scores and weighted sums; training is
3x the forward pass (backward = 2x forward). Embedding lookups, norms and softmax are ignored, as usual.
"""

from __future__ import annotations

from t5explore.model.config import T5Config


def attention_params(cfg: T5Config) -> int:
    return 4 * cfg.d_model * cfg.num_heads * cfg.head_dim  # query, key, value, out


def mlp_params(cfg: T5Config) -> int:
    return (2 if cfg.mlp == "relu" else 3) * cfg.d_model * cfg.d_ff


def embedding_params(cfg: T5Config) -> int:
    """The token embedding, plus the output head unless it is tied to the embedding."""
    return cfg.vocab_size * cfg.d_model * (1 if cfg.tie_embeddings else 2)


def num_params(cfg: T5Config) -> int:
    """Exact number of parameters `T5(cfg).init` creates."""
    cfg.check_ready()
    d, attn, mlp = cfg.d_model, attention_params(cfg), mlp_params(cfg)
    relpos = cfg.num_heads * cfg.relative_attention_num_buckets
    embeddings = embedding_params(cfg)
    encoder = cfg.num_encoder_layers * (attn + mlp + 2 * d) + d + relpos
    decoder = cfg.num_decoder_layers * (2 * attn + mlp + 3 * d) + d + relpos
    return embeddings + encoder + decoder


def layer_flop_terms(cfg: T5Config) -> tuple[int, int, int]:
    """Forward FLOPs (one of the q/k/v/out projections per token, the MLP per token, attention scores and
    weighted sum per (query, key) pair): the terms every architecture's count is made of."""
    hd = cfg.num_heads * cfg.head_dim
    return 2 * cfg.d_model * hd, 2 * mlp_params(cfg), 2 * 2 * hd


def train_flops_per_example(cfg: T5Config, inputs_length: int, targets_length: int) -> int:
    """Training FLOPs (forward + backward) for one example of inputs_length / targets_length tokens."""
    cfg.check_ready()
    n_in, n_out = inputs_length, targets_length
    d = cfg.d_model
    proj, mlp, scores = layer_flop_terms(cfg)
    encoder = cfg.num_encoder_layers * (n_in * (4 * proj + mlp) + scores * n_in * n_in)
    decoder_self = n_out * 4 * proj + scores * n_out * n_out
    decoder_cross = n_out * 2 * proj + n_in * 2 * proj + scores * n_out * n_in  # q, out on targets; k, v on inputs
    decoder = cfg.num_decoder_layers * (decoder_self + decoder_cross + n_out * mlp)
    head = n_out * 2 * d * cfg.vocab_size
    return 3 * (encoder + decoder + head)


def flops_per_token(cfg: T5Config, inputs_length: int, targets_length: int) -> float:
    """Training FLOPs per *input* token, since T5 counts tokens as batch x inputs_length
    (so MFU = flops_per_token * tokens_per_s / peak_flops with tokens_per_s counted that way)."""
    return train_flops_per_example(cfg, inputs_length, targets_length) / inputs_length
