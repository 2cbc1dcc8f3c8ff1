"""The sentencepiece vocabulary: T5 id layout, sentinels agreeing with seqio, deterministic training, caching."""

from __future__ import annotations

import gin
import pytest

from t5explore.data import vocab as vocab_lib
from t5explore.data.corpus import builtin_corpus, text_files
from t5explore.data.vocab import Vocab, VocabError, get_vocabulary, vocabulary

TEXTS = [
    "Return the number of items in a sequence.",
    "Open a file, read it — and close it again!",
    "  multiple   spaces\tand a tab",
    "Unicode: café, naïve, ☃ and 数",
]


@pytest.fixture(scope="module")
def vocab(cache_dir) -> Vocab:
    return get_vocabulary(builtin_corpus(cache_dir=str(cache_dir)), 1000, cache_dir)


def test_t5_id_layout(vocab):
    assert (vocab.sp_vocab_size, vocab.vocab_size) == (1000, 1100)
    sp = vocab._sp
    assert [sp.id_to_piece(i) for i in range(6)] == ["<pad>", "</s>", "<unk>", "[NLU]", "[S2S]", "[NLG]"]
    assert sp.id_to_piece(6) == "<0x00>" and sp.id_to_piece(261) == "<0xFF>"  # byte fallback
    assert 4 in vocab.encode("[S2S] translate this")
    ts = vocab.token_space()
    assert (ts.vocab_size, ts.num_sentinels, ts.first_regular_id) == (1100, 100, 262)
    assert dict(ts.mode_token_ids) == {"[NLU]": 3, "[S2S]": 4, "[NLG]": 5}
    assert max(max(vocab.encode(t)) for t in TEXTS) < 1000  # ordinary text never produces sentinel ids


def test_sentinels_are_the_top_ids_and_agree_with_seqio(vocab):
    sv = vocab.seqio_vocabulary
    assert sv.vocab_size == vocab.vocab_size == 1100
    assert sv.decode([1099]) == vocab.decode([1099]) == "<extra_id_0>"
    assert sv.decode([1000]) == vocab.decode([1000]) == "<extra_id_99>"
    assert vocab.token_space().sentinel(0) == 1099
    ids = vocab.encode("The cat <extra_id_0> on the mat.")
    assert 1099 in ids and list(sv.encode("The cat <extra_id_0> on the mat.")) == ids
    for text in TEXTS:
        assert list(sv.encode(text)) == vocab.encode(text)
        assert sv.decode(vocab.encode(text)) == vocab.decode(vocab.encode(text))


def test_encode_decode_round_trip_stops_at_eos_and_ignores_pad(vocab):
    for text in TEXTS[:2]:
        assert vocab.decode(vocab.encode(text)) == text
    ids = vocab.encode(TEXTS[0])
    assert vocab.decode([0, 0, *ids, 1, *vocab.encode("garbage after eos"), 0]) == TEXTS[0]
    assert vocab.encode_batch(TEXTS) == [vocab.encode(t) for t in TEXTS]
    assert "<unk>" in vocab._sp.id_to_piece(2) and vocab.decode([5000]) == vocab.decode([2])


def test_second_call_is_a_cache_hit(vocab, cache_dir, monkeypatch):
    def must_not_train(*args, **kwargs):
        raise AssertionError("retrained a cached vocabulary")

    monkeypatch.setattr(vocab_lib, "train_sentencepiece", must_not_train)
    again = get_vocabulary(builtin_corpus(cache_dir=str(cache_dir)), 1000, cache_dir)
    assert again.sp_path == vocab.sp_path and again.fingerprint() == vocab.fingerprint()
    try:  # the gin entry point reaches the same cache entry
        gin.parse_config("vocabulary.sp_vocab_size = 1000")
        via_gin = vocabulary(corpus=builtin_corpus(cache_dir=str(cache_dir)), cache_dir=str(cache_dir))
        assert via_gin.sp_path == vocab.sp_path
    finally:
        gin.clear_config()
    assert not [p for p in vocab.sp_path.parent.parent.iterdir() if p.name.endswith(".tmp")]


def test_training_is_deterministic_and_keyed_by_content(shared_data, tmp_path):
    book = shared_data / "pretrain" / "gutenberg" / "pg1656.txt"
    corpus = text_files(pattern=str(book))
    a = get_vocabulary(corpus, 400, tmp_path / "a")
    b = get_vocabulary(text_files(pattern=str(book)), 400, tmp_path / "b")
    assert a.sp_path.read_bytes() == b.sp_path.read_bytes()
    assert vocab_lib.vocab_cache_key(corpus, 400) != vocab_lib.vocab_cache_key(corpus, 500)
    other = text_files(pattern=str(shared_data / "pretrain" / "gutenberg" / "pg1658.txt"))
    assert vocab_lib.vocab_cache_key(corpus, 400) != vocab_lib.vocab_cache_key(other, 400)


def test_training_sentences_are_capped_and_seeded():
    docs = [f"line {i}\n\n  \nsecond {i}" for i in range(100)]
    lines = vocab_lib.training_sentences(docs, max_read=150, sample=40)
    assert len(lines) == 40 and lines == vocab_lib.training_sentences(docs, max_read=150, sample=40)
    assert lines != vocab_lib.training_sentences(docs, seed=1, max_read=150, sample=40)
    assert "line 75" not in lines and all(line.strip() == line and line for line in lines)


def test_bad_sizes_fail_clearly(tmp_path):
    (tmp_path / "t.txt").write_text("tiny corpus\n\nof two paragraphs\n", encoding="utf-8")
    with pytest.raises(VocabError, match="sp_vocab_size=100 is too small"):
        get_vocabulary(text_files(pattern=str(tmp_path / "t.txt")), 100, tmp_path)
    with pytest.raises(VocabError, match="sp_vocab_size=5000"):
        get_vocabulary(text_files(pattern=str(tmp_path / "t.txt")), 5000, tmp_path)
    left = [p for p in (tmp_path / "vocab").iterdir() if not p.name.endswith(".lock")]  # build_lock's file stays
    assert not left  # the failed build left nothing behind


def test_200_sentinels_reuse_the_model_and_agree_with_seqio(vocab, cache_dir, monkeypatch):
    """`vocabulary.num_sentinels` is a load-time setting: same sentencepiece model, 200 ids on top."""
    monkeypatch.setattr(vocab_lib, "train_sentencepiece", lambda *a, **k: pytest.fail("retrained for a sentinel count"))
    big = get_vocabulary(builtin_corpus(cache_dir=str(cache_dir)), 1000, cache_dir, num_sentinels=200)
    assert big.sp_path == vocab.sp_path and (big.sp_vocab_size, big.vocab_size) == (1000, 1200)
    assert big.fingerprint() != vocab.fingerprint()  # token stores key on it
    ts = big.token_space()
    assert (ts.vocab_size, ts.num_sentinels, ts.sentinel(0), ts.sentinel(199)) == (1200, 200, 1199, 1000)
    assert ts.num_regular == vocab.token_space().num_regular  # the extra sentinels take no ordinary ids
    assert big.encode("<extra_id_0>") == [1199] and big.decode([1199]) == "<extra_id_0>"
    assert big.encode("<extra_id_199>") == [1000] and big.decode([1000]) == "<extra_id_199>"
    assert 1000 not in vocab.encode("<extra_id_199>")  # with 100 sentinels it is ordinary text
    text = "Fill <extra_id_150> in and <extra_id_3> too."
    assert max(big.encode(text)) == 1199 - 3 and 1199 - 150 in big.encode(text)
    sv = big.seqio_vocabulary
    assert sv.vocab_size == 1200 and sv.extra_ids == 200
    assert sv.decode([1000]) == "<extra_id_199>" and sv.decode([1199]) == "<extra_id_0>"
    for t in [text, *TEXTS]:
        assert list(sv.encode(t)) == big.encode(t)
        assert sv.decode(big.encode(t)) == big.decode(big.encode(t))
    try:  # the gin binding reaches it
        gin.parse_config("vocabulary.sp_vocab_size = 1000\nvocabulary.num_sentinels = 200")
        via_gin = vocabulary(corpus=builtin_corpus(cache_dir=str(cache_dir)), cache_dir=str(cache_dir))
        assert via_gin.token_space() == ts
    finally:
        gin.clear_config()


@pytest.mark.parametrize("bad", [-1, 1.5, "200", True])
def test_bad_sentinel_count_names_the_binding(vocab, cache_dir, bad):
    with pytest.raises(VocabError, match=r"vocabulary\.num_sentinels="):
        get_vocabulary(builtin_corpus(cache_dir=str(cache_dir)), 1000, cache_dir, num_sentinels=bad)


@pytest.mark.parametrize("extra_gin", [[], ["gin/runs/paper_scale.gin"]])
def test_ul2_vs_t5_sweep_gives_every_run_200_sentinels(extra_gin):
    """Both rows (so they stay comparable), at the tiny default and at paper scale (inputs 512)."""
    from t5explore.config import parse_gin
    from t5explore.sweep.grid import load_sweep

    spec = load_sweep("experiments/ul2_vs_t5.gin", gin_files=extra_gin)
    assert {r.point for r in spec.runs} == {"t5_span_corruption", "ul2"}
    for run in spec.runs:
        try:
            parse_gin(run.gin_files, run.bindings)
            assert gin.query_parameter("vocabulary.num_sentinels") == 200, run.name
        finally:
            gin.clear_config()
