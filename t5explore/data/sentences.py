"""Sentence and document starts of pre-training rows, for objectives that act on them (BART's sentence
permutation and document rotation, objectives/bart.py).

Documents: the token store keeps each document's first token (`doc_offsets`); a row's document starts are the
offsets inside it, and its first token, whatever it is.

Sentences: a splitter over the vocabulary's pieces, so the stream needs no text. A sentence ends at a token
whose piece ends in '.', '!' or '?' (closing quotes and brackets after it allowed: `end."`, `?)`) and the
next sentence begins at the following token if that token starts a word (its sentencepiece piece begins
with '▁'), so "3.5" and "U.S.A" do not split; a document start is always a sentence start. This is BART's
rule ("a document is divided into sentences based on full stops", fairseq splits at its full-stop token)
with '!' and '?' added; like it, it splits after abbreviations ("Mr. Darcy"). The tables are built once per
vocabulary (`from_sentencepiece`, or `from_pieces` for any tokenisation, as the tests' word-level one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from t5explore.errors import InputError
from t5explore.objectives.bart import Boundaries

SENTENCE_FINAL = ".!?"
CLOSERS = "\"')]}»”’"
WORD_START = "▁"  # sentencepiece's word-boundary marker


@dataclasses.dataclass(frozen=True, eq=False)
class SentenceSplitter:
    """Per token id: does its piece end a sentence (`final`), does it start a word (`word_start`)."""

    final: np.ndarray  # bool [vocab]
    word_start: np.ndarray  # bool [vocab]

    @classmethod
    def from_pieces(cls, pieces: Sequence[str], vocab_size: int | None = None) -> SentenceSplitter:
        """Tables for the pieces of ids 0..len(pieces)-1; ids up to vocab_size (sentinels) neither end a
        sentence nor start a word."""
        size = max(len(pieces), vocab_size or 0)
        final, word_start = np.zeros(size, bool), np.zeros(size, bool)
        for i, piece in enumerate(pieces):
            body = piece.rstrip(CLOSERS)
            final[i] = body.endswith(tuple(SENTENCE_FINAL)) and body.strip(WORD_START) != ""
            word_start[i] = piece.startswith(WORD_START)
        return cls(final, word_start)

    @classmethod
    def from_sentencepiece(cls, model_path: str, vocab_size: int | None = None) -> SentenceSplitter:
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(model_path))
        return cls.from_pieces([sp.id_to_piece(i) for i in range(sp.get_piece_size())], vocab_size)

    @classmethod
    def for_store(cls, store) -> SentenceSplitter:
        """The splitter of the vocabulary a store was tokenised with (its manifest names the model file)."""
        path = getattr(store, "meta", {}).get("vocab")
        if not path:
            raise InputError(
                f"{store} records no vocabulary to split sentences with; pass PretrainStream(sentences=...) "
                "(a SentenceSplitter) for a store written without one"
            )
        return cls.from_sentencepiece(path, store.token_space.vocab_size)

    def starts(self, chunks: np.ndarray, document_start: np.ndarray) -> np.ndarray:
        """bool [B, L]: sentence starts of rows `chunks` (the first token and document starts included)."""
        ids = np.asarray(chunks)
        out = document_start.copy()
        out[:, 0] = True
        out[:, 1:] |= self.final[ids[:, :-1]] & self.word_start[ids[:, 1:]]
        return out


def document_starts(doc_offsets: np.ndarray, row_starts: np.ndarray, width: int) -> np.ndarray:
    """bool [B, width]: which tokens of the rows starting at store positions `row_starts` begin a document
    (a row's first token always does: it starts the row's first unit)."""
    positions = np.asarray(row_starts, np.int64)[:, None] + np.arange(width)
    offsets = np.asarray(doc_offsets)
    index = np.minimum(np.searchsorted(offsets, positions), offsets.size - 1)
    out = offsets[index] == positions
    out[:, 0] = True
    return out


def row_boundaries(splitter: SentenceSplitter, doc_offsets, row_starts, chunks: np.ndarray) -> Boundaries:
    documents = document_starts(doc_offsets, row_starts, chunks.shape[1])
    return Boundaries(splitter.starts(chunks, documents), documents)
