"""What kind of error stopped a command, as the CLI tells them apart (t5explore/cli.py):

    InputError (exit 2)  a gin binding, gin file, data file or corpus is wrong; the message names which one
    anything else (1)    a run failed (a bug, a NaN loss, a full disk); its traceback goes to the run's FAILED

Both are shown as one line (`one_line`); `--verbose` prints the traceback too. Light on purpose: the CLI
imports it before anything else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

_FAILED_FILE = "failed_file"  # the attribute a failed run's error carries: where its traceback was written


class InputError(ValueError):
    """A configuration or an input file is wrong; the message names the binding, file or field at fault."""


def one_line(e: BaseException) -> str:
    """`Type: first line of the message`. Gin appends `In call to configurable ...` lines to errors raised
    inside configurables; the first line is the error itself."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    name = type(e).__name__
    return f"{name}: {lines[0]}" if lines else name


def mark_failed_file(e: BaseException, path: Path) -> None:
    """Attach to `e` (any exception a run raised) the FAILED file its traceback went to, for `failed_file`."""
    setattr(e, _FAILED_FILE, path)


def failed_file(e: BaseException) -> Path | None:
    """The FAILED file `mark_failed_file` attached to `e`, or None (the error happened outside a run)."""
    return getattr(e, _FAILED_FILE, None)
