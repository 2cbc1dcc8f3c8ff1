"""What every benchmark shares: its output file, the round order, and medians with per-round ranges.

Why one module: a figure quoted anywhere must be traceable to a file the benchmark itself wrote, and that file
must say when, on what commit, on which CPU and under what load it was measured (a figure from shared cores
is a relative comparison, never an idle-machine figure). `Recorder` tees everything the script prints into
`benchmarks/results/<name>.txt` behind such a header and ends it with the load at the end. Cases run in an
order rotated every round (`rotated`), so no case always runs first or right after the same neighbour, and
every summary is a median with the range of the per-round values (`spread`).

The config each case ran with is recorded as `config[<label>]: <binding>; <binding>; ...` lines (`config_line`),
so tests/test_benchmarks_smoke.py can check that every case's distinguishing binding is in the config it
recorded.
"""

from __future__ import annotations

import datetime
import io
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
SHARED_NOTE = (
    "cores: shared with other work for the whole measurement (load averages above and below); figures are "
    "relative comparisons of cases run interleaved, not idle-machine figures"
)


def commit() -> str:
    """HEAD's hash, '+dirty' when tracked files differ from it (the measured code is then not exactly HEAD)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(
                (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), platform.processor()
            )
    except OSError:
        return platform.processor() or "unknown"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) on {os.cpu_count()} CPUs"


def header(name: str, argv: Sequence[str]) -> list[str]:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"# benchmark: {name}",
        f"# command: python benchmarks/{name}.py {' '.join(argv)}".rstrip(),
        f"# date: {now}",
        f"# commit: {commit()}",
        f"# cpu: {cpu_model()} ({os.cpu_count()} CPUs)",
        f"# load average at the start: {load()}",
        f"# {SHARED_NOTE}",
    ]


class _Tee(io.TextIOBase):
    def __init__(self, *streams: TextIO):
        self.streams = streams

    def write(self, s: str) -> int:
        for stream in self.streams:
            stream.write(s)
        return len(s)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


class Recorder:
    """`with Recorder(name, argv, out):` tees stdout; on a clean exit writes header + output + the load at the
    end to `out` (None: print only, as a smoke run does unless told where to write)."""

    def __init__(self, name: str, argv: Sequence[str], out: str | os.PathLike | None):
        self.name, self.argv, self.out = name, list(argv), Path(out) if out else None
        self.buffer = io.StringIO()
        self.lines = header(name, argv)

    def __enter__(self) -> Recorder:
        print("\n".join(self.lines), flush=True)
        self._stdout = sys.stdout
        sys.stdout = _Tee(self._stdout, self.buffer)  # type: ignore[assignment]
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        sys.stdout = self._stdout
        footer = f"# load average at the end: {load()}"
        print(footer, flush=True)
        if exc_type is None and self.out is not None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.out.write_text(
                "\n".join(self.lines) + "\n" + self.buffer.getvalue().rstrip("\n") + "\n" + footer + "\n"
            )
            print(f"wrote {self.out}", flush=True)


def default_out(name: str, smoke: bool, out: str | None) -> str | None:
    """Where a run writes its file: --out if given ('-': nowhere), else benchmarks/results/<name>.txt (a smoke
    run: nowhere)."""
    if out:
        return None if out == "-" else out
    return None if smoke else str(RESULTS / f"{name}.txt")


def rotated(items: Sequence[Any], round_index: int) -> list[Any]:
    """`items` starting at position round_index mod len: round r runs case r first."""
    k = round_index % len(items)
    return list(items[k:]) + list(items[:k])


def spread(values: Sequence[float], fmt: str = ",.0f") -> str:
    """'median (min-max per round)' of per-round values."""
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}} per round)"


def ratio_spread(numerators: Sequence[float], denominators: Sequence[float]) -> str:
    """The ratio of the medians, and the range of the per-round ratios (round r of one over round r of the
    other: both ran in the same round, so they saw the same load)."""
    pairs = [a / b for a, b in zip(numerators, denominators)]
    med = statistics.median(numerators) / statistics.median(denominators)
    return f"{med:.2f}x ({min(pairs):.2f}-{max(pairs):.2f} per round)"


def config_line(label: str, bindings: Sequence[str]) -> str:
    """The recorded operative config of one case: tests check each case's distinguishing binding is in it."""
    return f"config[{label}]: " + "; ".join(" ".join(b.split()) for b in bindings)


def parse_config_lines(text: str) -> dict[str, str]:
    """{label: '<binding>; <binding>; ...'} of the config lines in a benchmark's output."""
    out = {}
    for line in text.splitlines():
        if line.startswith("config[") and "]: " in line:
            label, _, rest = line[len("config[") :].partition("]: ")
            out[label] = rest
    return out
