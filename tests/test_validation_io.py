"""Writing results and caches: a full disk is one error naming the file, results are readable by
collaborators (the umask, not a temp file's 0600), and concurrent workers build a vocabulary or token store
once, saying when vocabulary training starts and ends."""

from __future__ import annotations

import errno
import os
import random
import threading
import time

import pytest

from t5explore import cli, io_utils
from t5explore.data import cache as cache_mod
from t5explore.data import token_store as ts_mod
from t5explore.data import vocab as vocab_mod
from t5explore.data.corpus import text_files
from t5explore.io_utils import DiskFullError


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_is_one_error_naming_the_path_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "result.json"
    io_utils.atomic_write_json(path, {"old": 1})
    monkeypatch.setattr(io_utils.os, "fsync", _enospc)
    with pytest.raises(DiskFullError) as e:
        io_utils.atomic_write_json(path, {"new": 2})
    assert str(e.value) == f"No space left on device: could not write {path} (15 bytes)"
    assert e.value.errno == errno.ENOSPC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]  # no .result.json.*.tmp
    assert io_utils.read_json(path) == {"old": 1}


def test_full_disk_while_appending_metrics_names_the_file(tmp_path, monkeypatch):
    from t5explore.train import writers

    writer = writers.MetricsWriter(tmp_path, tensorboard=False)
    monkeypatch.setattr(writers, "open", _enospc, raising=False)
    with pytest.raises(
        DiskFullError,
        match=f"^No space left on device: could not write {tmp_path}/metrics.jsonl "
        r"\(the pretrain metrics of step 3\)$",
    ):
        writer.write("pretrain", 3, {"loss": 1.0})


def test_full_disk_during_a_checkpoint_names_the_directory(tmp_path):
    from t5explore.train.checkpoints import Checkpointer

    class Manager:
        def all_steps(self):
            return []

        def save(self, *args, **kwargs):
            raise ValueError("tensorstore: Error writing local file: No space left on device [OS error: 28]")

    ckpt = object.__new__(Checkpointer)
    ckpt.directory, ckpt._manager, ckpt._phase = str(tmp_path), Manager(), "checkpoint_pretrain"
    with pytest.raises(
        DiskFullError,
        match=f"^No space left on device: could not write {tmp_path} "
        r"\(checkpoint of step 5\)$",
    ):
        ckpt.save(5, {}, {})


def test_cli_run_failure_on_a_full_disk_is_one_line_exit_1(tmp_path, capsys, monkeypatch):
    import t5explore.train.run as run_mod

    def execute(run_dir, *args):
        monkeypatch.setattr(io_utils.os, "fsync", _enospc)  # the disk fills up during the run
        io_utils.atomic_write_text(os.path.join(run_dir, "config.gin"), "x")

    monkeypatch.setattr(run_mod, "execute", execute)
    run_dir = tmp_path / "run"
    assert cli.main(["train", "--gin_file=gin/runs/tiny_cpu.gin", f"--run_dir={run_dir}"]) == 1
    # FAILED cannot be written either; the one line still says what happened
    assert capsys.readouterr().err == (
        f"t5explore: run failed: DiskFullError: No space left on device: could not write {run_dir}/config.gin "
        f"(1 byte) (run with --verbose for the traceback)\n"
    )
    assert sorted(p.name for p in run_dir.iterdir()) == ["fingerprint.json"]


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_atomic_writes_and_cache_entries_respect_the_umask(tmp_path, umask, file_mode, dir_mode):
    old = os.umask(umask)
    try:
        io_utils.atomic_write_text(tmp_path / "table.md", "| a |\n")
        with cache_mod.building_entry(tmp_path / "entry") as tmp:
            (tmp / "x").write_text("1")
    finally:
        os.umask(old)
    assert (tmp_path / "table.md").stat().st_mode & 0o777 == file_mode
    assert (tmp_path / "entry").stat().st_mode & 0o777 == dir_mode


def small_corpus(tmp_path):
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 8))) for _ in range(400)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(" ".join(rng.choice(words) for _ in range(30)) for _ in range(300)))
    return text_files(pattern=str(path))


def _twice_at_once(fn):
    """Call fn in two threads at the same time; re-raise the first error."""
    errors = []

    def call():
        try:
            fn()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_two_workers_train_the_vocabulary_once_and_say_so(tmp_path, monkeypatch, capsys):
    corpus = small_corpus(tmp_path)
    real, calls = vocab_mod.train_sentencepiece, []

    def slow_train(*args):
        calls.append(args)
        time.sleep(0.5)  # both workers are past their first "is it built?" check by now
        real(*args)

    monkeypatch.setattr(vocab_mod, "train_sentencepiece", slow_train)
    _twice_at_once(lambda: vocab_mod.get_vocabulary(corpus, 300, tmp_path / "cache"))
    assert len(calls) == 1
    err = capsys.readouterr().err
    assert err.count("training the vocabulary (300 pieces) on text_files:") == 1
    assert err.count("trained the vocabulary in ") == 1 and "(300 sentences)" in err
    assert "waiting for another process building the vocabulary" in err


def test_two_workers_tokenise_the_corpus_once(tmp_path, monkeypatch):
    corpus = small_corpus(tmp_path)
    vocab = vocab_mod.get_vocabulary(corpus, 300, tmp_path / "cache")
    real, calls = ts_mod.tokenize_to_files, []

    def slow_tokenize(*args, **kwargs):
        calls.append(1)
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(ts_mod, "tokenize_to_files", slow_tokenize)
    _twice_at_once(lambda: ts_mod.get_token_store(corpus, vocab, tmp_path / "cache", progress=False))
    assert len(calls) == 1
    assert len(list((tmp_path / "cache" / "tokens").glob("[!.]*"))) == 1
