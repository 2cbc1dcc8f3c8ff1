"""The architectures by name, and the one lookup that builds the configured one (gin: `Model.name`).

Adding an architecture: a module in model/ with a `Model` subclass (model/interface.py), its line in
ARCHITECTURES, and a gin file binding `Model.name` to it (gin/models/decoder_only_*.gin are examples).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gin

from t5explore.config import ConfigError
from t5explore.model.config import T5Config
from t5explore.model.decoder_only import DecoderOnly
from t5explore.model.encoder_decoder import EncoderDecoder, HalfDepthEncoderDecoder
from t5explore.model.interface import Model
from t5explore.model.shared_encoder_decoder import SharedEncoderDecoder

ARCHITECTURES: dict[str, Callable[[T5Config], Model]] = {
    EncoderDecoder.name: EncoderDecoder,  # T5 (Table 2's "Encoder-decoder"), the default
    SharedEncoderDecoder.name: SharedEncoderDecoder,  # Table 2's "Enc-dec, shared"
    HalfDepthEncoderDecoder.name: HalfDepthEncoderDecoder,  # Table 2's "Enc-dec, 6 layers" (half the depth)
    DecoderOnly.name: DecoderOnly,  # Table 2's "Language model" / "Prefix LM" (gin DecoderOnly.attention)
}


@gin.configurable("Model")
def architecture(name: str = EncoderDecoder.name) -> str:
    """The configured architecture's name (gin: `Model.name`), checked against ARCHITECTURES."""
    if name not in ARCHITECTURES:
        raise ConfigError(
            f"gin binding Model.name = {name!r} names no architecture; known: {', '.join(sorted(ARCHITECTURES))}"
        )
    return name


def build_model(cfg: T5Config) -> Model:
    """The gin-configured architecture (Model.name) built from `cfg` (its vocab_size set)."""
    return ARCHITECTURES[architecture()](cfg)


def result_fields(cfg: T5Config, pre: Any) -> dict[str, Any]:
    """result.json's `model` fields beyond name and num_params: the configured architecture (Model.architecture),
    its embedding parameters (num_params less them is what the paper's P / 2P count) and the training FLOPs of
    one pre-training example at the objective's planned widths (the paper's M; None without pre-training)."""
    model = build_model(cfg)
    flops = None
    if getattr(pre, "steps", 0) and getattr(pre, "objective", None) is not None:
        plan = pre.objective.plan(pre.inputs_length)
        flops = float(model.train_flops_per_example(plan.inputs_length, plan.targets_length))
    return {
        "architecture": model.architecture,
        "embedding_params": model.embedding_params(),
        "train_flops_per_example": flops,
    }
