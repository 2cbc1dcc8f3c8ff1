"""The token store: round trip to text, document offsets, cache hits, held-out split.

Building in parallel, resuming, old formats and the C4-scale paths: tests/test_token_store_*.py."""

from __future__ import annotations

import numpy as np
import pytest

from t5explore.data import token_store as ts_lib
from t5explore.data.corpus import builtin_corpus, text_files
from t5explore.data.token_store import get_token_store, write_token_store
from t5explore.data.token_store_reader import TokenStore
from t5explore.data.vocab import get_vocabulary
from t5explore.objectives.base import TokenSpace


@pytest.fixture(scope="module")
def corpus(cache_dir):
    return builtin_corpus(cache_dir=str(cache_dir))


@pytest.fixture(scope="module")
def vocab(corpus, cache_dir):
    return get_vocabulary(corpus, 1000, cache_dir)


@pytest.fixture(scope="module")
def store(corpus, vocab, cache_dir) -> TokenStore:
    return get_token_store(corpus, vocab, cache_dir, progress=False)


def normalised(text: str) -> str:
    return " ".join(text.split())


def test_store_round_trips_the_corpus(store, corpus, vocab):
    docs = list(corpus.documents())
    assert store.tokens.dtype == np.int32 and store.storage_dtype == np.uint16  # 1100 ids: stored as uint16
    assert store.tokens[:].dtype == np.int32 and isinstance(store.doc_offsets, np.memmap)
    assert store.num_documents == len(docs) and store.doc_offsets[0] == 0
    assert store.doc_offsets[-1] == store.num_tokens and np.all(np.diff(store.doc_offsets) > 0)
    assert store.token_space == vocab.token_space()
    for i in range(0, len(docs), len(docs) // 25):
        decoded = vocab.decode(store.document(i))
        if docs[i].isascii():  # up to sentencepiece's whitespace (and NFKC) normalisation, the text itself
            assert normalised(decoded) == normalised(docs[i]), i
        assert store.document(i).tolist() == vocab.encode(docs[i])
    # documents are concatenated without separators: a stretch over a boundary decodes to both texts
    j = len(docs) // 2
    stretch = store.tokens[store.doc_offsets[j] : store.doc_offsets[j + 2]]
    both = vocab.encode(docs[j]) + vocab.encode(docs[j + 1])
    assert normalised(vocab.decode(stretch)) == normalised(vocab.decode(both))
    assert 1 not in stretch and 0 not in stretch


def test_second_open_is_a_cache_hit(store, corpus, vocab, cache_dir, monkeypatch):
    def must_not_tokenise(*args, **kwargs):
        raise AssertionError("re-tokenised a cached corpus")

    monkeypatch.setattr(ts_lib, "tokenize_to_files", must_not_tokenise)
    again = get_token_store(corpus, vocab, cache_dir, eval_fraction=0.1)
    assert again.directory == store.directory and again.num_tokens == store.num_tokens
    assert again.eval_fraction == 0.1  # the held-out fraction is a view, not part of the cache key
    assert not [p for p in store.directory.parent.iterdir() if p.name.endswith(".tmp")]


def test_cache_key_depends_on_corpus_and_vocab(corpus, vocab, shared_data):
    other_corpus = text_files(pattern=str(shared_data / "pretrain" / "gutenberg" / "pg1656.txt"))

    class OtherVocab:
        def fingerprint(self):
            return "another-vocab"

    key = ts_lib.store_cache_key(corpus, vocab)
    assert key != ts_lib.store_cache_key(other_corpus, vocab)
    assert key != ts_lib.store_cache_key(corpus, OtherVocab())


def test_small_text_corpus_offsets(tmp_path, vocab):
    (tmp_path / "b.txt").write_text("Third paragraph here.\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("First paragraph,\nwrapped.\n\nSecond one.\n", encoding="utf-8")
    store = get_token_store(text_files(pattern=str(tmp_path / "*.txt")), vocab, tmp_path / "cache", progress=False)
    paragraphs = ["First paragraph, wrapped.", "Second one.", "Third paragraph here."]
    lengths = [len(vocab.encode(p)) for p in paragraphs]
    assert store.doc_offsets.tolist() == np.concatenate([[0], np.cumsum(lengths)]).tolist()
    assert [vocab.decode(store.document(i)) for i in range(3)] == paragraphs


def test_held_out_split_is_the_tail(tmp_path):
    space = TokenSpace(vocab_size=200)
    store = write_token_store(tmp_path, [np.arange(3, 603), np.arange(3, 403)], space, eval_fraction=0.05)
    assert store.num_tokens == 1000 and store.token_space == space
    assert store.split_bounds("train") == (0, 950) and store.split_bounds("validation") == (950, 1000)
    with pytest.raises(ValueError, match="unknown split 'test'"):
        store.split_bounds("test")
    with pytest.raises(ValueError, match="eval_fraction"):
        TokenStore(tmp_path, eval_fraction=1.0)


def test_empty_corpus_fails_clearly(tmp_path, vocab):
    (tmp_path / "empty.txt").write_text("\n\n   \n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"empty\.txt: empty corpus"):  # a CorpusError naming the file
        get_token_store(text_files(pattern=str(tmp_path / "empty.txt")), vocab, tmp_path / "cache", progress=False)
    assert not [p for p in (tmp_path / "cache" / "tokens").iterdir() if not p.name.endswith(".lock")]  # no entry


def test_store_is_keyed_on_the_sentinel_count(tmp_path, corpus, vocab, cache_dir, monkeypatch):
    """A store saves its token space and sentinel ids: a 100-sentinel store must never serve 200 sentinels."""
    big = get_vocabulary(corpus, 1000, cache_dir, num_sentinels=200)  # same sentencepiece model, cached
    (tmp_path / "t.txt").write_text("Fill <extra_id_150> and <extra_id_3> here.\n", encoding="utf-8")
    text = text_files(pattern=str(tmp_path / "t.txt"))
    small_store = get_token_store(text, vocab, tmp_path / "cache", progress=False)
    big_store = get_token_store(text, big, tmp_path / "cache", progress=False)
    assert ts_lib.store_cache_key(text, vocab) != ts_lib.store_cache_key(text, big)
    assert small_store.directory != big_store.directory
    assert small_store.token_space.num_sentinels == 100 and big_store.token_space == big.token_space()
    assert big_store.token_space.num_sentinels == 200 and big_store.token_space.vocab_size == 1200
    assert big_store.document(0).tolist() == big.encode("Fill <extra_id_150> and <extra_id_3> here.")
    assert 1199 - 150 in big_store.document(0) and 1199 - 150 not in small_store.document(0)
    assert 1099 - 3 in small_store.document(0) and 1099 - 3 not in big_store.document(0)  # ids move with the count
    # An entry whose key missed the count (a stale cache) is refused, not silently reused.
    monkeypatch.setattr(ts_lib, "store_cache_key", lambda corpus, vocab: "one-key-for-every-vocab")
    get_token_store(text, vocab, tmp_path / "stale", progress=False)
    with pytest.raises(ValueError, match=r"token store .*one-key-for-every-vocab was built for .*num_sentinels=100"):
        get_token_store(text, big, tmp_path / "stale", progress=False)
