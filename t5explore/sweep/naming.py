"""Run names: stable, short, human-readable, filesystem-safe, unique within a sweep.

A run name is also its directory name under `results/<sweep>/`, so it must never contain a path
separator, start with a dot, or be `.`/`..` — a variant called `../../etc` must not escape the results dir.
Names are pure functions of the sweep's declaration (no time, no randomness), so re-running a sweep finds
the same directories and resumes them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

MAX_NAME_LENGTH = 100
PART_SEPARATOR = "__"
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_SAFE_NAME = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]*")


def short_hash(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def slug(text: str) -> str:
    """A filesystem-safe fragment of `text`: gin sugar (`@`, `()`, quotes) dropped, the rest kept readable.

    `'@prefix_lm()'` -> `prefix_lm`, `"'c4/en'"` -> `c4-en`, `'0.25'` -> `0.25`, `'../x'` -> `x`.
    """
    s = str(text).strip().replace("@", "").replace("()", "")
    s = s.strip("'\"")
    s = _UNSAFE.sub("-", s)
    s = re.sub(r"-{2,}", "-", s).replace(PART_SEPARATOR, "_")
    s = s.strip("-.")
    return s or "x"


def binding_label(binding: str) -> str:
    """The readable part of a gin binding key: `iid_replace_spans.noise_density` -> `noise_density`."""
    return slug(binding.rsplit(".", 1)[-1])


def binding_slug(binding: str) -> str:
    """The whole binding key made safe, for when two axes share a parameter name."""
    return slug(binding.replace(".", "-").replace("/", "-"))


def axis_part(label: str, value: str) -> str:
    return f"{label}_{slug(value)}"


def join_parts(parts: Sequence[str]) -> str:
    """Join name parts; names longer than MAX_NAME_LENGTH are cut and given a hash of the full name."""
    name = PART_SEPARATOR.join(p for p in parts if p) or "base"
    if len(name) > MAX_NAME_LENGTH:
        name = f"{name[: MAX_NAME_LENGTH - 9].rstrip('-._')}-{short_hash(name)}"
    check_safe_name(name)
    return name


def make_unique(names: Sequence[str], identities: Sequence[str]) -> list[str]:
    """Disambiguate names that collide after slugging by appending a hash of what makes each run differ."""
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    out = [n if counts[n] == 1 else f"{n}-{short_hash(ident)}" for n, ident in zip(names, identities)]
    if len(set(out)) != len(out):  # identical identities: the sweep declares the same run twice
        dupes = sorted({n for n in out if out.count(n) > 1})
        raise ValueError(f"the sweep declares identical runs more than once: {dupes}")
    return out


def check_safe_name(name: str) -> str:
    """Raise unless `name` is a single, non-hidden path component made of safe characters."""
    if not _SAFE_NAME.fullmatch(name) or name in (".", "..") or len(name) > 255:
        raise ValueError(f"unsafe run or sweep name {name!r}: use letters, digits and . _ + - (no leading dot)")
    return name
