"""Where a run's numbers came from: the code (git commit, package versions) and the machine (CPU, backend).

result.json records both, because two machines or two commits can give one config different numbers; the report
lists them (FINDINGS.md's provenance) and flags a table whose runs differ.
"""

from __future__ import annotations

import subprocess

from t5explore import __version__
from t5explore.config import REPO_ROOT


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def versions() -> dict:
    """Versions of every distribution that can change a run's numbers (None when not installed), and the
    platform facts that explain why two machines' numbers differ."""
    import platform
    from importlib import metadata

    import jax

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    cpu = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    numeric = (
        "jax",
        "jaxlib",
        "flax",
        "optax",
        "orbax-checkpoint",
        "numpy",
        "seqio",
        "sentencepiece",
        "tensorflow",
        "tensorflow-datasets",
        "gin-config",
    )
    return {
        "t5explore": __version__,
        **{dist: version(dist) for dist in numeric},
        "python": platform.python_version(),
        "machine": platform.machine(),
        "os": platform.platform(),
        "cpu": cpu,
        "jax_backend": jax.default_backend(),
    }
