"""Every named objective on real text (Project Gutenberg), checked against what the T5 / UL2 papers say."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from t5explore.data.sentences import SentenceSplitter
from t5explore.objectives import named
from t5explore.objectives.bart import Boundaries
from t5explore.objectives.base import TokenSpace
from t5explore.seeds import STREAM_OBJECTIVE, numpy_rng

MODES = (("[NLU]", 3), ("[S2S]", 4), ("[NLG]", 5))


@pytest.fixture(scope="module")
def corpus(shared_data):
    """Whitespace words of real books -> ids (first occurrence order, from 6; 3-5 are mode tokens)."""
    paths = sorted((shared_data / "pretrain" / "gutenberg").glob("*.txt"))[:4]
    words = " ".join(p.read_text(encoding="utf-8") for p in paths)[:2_000_000].split()
    ids = {}
    stream = np.array([ids.setdefault(w, 6 + len(ids)) for w in words], dtype=np.int32)
    tokens = TokenSpace(vocab_size=6 + len(ids) + 100, mode_token_ids=MODES, first_regular_id=6)
    return Corpus(stream, tokens, SentenceSplitter.from_pieces(["", "", "", "", "", "", *(f"▁{w}" for w in ids)]))


class Corpus(tuple):
    """(stream, tokens), unpacked as before, with the word-level `splitter` (data/sentences.py) for BART's
    sentence-aware objectives (the books are one text, so only a row's first token starts a document)."""

    def __new__(cls, stream, tokens, splitter):
        out = super().__new__(cls, (stream, tokens))
        out.splitter = splitter
        return out


def chunks_of(stream, batch, length, start=0):
    return stream[start : start + batch * length].reshape(batch, length)


def strip(row, eos=1):
    return row[: np.flatnonzero(row == eos)[0]]


def is_sentinel(ids, tokens):
    return np.asarray(ids) >= tokens.vocab_size - tokens.num_sentinels


def reconstruct(inputs, targets, tokens):
    """Replace each input sentinel by the next noise run of the targets (runs are split by sentinels)."""
    inp, tgt = strip(inputs), strip(targets)
    cuts = np.flatnonzero(is_sentinel(tgt, tokens))
    runs, pieces = [], np.split(tgt, cuts)
    for piece in pieces:
        body = piece[1:] if piece.size and is_sentinel(piece[:1], tokens)[0] else piece
        if body.size:
            runs.append(body)
    out, k = [], 0
    for t in inp:
        if is_sentinel(t, tokens):
            out.extend(runs[k].tolist())
            k += 1
        else:
            out.append(int(t))
    assert k == len(runs), "every target noise run has exactly one input sentinel"
    return out


def sentinel_ranks(seq, tokens):
    s = np.asarray(seq)[is_sentinel(seq, tokens)]
    return (tokens.vocab_size - 1 - s).tolist()


def run(obj, corpus, inputs_length=128, batch=64, seed=0, start=0):
    stream, tokens = corpus
    plan = obj.plan(inputs_length)
    chunks = chunks_of(stream, batch, plan.raw_length, start)
    extra = {}
    if getattr(obj, "needs_boundaries", False):
        documents = np.zeros(chunks.shape, bool)
        documents[:, 0] = True
        extra["boundaries"] = Boundaries(corpus.splitter.starts(chunks, documents), documents)
    out = obj(chunks, numpy_rng(seed, STREAM_OBJECTIVE, 0), tokens, **extra)
    return plan, chunks, out, tokens


@pytest.mark.parametrize(
    "make",
    [
        named.span_corruption,
        lambda: named.span_corruption(random_roll=True),
        named.iid_replace_spans,
        lambda: named.iid_replace_spans(noise_density=0.5),
    ],
)
def test_replace_spans_interleave_back_to_the_original_with_ordered_sentinels(corpus, make):
    plan, chunks, out, tokens = run(make(), corpus)
    for row in range(chunks.shape[0]):
        inputs, targets = out["inputs"][row], out["targets"][row]
        rebuilt = reconstruct(inputs, targets, tokens)
        assert rebuilt == chunks[row, : len(rebuilt)].tolist()
        assert len(rebuilt) == plan.raw_length or not make().mask.exact
        n_in = len(sentinel_ranks(strip(inputs), tokens))
        assert sentinel_ranks(strip(inputs), tokens) == list(range(n_in))  # <extra_id_0>, <extra_id_1>, ...
        assert sentinel_ranks(strip(targets), tokens) == list(range(len(sentinel_ranks(strip(targets), tokens))))


@pytest.mark.parametrize("rate,mu", [(0.15, 3), (0.15, 10), (0.5, 3), (0.25, 2)])
def test_span_corruption_counts_match_t5_formula(corpus, rate, mu):
    plan, chunks, out, tokens = run(named.span_corruption(noise_density=rate, mean_noise_span_length=mu), corpus, 96)
    L = plan.raw_length
    num_noise = min(max(round(L * rate), 1), L - 1)
    num_spans = max(1, round(num_noise / mu))
    for row in range(chunks.shape[0]):
        targets = strip(out["targets"][row])
        assert is_sentinel(targets, tokens).sum() == num_spans
        assert (~is_sentinel(targets, tokens)).sum() == num_noise
        assert is_sentinel(strip(out["inputs"][row]), tokens).sum() == num_spans
        assert is_sentinel(targets[:1], tokens)[0]  # non-noise first, so targets start with a sentinel


@pytest.mark.parametrize("mu", [3.0, 8.0])
def test_mean_span_length_over_many_samples_is_mu(corpus, mu):
    _plan, _chunks, out, tokens = run(named.span_corruption(mean_noise_span_length=mu), corpus, 512, batch=48)
    lengths = []
    for row in out["targets"]:
        pieces = np.split(strip(row), np.flatnonzero(is_sentinel(strip(row), tokens)))
        lengths += [p.size - 1 for p in pieces if p.size > 1]
    assert np.mean(lengths) == pytest.approx(mu, rel=0.05)
    assert min(lengths) >= 1 and np.std(lengths) > 0.3 * mu  # random lengths, not all equal to mu


def _same_mask(obj, plan, seed, batch):
    """The noise the objective drew first from the same Generator."""
    return obj.mask.sample(numpy_rng(seed, STREAM_OBJECTIVE, 0), batch, plan.raw_length)


def test_drop_tokens_inputs_and_targets_split_the_original_in_order(corpus):
    obj = named.drop_tokens()
    plan, chunks, out, _tokens = run(obj, corpus)
    noise = _same_mask(obj, plan, 0, chunks.shape[0])
    for row in range(chunks.shape[0]):
        inputs, targets = strip(out["inputs"][row]), strip(out["targets"][row])
        kept = inputs.size + targets.size  # a trimmed row keeps an exact prefix
        assert inputs.tolist() == chunks[row, :kept][~noise[row, :kept]].tolist()
        assert targets.tolist() == chunks[row, :kept][noise[row, :kept]].tolist()
    assert noise.mean() == pytest.approx(0.15, abs=0.01)


def test_deshuffling_target_is_original_and_inputs_a_permutation(corpus):
    plan, chunks, out, _tokens = run(named.deshuffling(), corpus)
    assert np.array_equal(out["targets"][:, : plan.raw_length], chunks)
    inputs = out["inputs"][:, : plan.raw_length]
    assert np.array_equal(np.sort(inputs, axis=1), np.sort(chunks, axis=1))
    assert (inputs != chunks).mean() > 0.5


def test_prefix_lm_inputs_then_targets_is_the_original(corpus):
    plan, chunks, out, _tokens = run(named.prefix_lm(), corpus, batch=400)
    splits = []
    for row in range(chunks.shape[0]):
        inputs, targets = strip(out["inputs"][row]), strip(out["targets"][row])
        assert np.concatenate([inputs, targets]).tolist() == chunks[row].tolist()
        splits.append(inputs.size)
    assert min(splits) >= 1 and max(splits) <= plan.raw_length - 1
    assert np.mean(splits) == pytest.approx(plan.raw_length / 2, rel=0.08)


@pytest.mark.parametrize("mask_prob,random_prob", [(0.9, 0.1), (0.8, 0.1)])
def test_bert_style_replacement_proportions(corpus, mask_prob, random_prob):
    obj = named.bert_style(mask_prob=mask_prob, random_prob=random_prob)
    plan, chunks, out, tokens = run(obj, corpus, 512, batch=64)
    noise = _same_mask(obj, plan, 0, chunks.shape[0])
    inputs = out["inputs"][:, : plan.raw_length]
    assert np.array_equal(out["targets"][:, : plan.raw_length], chunks)
    assert np.array_equal(inputs[~noise], chunks[~noise])
    masked = inputs[noise] == tokens.sentinel(0)
    changed = ~masked & (inputs[noise] != chunks[noise])
    assert noise.mean() == pytest.approx(0.15, abs=0.01)
    assert masked.mean() == pytest.approx(mask_prob, abs=0.02)
    assert changed.mean() == pytest.approx(random_prob, abs=0.02)  # a random token rarely equals the original
    assert (
        (inputs[noise][changed] >= tokens.first_regular_id)
        & (inputs[noise][changed] < tokens.vocab_size - tokens.num_sentinels)
    ).all()


def test_mass_style_masks_every_noise_token_and_targets_the_original(corpus):
    obj = named.mass_style()
    plan, chunks, out, tokens = run(obj, corpus)
    noise = _same_mask(obj, plan, 0, chunks.shape[0])
    assert np.array_equal(out["inputs"][:, : plan.raw_length], np.where(noise, tokens.sentinel(0), chunks))
    assert np.array_equal(out["targets"][:, : plan.raw_length], chunks)


def test_lm_has_empty_inputs_and_the_whole_chunk_as_targets(corpus):
    _plan, chunks, out, tokens = run(named.lm(), corpus)
    assert np.all(out["inputs"][:, 0] == tokens.eos_id) and np.all(out["inputs"][:, 1:] == 0)
    assert np.array_equal(out["targets"][:, :-1], chunks) and np.all(out["targets"][:, -1] == tokens.eos_id)


@pytest.mark.parametrize("name", sorted(set(named.NAMED_OBJECTIVES) - {"lm"}))  # lm draws no randomness
def test_same_seed_same_batch_different_seed_different_batch(corpus, name):
    make = named.NAMED_OBJECTIVES[name]
    obj = make([named.span_corruption(), named.prefix_lm()]) if name == "mixture" else make()
    a = run(obj, corpus, 64, batch=16, seed=1)[2]
    b = run(make() if name != "mixture" else obj, corpus, 64, batch=16, seed=1)[2]
    c = run(obj, corpus, 64, batch=16, seed=2)[2]
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)


def test_ul2_mode_tokens_and_mixture_proportions(corpus):
    obj = named.ul2(rates=(4, 1, 1, 1, 1, 1, 1))
    _plan, chunks, out, tokens = run(obj, corpus, 128, batch=1000)
    first = out["inputs"][:, 0]
    share = {m: np.mean(first == i) for m, i in MODES}
    p = np.array([4, 1, 1, 1, 1, 1, 1]) / 10
    expected = {"[NLU]": p[0] + p[1], "[S2S]": p[2], "[NLG]": p[3:].sum()}
    for mode, rate in expected.items():
        assert abs(share[mode] - rate) < 4 * np.sqrt(rate * (1 - rate) / 1000)
    for row in range(1000):
        inputs, targets = strip(out["inputs"][row])[1:], out["targets"][row]
        if first[row] == 4:  # S: prefix LM
            whole = np.concatenate([inputs, strip(targets)])
            assert whole.tolist() == chunks[row, : whole.size].tolist()
        else:  # R / X: span corruption of a prefix of the chunk
            rebuilt = reconstruct(np.append(inputs, 1), targets, tokens)
            assert rebuilt == chunks[row, : len(rebuilt)].tolist()


def test_ul2_s_denoiser_predicts_the_last_quarter_on_average(corpus):
    """UL2's S-denoiser (Table 1: r = 0.25, one span ending the text): context = a prefix of the row's 511
    raw tokens, targets = the rest, uniform in length with mean 25% and at most about half."""
    stream, small = corpus
    tokens = dataclasses.replace(small, vocab_size=small.vocab_size + 100, num_sentinels=200)  # X parts: 127
    obj = named.ul2(rates=(0, 0, 1, 0, 0, 0, 0))  # S rows only
    _plan, chunks, out, _ = run(obj, (stream, tokens), 512, batch=256)
    assert np.all(out["inputs"][:, 0] == 4)  # [S2S]
    shares = []
    for row in range(chunks.shape[0]):
        inputs, targets = strip(out["inputs"][row])[1:], strip(out["targets"][row])
        assert np.concatenate([inputs, targets]).tolist() == chunks[row, :511].tolist()
        shares.append(targets.size / 511)
    assert np.mean(shares) == pytest.approx(0.25, rel=0.1)
    assert min(shares) >= 1 / 511 and max(shares) <= 256 / 511


def test_user_mixture_rates_and_per_row_choice(corpus):
    obj = named.mixture([named.span_corruption(), named.prefix_lm()], rates=[0.75, 0.25])
    _plan, _chunks, out, tokens = run(obj, corpus, 64, batch=2000)
    has_sentinel = is_sentinel(out["inputs"], tokens).any(axis=1)
    assert abs(has_sentinel.mean() - 0.75) < 4 * np.sqrt(0.75 * 0.25 / 2000)
    expected = obj.choose(numpy_rng(0, STREAM_OBJECTIVE, 0), 2000) == 0
    assert np.array_equal(has_sentinel, expected)


def test_ul2_at_paper_scale_needs_and_works_with_200_sentinels(corpus):
    """Inputs 512: UL2's X-denoiser (μ 3, r 0.5) needs up to 127 sentinels per row. With T5's 100 it stops with an
    error naming the fix; with `vocabulary.num_sentinels = 200` a real batch decodes back to its text."""
    stream, small = corpus
    big = dataclasses.replace(small, vocab_size=small.vocab_size + 100, num_sentinels=200)
    obj = named.ul2()
    plan = obj.plan(512)
    assert plan.inputs_length == 512
    chunks = chunks_of(stream, 64, plan.raw_length)
    rng = lambda: numpy_rng(0, STREAM_OBJECTIVE, 0)  # noqa: E731
    with pytest.raises(ValueError, match=r"ul2/X_mu3_r0\.5: up to 127 .*vocabulary\.num_sentinels = 127"):
        obj(chunks, rng(), small)
    out = obj(chunks, rng(), big)
    assert out["inputs"].shape == (64, 512) and out["targets"].shape == (64, plan.targets_length)
    modes, most = out["inputs"][:, 0], 0
    for row in np.flatnonzero(modes != 4):  # R / X rows: span corruption of a prefix of the chunk
        inputs = strip(out["inputs"][row])[1:]
        rebuilt = reconstruct(np.append(inputs, 1), out["targets"][row], big)
        assert rebuilt == chunks[row, : len(rebuilt)].tolist()
        ranks = sentinel_ranks(inputs, big)
        assert ranks == list(range(len(ranks)))
        most = max(most, len(ranks))
    assert 100 < most <= 200  # some row really uses sentinels a T5 vocabulary does not have


def test_a_mixture_checks_every_part_before_drawing_rows(corpus):
    """A part the batch happens not to draw must still be checked: a run must not start fine and fail later,
    the first time a rare X-denoiser row comes up."""
    stream, tokens = corpus
    mix = named.mixture([named.span_corruption(), named.span_corruption(noise_density=0.5)], rates=[1.0, 1e-12])
    plan = mix.plan(512)
    chunks = chunks_of(stream, 1, plan.raw_length)
    assert (mix.choose(numpy_rng(0, STREAM_OBJECTIVE, 0), 1) == 0).all()  # only the feasible part is drawn
    with pytest.raises(ValueError, match=r"vocabulary\.num_sentinels"):
        mix(chunks, numpy_rng(0, STREAM_OBJECTIVE, 0), tokens)
