"""The architectures by name, and the one lookup that builds the configured one (gin: `Model.name`).

Adding an architecture: a module in model/ with a `Model` subclass (model/interface.py), its line in
ARCHITECTURES, and a gin file binding `Model.name` to it (gin/models/decoder_only_*.gin are examples).
"""

from __future__ import annotations

from collections.abc import Callable

import gin

from t5explore.config import ConfigError
from t5explore.model.config import T5Config
from t5explore.model.decoder_only import DecoderOnly
from t5explore.model.encoder_decoder import EncoderDecoder
from t5explore.model.interface import Model

ARCHITECTURES: dict[str, Callable[[T5Config], Model]] = {
    EncoderDecoder.name: EncoderDecoder,  # T5 (Table 2's "Encoder-decoder"), the default
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
