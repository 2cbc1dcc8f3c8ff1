"""The per-phase clock of train/attempts.py: a phase's seconds leave out the compilations inside it, every JAX
compilation is counted with the function it compiled, and the breakdown adds up."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import pytest

from t5explore.train.attempts import CLOCK_KEYS, PhaseClock, phases, summary_line


def test_phase_excludes_its_compilation_and_counts_it():
    clock = PhaseClock()
    clock.install()

    @jax.jit
    def fresh(x):  # a new function: it must compile (or come from the persistent cache) inside the phase
        return jnp.sin(x) * 3.0

    with clock.timed("work"):
        fresh(jnp.ones(7)).block_until_ready()
        time.sleep(0.2)
    snap = clock.snapshot()
    assert clock.compiles >= 1 and snap["compiles"] == clock.compiles
    assert any("fresh" in name for name in clock.compiled), clock.compiled
    assert clock.seconds["work_compile"] == pytest.approx(clock.compile_s) and clock.compile_s > 0
    assert 0.2 <= clock.seconds["work"] < 0.2 + 5.0  # the sleep, not the compilation
    calls = clock.compiles
    with clock.timed("work"):
        fresh(jnp.ones(7)).block_until_ready()  # compiled already: nothing new
    assert clock.compiles == calls


def test_breakdown_subtracts_checkpoints_and_decoding():
    timing = dict.fromkeys(CLOCK_KEYS, 0.0) | {
        "pretrain_s": 100.0,
        "finetune_s": 50.0,
        "eval_s": 30.0,
        "heldout_eval_s": 4.0,
        "decode_wall_s": 20.0,
        "decode_compile_s": 2.0,
        "checkpoint_pretrain_s": 3.0,
        "checkpoint_finetune_s": 5.0,
        "compile_s": 6.0,
        "total_s": 200.0,
    }
    p = phases(timing)
    assert p["pretrain_steps_s"] == 97.0 and p["finetune_steps_s"] == 45.0
    assert p["eval_decode_s"] == 18.0 and p["eval_decode_compile_s"] == 2.0
    assert p["eval_metrics_s"] == 6.0  # 30 - 4 held-out - 20 decoding with its compilation
    assert p["checkpoint_s"] == 8.0 and p["heldout_eval_s"] == 4.0
    # total = 97 + 45 + 18 + 2 + 6 + 4 + 8 + 6 compile + rest 14
    assert "rest 14.0s" in summary_line(timing)
