"""The persistent JAX compilation cache for every command that compiles (`t5explore train`, `t5explore sweep`).

One cache per user: `$T5EXPLORE_COMPILE_CACHE`, else `~/.cache/t5explore/jax`. A run whose shapes were
compiled before (by any earlier run, sweep or benchmark with the same model config, jax and device) loads
its executables instead of recompiling them. JAX keys every entry on the computation, the jax/jaxlib
versions, the device kind and the compiler flags, so an entry is never used where it does not apply, and the
directory may be deleted at any time. `T5EXPLORE_COMPILE_CACHE=off` turns the cache off (e.g. to time
compilation). A directory configured already (`JAX_COMPILATION_CACHE_DIR`, or `jax.config.update` before
the command) wins over both.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ENV = "T5EXPLORE_COMPILE_CACHE"
OFF = "off"
# An executable is written once it took this long to compile. Loading one takes milliseconds, so anything
# slower is worth keeping, including the many 0.1-2 s compiles of small CPU runs (JAX's default, 1 s, would
# skip most of them); the cheaper ones would only add files.
MIN_COMPILE_TIME_S = 0.1
MIN_ENTRY_SIZE_BYTES = -1  # no size floor (JAX's 0 lets it raise the floor on remote filesystems)


def cache_dir(default: str | os.PathLike | None = None) -> Path | None:
    """$T5EXPLORE_COMPILE_CACHE, else `default`, else ~/.cache/t5explore/jax; None when the variable is 'off'."""
    env = os.environ.get(ENV, "").strip()
    if env.lower() == OFF:
        return None
    return Path(env or default or Path.home() / ".cache" / "t5explore" / "jax").expanduser()


def settings(default: str | os.PathLike | None = None) -> dict[str, Any]:
    """The jax.config values that turn the cache on: the thresholds, and cache_dir(default) as the directory
    unless one is configured already. Empty when the cache is off."""
    import jax

    path = cache_dir(default)
    if path is None:
        return {}
    wanted: dict[str, Any] = {
        "jax_persistent_cache_min_compile_time_secs": MIN_COMPILE_TIME_S,
        "jax_persistent_cache_min_entry_size_bytes": MIN_ENTRY_SIZE_BYTES,
    }
    if not jax.config.values["jax_compilation_cache_dir"]:  # .values: typed, unlike the dynamic attributes
        wanted["jax_compilation_cache_dir"] = str(path)
    return wanted


@contextlib.contextmanager
def enabled(default: str | os.PathLike | None = None) -> Iterator[str | None]:
    """Turn the cache on for the duration (yielding its directory, or None when off) and restore JAX's
    previous settings afterwards, so that calling `t5explore.cli.main` in-process leaves JAX as it was."""
    wanted = settings(default)
    if not wanted:
        yield None
        return
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    old = {k: getattr(jax.config, k) for k in wanted}
    for k, v in wanted.items():
        jax.config.update(k, v)
    compilation_cache.reset_cache()  # re-read the settings at the next compile
    try:
        yield jax.config.values["jax_compilation_cache_dir"]
    finally:
        for k, v in old.items():
            jax.config.update(k, v)
        compilation_cache.reset_cache()
