"""The `t5explore` command. Each subpackage adds its own subcommands (COMMAND_MODULES); this file only dispatches.

    t5explore train  --gin_file=gin/runs/quickstart.gin --gin.Pretrain.steps=100 --run_dir=results/one
    t5explore sweep  experiments/quickstart.gin --results_dir=results
    t5explore status results/quickstart
    t5explore table  results/quickstart
    t5explore plot   results/quickstart
    t5explore build-store --gin_file=gin/data/c4.gin [--shard=I/N | --finalize]
    t5explore export results/quickstart/<run> --to=hf out/hf_model
    t5explore site   results

Gin flags (`--gin_file=PATH`, `--gin.SCOPE.PARAM=VALUE`, `--gin_bindings='A.b = 1'`) may appear anywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import traceback
from typing import NoReturn

from t5explore import __version__, compile_cache
from t5explore.config import ConfigError, split_gin_flags
from t5explore.errors import InputError, failed_file, one_line

# Each module defines add_commands(subparsers); a subcommand sets `func(args, gin_files, gin_bindings) -> int`.
# Keep their top-level imports light: building the parser imports all of them (`t5explore --help`).
COMMAND_MODULES = (
    "t5explore.train.commands",
    "t5explore.sweep.commands",
    "t5explore.report.commands",
    "t5explore.data.commands",
    "t5explore.export.commands",
    "t5explore.report.site",
)
# Subcommands that compile, and so run with the persistent JAX compilation cache (t5explore/compile_cache.py).
COMPILING_COMMANDS = ("train", "sweep")
# Subcommands that parse gin (status only the sweep file its --sweep_file names, never one from a results
# directory); the others read a results directory and ignore gin flags.
GIN_COMMANDS = ("train", "sweep", "build-store", "status")
VERBOSE_FLAG = "--verbose"
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a command whose reader went away

GIN_FLAGS = """gin flags:
  --gin_file=PATH            parse a gin file (repeatable; relative to cwd or the repository root)
  --gin.SCOPE.PARAM=VALUE    bind one gin parameter, t5x style (repeatable), e.g. --gin.Pretrain.steps=50
  --gin_bindings='A.b = 1'   same, as one gin statement
"""
GIN_HELP = (
    GIN_FLAGS.replace("gin flags:", "gin flags (train and sweep; they may appear anywhere):")
    + """
train and sweep keep compiled executables in $T5EXPLORE_COMPILE_CACHE (default ~/.cache/t5explore/jax;
'off' disables it).

exit codes: 0 done; 1 a run failed (its traceback is in the run's FAILED file; --verbose prints it);
2 a configuration or input error (a gin binding, gin file, data file or corpus; the message names it).
"""
)


class _Formatter(argparse.HelpFormatter):
    """Wrap plain paragraphs; keep text that has its own line breaks (examples, flag lists) as written."""

    def _fill_text(self, text, width, indent):
        if "\n" in text.strip():
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="t5explore",
        description="Sweep T5 pretraining objectives, fine-tune, evaluate and tabulate (Raffel et al. 2020, §3.3).",
        epilog=GIN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"t5explore {__version__}")
    parser.add_argument(
        VERBOSE_FLAG, action="store_true", help="on an error, also print the traceback (may appear anywhere)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    _describe_subcommands(sub)
    return parser


def _describe_subcommands(sub) -> None:
    """Every subcommand's --help says what it does (its one-line help where it has no description) and
    which gin flags it takes."""
    helps = {action.dest: action.help for action in getattr(sub, "_choices_actions", [])}
    for name, p in sub.choices.items():
        p.description = p.description or helps.get(name)
        gin = GIN_FLAGS if name in GIN_COMMANDS else f"gin flags: none (`t5explore {name}` ignores them)\n"
        p.epilog = f"{p.epilog.rstrip()}\n\n{gin}" if p.epilog else gin
        if p.formatter_class in (argparse.HelpFormatter, argparse.RawDescriptionHelpFormatter):
            p.formatter_class = _Formatter


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when done, 1 when a run failed, 2 on a configuration or input error; errors are one line on
    stderr (with the traceback too under --verbose)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = VERBOSE_FLAG in argv
    argv = [a for a in argv if a != VERBOSE_FLAG]
    try:
        gin_files, gin_bindings, rest = split_gin_flags(argv)
        parser = build_parser()
        args = parser.parse_args(rest)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        if args.command in COMPILING_COMMANDS:  # before any JAX computation (t5explore/distributed.py)
            from t5explore import distributed

            distributed.setup_command(args.command, gin_files, gin_bindings)
        compiling = args.command in COMPILING_COMMANDS
        with compile_cache.enabled() if compiling else contextlib.nullcontext(), _sigterm_stops_cleanly(compiling):
            code = int(args.func(args, gin_files, gin_bindings) or 0)
        sys.stdout.flush()  # here, so that a closed pipe is seen here and not at interpreter exit
        return code
    except BrokenPipeError:  # `t5explore sweep ... --dry_run | head`: the reader has all it wanted
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt as e:
        from t5explore.train.stopping import EXIT_CODE, Terminated

        if isinstance(e, Terminated):  # SIGTERM: stopped at a step boundary (train/stopping.py)
            _report(None, str(e), verbose)
            return EXIT_CODE
        _report(None, "interrupted", verbose)
        return 130
    except InputError as e:
        kind = "configuration error" if isinstance(e, ConfigError) else "input error"
        _report(e, f"{kind}: {_first_line(e)}", verbose)
        return 2
    except Exception as e:  # noqa: BLE001 - a failed run is one line; the traceback is in FAILED or --verbose
        return run_failed(e, verbose)


_END_AT_ONCE = False  # set by run_failed after a full disk; `entry` then skips the interpreter's teardown


def run_failed(e: Exception, verbose: bool = False) -> int:
    """Report a failed run in one line; exit code 1. After a full disk the command-line entry ends the process at
    once (`entry`): orbax's tensorstore writes still in flight would otherwise print 'Event loop is closed'
    tracebacks into the user's terminal while the interpreter shuts down. Called as a library, it only reports."""
    global _END_AT_ONCE
    from t5explore.io_utils import DiskFullError

    failed = failed_file(e)
    where = f"traceback in {failed}" if failed else f"run with {VERBOSE_FLAG} for the traceback"
    _report(e, f"run failed: {one_line(e)} ({where})", verbose)
    _END_AT_ONCE = _END_AT_ONCE or isinstance(e, DiskFullError)
    return 1


def entry() -> None:
    """The `t5explore` command: `main`, then `end` with its code."""
    end(main())


def end(code: int) -> NoReturn:
    """Exit with `code`: at once, without the interpreter's teardown, after a full disk (see run_failed)."""
    if _END_AT_ONCE:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


@contextlib.contextmanager
def _sigterm_stops_cleanly(training: bool):
    """While a training command runs, SIGTERM stops it at its next checkpoint within a grace period
    (train/stopping.py); other commands keep Python's default."""
    if not training:
        yield
        return
    from t5explore.train import stopping

    previous = stopping.install()
    try:
        yield
    finally:
        stopping.uninstall(previous)


def _first_line(e: BaseException) -> str:
    return one_line(e).split(": ", 1)[-1]


def _report(e: BaseException | None, line: str, verbose: bool) -> None:
    if verbose and e is not None:
        traceback.print_exception(e, file=sys.stderr)
    # One write call (print writes the text and the newline separately): a background thread's output, e.g.
    # orbax's after a full disk, can then land before or after the line, never inside it.
    sys.stderr.write(f"t5explore: {line}\n")
    sys.stderr.flush()


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that Python's own flush at exit does not fail on the closed pipe too."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (e.g. captured in tests): nothing will be flushed to a pipe
        pass


if __name__ == "__main__":
    entry()
