"""T5's text-to-text formats, written to match `t5.data.preprocessors` (glue, stsb, squad) exactly.

Kept separate from the loaders so that a record read from a local TSV and the same record read from TFDS
produce the same string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

# RE2's [[:punct:]] and \s (T5 runs these regexes in TensorFlow): ASCII punctuation, ASCII whitespace.
_PUNCT = re.compile(r"([!-/:-@\[-`{-~])")
_SPACES = re.compile(r"[\t\n\f\r ]+")


def glue_inputs(benchmark_name: str, fields: Mapping[str, str], feature_names: Sequence[str] | None = None) -> str:
    """`<benchmark> key1: text1 key2: text2`, keys sorted by name unless given (t5 preprocessors.glue)."""
    parts = [benchmark_name]
    for key in feature_names or sorted(fields):
        parts += [f"{key}:", fields[key]]
    return " ".join(parts)


def stsb_target(score: float) -> str:
    """An STS-B score rounded to the nearest 0.2 with one decimal, e.g. 3.8 (float32, round half to even)."""
    five = np.float32(5)
    return f"{np.round(np.float32(score) * five) / five:.1f}"


def pad_punctuation(text: str) -> str:
    """Spaces around every ASCII punctuation mark, whitespace runs collapsed (t5 `_pad_punctuation`)."""
    return _SPACES.sub(" ", _PUNCT.sub(r" \1 ", text))


def squad_inputs(question: str, context: str) -> str:
    """`question: <q> context: <c>` with punctuation padded, as T5's squad preprocessor writes it."""
    joined = " ".join(["question:", pad_punctuation(question), "context:", pad_punctuation(context)])
    return _SPACES.sub(" ", joined)
