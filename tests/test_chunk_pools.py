"""Mixture rows read their own part's raw length (data/chunk_pools.py) and parts are drawn with random access
(data/block_draws.py): no raw token read is left unencoded, and batch k stays a pure function of k."""

from __future__ import annotations

import json

import numpy as np
import pytest

from t5explore.data.block_draws import BlockDraws
from t5explore.data.pretrain_stream import PretrainStream
from t5explore.data.token_store import write_token_store
from t5explore.objectives import named
from t5explore.objectives.base import TokenSpace
from t5explore.seeds import STREAM_CHUNK_ORDER, STREAM_OBJECTIVE, numpy_rng

FIRST_VALUE = 10  # token value = FIRST_VALUE + position in the store, so a chunk names where it was read
MODES = (("[NLU]", 3), ("[S2S]", 4), ("[NLG]", 5))
TOKENS = TokenSpace(vocab_size=30_000, mode_token_ids=MODES, first_regular_id=6)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    values = np.arange(FIRST_VALUE, FIRST_VALUE + 24_000, dtype=np.int32)
    return write_token_store(tmp_path_factory.mktemp("store"), [values[:9000], values[9000:]], TOKENS, 0.1)


def ul2_stream(store, **kw) -> PretrainStream:
    args = dict(objective=named.ul2(), inputs_length=32, batch_size=12, seed=3, tokens=TOKENS)
    return PretrainStream(store, **{**args, **kw})


def replay(probabilities, rng_for_block, block, count):
    """Parts and ranks by drawing every block in order and counting: what BlockDraws must equal."""
    blocks = [rng_for_block(b).choice(len(probabilities), block, p=probabilities) for b in range(count // block + 1)]
    parts = np.concatenate(blocks)[:count]
    seen = np.zeros(len(probabilities), np.int64)
    ranks = np.empty(count, np.int64)
    for n, j in enumerate(parts):
        ranks[n], seen[j] = seen[j], seen[j] + 1
    return parts, ranks


def test_block_draws_give_any_window_of_parts_and_ranks_without_a_replay():
    p = np.array([0.5, 0.3, 0.2])
    rng_for_block = lambda b: numpy_rng(7, 99, b)  # noqa: E731
    parts, ranks = replay(p, rng_for_block, 16, 200)
    for first, count in ((0, 200), (150, 30), (31, 2), (64, 0)):
        got = BlockDraws(p, rng_for_block, 16).parts_and_ranks(first, count)  # a fresh one: nothing cached
        assert np.array_equal(got[0], parts[first : first + count])
        assert np.array_equal(got[1], ranks[first : first + count])
    draws = BlockDraws(p, rng_for_block, 16)
    assert [draws.part(n) for n in (199, 3, 100)] == [parts[199], parts[3], parts[100]]
    drawn = []
    sequential = BlockDraws(p, lambda b: drawn.append(b) or rng_for_block(b), 16)
    assert [sequential.part(n) for n in range(200)] == list(parts)
    assert drawn == list(range(13))  # reading on draws each block once
    one = BlockDraws([1.0], rng_for_block, 16).parts_and_ranks(40, 5)
    assert np.array_equal(one[0], np.zeros(5)) and np.array_equal(one[1], np.arange(40, 45))
    with pytest.raises(ValueError, match="distribution"):
        BlockDraws([0.5, 0.2], rng_for_block, 16)


def test_one_part_streams_read_the_chunks_they_always_did(store):
    """Single objectives keep chunk c of epoch e = numpy_rng(seed, STREAM_CHUNK_ORDER, e).permutation[c]."""
    s = PretrainStream(store, named.span_corruption(), 32, 8, seed=4, tokens=TOKENS)
    width, n = s.chunk_length, s.num_chunks
    assert n == 21_600 // width
    positions = np.arange(8 * 300, 8 * 301)
    epochs, within = np.divmod(positions, n)
    expected = [numpy_rng(4, STREAM_CHUNK_ORDER, e).permutation(n)[w] for e, w in zip(epochs, within)]
    assert np.array_equal(s.chunk_ids(300), expected)
    assert np.array_equal(s.chunks(300)[:, 0], FIRST_VALUE + np.array(expected) * width)


def test_mixture_rows_read_exactly_their_parts_raw_length_and_no_token_twice(store):
    s = ul2_stream(store)
    widths = [p.raw_length for p in s.objective.part_plans(s.plan)]
    assert len(set(widths)) > 1 and max(widths) == s.plan.raw_length
    read, raw_per_row = [], []
    for k in range(20):
        parts, chunks = s.part_chunks(k)
        assert [c.shape for c in chunks] == [((parts == j).sum(), w) for j, w in enumerate(widths)]
        for c in chunks:
            assert np.all(np.diff(c, axis=1) == 1)  # each row one contiguous stretch of text
            read.append(c.ravel())
        raw_per_row.extend(np.array(widths)[parts])
    read = np.concatenate(read)
    assert len(np.unique(read)) == len(read)  # 240 rows, ~34 a pool of 74 chunks: all in the first epoch
    assert read.size == sum(raw_per_row)  # every token read belongs to a row's own part: none unread
    share = read.size / (240 * s.plan.raw_length)
    assert share == pytest.approx(s.objective.mean_raw_length(s.plan) / s.plan.raw_length, abs=0.05)


def test_pools_are_disjoint_and_a_long_pass_covers_the_split(store):
    s = ul2_stream(store, batch_size=7)
    group = s.pools.group_width
    parts, starts = s.row_starts(0)  # store positions; the train split starts at 0
    assert np.all(starts % group == s.pools.offsets[parts])  # part j reads the j-th slot of a group
    assert np.array_equal(s.part_chunks(0)[1][parts[0]][0, 0], FIRST_VALUE + starts[0])
    batches = int(s.batches_per_epoch)
    covered = np.concatenate([c.ravel() for k in range(batches) for c in s.part_chunks(k)[1]])
    assert s.epoch_of(batches) <= 1 < s.epoch_of(batches + 1)
    assert len(np.unique(covered)) / (s.num_chunks * group) > 0.75  # pools cycle apart, so not all once
    parts = np.concatenate([s.row_starts(k)[0] for k in range(batches)])
    assert np.bincount(parts, minlength=7) / parts.size == pytest.approx(np.full(7, 1 / 7), abs=0.04)


def test_mixture_batches_are_pure_resumable_and_split_across_hosts(store):
    a, b = ul2_stream(store), ul2_stream(store)
    for k in (0, 5, 90):
        choice, chunks = a.part_chunks(k)
        rng = numpy_rng(3, STREAM_OBJECTIVE, k, 0)
        out = a.objective.encode_parts(choice, chunks, rng, TOKENS, plan=a.plan)
        assert np.array_equal(a.batch(k)["encoder_input_tokens"], out["inputs"])
        assert np.array_equal(b.batch(k)["decoder_target_tokens"], a.batch(k)["decoder_target_tokens"])
    assert not np.array_equal(ul2_stream(store, seed=4).row_starts(0)[1], a.row_starts(0)[1])
    with ul2_stream(store) as it:
        for _ in range(3):
            next(it)
        state = json.loads(json.dumps(it.state()))
        expected = next(it)
    with ul2_stream(store) as resumed:
        resumed.restore(state)
        assert np.array_equal(next(resumed)["encoder_input_tokens"], expected["encoder_input_tokens"])
    hosts = [ul2_stream(store, host_index=h, host_count=3) for h in range(3)]
    for k in (0, 7):
        assert np.array_equal(np.concatenate([h.row_starts(k)[1] for h in hosts]), a.row_starts(k)[1])
    with pytest.raises(ValueError, match="part_chunks"):
        a.chunks(0)


def test_zero_rate_parts_take_no_room_and_small_splits_fail_clearly(store):
    only_s = named.ul2(rates=(0, 0, 1, 0, 0, 0, 0))
    s = ul2_stream(store, objective=only_s)
    widths = [p.raw_length for p in only_s.part_plans(s.plan)]
    assert s.pools.group_width == widths[2]
    assert set(s.row_starts(2)[0]) == {2}
    with pytest.raises(ValueError, match=r"chunks of \d+ .*one batch needs"):
        ul2_stream(store, split="validation", batch_size=2000)
