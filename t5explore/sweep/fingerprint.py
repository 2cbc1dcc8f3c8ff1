"""A run's config fingerprint: what makes two runs the same run, and a re-run with another config a new one.

The fingerprint is the sha256 of the run's canonical gin config: its gin files and bindings parsed exactly
as the executor parses them (`config.parse_gin`), printed by `gin.config_str()` (sorted, one statement per
binding), without comments and without the `Sweep` configurable (it describes the grid, not the run). The
seed is an ordinary binding (`Experiment.seed`), so two seeds never share a fingerprint.

Each run directory records it in `fingerprint.json` before the run executes:

    {"schema": 1, "fingerprint": "<sha256>", "config": ["Experiment.seed = 0", "Pretrain.steps = 6", ...]}

The sorted statements are kept so that a refused re-run can say which bindings changed, old and new value.
One statement is not gin's: `NUMERICS_VERSION = N` (t5explore/numerics.py), the version of the code's
arithmetic, so that a run computed by code of another numerics version is another run (refused on resume and
never shared, like a changed binding). A fingerprint.json without it was written before the constant existed:
it reads as version 1.
A run directory whose recorded fingerprint differs from the one it is asked to run, and which holds
progress (result.json or checkpoints), must not be resumed or skipped as done: its results would be
another config's. Parsing is cheap (no model, no data) and leaves the caller's gin config as it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import gin

from t5explore import config, io_utils
from t5explore.config import ConfigError
from t5explore.numerics import NUMERICS_VERSION
from t5explore.run_config import check_gin_bindings
from t5explore.run_layout import CHECKPOINTS_DIR, FINGERPRINT_FILE, RESULT_FILE

SCHEMA = 1
# Not what a run computes: the grid, where the run executes, and how its token store is built.
IGNORED_CONFIGURABLES = ("Sweep", "Distributed", "token_store")
UNSET = "(unset)"
NUMERICS_KEY = "NUMERICS_VERSION"  # the statement `NUMERICS_VERSION = N` every fingerprint holds
UNVERSIONED = 1  # the numerics version of a run recorded before the constant existed


@dataclasses.dataclass(frozen=True)
class Fingerprint:
    digest: str  # sha256 hex of the sorted canonical statements
    config: tuple[str, ...]  # sorted canonical gin statements, one per binding

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "fingerprint": self.digest, "config": list(self.config)}

    @property
    def numerics_version(self) -> int:
        """The NUMERICS_VERSION of the code that computed (or will compute) this config."""
        return numerics_version_of(self.config)


def numerics_version_of(config_: Sequence[str]) -> int:
    """The `NUMERICS_VERSION = N` statement's N; a config without one was recorded as version 1."""
    for s in config_:
        if binding_key(s) == NUMERICS_KEY:
            try:
                return int(s.split(" = ", 1)[1])
            except (IndexError, ValueError):
                return UNVERSIONED
    return UNVERSIONED


@contextlib.contextmanager
def isolated_gin() -> Iterator[None]:
    """A clean gin config inside, the caller's config (bindings, imports, lock) restored afterwards.

    Why: the runner fingerprints every run before executing some of them in this process, and a notebook
    may hold a parsed config; gin has no public snapshot API, so its module-level tables are copied. On a
    gin whose internals differ, the config is simply cleared afterwards (what every executor does first).
    """
    from gin import config as gc

    try:
        saved = (
            {k: dict(v) for k, v in gc._CONFIG.items()},
            set(gc._IMPORTS),
            {k: dict(v) for k, v in gc._OPERATIVE_CONFIG.items()},
            dict(gc._SINGLETONS),
            gc.config_is_locked(),
        )
    except (AttributeError, TypeError):
        saved = None
    gin.clear_config()
    try:
        yield
    finally:
        gin.clear_config()
        if saved is not None:
            bindings, imports, operative, singletons, locked = saved
            gc._CONFIG.update(bindings)
            gc._IMPORTS.update(imports)
            with gc._OPERATIVE_CONFIG_LOCK:
                gc._OPERATIVE_CONFIG.update(operative)
            gc._SINGLETONS.update(singletons)
            gc._set_config_is_locked(locked)


def compute(gin_files: Sequence[str], bindings: Sequence[str] = ()) -> Fingerprint:
    """Parse like the executor (ConfigError names a bad file or binding), check the bound values' types
    (run_config.py), and fingerprint the result."""
    with isolated_gin():
        config.parse_gin(list(gin_files), list(bindings))
        check_gin_bindings()
        text = gin.config_str()
    return from_config_text(text)


def from_config_text(text: str, numerics_version: int | None = None) -> Fingerprint:
    """The fingerprint of a config (gin.config_str() text) computed by code of `numerics_version` (default:
    this code's NUMERICS_VERSION)."""
    numerics_version = NUMERICS_VERSION if numerics_version is None else numerics_version
    kept = [s for s in statements(text) if configurable_of(binding_key(s)) not in IGNORED_CONFIGURABLES]
    kept = [s for s in kept if binding_key(s) != NUMERICS_KEY] + [f"{NUMERICS_KEY} = {int(numerics_version)}"]
    lines = tuple(sorted(kept))
    return Fingerprint(hashlib.sha256(("\n".join(lines) + "\n").encode("utf-8")).hexdigest(), lines)


def statements(config_text: str) -> list[str]:
    """`gin.config_str()` text -> one line per statement (continuation lines joined), comments dropped."""
    groups: list[list[str]] = []
    for line in config_text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and groups:
            groups[-1].append(line)
        else:
            groups.append([line])
    return [" ".join(part.strip().removesuffix("\\").strip() for part in g) for g in groups]


def binding_key(statement: str) -> str:
    """`scope/Configurable.param = value` -> `scope/Configurable.param` (a macro's name for `NAME = value`)."""
    return statement.split(" = ", 1)[0].strip()


def configurable_of(key: str) -> str:
    """The configurable's bare name of a binding key: `s/t5explore.sweep.grid.Sweep.seeds` -> `Sweep`."""
    selector = key.rsplit("/", 1)[-1]
    return selector.rsplit(".", 2)[-2] if selector.count(".") >= 1 else ""


def read(run_dir: str | os.PathLike) -> Fingerprint | None:
    """The recorded fingerprint, or None (a run made before fingerprints, or an unreadable file).

    A config recorded without a numerics version gets `NUMERICS_VERSION = 1` (its digest stays as recorded),
    so that a refusal says `NUMERICS_VERSION: 1 -> 2` rather than that the statement appeared."""
    try:
        d = io_utils.read_json(Path(run_dir) / FINGERPRINT_FILE)
        recorded = tuple(str(s) for s in d.get("config", ()))
        if not any(binding_key(s) == NUMERICS_KEY for s in recorded):
            recorded = tuple(sorted((*recorded, f"{NUMERICS_KEY} = {UNVERSIONED}")))
        return Fingerprint(str(d["fingerprint"]), recorded)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write(run_dir: str | os.PathLike, fp: Fingerprint) -> None:
    io_utils.atomic_write_json(Path(run_dir) / FINGERPRINT_FILE, fp.to_json())


def has_progress(run_dir: str | os.PathLike) -> bool:
    """Something a changed config must not be mixed with: a result, or checkpoints to resume from."""
    run_dir = Path(run_dir)
    ckpts = run_dir / CHECKPOINTS_DIR
    return (run_dir / RESULT_FILE).exists() or (ckpts.is_dir() and any(ckpts.iterdir()))


def changes(run_dir: str | os.PathLike, fp: Fingerprint) -> list[str] | None:
    """The bindings that changed, if `run_dir` holds progress made under another config; else None.

    A run directory without fingerprint.json (made before fingerprints existed) cannot be judged: None.
    """
    recorded = read(run_dir)
    if recorded is None or recorded.digest == fp.digest or not has_progress(run_dir):
        return None
    return diff(recorded.config, fp.config) or [f"fingerprint {recorded.digest[:12]} -> {fp.digest[:12]}"]


def diff(old: Sequence[str], new: Sequence[str]) -> list[str]:
    """`key: old -> new` for every binding (by `scope.param` key) whose value differs, sorted by key."""
    before = {binding_key(s): s.split(" = ", 1)[-1] for s in old}
    after = {binding_key(s): s.split(" = ", 1)[-1] for s in new}
    return [
        f"{k}: {_short(before.get(k, UNSET))} -> {_short(after.get(k, UNSET))}"
        for k in sorted(before.keys() | after.keys())
        if before.get(k) != after.get(k)
    ]


def describe(changed: Sequence[str], limit: int = 6) -> str:
    """One line: the first `limit` changes, then how many more."""
    more = f"; and {len(changed) - limit} more" if len(changed) > limit else ""
    return "; ".join(changed[:limit]) + more


def _short(value: str, width: int = 80) -> str:
    return value if len(value) <= width else value[: width - 1] + "…"


def guard_run_dir(run_dir: str | os.PathLike, gin_files: Sequence[str], bindings: Sequence[str]) -> Fingerprint:
    """For `t5explore train --run_dir`: refuse a run directory made under another config, else record ours."""
    fp = compute(gin_files, bindings)
    changed = changes(run_dir, fp)
    if changed:
        raise ConfigError(
            f"run directory {run_dir} was made under a different config ({describe(changed)}); "
            f"use a new --run_dir, or delete this one to start over"
        )
    write(run_dir, fp)
    return fp
