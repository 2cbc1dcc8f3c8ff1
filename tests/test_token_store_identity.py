"""The token store's build was sped up (issue 24: ids as sentencepiece's int32 buffers, documents batched
without a Python line each, the text decoded and its line ends translated in one pass); not one byte of a store
may change. Each store here is built twice: by the code as it is, and by the build as it was before (the shard
tokeniser and the file reader below are that code, kept verbatim but for names), and every file of the two
stores is compared (shard.json and manifest.json without their timings)."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np
import pytest

from t5explore.data import corpus as corpus_lib
from t5explore.data import token_shards
from t5explore.data import token_store as ts
from t5explore.data import vocab as vocab_lib
from t5explore.data.corpus import CorpusError, builtin_corpus, jsonl_files, text_files
from t5explore.io_utils import atomic_write_json

BOOKS = ["pg500.txt", "pg38145.txt", "pg149.txt"]  # three small Gutenberg books (CRLF line ends)
TIMINGS = {"seconds", "cpu_seconds", "workers"}


def previous_read_utf8(path: Path) -> str:
    data = path.read_bytes()
    nul = data.find(b"\0")
    if nul >= 0:
        raise CorpusError(f"{path}: a binary file (NUL byte at offset {nul}), not UTF-8 text")
    return (data.replace(b"\r\n", b"\n").replace(b"\r", b"\n") if b"\r" in data else data).decode("utf-8")


def previous_text_batches(documents):
    batch, chars = [], 0
    for doc in documents:
        batch.append(doc)
        chars += len(doc)
        if chars >= token_shards.ENCODE_BATCH_CHARS:
            yield batch
            batch, chars = [], 0
    if batch:
        yield batch


def previous_tokenize_shard(job, vocab, out: Path) -> dict:
    start = time.perf_counter()
    dtype = np.dtype(job.dtype)
    num_tokens = num_documents = 0
    docs = token_shards.shard_documents(job.corpus, job.shard.spec)
    with (
        token_shards.NpyAppender(out / "tokens.npy", dtype) as tokens,
        token_shards.NpyAppender(out / "offsets.npy", np.int64) as offsets,
    ):
        offsets.write(np.zeros(1, np.int64))
        for texts in previous_text_batches(docs):
            encoded = vocab.encode_batch(texts, job.encode_threads)
            lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
            flat = np.fromiter(itertools.chain.from_iterable(encoded), dtype=dtype, count=int(lengths.sum()))
            tokens.write(flat)
            offsets.write(num_tokens + np.cumsum(lengths))
            num_tokens += flat.size
            num_documents += len(encoded)
    info = {
        "index": job.shard.index,
        "name": job.shard.name,
        "spec": job.shard.spec,
        "dtype": dtype.name,
        "num_tokens": num_tokens,
        "num_documents": num_documents,
        "seconds": round(time.perf_counter() - start, 3),
    }
    atomic_write_json(out / token_shards.SHARD_INFO, info)
    return info


def store_files(directory: Path) -> dict[str, object]:
    """Every file of a store: .npy files as bytes, JSON files without their timings."""
    out: dict[str, object] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        name = str(path.relative_to(directory))
        if path.suffix == ".json":
            out[name] = {k: v for k, v in json.loads(path.read_text()).items() if k not in TIMINGS}
        else:
            out[name] = path.read_bytes()
    return out


def build_both(corpus, vocab, tmp_path, monkeypatch, settings) -> tuple[dict, dict]:
    now = ts.get_token_store(corpus, vocab, tmp_path / "now", progress=False, settings=settings)
    with monkeypatch.context() as m:
        m.setattr(token_shards, "_tokenize_shard", previous_tokenize_shard)
        m.setattr(corpus_lib, "_read_utf8", previous_read_utf8)
        before = ts.get_token_store(corpus, vocab, tmp_path / "before", progress=False, settings=settings)
    assert before.directory.name == now.directory.name
    return store_files(now.directory), store_files(before.directory)


@pytest.mark.parametrize("source", ["builtin", "books", "wiki_intros"])
def test_store_files_are_the_previous_builds(source, builtin_vocab, cache_dir, shared_data, tmp_path, monkeypatch):
    pretrain = shared_data / "pretrain"
    corpus = {
        "builtin": lambda: builtin_corpus(cache_dir=str(cache_dir)),
        "books": lambda: text_files(pattern=BOOKS, directory=str(pretrain / "gutenberg")),
        "wiki_intros": lambda: jsonl_files(
            pattern="wiki_intros-00000-of-00004.jsonl", directory=str(pretrain / "wiki_intros")
        ),
    }[source]()
    settings = ts.BuildSettings(num_workers=1, encode_threads=1, shard_bytes=400_000)
    now, before = build_both(corpus, builtin_vocab, tmp_path, monkeypatch, settings)
    assert now.keys() == before.keys()
    assert sum(name.endswith("tokens.npy") for name in now) >= (1 if source == "builtin" else 2)
    for name in now:
        assert now[name] == before[name], name
    manifest = now["manifest.json"]
    assert isinstance(manifest, dict) and manifest["num_tokens"] > 100_000


def test_batches_hold_every_document_in_order(monkeypatch):
    monkeypatch.setattr(token_shards, "ENCODE_BATCH_CHARS", 1000)
    docs = [f"document {i} " * (i % 37) for i in range(3000)]
    batches = list(token_shards._text_batches(iter(docs)))
    assert [d for b in batches for d in b] == docs
    sizes = [sum(map(len, b)) for b in batches]
    assert all(size >= 1000 for size in sizes[:-1]) and sizes[-1] > 0
    assert max(len(b) for b in batches) <= token_shards.DOCS_PER_TAKE  # 1000 characters: one take each
    assert list(token_shards._text_batches(iter([]))) == []


@pytest.mark.parametrize("numpy_output", [True, False])
def test_encode_batch_arrays_are_encode_batch(builtin_vocab, monkeypatch, numpy_output):
    """The same ids as `encode_batch`, with sentencepiece's buffer output and without it (sentencepiece < 0.2.1)."""
    monkeypatch.setattr(vocab_lib, "_HAS_NUMPY_OUTPUT", numpy_output)
    texts = ["Hello world.", "", "  spaces  and\ttabs ", "naïve café – “quotes”", "x" * 5000, "日本語のテキスト"]
    arrays = builtin_vocab.encode_batch_arrays(texts, 1)
    assert [a.dtype for a in arrays] == [np.dtype(np.int32)] * len(texts)
    assert [a.tolist() for a in arrays] == builtin_vocab.encode_batch(texts, 1)
    assert arrays[1].size == 0 and arrays[4].size > 0
