"""Claims: a live claim blocks, a stale one (dead pid, old heartbeat) is taken over by exactly one worker."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

from t5explore.sweep import claim, rundir


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def plant_claim(run_dir, host, pid, age_s=0.0):
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / claim.CLAIM_FILE
    path.write_text(json.dumps({"host": host, "pid": pid, "start_time": time.time() - age_s, "token": "old"}))
    t = time.time() - age_s
    os.utime(path, (t, t))


def test_live_claim_blocks_until_released(tmp_path):
    held = claim.try_claim(tmp_path / "run")
    assert held is not None
    info = claim.read_claim(tmp_path / "run")
    assert (info.host, info.pid, info.token) == (socket.gethostname(), os.getpid(), held.token)
    assert claim.try_claim(tmp_path / "run") is None
    assert rundir.run_state(tmp_path / "run").state == "running"
    held.release()
    held.release()  # idempotent
    assert not (tmp_path / "run" / claim.CLAIM_FILE).exists()
    again = claim.try_claim(tmp_path / "run")
    assert again is not None and again.token != held.token
    again.release()


def test_claim_of_a_dead_process_on_this_host_is_taken_over(tmp_path):
    plant_claim(tmp_path, socket.gethostname(), dead_pid())
    assert rundir.run_state(tmp_path).state == "pending"
    held = claim.try_claim(tmp_path)
    assert held is not None
    assert claim.read_claim(tmp_path).token == held.token
    assert [p.name for p in tmp_path.iterdir()] == [claim.CLAIM_FILE]  # the stale file is gone
    held.release()


def test_claim_from_another_host_is_stale_only_after_its_heartbeat_times_out(tmp_path):
    plant_claim(tmp_path, "another-host", 1, age_s=30)
    assert claim.try_claim(tmp_path, stale_after=60) is None
    plant_claim(tmp_path, "another-host", 1, age_s=90)
    held = claim.try_claim(tmp_path, stale_after=60)
    assert held is not None
    held.release()


def test_heartbeat_refreshes_the_claim_while_held(tmp_path):
    held = claim.try_claim(tmp_path, heartbeat_s=0.05)
    old = time.time() - 1000
    os.utime(tmp_path / claim.CLAIM_FILE, (old, old))
    assert claim.read_claim(tmp_path).age() > 900
    deadline = time.time() + 5
    while claim.read_claim(tmp_path).age() > 60 and time.time() < deadline:
        time.sleep(0.02)
    assert claim.read_claim(tmp_path).age() < 60
    held.release()


def test_release_never_removes_a_claim_taken_over_by_someone_else(tmp_path):
    held = claim.try_claim(tmp_path)
    os.unlink(tmp_path / claim.CLAIM_FILE)  # as if another worker judged us dead and took over
    other = claim.try_claim(tmp_path)
    assert other is not None and not held.owned()
    held.release()
    assert claim.read_claim(tmp_path).token == other.token
    other.release()


def test_exactly_one_of_many_racing_workers_takes_over_a_stale_claim(tmp_path):
    pid = dead_pid()
    for trial in range(15):
        run = tmp_path / f"run{trial}"
        plant_claim(run, socket.gethostname(), pid)
        barrier = threading.Barrier(6)
        won = []

        def worker(barrier, run, won):
            barrier.wait()
            c = claim.try_claim(run)
            if c is not None:
                won.append(c)

        threads = [threading.Thread(target=worker, args=(barrier, run, won)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1, trial
        assert claim.read_claim(run).token == won[0].token
        won[0].release()
