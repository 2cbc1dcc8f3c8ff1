"""Pre-training text kept disjoint from evaluation text: n-gram de-duplication of a corpus against held-out examples.

A downstream score measures transfer only if the model never read the examples it is scored on. A corpus that
holds the evaluation texts (the built-in corpus holds every stdlib_module docstring, Wikipedia holds BoolQ's
passages) turns fine-tuning into recall. So, before the vocabulary and the token store are built, every
document that shares a word n-gram (13 by default, as GPT-3's contamination study used) with any evaluation or
selection example of the run's tasks is dropped, and the run records what it measured and removed.

Words are lower-cased `\\w+` runs. A task input is cut at its T5 field labels (`sentence1:`, `question:`, ...)
so a gram never spans two fields; a field shorter than `ngram` words but at least `min_words` long is matched as
a whole word sequence; shorter fields are not checked and are counted (`unchecked_examples`).

`DecontaminatedCorpus` wraps any `CorpusSource`: the same documents minus the contaminated ones, shard by shard
(so the parallel token-store build filters too), with a fingerprint that covers the held-out grams, so caches
built from it are never confused with the raw corpus's. `measure` makes one pass over the raw corpus (what was
contaminated and removed) and one over the filtered one (the overlap left, which must be 0); the report is cached
beside the vocabulary under the wrapper's fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from t5explore.data.corpus import CorpusSource
from t5explore.io_utils import atomic_write_json

NGRAM = 13
MIN_WORDS = 8
_WORD = re.compile(r"\w+")
_FIELD_LABEL = re.compile(r"(?:^|\s)[A-Za-z][A-Za-z0-9_]*:(?=\s)")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def fields(text: str) -> list[list[str]]:
    """The word lists of a T5-formatted input's fields (cut at `label:` markers; the task prefix is a field)."""
    return [w for part in _FIELD_LABEL.split(text) if (w := words(part))]


class HeldOutGrams:
    """The grams of a set of held-out texts: n-grams of long fields, whole word sequences of shorter ones."""

    def __init__(self, texts: Iterable[str], ngram: int = NGRAM, min_words: int = MIN_WORDS):
        if ngram < 1 or min_words < 1:
            raise ValueError(f"ngram and min_words must be >= 1, got {ngram}, {min_words}")
        self.ngram, self.min_words = ngram, min_words
        self.grams: set[str] = set()
        self.num_texts = self.unchecked = 0
        self._of_text: list[set[str]] = []
        for text in texts:
            own = {g for f in fields(text) for g in self._field_grams(f)}
            self._of_text.append(own)
            self.grams |= own
            self.num_texts += 1
            self.unchecked += not own
        self.lengths = sorted({g.count(" ") + 1 for g in self.grams})

    def _field_grams(self, w: list[str]) -> list[str]:
        if len(w) < self.min_words:
            return []
        if len(w) < self.ngram:
            return [" ".join(w)]
        return [" ".join(w[i : i + self.ngram]) for i in range(len(w) - self.ngram + 1)]

    def fingerprint(self) -> str:
        h = hashlib.sha256(f"ngram={self.ngram};min_words={self.min_words}\n".encode())
        for g in sorted(self.grams):
            h.update(g.encode())
            h.update(b"\n")
        return h.hexdigest()

    def found_in(self, text: str) -> set[str]:
        """The held-out grams that occur in `text`."""
        if not self.grams:
            return set()
        w = words(text)
        return {g for k in self.lengths for i in range(len(w) - k + 1) if (g := " ".join(w[i : i + k])) in self.grams}

    def texts_hit(self, found: set[str]) -> int:
        """How many held-out texts share at least one gram with `found`."""
        return sum(1 for own in self._of_text if own & found)


class DecontaminatedCorpus(CorpusSource):
    """`inner`'s documents except those sharing a gram with the held-out texts (see the module docstring)."""

    def __init__(self, inner: CorpusSource, held_out: HeldOutGrams):
        self.inner, self.held_out = inner, held_out
        self.name = f"{inner.name} (decontaminated)"

    def keep(self, doc: str) -> bool:
        return not self.held_out.found_in(doc)

    def documents(self) -> Iterator[str]:
        return (d for d in self.inner.documents() if self.keep(d))

    def shards(self, shard_bytes: int | None = None, shard_documents: int = 1_000_000) -> list:
        return self.inner.shards(shard_bytes, shard_documents)

    def shard_documents(self, shard) -> Iterator[str]:
        return (d for d in self.inner.shard_documents(shard) if self.keep(d))

    def size_note(self) -> str | None:
        return self.inner.size_note()

    def no_documents_error(self) -> Exception:
        return self.inner.no_documents_error()

    def _compute_fingerprint(self) -> str:
        key = f"decontaminated:{self.inner.fingerprint()}:{self.held_out.fingerprint()}"
        return hashlib.sha256(key.encode()).hexdigest()


def measure(corpus: DecontaminatedCorpus) -> dict:
    """result.json's `hygiene.decontamination`: what the raw corpus held of the held-out texts, what was removed,
    and the overlap measured again on the filtered documents (0 unless the filter is broken)."""
    held = corpus.held_out
    found_before: set[str] = set()
    docs = removed = 0
    for doc in corpus.inner.documents():
        docs += 1
        hit = held.found_in(doc)
        if hit:
            removed += 1
            found_before |= hit
    found_after: set[str] = set()
    for doc in corpus.documents():
        found_after |= held.found_in(doc)
    return {
        "ngram": held.ngram,
        "min_words": held.min_words,
        "eval_examples": held.num_texts,
        "unchecked_examples": held.unchecked,
        "contaminated_before": held.texts_hit(found_before),
        "documents": docs,
        "documents_removed": removed,
        "overlap_after": held.texts_hit(found_after),
    }


def decontaminate(corpus: CorpusSource, texts: Sequence[str], cache_dir: Path, ngram: int = NGRAM) -> tuple:
    """(the filtered corpus, its measured report), the report cached under the filtered corpus's fingerprint."""
    filtered = DecontaminatedCorpus(corpus, HeldOutGrams(texts, ngram))
    path = Path(cache_dir) / "decontamination" / f"{filtered.fingerprint()[:32]}.json"
    if path.is_file():
        try:
            return filtered, json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass  # unreadable: measured again and rewritten
    report = measure(filtered)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, report)
    return filtered, report
