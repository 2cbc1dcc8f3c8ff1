"""Byte ranges of corpus files: how file-backed corpora are cut into shards for parallel tokenisation.

A shard is a list of `[path, start, stop]` ranges of consecutive files; a file bigger than the shard size is
cut just after a newline where its reader allows (JSON Lines), so every range holds whole lines.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

MIN_SHARD_BYTES, MAX_SHARD_BYTES = 4 << 20, 256 << 20  # automatic shard size: total / 64, within these


def plan_file_shards(files: Sequence[Path], shard_bytes: int | None, split_lines: bool) -> list[list]:
    """Consecutive groups of [path, start, stop] byte ranges of about `shard_bytes` each (default: the total
    / 64, in [4 MiB, 256 MiB]); with `split_lines`, a file is cut after a newline when it is bigger."""
    sizes = [os.path.getsize(f) for f in files]
    target = shard_bytes or min(MAX_SHARD_BYTES, max(MIN_SHARD_BYTES, sum(sizes) // 64))
    shards, current, filled = [], [], 0
    for path, size in zip(files, sizes):
        for start, stop in _line_ranges(path, size, target) if split_lines else [(0, size)]:
            current.append([str(path), start, stop])
            filled += stop - start
            if filled >= target:
                shards.append(current)
                current, filled = [], 0
    return [*shards, current] if current or not shards else shards


def _line_ranges(path: Path, size: int, target: int) -> list[tuple[int, int]]:
    """(start, stop) byte ranges of about `target` bytes, each cut just after a newline."""
    cuts = [0]
    with open(path, "rb") as f:
        while cuts[-1] + target < size:
            f.seek(cuts[-1] + target)
            f.readline()
            if f.tell() >= size:
                break
            cuts.append(f.tell())
    return list(zip(cuts, [*cuts[1:], size]))


class _ByteRange(io.RawIOBase):
    """Bytes [start, stop) of an open binary file, as a stream (for `io.TextIOWrapper`)."""

    def __init__(self, f, start: int, stop: int):
        f.seek(start)
        self.f, self.left = f, stop - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        got = self.f.readinto(memoryview(buffer)[:n]) if n > 0 else 0
        self.left -= got
        return got


def text_range(f, start: int, stop: int, errors: str = "strict") -> io.TextIOWrapper:
    """Bytes [start, stop) of the binary file `f` as UTF-8 text with universal newlines, like `open(path)`."""
    return io.TextIOWrapper(io.BufferedReader(_ByteRange(f, start, stop)), encoding="utf-8", errors=errors)
