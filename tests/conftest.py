"""Shared fixtures. Real data lives in ../shared/data beside the repository (never copied in)."""

from __future__ import annotations

import collections
import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from t5explore import compile_cache

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("T5EXPLORE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
_SESSION_COMPILE_CACHE: list[Path] = []  # the directory this process made for the session, removed at its end


def pytest_configure(config) -> None:
    """One JAX compilation cache for the whole test session, shared by its xdist workers and by the commands
    tests run in subprocesses (they inherit $T5EXPLORE_COMPILE_CACHE): dozens of tests train the same tiny
    config, and each would otherwise compile it again. Not the user's ~/.cache, and removed at the end; a
    cache the caller configured (T5EXPLORE_COMPILE_CACHE set, even to 'off') is used as it is."""
    config.addinivalue_line(
        "markers", "own_compile_cache: the test sets up the compilation cache itself (not the session's)"
    )
    if compile_cache.ENV in os.environ or hasattr(config, "workerinput"):  # workers inherit the controller's
        return
    path = Path(tempfile.mkdtemp(prefix="t5explore-test-jax-cache-"))
    _SESSION_COMPILE_CACHE.append(path)
    os.environ[compile_cache.ENV] = str(path)


def pytest_unconfigure(config) -> None:
    for path in _SESSION_COMPILE_CACHE:
        shutil.rmtree(path, ignore_errors=True)
        os.environ.pop(compile_cache.ENV, None)


@pytest.hookimpl(optionalhook=True)  # pytest without xdist (-p no:xdist) runs serially
def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto` (make test): a worker per usable core, at most 4; each worker runs JAX with its own threads."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()  # not on macOS
    return max(1, min(4, cores or 1))


@dataclasses.dataclass(frozen=True)
class CollectedTests:
    """What this session collected before any -m/-k selection: the README states these counts."""

    total: int
    slow: int
    whole_suite: bool  # pytest was pointed at tests/ or above it, not at some files or tests


COLLECTED = pytest.StashKey[CollectedTests]()


@pytest.hookimpl(tryfirst=True)  # before -m/-k deselect anything
def pytest_collection_modifyitems(config, items) -> None:
    """Files with the most `slow` tests first, each file's tests in their own order: `make test`'s xdist
    workers take whole files (--dist loadfile) in this order, so the long ones start early instead of
    leaving one worker busy at the end while the other idles. Also records the counts (COLLECTED)."""

    def file_of(item) -> str:
        return item.nodeid.split("::")[0]

    slow = collections.Counter(file_of(item) for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[file_of(item)])  # stable: the order within a file is kept
    tests_dir = Path(__file__).resolve().parent
    asked = [(config.invocation_params.dir / arg.split("::")[0]).resolve() for arg in config.args]
    whole_suite = all(tests_dir == path or path in tests_dir.parents for path in asked)
    config.stash[COLLECTED] = CollectedTests(len(items), sum(slow.values()), whole_suite)


@pytest.fixture
def collected_tests(request) -> CollectedTests:
    return request.config.stash[COLLECTED]


@pytest.fixture(autouse=True)
def session_compile_cache(request):
    """In-process training uses the session's cache too (the CLI turns it on by itself)."""
    if request.node.get_closest_marker("own_compile_cache"):
        yield
        return
    with compile_cache.enabled():
        yield


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
