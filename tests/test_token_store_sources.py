"""Corpora cut into shards for parallel tokenising (files, byte ranges of JSON Lines, TFDS slices) read the
same documents in the same order; file fingerprints are remembered under the files' metadata, never for
other bytes."""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
import types

import pytest

from t5explore.data import cache
from t5explore.data.corpus import CorpusError, _read_utf8, jsonl_files, split_paragraphs, text_files, tfds_corpus

BOOKS = ["pg500.txt", "pg38145.txt", "pg149.txt", "pg19322.txt", "pg551.txt", "pg6763.txt"]


def concatenated(corpus, shards):
    return [doc for shard in shards for doc in corpus.shard_documents(shard)]


def test_text_file_shards_are_consecutive_file_groups(shared_data):
    books = text_files(pattern=BOOKS, directory=str(shared_data / "pretrain" / "gutenberg"))
    shards = books.shards(shard_bytes=400_000)
    assert len(shards) == 3 and [r[0] for s in shards for r in s] == [str(f) for f in books.files]
    assert all(start == 0 and stop == os.path.getsize(path) for s in shards for path, start, stop in s)
    assert concatenated(books, shards) == list(books.documents())
    assert len(books.shards()) == 1  # automatic size: at least 4 MiB of text per shard


def test_jsonl_shards_cut_big_files_at_line_ends(tmp_path):
    lines = [json.dumps({"text": f"document {i} é" + "x" * (i % 13)}) for i in range(60)]
    body = "".join(
        line + ("\r\n" if i % 3 == 0 else "\r" if i % 3 == 1 else "\n") + ("\n" * (i % 2))
        for i, line in enumerate(lines)
    )
    (tmp_path / "a.jsonl").write_bytes(body.encode("utf-8"))
    (tmp_path / "b.jsonl").write_text(json.dumps({"text": "last"}) + "\n", encoding="utf-8")
    corpus = jsonl_files(pattern=str(tmp_path / "*.jsonl"))
    shards = corpus.shards(shard_bytes=200)
    assert len(shards) > 5 and any(start > 0 for s in shards for _, start, _ in s)
    assert concatenated(corpus, shards) == list(corpus.documents()) and len(list(corpus.documents())) == 61
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps({"text": str(i)}) + "\n" for i in range(40)) + '{"text": 1}\n', "utf-8")
    shards = jsonl_files(pattern=str(bad)).shards(shard_bytes=100)
    with pytest.raises(CorpusError, match=r"bad\.jsonl:41: field 'text' is int"):  # the line in the file
        list(jsonl_files(pattern=str(bad)).shard_documents(shards[-1]))


class FakeBuilder:
    """A TFDS builder of `n` examples {'text': b'doc i'} that reads split strings like 'train[3:5]'."""

    def __init__(self, n):
        self.n, self.splits_read = n, []
        split = types.SimpleNamespace(num_examples=n)
        self.info = types.SimpleNamespace(version="1.0.0", splits={"train": split})

    def as_dataset(self, split, shuffle_files):
        assert shuffle_files is False
        self.splits_read.append(split)
        start, stop = (int(x) for x in split[6:-1].split(":")) if "[" in split else (0, self.n)
        return FakeDataset([{"text": f"doc {i}".encode()} for i in range(start, stop)])


class FakeDataset(list):
    def take(self, n):
        return FakeDataset(self[:n])


def test_tfds_shards_are_example_slices_and_a_cap_is_announced(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", types.SimpleNamespace(as_numpy=iter))
    builder = FakeBuilder(10)
    monkeypatch.setattr("t5explore.data.corpus.TfdsCorpus._builder", lambda self: builder)
    capped = tfds_corpus(name="c4/en", max_documents=7)
    assert capped.shards(shard_documents=3) == [
        {"split": "train[0:3]"},
        {"split": "train[3:6]"},
        {"split": "train[6:7]"},
    ]
    assert (
        concatenated(capped, capped.shards(shard_documents=3))
        == list(capped.documents())
        == [f"doc {i}" for i in range(7)]
    )
    assert "CAPPED at the first 7 of 10 documents by tfds_corpus.max_documents = 7" in capped.size_note()
    whole = tfds_corpus(name="c4/en")
    assert whole.size_note() == "tfds:c4/en:train: reading all 10 documents" and len(whole.shards()) == 1
    assert tfds_corpus(name="c4/en", split="train[:5]").shards(shard_documents=2) == [None]


def first_format_fingerprint(tag, options, files):
    h = hashlib.sha256()
    cache.hash_update(h, tag, *options)
    for path in files:
        cache.hash_update(h, path.read_bytes())
    return h.hexdigest()


@pytest.fixture
def fingerprint_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache" / cache.FINGERPRINTS


def test_fingerprints_are_the_content_hash_remembered_by_metadata(shared_data, fingerprint_cache, monkeypatch):
    books = text_files(pattern=BOOKS, directory=str(shared_data / "pretrain" / "gutenberg"))
    value = books.fingerprint()
    assert value == first_format_fingerprint("text_files-v1", ("True",), books.files)  # vocab keys unchanged
    assert len(list(fingerprint_cache.glob("*.json"))) == 1  # the books are old: remembered
    monkeypatch.setattr(cache, "_hash_files", lambda *a: pytest.fail("re-hashed a remembered corpus"))
    assert text_files(pattern=BOOKS, directory=str(shared_data / "pretrain" / "gutenberg")).fingerprint() == value


def test_a_remembered_fingerprint_never_stands_for_other_bytes(tmp_path, fingerprint_cache, monkeypatch):
    f = tmp_path / "a.txt"
    f.write_text("one paragraph\n\nanother one\n", encoding="utf-8")
    first = text_files(pattern=str(f)).fingerprint()
    assert not fingerprint_cache.exists()  # just written: its timestamps may not tick at the next write
    monkeypatch.setattr(cache, "RACY_SECONDS", -3600.0)  # now treat it as old
    assert text_files(pattern=str(f)).fingerprint() == first and len(list(fingerprint_cache.glob("*.json"))) == 1
    stat = f.stat()
    time.sleep(0.05)
    f.write_text("one paragraph\n\nanother ONE\n", encoding="utf-8")  # same size, then the same mtime
    os.utime(f, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    if f.stat().st_ctime_ns == stat.st_ctime_ns:
        pytest.skip("this filesystem's ctime did not tick")
    assert text_files(pattern=str(f)).fingerprint() != first  # ctime moved: hashed again
    calls = []
    monkeypatch.setattr(cache, "_hash_files", lambda *a: calls.append(a) or "0" * 64)
    text_files(pattern=str(f), hash_contents=True).fingerprint()
    assert len(calls) == 1  # hash_contents: every byte, every time


def first_format_read_utf8(path):
    data = path.read_bytes()
    nul = data.find(b"\0")
    if nul >= 0:
        raise CorpusError(f"{path}: a binary file (NUL byte at offset {nul}), not UTF-8 text")
    try:
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path}: not valid UTF-8 at byte {e.start}") from None


def first_format_paragraphs(text, join_lines):
    paragraphs, current = [], []
    for line in text.split("\n"):
        if line.strip():
            current.append(line.strip() if join_lines else line.rstrip())
        elif current:
            paragraphs.append((" " if join_lines else "\n").join(current))
            current = []
    return [*paragraphs, (" " if join_lines else "\n").join(current)] if current else paragraphs


def outcome(fn, *args):
    try:
        return fn(*args)
    except CorpusError as e:
        return str(e)


def test_text_documents_are_the_first_formats(tmp_path):
    """Reading and paragraph splitting were sped up; the documents (and errors) must not change."""
    rng = random.Random(0)
    pieces = [
        b"a",
        b"b",
        b" ",
        b"\t",
        b"\n",
        b"\n",
        b"\r",
        b"\r\n",
        b"\x0c",
        "\u2028".encode(),
        b"\xc2\x85",
        "\u3000".encode(),
        "é".encode(),
        b"\x1c",
        b"\x0b",
        b"\0",
        b"\xff",
        b"\xc3",
    ]  # the last 3: errors
    path = tmp_path / "t.txt"
    for _ in range(3000):
        path.write_bytes(
            b"".join(rng.choice(pieces[:-3] if rng.random() < 0.9 else pieces) for _ in range(rng.randint(0, 30)))
        )
        assert outcome(_read_utf8, path) == outcome(first_format_read_utf8, path)
        if isinstance(text := outcome(_read_utf8, path), str) and not text.endswith("valid UTF-8"):
            for join in (True, False):
                assert split_paragraphs(text, join) == first_format_paragraphs(text, join)
