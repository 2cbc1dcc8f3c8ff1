"""Every benchmark's --smoke mode runs, writes its results file with the context a figure needs (date, commit,
CPU, load, the note that cores were shared), and records for every case a config in which that case's
distinguishing binding is in effect (issue 24: a --case binding silently dropped timed the default).

Each benchmark runs in a subprocess, as a user runs it; slow on 2 shared cores (compilations), hence `slow`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
import record  # noqa: E402

# benchmark -> {case label: bindings that only that case has, as its recorded config must show them}
EXPECTED = {
    "train_throughput": {
        "tiny float32 (d64 2+2L V512)": ["T5Config.dtype = 'float32'", "Loss.cross_entropy = 'one_hot'"],
        "baseline: tiny bfloat16 (d64 2+2L V512)": ["T5Config.dtype = 'bfloat16'"],
        "integer labels": ["Loss.cross_entropy = 'integer_labels'", "T5Config.dtype = 'float32'"],
    },
    "gpu_mfu": {
        "fused attention": ["T5Config.attention_impl = 'dot_product'", "T5Config.scan_layers = False"],
        "scan + remat(dots)": ["T5Config.scan_layers = True", "T5Config.remat_policy = 'dots'"],
        "scan + remat + fused + f32 logits": ["T5Config.float32_logits = True", "T5Config.scan_layers = True"],
    },
    "finetune_throughput": {
        "packed": ["Finetune.packing = True", "sampler = PackedSampler"],
        "bucketed": ["Finetune.packing = False", "sampler = BucketedSampler", "bucket_width = 32"],
        "fixed-width": ["Finetune.packing = False", "sampler = MixtureSampler"],
    },
    "objectives": {
        "ours: numpy objective": ["source = pre-cut chunks"],
        "t5: denoise() in tf.data graph mode": ["map num_parallel_calls = AUTOTUNE", "prefetch = AUTOTUNE"],
        "ours: PretrainStream": ["source = token store"],
        "t5: span_corruption() in tf.data graph mode": ["source = ragged tensor rows", "prefetch = AUTOTUNE"],
    },
    "losses": {
        "one_hot": ["Loss.cross_entropy = 'one_hot'"],
        "integer_labels": ["Loss.cross_entropy = 'integer_labels'"],
    },
    "nonpretrain_phases": {
        "old (HEAD)": ["source = git ", "Pretrain.steps = 0"],
        "new (.)": ["source = working tree at ", "Pretrain.steps = 0"],
    },
    "token_store": {
        "raw arrays x1": ["processes = 1", "Vocab.encode_batch_arrays num_threads = 1"],
        "raw ids x1": ["processes = 1", "Vocab.encode_batch num_threads = 1"],
        "build x1": ["BuildSettings.num_workers = 1", "BuildSettings.encode_threads = 1"],
    },
}
# The like-for-like sections (ours beside T5's reference) run only where the reference is installed (never
# downloaded by a test; a fresh clone, as in CI, has none): both sides' cases are recorded there and only there.
NEEDS_T5REF = {
    "t5: denoise() in tf.data graph mode",
    "t5: span_corruption() in tf.data graph mode",
    "ours: numpy objective",
    "ours: PretrainStream",
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_smoke_records_context_and_bindings(name, tmp_path):
    out = tmp_path / f"{name}.txt"
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "T5EXPLORE_CACHE": os.environ.get("T5EXPLORE_CACHE", "")}
    if not env["T5EXPLORE_CACHE"]:
        env.pop("T5EXPLORE_CACHE")
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / f"{name}.py"), "--smoke", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = out.read_text()
    for field in ("# date: ", "# commit: ", "# cpu: ", "# load average at the start: ", "# load average at the end: "):
        assert field in text, field
    assert record.SHARED_NOTE in text
    configs = record.parse_config_lines(text)
    t5ref = (REPO / ".t5ref" / "t5" / "data" / "preprocessors.py").is_file()
    for label, bindings in EXPECTED[name].items():
        if label in NEEDS_T5REF and not t5ref:
            assert label not in configs
            continue
        assert label in configs, (label, sorted(configs))
        for binding in bindings:
            assert binding in configs[label], (label, binding, configs[label])


def test_rotation_and_spread():
    assert [record.rotated("abc", r) for r in range(4)] == [list("abc"), list("bca"), list("cab"), list("abc")]
    assert record.spread([3.0, 1.0, 2.0], ".1f") == "2.0 (1.0-3.0 per round)"
    # ratio of the medians; the range is over same-round pairs
    assert record.ratio_spread([2.0, 4.0, 6.0], [1.0, 1.0, 3.0]) == "4.00x (2.00-4.00 per round)"
    line = record.config_line("case a", ["A.b = 1", "C.d  =  'x'"])
    assert record.parse_config_lines("noise\n" + line + "\n") == {"case a": "A.b = 1; C.d = 'x'"}


def test_a_binding_nothing_reads_is_refused():
    """train_throughput builds each case while its gin is parsed and refuses a binding nothing it times reads."""
    import train_throughput

    from t5explore.config import ConfigError

    with pytest.raises(ConfigError, match="Pretrain.steps"):
        train_throughput.load_case(
            "x", "gin/models/tiny.gin", "gin/optim/adafactor_rsqrt.gin", 512, [], ["Pretrain.steps = 3"]
        )
    case = train_throughput.load_case(
        "x", "gin/models/tiny.gin", "gin/optim/adafactor_rsqrt.gin", 512, [], ["Loss.cross_entropy = 'integer_labels'"]
    )
    assert case.cross_entropy == "integer_labels"  # read while its gin was parsed, passed to the Trainer


def test_nonpretrain_phases_refuses_runs_whose_numbers_differ():
    """The old/new comparison fails on any changed number, and on a change that stops evaluating the reported
    examples at a task's best or last step; reported-example rows only one side logged are not compared."""
    import nonpretrain_phases as npp

    def run(best_step=4, steps=(2, 4), loss=1.5, prediction=b"a"):
        return {
            "downstream": {"t": {"best": {"accuracy": 1.0}, "best_step": best_step}},
            "benchmarks": {},
            "bootstrap": None,
            "predictions": {"t.jsonl": prediction},
            "rows": [{"phase": "finetune/t", "step": 2, "loss": loss}],
            "reported_eval": {("finetune_eval/t", s): {"accuracy": float(s)} for s in steps},
        }

    npp.check_same(run(), run(steps=(4,)), "same")  # step 2's row logged by one side only
    for changed in (run(loss=1.25), run(prediction=b"b"), run(best_step=2)):
        with pytest.raises(AssertionError):
            npp.check_same(run(), changed, "changed")
    with pytest.raises(AssertionError, match="not evaluated by both"):
        npp.check_same(run(best_step=2), run(best_step=2, steps=(4,)), "best step dropped")
