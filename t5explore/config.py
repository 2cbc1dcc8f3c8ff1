"""Gin plumbing shared by every entry point: t5x-style flags, search paths and clear errors.

Flags: `--gin_file=PATH` (repeatable) and `--gin.SCOPE.PARAM=VALUE` (repeatable, t5x style), also
`--gin_bindings='A.b = 1'`. Gin files may `include 'gin/models/tiny.gin'` relative to the repository root
or the current directory.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import tokenize
from collections.abc import Iterable, Sequence
from pathlib import Path

import gin

from t5explore.errors import InputError

REPO_ROOT = Path(__file__).resolve().parent.parent

# Modules that register gin configurables. Importing them is what makes `@span_corruption()` etc. resolve.
# A module is listed, or imported at module level by a listed one (tests/test_configurable_modules.py checks).
CONFIGURABLE_MODULES = (
    "t5explore.model.config",
    "t5explore.model.registry",
    "t5explore.objectives.named",
    "t5explore.data.corpus",
    "t5explore.data.vocab",
    "t5explore.data.token_store",
    "t5explore.data.tasks",
    "t5explore.run_config",
    "t5explore.train.partitioning",
    "t5explore.train.steps",
    "t5explore.distributed",
    "t5explore.sweep.grid",
    "t5explore.sweep.launch.settings",
)


class ConfigError(InputError):
    """A gin file or binding is wrong; the message (one line) names which one."""


def split_gin_flags(argv: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """Pull gin flags out of argv. Returns (gin_files, bindings, remaining_argv)."""
    files: list[str] = []
    bindings: list[str] = []
    rest: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg.startswith("--gin_file="):
            files.append(arg.split("=", 1)[1])
        elif arg == "--gin_file":
            files.append(_next_value(it, arg))
        elif arg.startswith("--gin_bindings="):
            bindings.append(arg.split("=", 1)[1])
        elif arg == "--gin_bindings":
            bindings.append(_next_value(it, arg))
        elif arg.startswith("--gin."):
            body = arg[len("--gin.") :]
            if "=" not in body:
                raise ConfigError(f"gin flag {arg!r} needs a value: --gin.SCOPE.PARAM=VALUE")
            name, value = body.split("=", 1)
            bindings.append(f"{name} = {value}")
        else:
            rest.append(arg)
    return files, bindings, rest


def _next_value(it, flag: str) -> str:
    try:
        return next(it)
    except StopIteration:
        raise ConfigError(f"{flag} needs a value") from None


def register_configurables() -> None:
    """Import every module that defines gin configurables (idempotent)."""
    for name in CONFIGURABLE_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:  # a listed module that is absent is skipped, not a missing dependency
            if e.name != name:
                raise


class _QuietGinProbes(logging.Filter):
    """gin logs `ERROR:root:Path not found: <path>` for every search-path candidate it tries before it finds an
    included file (tens of lines for a run started outside the repository root); a file that is really
    missing still fails with gin's own error, which lists every place looked in."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "Path not found: %s"


def add_search_paths(extra: Iterable[str | os.PathLike] = ()) -> None:
    from gin import config as gc

    root = logging.getLogger()
    if not any(isinstance(f, _QuietGinProbes) for f in root.filters):
        root.addFilter(_QuietGinProbes())

    known = getattr(gc, "_LOCATION_PREFIXES", [])  # each once: gin lists them all in its "not found" error
    for p in [Path.cwd(), REPO_ROOT, *map(Path, extra)]:
        if str(p) not in known:
            gin.add_config_file_search_path(str(p))


def resolve_gin_file(path: str) -> str:
    """Find a gin file as given, relative to cwd, or relative to the repository root."""
    for cand in (Path(path), Path.cwd() / path, REPO_ROOT / path):
        if cand.is_file():
            return str(cand)
    raise ConfigError(f"gin file not found: {path!r} (looked in {Path.cwd()} and {REPO_ROOT})")


def parse_gin(gin_files: Sequence[str], bindings: Sequence[str] = (), *, clear: bool = True) -> None:
    """Parse gin files then bindings; raise ConfigError naming the file or binding at fault."""
    register_configurables()
    if clear:
        gin.clear_config()
    add_search_paths()
    for f in gin_files:
        resolved = resolve_gin_file(f)
        try:
            gin.parse_config_file(resolved)
        except Exception as e:  # gin raises several types; one message names the file
            raise ConfigError(f"in gin file {f}: {gin_error_message(e)}") from e
    for b in bindings:
        try:
            gin.parse_config(b)
        except Exception as e:
            message = gin_error_message(e, b)
            named = message.startswith("gin binding")  # already names the binding
            raise ConfigError(message if named else f"in gin binding {b!r}: {message}") from e


_BARE_WORD = re.compile(r"[A-Za-z_][\w.]*")
_LOCATION = re.compile(r"^In (?:file \"(?P<file>[^\"]*)\", line|bindings string line) (?P<line>\d+)")


def gin_error_message(e: BaseException, statement: str = "") -> str:
    """One line for a gin error. An unparseable value names its binding (gin says only `malformed node or
    string: <ast.Name object at 0x...>`); other errors keep gin's first line and say where."""
    if isinstance(e, SyntaxError):
        text = (e.text or "").strip() or statement.strip()
        where = f"{e.filename}, line {e.lineno}" if e.filename else ""
        key, sep, value = text.partition("=")
        if sep and key.strip() and not key.strip().startswith(("include", "import")):
            value = value.strip()
            hint = f" (a string needs quotes: '{value}')" if _BARE_WORD.fullmatch(value) else ""
            problem = f"cannot parse the value {value!r}{hint}" if value else "has no value"
            return f"gin binding {key.strip()}: {problem}" + (f" ({where})" if where else "")
        first = str(e.msg).splitlines()[0].rstrip(".") if e.msg else "syntax error"
        return f"{first} ({where + ': ' if where else ''}{text!r})"
    if isinstance(e, tokenize.TokenError):
        return f"{e.args[0]} (an unclosed bracket or quote?)"
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    if not lines:
        return type(e).__name__
    for i, line in enumerate(lines[1:], start=1):
        m = _LOCATION.match(line)
        if m:
            stmt = f": {lines[i + 1]}" if i + 1 < len(lines) else ""
            return f"{lines[0].rstrip('.')} (line {m['line']}{stmt})"
    return lines[0]
