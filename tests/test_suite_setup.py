"""The test suite's own set-up (tests/conftest.py) holds for a user's checkout too: pytest runs without xdist,
and the session's compilation cache is a temporary directory that is gone when the session ends."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from t5explore import compile_cache

REPO = Path(__file__).resolve().parents[1]
SPY = """
import os, pathlib, sys, pytest

class Spy:  # records the cache directory while the session still has it
    def pytest_sessionfinish(self, session):
        pathlib.Path({record!r}).write_text(os.environ.get({env!r}, ""))

sys.exit(pytest.main(["-q", "-p", "no:xdist", "-p", "no:cacheprovider", {test!r}], plugins=[Spy()]))
"""


def test_pytest_without_xdist_runs_and_removes_its_session_compile_cache(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != compile_cache.ENV}
    env["TMPDIR"] = str(tmp_path)  # where the session's cache directory is made
    test = "tests/test_readme_claims.py::test_the_readme_names_only_files_that_exist"
    out = subprocess.run(
        [sys.executable, "-c", SPY.format(record=str(tmp_path / "used"), env=compile_cache.ENV, test=test)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    used = Path((tmp_path / "used").read_text())
    assert used.parent == tmp_path and used.name.startswith("t5explore-test-jax-cache-"), out.stdout
    assert not used.exists()  # removed at the end of the session
