"""Atomic run claims, so two workers (processes or machines on a shared filesystem) never run one run at once.

A claim is the file `CLAIM` in the run directory, created with `O_CREAT | O_EXCL` (atomic, also on NFSv3+),
holding the owner's host, pid, start time and a random token. The heartbeat is the file's mtime, refreshed
through the open file descriptor while the run goes on: touching by descriptor never touches a claim that
someone else has since put at the same path, and the file is never rewritten, so a reader never sees it
half-written (except in the instant after creation, handled as "fresh").

A claim is stale when its owner is provably dead (same host, pid no longer exists) or its heartbeat is
older than `stale_after` seconds (owner on another host, or hung). Take-over: under a short `O_EXCL`
take-over lock, the worker re-reads the claim and removes it only if it is still the very claim (same token)
it judged stale; then it competes for a fresh `O_EXCL` claim like everyone else, so exactly one wins.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from t5explore.run_layout import CLAIM_FILE, CLAIM_LOCK_FILE

DEFAULT_STALE_AFTER_S = 300.0
DEFAULT_HEARTBEAT_S = 20.0
LOCK_STALE_S = 60.0


@dataclasses.dataclass(frozen=True)
class ClaimInfo:
    host: str | None
    pid: int | None
    start_time: float | None
    token: str | None
    heartbeat: float  # mtime of the claim file

    def age(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.heartbeat


def read_claim(run_dir: str | os.PathLike) -> ClaimInfo | None:
    """The current claim of a run directory, or None. A claim still being written reads as fields None."""
    return _read(Path(run_dir) / CLAIM_FILE)


def _read(path: Path) -> ClaimInfo | None:
    try:
        with open(path, encoding="utf-8") as f:
            heartbeat = os.fstat(f.fileno()).st_mtime
            text = f.read()
    except FileNotFoundError:
        return None
    try:
        d = json.loads(text)
        return ClaimInfo(d.get("host"), d.get("pid"), d.get("start_time"), d.get("token"), heartbeat)
    except (json.JSONDecodeError, AttributeError):
        return ClaimInfo(None, None, None, None, heartbeat)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def is_stale(info: ClaimInfo, stale_after: float = DEFAULT_STALE_AFTER_S, now: float | None = None) -> bool:
    """Dead owner on this host, or no heartbeat for `stale_after` seconds."""
    if info.host == socket.gethostname() and isinstance(info.pid, int) and not pid_alive(info.pid):
        return True
    return info.age(now) > stale_after


class Claim:
    """A held claim. Use as a context manager; `release()` is idempotent."""

    def __init__(self, run_dir: Path, fd: int, token: str, heartbeat_s: float):
        self.run_dir, self.path, self.token = run_dir, run_dir / CLAIM_FILE, token
        self._fd: int | None = fd
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, args=(heartbeat_s,), daemon=True, name=f"claim-heartbeat-{run_dir.name}"
        )
        self._thread.start()

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            self.heartbeat()

    def heartbeat(self) -> None:
        fd = self._fd
        if fd is not None:
            with contextlib.suppress(OSError):
                os.utime(fd)

    def owned(self) -> bool:
        """Is the file at CLAIM still the one this worker created?"""
        if self._fd is None:
            return False
        try:
            return os.stat(self.path).st_ino == os.fstat(self._fd).st_ino
        except OSError:
            return False

    def release(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
        if self._fd is None:
            return
        try:
            if self.owned():
                os.unlink(self.path)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def try_claim(
    run_dir: str | os.PathLike, stale_after: float = DEFAULT_STALE_AFTER_S, heartbeat_s: float = DEFAULT_HEARTBEAT_S
) -> Claim | None:
    """Claim `run_dir`, taking over a stale claim; None if another live worker holds it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for _ in range(5):  # a take-over in progress elsewhere is waited for, not treated as busy
        claim = _create(run_dir, heartbeat_s)
        if claim is not None:
            return claim
        info = read_claim(run_dir)
        if info is None:
            continue  # released in between: try again
        if not is_stale(info, stale_after):
            return None
        _take_over(run_dir, info, stale_after)
    return _create(run_dir, heartbeat_s)


def _create(run_dir: Path, heartbeat_s: float) -> Claim | None:
    token = uuid.uuid4().hex
    try:
        fd = os.open(run_dir / CLAIM_FILE, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None
    body = {"host": socket.gethostname(), "pid": os.getpid(), "start_time": time.time(), "token": token}
    os.write(fd, (json.dumps(body) + "\n").encode("utf-8"))
    os.fsync(fd)
    return Claim(run_dir, fd, token, heartbeat_s)


def _take_over(run_dir: Path, judged: ClaimInfo, stale_after: float) -> None:
    """Remove the stale claim judged, under a short take-over lock, so only one worker ever removes it.

    Without the lock, two workers that both judged the same claim stale could each remove a claim (the
    second one removing the first one's fresh claim). The lock is held for microseconds; one left behind
    by a worker that crashed inside this function is cleared after `LOCK_STALE_S`.
    """
    lock = run_dir / CLAIM_LOCK_FILE
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        try:
            if time.time() - os.stat(lock).st_mtime > LOCK_STALE_S:
                os.unlink(lock)
        except FileNotFoundError:
            pass
        time.sleep(0.01)
        return
    try:
        current = read_claim(run_dir)
        if current is not None and current.token == judged.token and is_stale(current, stale_after):
            os.unlink(run_dir / CLAIM_FILE)
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)
        os.unlink(lock)
