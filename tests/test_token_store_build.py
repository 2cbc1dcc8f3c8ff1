"""Building the token store: any number of processes gives the old code's store and batches; a killed build
resumes without re-tokenising its finished shards; racing builders of a shard are harmless; build-store
builds shard by shard, as a job array would, then finalizes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from t5explore import cli
from t5explore.data import token_shards
from t5explore.data import token_store as ts
from t5explore.data.corpus import builtin_corpus, text_files
from t5explore.data.pretrain_stream import PretrainStream
from t5explore.data.token_store_reader import DEFAULT_EVAL_FRACTION, TokenStore
from t5explore.data.vocab import get_vocabulary
from t5explore.objectives.named import span_corruption

BOOKS = [
    "pg500.txt",
    "pg38145.txt",
    "pg149.txt",
    "pg19322.txt",
    "pg551.txt",
    "pg6763.txt",
    "pg1974.txt",
    "pg1656.txt",
]  # the 8 smallest books (1.4 MB)
SMALL_SHARDS = ts.BuildSettings(num_workers=1, encode_threads=1, shard_bytes=300_000)


@pytest.fixture(scope="module")
def vocab(cache_dir):
    return get_vocabulary(builtin_corpus(cache_dir=str(cache_dir)), 1000, cache_dir)


@pytest.fixture(scope="module")
def books(shared_data):
    return text_files(pattern=BOOKS, directory=str(shared_data / "pretrain" / "gutenberg"))


@pytest.fixture(scope="module")
def serial_store(books, vocab, tmp_path_factory):
    return ts.get_token_store(books, vocab, tmp_path_factory.mktemp("serial"), progress=False, settings=SMALL_SHARDS)


class FirstFormatStore:
    """The store as the first format's code built it: one int32 array of every document's encoding in order,
    the same held-out tail (TokenStore.split_point before shards)."""

    def __init__(self, corpus, vocab, eval_fraction=DEFAULT_EVAL_FRACTION):
        encoded = vocab.encode_batch(list(corpus.documents()))
        self.tokens = np.concatenate([np.asarray(ids, np.int32) for ids in encoded])
        self.doc_offsets = np.concatenate([[0], np.cumsum([len(ids) for ids in encoded])]).astype(np.int64)
        self.token_space = vocab.token_space()
        self.num_tokens = len(self.tokens)
        self.split_point = self.num_tokens - round(self.num_tokens * eval_fraction)

    def split_bounds(self, split):
        return (0, self.split_point) if split == "train" else (self.split_point, self.num_tokens)


def batches(store, split="train", count=12):
    stream = PretrainStream(store, span_corruption(), 128, 16, seed=5, split=split, prefetch=0)
    return [stream.batch(k) for k in range(min(count, stream.batches_per_epoch * 3))]


def assert_same_batches(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)


def test_store_matches_the_first_format_tokens_and_batches(serial_store, books, vocab):
    old = FirstFormatStore(books, vocab)
    assert len(serial_store.meta["shards"]) >= 4 and serial_store.storage_dtype == np.uint16
    assert np.array_equal(serial_store.tokens[:], old.tokens)
    assert np.array_equal(serial_store.doc_offsets, old.doc_offsets)
    assert serial_store.split_point == old.split_point
    for split in ("train", "validation"):
        assert_same_batches(batches(serial_store, split), batches(old, split))


def test_two_processes_build_the_same_store(serial_store, books, vocab, tmp_path):
    settings = ts.BuildSettings(num_workers=2, encode_threads=1, shard_bytes=200_000)  # other shards, too
    parallel = ts.get_token_store(books, vocab, tmp_path, progress=False, settings=settings)
    assert parallel.meta["workers"] == 2 and len(parallel.meta["shards"]) > len(serial_store.meta["shards"])
    assert np.array_equal(parallel.tokens[:], serial_store.tokens[:])
    assert np.array_equal(parallel.doc_offsets, serial_store.doc_offsets)
    assert_same_batches(batches(parallel), batches(serial_store))
    assert not [p for p in (parallel.directory / "shards").iterdir() if p.name.startswith(".")]


def test_killed_build_resumes_without_retokenising_finished_shards(serial_store, books, vocab, tmp_path, monkeypatch):
    entry = ts.store_entry(books, vocab, tmp_path)
    plan, jobs = ts.shard_jobs(books, vocab, entry, SMALL_SHARDS, part=(0, 2))  # half the shards ...
    token_shards.build_shards(jobs, 1, vocab, books.name, progress=False)
    killed = entry / "shards" / f".{plan[1].name}.12345.dead.tmp"  # ... and one cut short by the kill
    killed.mkdir()
    (killed / "tokens.npy").write_bytes(b"half a shard")
    built, real = [], token_shards.run_shard_job

    def recording(job, vocab=None):
        built.append(job.shard.index)
        return real(job, vocab)

    monkeypatch.setattr(token_shards, "run_shard_job", recording)
    store = ts.get_token_store(books, vocab, tmp_path, progress=False, settings=SMALL_SHARDS)
    assert built == [s.index for s in plan if s.index % 2 == 1]
    assert np.array_equal(store.tokens[:], serial_store.tokens[:]) and not killed.exists()
    assert_same_batches(batches(store), batches(serial_store))
    # A lost manifest (killed while finalizing): every shard is there, so nothing is tokenised again.
    (entry / "manifest.json").unlink()
    built.clear()
    again = ts.get_token_store(books, vocab, tmp_path, progress=False, settings=SMALL_SHARDS)
    assert built == [] and np.array_equal(again.tokens[:], serial_store.tokens[:])


def test_unfinished_store_is_not_opened(books, vocab, tmp_path):
    entry = ts.store_entry(books, vocab, tmp_path)
    _, jobs = ts.shard_jobs(books, vocab, entry, SMALL_SHARDS, part=(0, 2))
    token_shards.build_shards(jobs, 1, vocab, books.name, progress=False)
    with pytest.raises(token_shards.IncompleteStoreError, match=r"no manifest\.json.*build-store"):
        TokenStore(entry)
    plan, _ = ts.shard_jobs(books, vocab, entry, SMALL_SHARDS)
    with pytest.raises(token_shards.IncompleteStoreError, match=r"shards are not built \(first: 00001-"):
        token_shards.finalize_store(entry, books, plan, np.dtype(np.uint16), {})


def test_racing_builders_of_one_shard_both_finish(books, vocab, tmp_path, monkeypatch):
    entry = ts.store_entry(books, vocab, tmp_path)
    _, jobs = ts.shard_jobs(books, vocab, entry, SMALL_SHARDS)
    real, calls = token_shards._tokenize_shard, []

    def raced(job, vocab, out):
        calls.append(out)
        info = real(job, vocab, out)
        if len(calls) == 1:  # another builder of the same shard finishes first and renames its copy into place
            token_shards.run_shard_job(job, vocab)
        return info

    monkeypatch.setattr(token_shards, "_tokenize_shard", raced)
    info = token_shards.run_shard_job(jobs[0], vocab)  # loses the rename: keeps the other's, no error
    final = entry / "shards" / jobs[0].shard.name
    assert len(calls) == 2 and json.loads((final / "shard.json").read_text())["num_tokens"] == info["num_tokens"]
    assert not [p for p in final.parent.iterdir() if p.name.endswith(".tmp")]
    stamp = (final / "tokens.npy").stat().st_mtime_ns
    assert token_shards.run_shard_job(jobs[0], vocab)["name"] == final.name and len(calls) == 2  # built: kept
    assert (final / "tokens.npy").stat().st_mtime_ns == stamp


def test_build_store_command_shard_by_shard(serial_store, shared_data, tmp_path, capsys):
    gutenberg = shared_data / "pretrain" / "gutenberg"
    flags = [
        "--gin.Pretrain.corpus=@text_files()",
        f"--gin.text_files.pattern={BOOKS!r}",
        f"--gin.text_files.directory='{gutenberg}'",
        "--gin.vocabulary.sp_vocab_size=400",
        f"--gin.Experiment.cache_dir='{tmp_path}'",
        "--gin.token_store.shard_bytes=300000",
    ]

    def build_store(*args):
        assert cli.main(["build-store", *args, *flags]) == 0
        return json.loads(capsys.readouterr().out)

    plan = build_store("--plan")
    assert plan["complete"] is False and plan["missing"] == plan["shards"] == len(serial_store.meta["shards"])
    for i in range(3):
        assert build_store(f"--shard={i}/3", "--num_workers=1")["part"] == f"{i}/3"
    done = build_store("--finalize")
    assert done["complete"] and done["entry"] == plan["entry"]
    store = TokenStore(done["entry"])
    assert store.num_documents == serial_store.num_documents and store.meta["corpus"].startswith("text_files:")
    assert build_store()["tokens"] == store.num_tokens  # complete: opened, nothing built
    assert cli.main(["build-store", "--shard=3/3", *flags]) == 2
    assert "--shard='3/3': I must be in [0, N)" in capsys.readouterr().err
