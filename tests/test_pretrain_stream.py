"""The pretraining stream: pure batches, exact resume, epochs without repeats, held-out and host disjointness."""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest

from t5explore.data.pretrain_stream import PretrainStream
from t5explore.data.token_store import write_token_store
from t5explore.objectives.base import LengthPlan, Objective, TokenSpace
from t5explore.seeds import STREAM_OBJECTIVE, numpy_rng

FEATURES = {"encoder_input_tokens", "decoder_input_tokens", "decoder_target_tokens", "decoder_loss_weights"}


class HalfSplit:
    """Trivial objective: inputs = first half of the chunk, targets = second half (optionally one token
    replaced by a random id, so the rng matters). Records the first draw of each rng it gets."""

    name = "half_split"

    def __init__(self, noisy: bool = True, fail_at_call: int | None = None):
        self.noisy, self.fail_at_call, self.calls, self.draws = noisy, fail_at_call, 0, []

    def plan(self, inputs_length: int) -> LengthPlan:
        return LengthPlan(raw_length=2 * (inputs_length - 1), inputs_length=inputs_length, targets_length=inputs_length)

    def __call__(self, chunks, rng, tokens):
        self.calls += 1
        if self.fail_at_call == self.calls:
            raise RuntimeError("objective exploded")
        half = chunks.shape[1] // 2
        eos = np.full((len(chunks), 1), tokens.eos_id, np.int32)
        inputs = np.concatenate([chunks[:, :half], eos], 1)
        targets = np.concatenate([chunks[:, half:], eos], 1)
        draw = rng.integers(1 << 30)
        self.draws.append(int(draw))
        if self.noisy:
            inputs[:, 0] = tokens.first_regular_id + draw % tokens.num_regular
        return {"inputs": inputs, "targets": targets}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    # Token value = position, so each chunk is identified by its first token.
    tokens = np.arange(10_000, dtype=np.int32)
    return write_token_store(
        tmp_path_factory.mktemp("store"),
        [tokens[:4000], tokens[4000:]],
        TokenSpace(vocab_size=20_100),
        eval_fraction=0.1,
    )


def make(store, **kw):
    args = dict(objective=HalfSplit(), inputs_length=9, batch_size=8, seed=0)  # chunks of 16 tokens
    args.update(kw)
    return PretrainStream(store, **args)


def test_objective_protocol_and_feature_layout(store):
    assert isinstance(HalfSplit(), Objective)
    s = make(store)
    b = s.batch(0)
    assert set(b) == FEATURES
    assert b["encoder_input_tokens"].shape == (8, 9) and b["decoder_target_tokens"].shape == (8, 9)
    assert b["encoder_input_tokens"].dtype == np.int32
    chunks = s.chunks(0)
    assert np.array_equal(b["decoder_target_tokens"][:, :-1], chunks[:, 8:])
    assert np.all(chunks[:, 1:] - chunks[:, :-1] == 1) and np.all(chunks[:, 0] % 16 == 0)  # aligned, contiguous
    assert s.num_chunks == 9000 // 16 and s.chunk_length == 16


def test_same_seed_same_batch_and_objective_rng_derivation(store):
    a, b, c = make(store), make(store), make(store, seed=1)
    for k in (0, 3, 200):
        assert all(np.array_equal(a.batch(k)[f], b.batch(k)[f]) for f in FEATURES)
    assert not np.array_equal(a.chunks(0), c.chunks(0))
    obj = HalfSplit()
    make(store, objective=obj, seed=5, host_index=1, host_count=2).batch(7)
    assert obj.draws == [int(numpy_rng(5, STREAM_OBJECTIVE, 7, 1).integers(1 << 30))]


def test_resume_from_state_gives_the_identical_next_batch(store):
    with make(store) as a:
        for _ in range(5):
            next(a)
        state = json.loads(json.dumps(a.state()))
        expected = next(a)
    assert state["next_batch"] == 5
    with make(store) as b:
        b.restore(state)
        got = next(b)
        assert b.state()["next_batch"] == 6
    assert all(np.array_equal(expected[f], got[f]) for f in FEATURES)
    assert all(np.array_equal(expected[f], make(store, prefetch=0).batch(5)[f]) for f in FEATURES)


def test_restore_mid_iteration_restarts_prefetch(store):
    with make(store, prefetch=3) as s:
        first = [next(s) for _ in range(4)]
        s.restore({"next_batch": 1})
        again = next(s)
        assert s.wait_seconds > 0
    assert np.array_equal(first[1]["encoder_input_tokens"], again["encoder_input_tokens"])
    with pytest.raises(ValueError, match="seed=3"):
        make(store).restore({"next_batch": 1, "seed": 3})
    with pytest.raises(ValueError, match="next_batch"):
        make(store).restore({"next_batch": -1})


def test_no_chunk_repeats_within_an_epoch(store):
    s = make(store, batch_size=10)  # 562 chunks: epochs end mid-batch
    n = s.num_chunks
    ids = np.concatenate([s.chunk_ids(k) for k in range(2 * n // 10 + 1)])
    assert sorted(ids[:n]) == list(range(n)) and sorted(ids[n : 2 * n]) == list(range(n))
    assert not np.array_equal(ids[:n], ids[n : 2 * n])  # a fresh permutation each epoch
    assert s.epoch_of(n // 10) < 1 <= s.epoch_of(n // 10 + 1) and s.batches_per_epoch == n // 10


def test_train_and_validation_are_disjoint(store):
    train, val = make(store), make(store, split="validation")
    split = store.split_point
    assert split == 9000
    train_tokens = np.concatenate([train.chunks(k) for k in range(train.num_chunks // 8)])
    val_tokens = np.concatenate([val.chunks(k) for k in range(val.num_chunks // 8)])
    assert train_tokens.max() < split <= val_tokens.min()
    assert val.num_chunks == 1000 // 16


def test_host_slices_are_disjoint_and_cover_the_global_batch(store):
    single = make(store, objective=HalfSplit(noisy=False), batch_size=12)
    hosts = [make(store, objective=HalfSplit(noisy=False), batch_size=12, host_index=h, host_count=3) for h in range(3)]
    for k in (0, 1, 50):
        parts = [h.chunk_ids(k) for h in hosts]
        assert len(set(np.concatenate(parts))) == 12
        assert np.array_equal(np.concatenate(parts), single.chunk_ids(k))
        feats = [h.batch(k)["encoder_input_tokens"] for h in hosts]
        assert np.array_equal(np.concatenate(feats), single.batch(k)["encoder_input_tokens"])
    with pytest.raises(ValueError, match="multiple of host_count=3"):
        make(store, batch_size=8, host_count=3)


def test_errors_are_clear(store):
    with pytest.raises(ValueError, match=r"62 chunks of 16.*one batch needs 64"):
        make(store, split="validation", batch_size=64)
    s = make(store, objective=HalfSplit(fail_at_call=2))
    next(s)
    with pytest.raises(RuntimeError, match="objective exploded"):
        next(s)
    s.close()

    class WrongLength(HalfSplit):
        def plan(self, inputs_length):
            return LengthPlan(16, inputs_length + 1, 9)

    with pytest.raises(ValueError, match="'half_split' returned inputs"):
        make(store, objective=WrongLength()).batch(0)


def test_abandoned_stream_ends_its_prefetch_thread(store):
    s = make(store, prefetch=2)
    next(s)
    thread = s._worker[0]
    assert thread.is_alive()
    del s
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive()
