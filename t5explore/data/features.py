"""Objective/task output -> the feature dict the encoder-decoder trains on (t5x's EncDecFeatureConverter).

Kept apart from objectives (which only corrupt tokens) and from the model (which only reads features), so
that packing can later add `*_segment_ids` / `*_positions` here without touching either side.
"""

from __future__ import annotations

import numpy as np

from t5explore.special_ids import PAD_ID

__all__ = ["encdec_features", "shift_right"]


def shift_right(targets: np.ndarray) -> np.ndarray:
    """Decoder inputs: targets shifted one step right, starting from the pad id (T5's BOS)."""
    out = np.zeros_like(targets)
    out[:, 1:] = targets[:, :-1]
    return out


def encdec_features(inputs: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
    """Build model features from padded `inputs` [B, I] and `targets` [B, T] (0 = padding)."""
    inputs = np.asarray(inputs, dtype=np.int32)
    targets = np.asarray(targets, dtype=np.int32)
    if inputs.ndim != 2 or targets.ndim != 2 or inputs.shape[0] != targets.shape[0]:
        raise ValueError(f"expected inputs [B, I] and targets [B, T], got {inputs.shape} and {targets.shape}")
    return {
        "encoder_input_tokens": inputs,
        "decoder_input_tokens": shift_right(targets),
        "decoder_target_tokens": targets,
        "decoder_loss_weights": (targets != PAD_ID).astype(np.float32),
    }
