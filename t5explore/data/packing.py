"""Packing: several short (inputs, targets) examples share one fixed-width row, T5/seqio style.

A packed batch has the features of `features.encdec_features` plus, per side, `*_segment_ids` (1, 2, ... per
example in the row; 0 = padding) and `*_positions` (0, 1, ... restarting at every example; 0 on padding).
Decoder inputs restart at every segment: each example's first decoder input is the pad id (T5's BOS), never
the previous example's last target. The model masks attention across segments on all three attentions
(encoder self, decoder self, cross) and computes relative positions from `*_positions`
(t5explore/model/t5.py), so a packed example sees exactly what it would see alone in its own row.

Rows are filled first-fit in the order the examples come: an example goes into the first row where both its
inputs and its targets still fit; the first example that fits in no row closes the batch (it is not consumed,
so it opens the next batch). The batch is therefore a pure function of the example order, which is the
sampler's (train/finetune_data.py), and a resumed run packs exactly the same rows.
"""

from __future__ import annotations

import numpy as np

from t5explore.special_ids import PAD_ID

SEGMENT_FEATURES = ("encoder_segment_ids", "encoder_positions", "decoder_segment_ids", "decoder_positions")


def example_lengths(padded: np.ndarray) -> np.ndarray:
    """Lengths (EOS included) of right-padded rows [N, L] whose tokens are never the pad id."""
    return np.count_nonzero(np.asarray(padded) != PAD_ID, axis=1).astype(np.int64)


class RowPacker:
    """One batch of `rows` packed rows, `inputs_length` / `targets_length` wide, filled first-fit."""

    def __init__(self, rows: int, inputs_length: int, targets_length: int):
        self.rows, self.inputs_length, self.targets_length = rows, inputs_length, targets_length
        self._enc = np.zeros((rows, inputs_length), np.int32)
        self._enc_seg = np.zeros((rows, inputs_length), np.int32)
        self._enc_pos = np.zeros((rows, inputs_length), np.int32)
        self._dec = np.zeros((rows, targets_length), np.int32)
        self._dec_in = np.zeros((rows, targets_length), np.int32)
        self._dec_seg = np.zeros((rows, targets_length), np.int32)
        self._dec_pos = np.zeros((rows, targets_length), np.int32)
        self._enc_fill = np.zeros(rows, np.int64)
        self._dec_fill = np.zeros(rows, np.int64)
        self._segments = np.zeros(rows, np.int32)
        self.examples = 0

    def add(self, inputs: np.ndarray, targets: np.ndarray) -> bool:
        """Place one example (unpadded ids, EOS included) in the first row it fits; False if none has room."""
        n_in, n_tg = len(inputs), len(targets)
        if not 0 < n_in <= self.inputs_length or not 0 < n_tg <= self.targets_length:
            raise ValueError(
                f"an example of {n_in} inputs / {n_tg} targets cannot fill a row of "
                f"{self.inputs_length} / {self.targets_length} tokens"
            )
        fits = np.flatnonzero(
            (self._enc_fill + n_in <= self.inputs_length) & (self._dec_fill + n_tg <= self.targets_length)
        )
        if fits.size == 0:
            return False
        r = int(fits[0])
        self._segments[r] += 1
        seg = self._segments[r]
        e0, d0 = int(self._enc_fill[r]), int(self._dec_fill[r])
        self._enc[r, e0 : e0 + n_in] = inputs
        self._enc_seg[r, e0 : e0 + n_in] = seg
        self._enc_pos[r, e0 : e0 + n_in] = np.arange(n_in)
        self._dec[r, d0 : d0 + n_tg] = targets
        self._dec_in[r, d0 + 1 : d0 + n_tg] = targets[:-1]  # _dec_in[r, d0] stays PAD_ID: the segment's BOS
        self._dec_seg[r, d0 : d0 + n_tg] = seg
        self._dec_pos[r, d0 : d0 + n_tg] = np.arange(n_tg)
        self._enc_fill[r] += n_in
        self._dec_fill[r] += n_tg
        self.examples += 1
        return True

    def features(self) -> dict[str, np.ndarray]:
        """The packed batch's model features (copies: the packer may be reused)."""
        return {
            "encoder_input_tokens": self._enc.copy(),
            "decoder_input_tokens": self._dec_in.copy(),
            "decoder_target_tokens": self._dec.copy(),
            "decoder_loss_weights": (self._dec != PAD_ID).astype(np.float32),
            "encoder_segment_ids": self._enc_seg.copy(),
            "encoder_positions": self._enc_pos.copy(),
            "decoder_segment_ids": self._dec_seg.copy(),
            "decoder_positions": self._dec_pos.copy(),
        }


def pack_examples(
    inputs: list[np.ndarray], targets: list[np.ndarray], rows: int, inputs_length: int, targets_length: int
) -> tuple[dict[str, np.ndarray], int]:
    """Pack examples in order until one fits no row: (features, how many examples were packed)."""
    packer = RowPacker(rows, inputs_length, targets_length)
    for x, y in zip(inputs, targets):
        if not packer.add(x, y):
            break
    return packer.features(), packer.examples


def token_counts(features: dict[str, np.ndarray]) -> tuple[int, int]:
    """(real tokens, token slots) of a batch, encoder and decoder together: the packing ratio is their quotient."""
    enc, dec = features["encoder_input_tokens"], features["decoder_target_tokens"]
    real = int(np.count_nonzero(enc != PAD_ID) + np.count_nonzero(dec != PAD_ID))
    return real, int(enc.size + dec.size)
