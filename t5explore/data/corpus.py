"""Corpus sources: where pretraining text comes from.

A `CorpusSource` yields documents (plain strings) in a fixed order and has a `fingerprint()`: a hash of its
*content* (or, for TFDS, of name/split/version), so vocabularies and token stores built from it can be cached
and are rebuilt whenever the text changes. Each source is a gin configurable, e.g.

    Pretrain.corpus = @text_files()
    text_files.pattern = 'data/books/*.txt'

`get_corpus(name, **kwargs)` looks the same factories up by name for code that does not use gin.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Callable, Iterator, Sequence

import gin

from t5explore.data import builtin_corpus as builtin
from t5explore.data.cache import files_fingerprint, hash_update
from t5explore.errors import InputError


class CorpusError(InputError):
    """A corpus file or setting is wrong; the message names the file, line or field."""


class CorpusSource:
    """Base class: `name`, `documents()` and a memoised content `fingerprint()`."""

    name: str = "corpus"

    def documents(self) -> Iterator[str]:
        raise NotImplementedError

    def _compute_fingerprint(self) -> str:
        raise NotImplementedError

    def fingerprint(self) -> str:
        if getattr(self, "_fingerprint", None) is None:
            self._fingerprint = self._compute_fingerprint()
        return self._fingerprint

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


_FACTORIES: dict[str, Callable[..., CorpusSource]] = {}


def register_corpus(name: str):
    """Register a factory under `name` for `get_corpus` and as the gin configurable `@name()`."""

    def wrap(fn):
        configurable = gin.configurable(name, module=None)(fn)
        _FACTORIES[name] = configurable
        return configurable

    return wrap


def get_corpus(name: str, **kwargs) -> CorpusSource:
    if name not in _FACTORIES:
        raise CorpusError(f"unknown corpus {name!r}; known: {sorted(_FACTORIES)}")
    return _FACTORIES[name](**kwargs)


def corpus_names() -> list[str]:
    return sorted(_FACTORIES)


def expand_patterns(pattern: str | Sequence[str], directory: str | None, reader: str) -> list[Path]:
    """Files matching one or more paths/globs (relative to `directory` if given), sorted, de-duplicated."""
    patterns = [pattern] if isinstance(pattern, (str, os.PathLike)) else list(pattern)
    if not patterns:
        raise CorpusError(f"{reader}.pattern is empty")
    if directory and not os.path.isdir(os.path.expanduser(directory)):
        raise CorpusError(f"{directory}: no such directory ({reader}.directory)")
    files: set[str] = set()
    for p in patterns:
        full = os.path.expanduser(os.path.join(directory, str(p)) if directory else str(p))
        matches = [m for m in glob.glob(full, recursive=True) if os.path.isfile(m)]
        if not matches:
            parent = os.path.dirname(re.split(r"[*?\[]", full, maxsplit=1)[0])
            if parent and not os.path.isdir(parent):
                raise CorpusError(f"{parent}: no such directory ({reader}.pattern {str(p)!r})")
            where = f" (directory {directory!r})" if directory else ""
            raise CorpusError(f"{reader}.pattern {str(p)!r}{where} matches no files: looked for {full!r}")
        files.update(os.path.abspath(m) for m in matches)
    return [Path(f) for f in sorted(files)]


def split_paragraphs(text: str, join_lines: bool = True) -> list[str]:
    """Paragraphs separated by blank (whitespace-only) lines; hard-wrapped lines joined by one space."""
    paragraphs, current = [], []
    for line in text.split("\n"):
        if line.strip():
            current.append(line.strip() if join_lines else line.rstrip())
        elif current:
            paragraphs.append((" " if join_lines else "\n").join(current))
            current = []
    if current:
        paragraphs.append((" " if join_lines else "\n").join(current))
    return paragraphs


def _read_utf8(path: Path) -> str:
    data = path.read_bytes()
    nul = data.find(b"\0")
    if nul >= 0:
        raise CorpusError(f"{path}: a binary file (NUL byte at offset {nul}), not UTF-8 text")
    try:
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path}: not valid UTF-8 at byte {e.start}") from None


def _not_utf8(path: Path) -> CorpusError:
    """The error for a file that does not decode, naming its first bad line."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                return CorpusError(f"{path}:{lineno}: not valid UTF-8 at byte {e.start} of the line (a binary file?)")
    return CorpusError(f"{path}: not valid UTF-8")


def _no_text(files: Sequence[Path], reader: str) -> CorpusError:
    """The error for a corpus whose files hold no document at all."""
    if len(files) == 1:
        return CorpusError(f"{files[0]}: empty corpus: the file holds no text ({reader})")
    return CorpusError(f"{files[0]} (and {len(files) - 1} more files): empty corpus: no file holds any text ({reader})")


class TextFiles(CorpusSource):
    """Plain UTF-8 files; every blank-line-separated paragraph is one document (a book → many documents)."""

    def __init__(self, pattern, directory: str | None = None, join_lines: bool = True):
        self.files = expand_patterns(pattern, directory, "text_files")
        self.join_lines = join_lines
        self.name = f"text_files:{pattern}"

    def documents(self) -> Iterator[str]:
        empty = True
        for path in self.files:
            for doc in split_paragraphs(_read_utf8(path), self.join_lines):
                empty = False
                yield doc
        if empty:
            raise _no_text(self.files, "text_files")

    def _compute_fingerprint(self) -> str:
        return files_fingerprint("text_files-v1", (str(self.join_lines),), self.files)


class JsonlFiles(CorpusSource):
    """JSON Lines files; each line is an object whose `field` holds one document."""

    def __init__(self, pattern, field: str = "text", directory: str | None = None):
        self.files = expand_patterns(pattern, directory, "jsonl_files")
        self.field = field
        self.name = f"jsonl_files:{pattern}:{field}"

    def documents(self) -> Iterator[str]:
        empty = True
        for path in self.files:
            with open(path, encoding="utf-8") as f:
                try:
                    for lineno, line in enumerate(f, start=1):
                        if line.strip():
                            empty = False
                            yield self._text_of(line, path, lineno)
                except UnicodeDecodeError:
                    raise _not_utf8(path) from None
        if empty:
            raise _no_text(self.files, "jsonl_files")

    def _text_of(self, line: str, path: Path, lineno: int) -> str:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{path}:{lineno}: malformed JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(record, dict) or self.field not in record:
            keys = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise CorpusError(f"{path}:{lineno}: no field {self.field!r} (jsonl_files.field); found {keys}")
        text = record[self.field]
        if not isinstance(text, str):
            raise CorpusError(f"{path}:{lineno}: field {self.field!r} is {type(text).__name__}, not a string")
        return text

    def _compute_fingerprint(self) -> str:
        return files_fingerprint("jsonl_files-v1", (self.field,), self.files)


class TfdsCorpus(CorpusSource):
    """A TFDS dataset's text field, in the dataset's deterministic file order (no shuffling)."""

    def __init__(self, name: str, split: str = "train", field: str = "text", data_dir: str | None = None,
                 max_documents: int | None = None):
        self.dataset, self.split, self.field, self.data_dir = name, split, field, data_dir
        self.max_documents = max_documents
        self.name = f"tfds:{name}:{split}"

    def _builder(self):
        import tensorflow_datasets as tfds

        try:
            return tfds.builder(self.dataset, data_dir=self.data_dir)
        except Exception as e:  # tfds raises many kinds; name the binding
            raise CorpusError(f"tfds_corpus.name {self.dataset!r}: {e}") from e

    def documents(self) -> Iterator[str]:
        import tensorflow_datasets as tfds

        ds = self._builder().as_dataset(split=self.split, shuffle_files=False)
        if self.max_documents is not None:
            ds = ds.take(self.max_documents)
        for example in tfds.as_numpy(ds):
            if self.field not in example:
                raise CorpusError(f"tfds_corpus.field {self.field!r} not in {self.dataset}; has {sorted(example)}")
            value = example[self.field]
            yield value.decode("utf-8") if isinstance(value, bytes) else str(value)

    def _compute_fingerprint(self) -> str:
        version = str(self._builder().info.version)
        h = hashlib.sha256()
        hash_update(h, "tfds-v1", self.dataset, self.split, self.field, version, str(self.max_documents))
        return h.hexdigest()


class BuiltinCorpus(CorpusSource):
    """Docstrings and pydoc topics of this Python's standard library (see builtin_corpus.py)."""

    name = "builtin"

    def __init__(self, cache_dir: str | None = None):
        self.cache_dir = cache_dir

    def documents(self) -> Iterator[str]:
        return (d.text for d in builtin.builtin_documents(self.cache_dir))

    def _compute_fingerprint(self) -> str:
        return builtin.documents_fingerprint(builtin.builtin_documents(self.cache_dir))


@register_corpus("builtin_corpus")
def builtin_corpus(cache_dir: str | None = None) -> CorpusSource:
    return BuiltinCorpus(cache_dir)


@register_corpus("text_files")
def text_files(pattern=gin.REQUIRED, directory: str | None = None, join_lines: bool = True) -> CorpusSource:
    return TextFiles(pattern, directory, join_lines)


@register_corpus("jsonl_files")
def jsonl_files(pattern=gin.REQUIRED, field: str = "text", directory: str | None = None) -> CorpusSource:
    return JsonlFiles(pattern, field, directory)


@register_corpus("tfds_corpus")
def tfds_corpus(name: str = gin.REQUIRED, split: str = "train", field: str = "text", data_dir: str | None = None,
                max_documents: int | None = None) -> CorpusSource:
    return TfdsCorpus(name, split, field, data_dir, max_documents)
