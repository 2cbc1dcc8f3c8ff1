"""Shared fixtures. Real data lives in ../shared/data beside the repository (never copied in)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("T5EXPLORE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The offline copy of real public data (GLUE, BoolQ, SQuAD, Gutenberg, wiki intros)."""
    if not (SHARED_DATA / "README.md").exists():
        pytest.fail(f"shared data not found at {SHARED_DATA}; set T5EXPLORE_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One cache (vocab, token stores) for the whole test session, like a sweep shares one."""
    return tmp_path_factory.mktemp("t5explore_cache")


@pytest.fixture(scope="session")
def builtin_vocab(cache_dir):
    """The quickstart's vocabulary (sentencepiece on the built-in corpus), built once for the test session
    (test_finetune.py and test_packing.py fine-tune with it)."""
    from t5explore.data.corpus import builtin_corpus
    from t5explore.data.vocab import get_vocabulary

    return get_vocabulary(builtin_corpus(cache_dir=str(cache_dir)), 1000, cache_dir)


@pytest.fixture
def clean_gin():
    """Clears gin's global config after the test (modules that parse gin opt in with
    `pytestmark = pytest.mark.usefixtures("clean_gin")`), so no binding leaks into the next test."""
    import gin

    yield
    gin.clear_config()


@pytest.fixture
def sweep_cli(monkeypatch):
    """cli.main with only the sweep subcommands, so the sweep tests do not depend on other subpackages' CLIs."""
    from t5explore import cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", ("t5explore.sweep.commands",))
    return cli.main
