"""The tiny model's numbers are pinned at a numerics version (issue 21, part 5): its pre-training loss sequence
(every logged and held-out loss), its fine-tuning losses, its fine-tuning score and a hash of its predictions
(at 4 fine-tuning steps the score is still 0, so the predictions are what pins the decoding). A change that
moves them must bump t5explore/numerics.py's NUMERICS_VERSION and pin the new values under the new version;
a changed value without a bump fails here, and so does a bump without a pin (the message prints the values).

Losses are compared to 1e-5 relative, so that another CPU's float rounding passes and any change to the
batches, the initialisation, the step or the data order (which move them by far more) does not.
"""

from __future__ import annotations

import hashlib

import gin
import pytest

from t5explore.numerics import NUMERICS_VERSION
from t5explore.train.run import execute
from t5explore.train.writers import read_metrics

LOSS_PHASES = ("pretrain", "pretrain_eval", "finetune/stdlib_module")
BINDINGS = ("T5Config.num_encoder_layers = 1", "T5Config.num_decoder_layers = 1")  # half the compile time
# numerics version -> the tiny run's numbers (computed at that version; see the module docstring)
PINNED: dict[int, dict] = {
    2: {
        "pretrain": [[2, 7.171487808227539], [4, 6.9650678634643555], [6, 6.439820766448975]],
        "pretrain_eval": [[3, 6.864562034606934], [6, 6.367777347564697]],
        "finetune/stdlib_module": [[2, 7.521843433380127], [4, 7.2892255783081055]],
        "score": {"accuracy": 0.0, "invalid_predictions": 16.0},
        "predictions_sha256": "2f6373f04147f377",
    },
}


def tiny_run_numbers(run_dir, cache_dir) -> dict:
    """Pretraining losses per logged step, held-out losses per evaluated step, and the fine-tuning scores."""
    try:
        result = execute(run_dir, ["gin/runs/tiny_cpu.gin"], [*BINDINGS, f"Experiment.cache_dir = '{cache_dir}'"])
    finally:
        gin.clear_config()
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert result["numerics_version"] == NUMERICS_VERSION
    predictions = (run_dir / "predictions" / "stdlib_module.jsonl").read_bytes()
    return {phase: [[r["step"], r["loss"]] for r in rows if r.get("phase") == phase] for phase in LOSS_PHASES} | {
        "score": result["downstream"]["stdlib_module"]["best"],
        "predictions_sha256": hashlib.sha256(predictions).hexdigest()[:16],
    }


@pytest.mark.slow
def test_the_tiny_runs_numbers_equal_the_ones_pinned_at_this_numerics_version(tmp_path, cache_dir):
    got = tiny_run_numbers(tmp_path / "run", cache_dir)
    assert NUMERICS_VERSION in PINNED, (
        f"NUMERICS_VERSION is {NUMERICS_VERSION} but the tiny run is pinned only at {sorted(PINNED)}: "
        f"add PINNED[{NUMERICS_VERSION}] = {got!r}"
    )
    want = PINNED[NUMERICS_VERSION]
    changed = f"{got!r} differ from the numbers pinned at NUMERICS_VERSION {NUMERICS_VERSION}"
    bump = "; if that is intended, bump t5explore/numerics.py and pin the new numbers under the new version"
    for phase in LOSS_PHASES:
        assert [s for s, _ in got[phase]] == [s for s, _ in want[phase]], changed + bump
        assert [v for _, v in got[phase]] == pytest.approx([v for _, v in want[phase]], rel=1e-5), changed + bump
    assert got["score"] == pytest.approx(want["score"], rel=1e-5), changed + bump
    assert got["predictions_sha256"] == want["predictions_sha256"], changed + bump
