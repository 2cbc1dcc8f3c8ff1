"""The `t5explore` command. Each room adds its own subcommands; this file only dispatches.

    t5explore train  --gin_file=gin/runs/quickstart.gin --gin.Pretrain.steps=100 --run_dir=results/one
    t5explore sweep  experiments/quickstart.gin --results_dir=results
    t5explore status results/quickstart
    t5explore table  results/quickstart
    t5explore plot   results/quickstart

Gin flags (`--gin_file=PATH`, `--gin.SCOPE.PARAM=VALUE`, `--gin_bindings='A.b = 1'`) may appear anywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys

from t5explore import __version__, compile_cache
from t5explore.config import ConfigError, split_gin_flags

# Each module defines add_commands(subparsers); a subcommand sets `func(args, gin_files, gin_bindings) -> int`.
COMMAND_MODULES = ("t5explore.train.commands", "t5explore.sweep.commands", "t5explore.report.commands")
# Subcommands that compile, and so run with the persistent JAX compilation cache (t5explore/compile_cache.py).
COMPILING_COMMANDS = ("train", "sweep")

GIN_HELP = """gin flags (accepted by every subcommand):
  --gin_file=PATH            parse a gin file (repeatable; relative to cwd or the repository root)
  --gin.SCOPE.PARAM=VALUE    bind one gin parameter, t5x style (repeatable), e.g. --gin.Pretrain.steps=50
  --gin_bindings='A.b = 1'   same, as one gin statement

train and sweep keep compiled executables in $T5EXPLORE_COMPILE_CACHE (default ~/.cache/t5explore/jax;
'off' disables it).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="t5explore",
        description="Sweep T5 pretraining objectives, fine-tune, evaluate and tabulate (Raffel et al. 2020, §3.3).",
        epilog=GIN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"t5explore {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        gin_files, gin_bindings, rest = split_gin_flags(argv)
        parser = build_parser()
        args = parser.parse_args(rest)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        with compile_cache.enabled() if args.command in COMPILING_COMMANDS else contextlib.nullcontext():
            return int(args.func(args, gin_files, gin_bindings) or 0)
    except ConfigError as e:
        print(f"t5explore: configuration error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
