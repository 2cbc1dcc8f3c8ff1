"""The store's format: shards read as one int32 array, uint16 where the vocabulary fits, streamed .npy files,
and stores of the first format (one int32 tokens.npy) refused when opened, migrated by get_token_store."""

from __future__ import annotations

import json

import numpy as np
import pytest

from t5explore.data import token_shards
from t5explore.data import token_store as ts
from t5explore.data.corpus import builtin_corpus, text_files
from t5explore.data.pretrain_stream import PretrainStream
from t5explore.data.token_store_reader import OldStoreFormatError, ShardedTokens, TokenStore
from t5explore.data.vocab import get_vocabulary
from t5explore.objectives.base import TokenSpace
from t5explore.objectives.named import span_corruption


@pytest.fixture(scope="module")
def vocab(cache_dir):
    return get_vocabulary(builtin_corpus(cache_dir=str(cache_dir)), 1000, cache_dir)


def write_npy(path, values, dtype):
    with token_shards.NpyAppender(path, dtype) as out:
        for part in values:
            out.write(part)


def test_npy_appender_writes_a_plain_npy_of_unknown_length(tmp_path):
    write_npy(tmp_path / "a.npy", [np.arange(5), [], np.arange(7, 10)], np.uint16)
    loaded = np.load(tmp_path / "a.npy")
    assert loaded.dtype == np.uint16 and loaded.tolist() == [0, 1, 2, 3, 4, 7, 8, 9]
    write_npy(tmp_path / "empty.npy", [], np.int64)
    assert np.load(tmp_path / "empty.npy", mmap_mode="r").shape == (0,)
    header = token_shards._npy_header(np.dtype(np.int64), 10**18)  # room for any length
    assert len(header) == 128 and header == token_shards._npy_header(np.dtype(np.int64), 10**18)
    assert [len(c) for c in token_shards.read_npy_chunks(tmp_path / "a.npy", chunk=3)] == [3, 3, 2]


def test_sharded_tokens_index_like_one_array(tmp_path):
    parts = [np.arange(5), np.zeros(0), np.arange(100, 103), np.arange(200, 210)]
    paths = []
    for i, part in enumerate(parts):
        paths.append(tmp_path / f"{i}.npy")
        write_npy(paths[-1], [part], np.uint16)
    tokens = ShardedTokens(paths, [len(p) for p in parts])
    flat = np.concatenate(parts).astype(np.int32)
    assert tokens.shape == flat.shape and len(tokens) == 18 and tokens.dtype == np.int32
    for key in [0, 4, 5, 7, 8, 17, -1, -18, np.int64(9)]:
        assert tokens[key] == flat[key]
    for key in [
        slice(None),
        slice(3, 12),
        slice(5, 8),
        slice(8, 8),
        slice(12, 3),
        slice(None, None, 3),
        slice(-4, None),
        slice(16, 99),
    ]:
        assert np.array_equal(tokens[key], flat[key]) and tokens[key].dtype == np.int32, key
    rows = np.array([[0, 1, 2], [4, 5, 6], [6, 7, 8], [15, 16, 17]])  # as chunks() reads, some across shards
    grid = np.array([[0, 1, 2], [4, 5, 6], [7, 8, 17]])  # any other integer array
    assert np.array_equal(tokens[rows], flat[rows]) and np.array_equal(tokens[grid], flat[grid])
    assert np.array_equal(tokens[[3, -1]], flat[[3, -1]])
    assert tokens[np.zeros((0, 4), np.int64)].shape == (0, 4)
    assert np.array_equal(np.asarray(tokens), flat)
    with pytest.raises(IndexError):
        tokens[18]
    with pytest.raises(IndexError):
        tokens[np.array([0.5])]


def test_uint16_where_the_vocabulary_fits_else_int32(tmp_path):
    assert ts.shards_lib.token_dtype(65536) == np.uint16 and ts.shards_lib.token_dtype(65537) == np.int32
    small = ts.write_token_store(tmp_path / "small", [np.arange(3, 65536)], TokenSpace(vocab_size=65536))
    assert small.storage_dtype == np.uint16 and small.tokens[-1] == 65535
    assert (small.directory / "shards").is_dir() and small.meta["format"] == token_shards.STORE_FORMAT
    big = ts.write_token_store(tmp_path / "big", [np.arange(69_990, 70_000)], TokenSpace(vocab_size=70_000))
    assert big.storage_dtype == np.int32 and big.tokens[:].tolist() == list(range(69_990, 70_000))
    with pytest.raises(ValueError, match="do not fit the store's uint16"):
        ts.write_token_store(tmp_path / "bad", [np.array([3, -1])], TokenSpace(vocab_size=100))


def write_first_format(directory, documents, vocab):
    """A store exactly as the first format wrote it (tokens.npy int32, doc_offsets.npy, meta.json)."""
    directory.mkdir(parents=True)
    encoded = [vocab.encode(d) for d in documents]
    np.save(directory / "tokens.npy", np.concatenate([np.asarray(e, np.int32) for e in encoded]))
    np.save(directory / "doc_offsets.npy", np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype(np.int64))
    space = vocab.token_space()
    meta = {
        "num_tokens": sum(map(len, encoded)),
        "num_documents": len(encoded),
        "token_space": {f: getattr(space, f) for f in TokenSpace.__dataclass_fields__},
    }
    (directory / "meta.json").write_text(json.dumps(meta))


@pytest.fixture
def small_corpus(tmp_path):
    paragraphs = [f"Paragraph {i} says {' '.join(['something'] * (i % 7 + 1))} about item {i * 7}." for i in range(400)]
    (tmp_path / "t.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
    return text_files(pattern=str(tmp_path / "t.txt"))


def test_first_format_store_is_refused_when_opened(small_corpus, vocab, tmp_path):
    old = tmp_path / "old"
    write_first_format(old, small_corpus.documents(), vocab)
    with pytest.raises(OldStoreFormatError, match=rf"token store {old} is in the old format .* migrates it"):
        TokenStore(old)
    write_first_format(tmp_path / "future", ["x"], vocab)
    (tmp_path / "future" / "manifest.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(OldStoreFormatError, match="has format 99; this version reads format 2: delete"):
        TokenStore(tmp_path / "future")


def test_first_format_store_is_migrated_without_tokenising(small_corpus, vocab, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    old = cache / "tokens" / ts.legacy_cache_key(small_corpus, vocab)
    write_first_format(old, small_corpus.documents(), vocab)
    monkeypatch.setattr(token_shards, "COPY_CHUNK", 1000)  # tokens and offsets in chunks that do not line up
    monkeypatch.setattr(ts, "tokenize_to_files", lambda *a, **k: pytest.fail("re-tokenised a migratable store"))
    store = ts.get_token_store(small_corpus, vocab, cache, progress=False)
    assert store.directory != old and store.meta["migrated_from"] == str(old) and store.storage_dtype == np.uint16
    assert np.array_equal(store.tokens[:], np.load(old / "tokens.npy"))
    assert np.array_equal(store.doc_offsets, np.load(old / "doc_offsets.npy"))
    assert (old / "tokens.npy").is_file()  # left for code still reading it

    class FirstFormat:  # the first format's reader: the same split, the same int32 values
        tokens, token_space = np.load(old / "tokens.npy", mmap_mode="r"), store.token_space

        def split_bounds(self, split):
            return store.split_bounds(split)

    for split in ("train", "validation"):
        new = PretrainStream(store, span_corruption(), 64, 4, seed=3, split=split, prefetch=0)
        first = PretrainStream(FirstFormat(), span_corruption(), 64, 4, seed=3, split=split, prefetch=0)
        for k in range(5):
            a, b = new.batch(k), first.batch(k)
            assert all(np.array_equal(a[key], b[key]) for key in a)
