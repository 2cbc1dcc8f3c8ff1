"""A scale file (gin/runs/cpu_ablation.gin, gpu_ablation.gin, paper_scale.gin) given after a sweep's tiny default
must replace every setting of that default: a tiny value that survives (e.g. 16 evaluation examples) would
silently shrink a real run."""

from __future__ import annotations

import gin
import pytest

from t5explore.config import parse_gin

TINY = "gin/runs/tiny_cpu.gin"
SCALES = ["gin/runs/cpu_repro.gin", "gin/runs/cpu_ablation.gin", "gin/runs/gpu_ablation.gin", "gin/runs/paper_scale.gin"]
# What a scale sets. The objective is the sweep's (a scale file must not bind it), the seed is the sweep's axis.
SCALE_SELECTORS = ("Pretrain", "Finetune", "T5Config", "vocabulary", "Optimizer", "Experiment")
NOT_SCALE = {"Pretrain.objective", "Experiment.seed"}


def bound_parameters() -> dict[str, object]:
    """Every `scope/Name.param` of a scale setting the currently parsed config binds."""
    out = {}
    for (scope, selector), params in gin.config._CONFIG.items():  # gin has no public listing of bindings
        for name, value in params.items():
            key = f"{scope + '/' if scope else ''}{selector.split('.')[-1]}.{name}"
            if key.split("/")[-1].split(".")[0] in SCALE_SELECTORS and key not in NOT_SCALE:
                out[key] = value
    return out


@pytest.mark.parametrize("scale", SCALES)
def test_scale_file_overrides_every_tiny_setting(scale):
    try:
        parse_gin([TINY])
        tiny = bound_parameters()
        parse_gin([TINY, scale])
        combined = bound_parameters()
        parse_gin([scale])
        alone = bound_parameters()
    finally:
        gin.clear_config()
    leaked = {k: v for k, v in tiny.items() if k not in alone and combined.get(k) == v}
    assert not leaked, f"{scale} leaves tiny_cpu.gin settings in force: {leaked}"
    assert {k: combined[k] for k in alone} == alone
