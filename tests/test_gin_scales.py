"""A scale file (gin/runs/*.gin) given on the command line after a sweep's default scale (gin/runs/cpu_repro.gin
for experiments/, tiny_cpu.gin in tests) must replace every setting of that default: a value that survives (e.g.
cpu_repro's 400-example training subsets, or tiny's 16 evaluation examples) would silently shrink a real run."""

from __future__ import annotations

from pathlib import Path

import gin
import pytest

from t5explore.config import parse_gin

DEFAULTS = ["gin/runs/tiny_cpu.gin", "gin/runs/cpu_repro.gin"]
SCALES = sorted(str(p) for p in Path("gin/runs").glob("*.gin"))
# What a scale sets. The objective is the sweep's (a scale file must not bind it), the seed is the sweep's axis.
SCALE_SELECTORS = ("Pretrain", "Finetune", "T5Config", "vocabulary", "Optimizer", "Experiment")
# Settings of one task: part of a scale only where that scale fine-tunes on the task.
TASK_SELECTORS = {"stdlib_module_task": "stdlib_module"}
NOT_SCALE = {"Pretrain.objective", "Experiment.seed"}


def bound_parameters() -> dict[str, object]:
    """Every `scope/Name.param` of a scale setting the currently parsed config binds."""
    out = {}
    for (scope, selector), params in gin.config._CONFIG.items():  # gin has no public listing of bindings
        for name, value in params.items():
            key = f"{scope + '/' if scope else ''}{selector.split('.')[-1]}.{name}"
            out[key] = value
    tasks = set(out.get("Finetune.tasks") or ())
    selectors = SCALE_SELECTORS + tuple(s for s, task in TASK_SELECTORS.items() if task in tasks)
    return {k: v for k, v in out.items() if k.split("/")[-1].split(".")[0] in selectors and k not in NOT_SCALE}


def test_every_scale_file_is_checked():
    assert len(SCALES) >= 8 and "gin/runs/paper_scale.gin" in SCALES


@pytest.mark.parametrize("default", DEFAULTS)
@pytest.mark.parametrize("scale", SCALES)
def test_scale_file_overrides_every_default_setting(default, scale):
    if scale == default:
        pytest.skip("a scale after itself")
    try:
        parse_gin([default])
        before = bound_parameters()
        parse_gin([default, scale])
        combined = bound_parameters()
        parse_gin([scale])
        alone = bound_parameters()
    finally:
        gin.clear_config()
    # combined's task settings are already filtered to the tasks the scale fine-tunes on
    leaked = {k: v for k, v in before.items() if k in combined and k not in alone and combined[k] == v}
    assert not leaked, f"{scale} leaves {default} settings in force: {leaked}"
    assert {k: combined[k] for k in alone} == alone
