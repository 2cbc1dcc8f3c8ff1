"""The persistent compilation cache of `t5explore train` / `sweep`: where it goes, what wins, and that the
CLI leaves JAX's settings as it found them (tests call it in-process)."""

from __future__ import annotations

import argparse

import jax
import pytest

from t5explore import cli, compile_cache

pytestmark = pytest.mark.own_compile_cache  # its own cache directory: what it checks is compile vs load

KEYS = (
    "jax_compilation_cache_dir",
    "jax_persistent_cache_min_compile_time_secs",
    "jax_persistent_cache_min_entry_size_bytes",
)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(compile_cache.ENV, raising=False)
    if jax.config.jax_compilation_cache_dir:
        pytest.skip("a JAX compilation cache directory is configured for the whole session")


def test_directory_precedence(monkeypatch, tmp_path):
    assert compile_cache.settings()["jax_compilation_cache_dir"].endswith("/.cache/t5explore/jax")
    assert compile_cache.settings(tmp_path / "sweep")["jax_compilation_cache_dir"] == str(tmp_path / "sweep")
    monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "mine"))
    assert compile_cache.settings(tmp_path / "sweep")["jax_compilation_cache_dir"] == str(tmp_path / "mine")
    assert compile_cache.settings()["jax_persistent_cache_min_compile_time_secs"] == compile_cache.MIN_COMPILE_TIME_S
    monkeypatch.setenv(compile_cache.ENV, "off")
    assert compile_cache.settings() == {}
    with compile_cache.enabled() as path:
        assert path is None and not jax.config.jax_compilation_cache_dir


def test_train_and_sweep_run_inside_the_cache_and_restore_jax(monkeypatch, tmp_path):
    monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "jax"))
    before = {k: getattr(jax.config, k) for k in KEYS}
    seen = {}

    def record(name):
        def func(args, gin_files, gin_bindings):
            seen[name] = jax.config.jax_compilation_cache_dir
            return 0

        return func

    def build_parser():  # every subcommand records the cache directory it runs with instead of running
        parser = real_build_parser()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        for name, p in sub.choices.items():
            p.set_defaults(func=record(name))
        return parser

    real_build_parser = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", build_parser)
    assert cli.main(["train", f"--run_dir={tmp_path / 'run'}"]) == 0
    assert cli.main(["sweep", "experiments/quickstart.gin"]) == 0
    assert cli.main(["status", str(tmp_path)]) == 0
    assert seen == {"train": str(tmp_path / "jax"), "sweep": str(tmp_path / "jax"), "status": None}
    assert {k: getattr(jax.config, k) for k in KEYS} == before
