"""Damaged files heal, or say exactly what to do (issue 21, part 3): a truncated checkpoint falls back to the
previous good one, a truncated result.json is `corrupt` (rerun by sweep, named under the table), a full disk
during a checkpoint save is one line, and killed vocabulary builds leave no temp dirs behind.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from test_validation_io import small_corpus

from t5explore.data import vocab as vocab_mod
from t5explore.report.sweep_tables import markdown_table
from t5explore.sweep.runner import run_sweep
from t5explore.sweep.status import print_status
from t5explore.train.checkpoints import UNREADABLE_PREFIX, Checkpointer, CheckpointError

from launch_fakes import fake_execute, starts, write_sweep

pytestmark = pytest.mark.usefixtures("clean_gin")
LIKE = {"w": jnp.zeros(1000)}


def _truncate_state(step_dir: Path) -> Path:
    """Cut the largest data file of a checkpoint's state in half, as a full disk or a killed copy would."""
    files = [Path(r) / f for r, _, fs in os.walk(step_dir / "state") for f in fs]
    big = max(files, key=lambda p: p.stat().st_size)
    with open(big, "r+b") as f:
        f.truncate(big.stat().st_size // 2)
    return big


def _checkpoints(directory: Path, steps=(1, 2, 3)) -> Checkpointer:
    ckpt = Checkpointer(directory, every=1, keep=1)  # pre-training keeps two whatever it is asked
    for s in steps:
        ckpt.save(s, {"w": jnp.arange(1000.0) * s}, {"position": s})
    ckpt.wait()
    return ckpt


def test_a_truncated_checkpoint_falls_back_to_the_previous_one_with_one_warning(tmp_path, capsys):
    d = tmp_path / "checkpoints"
    _checkpoints(d).close()
    assert sorted(p.name for p in d.iterdir()) == ["2", "3"]  # the last two are kept
    _truncate_state(d / "3")

    ckpt = Checkpointer(d, every=1, keep=1)
    state, data, step = ckpt.restore(LIKE)
    assert step == 2 and data == {"position": 2} and np.array_equal(state["w"], np.arange(1000.0) * 2)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"pretrain: WARNING: pretrain checkpoint step 3 in {d} is unreadable")
    assert f"moved to {d / (UNREADABLE_PREFIX + '3')}; resuming from step 2" in err[0]
    assert ckpt.save(3, {"w": jnp.arange(1000.0) * 3}, {"position": 3})  # the bad step is redone, not skipped
    ckpt.close()
    assert Checkpointer(d, every=1, keep=1).restore(LIKE)[2] == 3


def test_no_readable_checkpoint_is_one_line_saying_how_to_restart(tmp_path, capsys):
    d = tmp_path / "checkpoints"
    _checkpoints(d).close()
    for step in ("2", "3"):
        _truncate_state(d / step)
    with pytest.raises(CheckpointError) as e:
        Checkpointer(d, every=1, keep=1).restore(LIKE)
    message = str(e.value)
    assert "\n" not in message and message.startswith("no readable pretrain checkpoint: pretrain checkpoint step 3")
    assert "step 2" in message and "running it again restarts the pretrain from its first step" in message
    assert Checkpointer(d, every=1, keep=1).latest_step() is None  # and so the next attempt does


def test_an_unreadable_chosen_step_says_how_to_restart(tmp_path):
    d = tmp_path / "finetune" / "task"
    ckpt = Checkpointer(d, every=1, keep=1, label="finetune/task")
    ckpt.save(4, {"w": jnp.arange(1000.0)}, {"position": 4}, force=True)
    ckpt.close()
    _truncate_state(d / "4")
    with pytest.raises(CheckpointError, match=f"step 4 in {d} is unreadable .*; delete {d} to restart the "):
        Checkpointer(d, every=1, keep=1, label="finetune/task").restore(LIKE, 4)


DISK_FULL_SCRIPT = """
import errno, os
import etils.epath
import jax.numpy as jnp
from t5explore.train.checkpoints import Checkpointer

ckpt = Checkpointer({directory!r}, every=1, keep=2)
ckpt.save(1, {{"w": jnp.ones(1000)}}, {{"position": 1}})
ckpt.wait()

def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

etils.epath.Path.write_text = etils.epath.Path.write_bytes = full  # the disk fills up
try:
    try:
        ckpt.save(2, {{"w": jnp.ones(1000)}}, {{"position": 2}})
        ckpt.wait()
    finally:
        ckpt.close()
except Exception as e:
    from t5explore import cli

    cli.end(cli.run_failed(e))  # what `t5explore train` / `sweep` do with it, and how the command then ends
"""


@pytest.mark.slow  # a fresh interpreter, so that what orbax's threads print at exit is seen too (~10 s)
def test_a_full_disk_during_a_checkpoint_save_is_one_line(tmp_path):
    d = tmp_path / "checkpoints"
    out = subprocess.run(
        [sys.executable, "-c", DISK_FULL_SCRIPT.format(directory=str(d))],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    ours = (
        f"t5explore: run failed: DiskFullError: No space left on device: could not write {d} "
        "(checkpoint (written in the background)) (run with --verbose for the traceback)"
    )
    # Known leftover, about half the time under load: a tensorstore write still failing after orbax's save has
    # ended calls back into its closed event loop, and Python prints that one 6-line traceback (an orbax race we
    # cannot reach), or the first lines of it when the process ends (os._exit after a full disk) while that thread
    # is still printing. Everything else orbax printed (5 tracebacks, ~350 lines) must stay gone.
    noise = [
        "Traceback (most recent call last):",
        '  File "*/asyncio/base_events.py", line *, in call_soon_threadsafe',
        "    self._check_closed()",
        '  File "*/asyncio/base_events.py", line *, in _check_closed',
        "    raise RuntimeError('Event loop is closed')",
        "RuntimeError: Event loop is closed",
    ]
    text = out.stdout + out.stderr
    assert text.count(ours) == 1 and out.returncode == 1, text[:4000]
    # That thread writes while we write, so its lines can arrive split around ours, and cut short at the exit:
    # what is left once ours is taken out, whitespace aside, must be a prefix of that one traceback.
    rest = "".join(text.replace(ours, "", 1).split())
    assert is_a_prefix_of_the_pattern(rest, "".join("".join(noise).split())), text[:4000]


def is_a_prefix_of_the_pattern(text, pattern):
    """Whether `text` is what `pattern` (with `*` for any run of characters) matches, cut off somewhere."""
    pieces = [re.escape(c) if c != "*" else ".*?" for c in pattern]
    return any(re.fullmatch("".join(pieces[:end]), text, flags=re.DOTALL) for end in range(len(pieces) + 1))


def test_a_truncated_result_is_corrupt_rerun_by_sweep_and_named_under_the_table(tmp_path):
    res = tmp_path / "results"
    sweep = write_sweep(tmp_path)
    assert run_sweep(sweep, res, executor=fake_execute, out=io.StringIO()).exit_code == 0
    run = res / "fake_sweep" / "beta__seed_1"
    text = (run / "result.json").read_text()
    (run / "result.json").write_text(text[: len(text) // 2])

    out = io.StringIO()
    print_status(res, out)
    shown = out.getvalue()
    line = next(ln for ln in shown.splitlines() if "beta__seed_1" in ln)
    assert "corrupt" in line and str(run / "result.json") in line, shown
    assert "4 runs: 3 done, 0 running, 0 failed, 0 pending, 0 stale, 1 corrupt" in shown

    table = markdown_table(res / "fake_sweep")  # the other rows, and the bad file named under the table
    assert "| ★ alpha | 2 |" in table
    assert f"- Failed: beta__seed_1 (beta): corrupt result.json: {run / 'result.json'}: malformed JSON" in table

    log = io.StringIO()
    outcome = run_sweep(sweep, res, executor=fake_execute, out=log)
    assert outcome.states["beta__seed_1"] == "ran" and outcome.states["alpha__seed_0"] == "done"
    assert "beta__seed_1: result.json is unreadable" in log.getvalue()
    assert starts(run) == [0, 4]  # resumed from its checkpoints, not trained again
    assert (run / "result.corrupt.json").read_text() == text[: len(text) // 2]
    assert "Failed" not in markdown_table(res / "fake_sweep")


def test_temp_dirs_of_killed_vocabulary_builds_are_swept_on_the_next_build(tmp_path):
    corpus = small_corpus(tmp_path)
    cache = tmp_path / "cache"
    key = vocab_mod.vocab_cache_key(corpus, 300)
    leftovers = [cache / "vocab" / f".sp300-{key}.{tag}.tmp" for tag in ("k1ll3d", "x9")]
    for d in leftovers:
        d.mkdir(parents=True)
    (leftovers[1] / "spm.model").write_text("half")  # killed mid-write
    other = cache / "vocab" / ".sp999-other.abc.tmp"  # another entry's build may be running: left alone
    other.mkdir()
    vocab_mod.get_vocabulary(corpus, 300, cache)
    assert not any(d.exists() for d in leftovers) and other.exists()
    assert sorted(p.name for p in (cache / "vocab").iterdir() if p.name.endswith(".tmp")) == [other.name]
