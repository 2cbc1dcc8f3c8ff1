"""Corpus sources: where pretraining text comes from.

A `CorpusSource` yields documents (plain strings) in a fixed order and has a `fingerprint()`: a hash of its
*content* (or, for TFDS, of name/split/version), so vocabularies and token stores built from it can be cached
and are rebuilt whenever the text changes. Each source is a gin configurable, e.g.

    Pretrain.corpus = @text_files()
    text_files.pattern = 'data/books/*.txt'

`get_corpus(name, **kwargs)` looks the same factories up by name for code that does not use gin.

File fingerprints are remembered under the files' metadata (t5explore/data/cache.py), so a large corpus is
hashed once; `text_files.hash_contents = True` (or `jsonl_files.`) re-hashes every byte at every start.

For the token store, a source cuts itself into `shards()`: consecutive parts (file groups, byte ranges of
JSON Lines files, TFDS example slices) whose `shard_documents`, concatenated in order, are `documents()`,
so the store is the same whatever the number of processes that tokenise it.
"""

from __future__ import annotations

import codecs
import glob
import hashlib
import io
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import gin

from t5explore.data import builtin_corpus as builtin
from t5explore.data.cache import files_fingerprint, hash_update
from t5explore.data.file_ranges import plan_file_shards, text_range
from t5explore.errors import InputError

_UTF8_DECODER = codecs.getincrementaldecoder("utf-8")


class CorpusError(InputError):
    """A corpus file or setting is wrong; the message names the file, line or field."""


class CorpusSource:
    """Base class: `name`, `documents()`, a memoised content `fingerprint()` and the sharding interface
    (`shards`, `shard_documents`): by default one shard, the whole corpus."""

    name: str = "corpus"

    def documents(self) -> Iterator[str]:
        raise NotImplementedError

    def shards(self, shard_bytes: int | None = None, shard_documents: int = 1_000_000) -> list:
        """JSON-able descriptions of consecutive parts of `documents()`, in order."""
        return [None]

    def shard_documents(self, shard) -> Iterator[str]:
        return self.documents()

    def size_note(self) -> str | None:
        """A line for the build log about how much of the source is read (e.g. a cap), or None."""
        return None

    def no_documents_error(self) -> Exception:
        return CorpusError(f"empty corpus: {self.name} holds no document")

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
    trim = str.strip if join_lines else str.rstrip  # either is empty exactly for a whitespace-only line
    for line in text.split("\n"):
        kept = trim(line)
        if kept:
            current.append(kept)
        elif current:
            paragraphs.append((" " if join_lines else "\n").join(current))
            current = []
    if current:
        paragraphs.append((" " if join_lines else "\n").join(current))
    return paragraphs


def _read_utf8(path: Path) -> str:
    """The file's text with \\r\\n and \\r as \\n. Decoded and translated in one C pass by io's universal
    newlines decoder (a store build reads every byte of the corpus: copying it once more for the line ends cost
    a fifth of reading); the errors are found again in the bytes as they are."""
    data = path.read_bytes()
    nul = data.find(b"\0")
    if nul >= 0:
        raise CorpusError(f"{path}: a binary file (NUL byte at offset {nul}), not UTF-8 text")
    try:
        return io.IncrementalNewlineDecoder(_UTF8_DECODER(), translate=True).decode(data, final=True)
    except UnicodeDecodeError:
        pass
    try:  # the first bad byte's offset, from a plain decode of the file's bytes
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path}: not valid UTF-8 at byte {e.start}") from None
    raise AssertionError(f"{path}: decodes as UTF-8 only without its line ends")  # cannot happen: \r is ASCII


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


class _FileCorpus(CorpusSource):
    """Files read in sorted order; shards are consecutive files (JSON Lines: byte ranges cut at line ends)."""

    reader = "files"
    split_lines = False
    files: list[Path]  # set by the subclass from its patterns

    def documents(self) -> Iterator[str]:
        empty = True
        for path in self.files:
            for doc in self._file_documents(path, 0, None):
                empty = False
                yield doc
        if empty:
            raise self.no_documents_error()

    def shards(self, shard_bytes: int | None = None, shard_documents: int = 1_000_000) -> list:
        return plan_file_shards(self.files, shard_bytes, self.split_lines)

    def shard_documents(self, shard) -> Iterator[str]:
        for path, start, stop in shard:
            yield from self._file_documents(Path(path), start, stop)

    def no_documents_error(self) -> Exception:
        return _no_text(self.files, self.reader)

    def _file_documents(self, path: Path, start: int, stop: int | None) -> Iterator[str]:
        raise NotImplementedError


class TextFiles(_FileCorpus):
    """Plain UTF-8 files; every blank-line-separated paragraph is one document (a book → many documents)."""

    reader = "text_files"

    def __init__(self, pattern, directory: str | None = None, join_lines: bool = True, hash_contents: bool = False):
        self.files = expand_patterns(pattern, directory, "text_files")
        self.join_lines, self.hash_contents = join_lines, hash_contents
        self.name = f"text_files:{pattern}"

    def _file_documents(self, path: Path, start: int, stop: int | None) -> Iterator[str]:
        return iter(split_paragraphs(_read_utf8(path), self.join_lines))  # always whole files

    def _compute_fingerprint(self) -> str:
        return files_fingerprint("text_files-v1", (str(self.join_lines),), self.files, self.hash_contents)


class JsonlFiles(_FileCorpus):
    """JSON Lines files; each line is an object whose `field` holds one document."""

    reader = "jsonl_files"
    split_lines = True

    def __init__(self, pattern, field: str = "text", directory: str | None = None, hash_contents: bool = False):
        self.files = expand_patterns(pattern, directory, "jsonl_files")
        self.field, self.hash_contents = field, hash_contents
        self.name = f"jsonl_files:{pattern}:{field}"

    def _file_documents(self, path: Path, start: int, stop: int | None) -> Iterator[str]:
        with open(path, "rb") as raw:
            f = text_range(raw, start, os.fstat(raw.fileno()).st_size if stop is None else stop)
            try:
                for lineno, line in enumerate(f, start=1):
                    if line.strip():
                        yield self._located_text(line, path, lineno, start)
            except UnicodeDecodeError:
                raise _not_utf8(path) from None

    def _located_text(self, line: str, path: Path, lineno: int, start: int) -> str:
        try:
            return self._text_of(line, path, lineno)
        except CorpusError:
            if not start:
                raise
        with open(path, "rb") as raw:  # the line number in the whole file
            before = sum(1 for _ in text_range(raw, 0, start, errors="replace"))
        return self._text_of(line, path, before + lineno)

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
        return files_fingerprint("jsonl_files-v1", (self.field,), self.files, self.hash_contents)


class TfdsCorpus(CorpusSource):
    """A TFDS dataset's text field, in the dataset's deterministic file order (no shuffling)."""

    def __init__(
        self,
        name: str,
        split: str = "train",
        field: str = "text",
        data_dir: str | None = None,
        max_documents: int | None = None,
    ):
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
        return self._examples(self.split, self.max_documents)

    def _examples(self, split: str, take: int | None) -> Iterator[str]:
        import tensorflow_datasets as tfds

        ds = self._builder().as_dataset(split=split, shuffle_files=False)
        if take is not None:
            ds = ds.take(take)
        for example in tfds.as_numpy(ds):
            if self.field not in example:
                raise CorpusError(f"tfds_corpus.field {self.field!r} not in {self.dataset}; has {sorted(example)}")
            value = example[self.field]
            yield value.decode("utf-8") if isinstance(value, bytes) else str(value)

    def _num_documents(self) -> tuple[int | None, int | None]:
        """(documents read, documents in the split); None where TFDS does not say (or the split is a slice)."""
        if "[" in self.split:
            return None, None
        try:
            total = int(self._builder().info.splits[self.split].num_examples)
        except (KeyError, ValueError, TypeError):
            return None, None
        return (total if self.max_documents is None else min(self.max_documents, total)), total

    def shards(self, shard_bytes: int | None = None, shard_documents: int = 1_000_000) -> list:
        """Example slices `split[a:b]` of `shard_documents` each (one shard where the size is unknown)."""
        n, _ = self._num_documents()
        if not n:
            return [None]
        return [{"split": f"{self.split}[{a}:{min(a + shard_documents, n)}]"} for a in range(0, n, shard_documents)]

    def shard_documents(self, shard) -> Iterator[str]:
        return self.documents() if shard is None else self._examples(shard["split"], None)

    def size_note(self) -> str | None:
        """The build log's line: how much of the split is read, and whether tfds_corpus.max_documents caps it."""
        n, total = self._num_documents()
        if n is None or total is None:  # both or neither (see _num_documents)
            cap = "" if self.max_documents is None else f" (at most {self.max_documents:,}: tfds_corpus.max_documents)"
            return f"{self.name}: reading its documents{cap}"
        if n < total:
            return (
                f"{self.name}: CAPPED at the first {n:,} of {total:,} documents by tfds_corpus.max_documents = "
                f"{self.max_documents}; set it to None to read all"
            )
        return f"{self.name}: reading all {total:,} documents"

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
def text_files(
    pattern=gin.REQUIRED, directory: str | None = None, join_lines: bool = True, hash_contents: bool = False
) -> CorpusSource:
    return TextFiles(pattern, directory, join_lines, hash_contents)


@register_corpus("jsonl_files")
def jsonl_files(
    pattern=gin.REQUIRED, field: str = "text", directory: str | None = None, hash_contents: bool = False
) -> CorpusSource:
    return JsonlFiles(pattern, field, directory, hash_contents)


@register_corpus("tfds_corpus")
def tfds_corpus(
    name: str = gin.REQUIRED,
    split: str = "train",
    field: str = "text",
    data_dir: str | None = None,
    max_documents: int | None = None,
) -> CorpusSource:
    return TfdsCorpus(name, split, field, data_dir, max_documents)
