"""`Partitioner` is a gin configurable from the moment gin parses: `Partitioner.axis_rules` and
`Partitioner.mesh_shape` bind through parse_gin and through the t5x-style CLI flag, in a fresh interpreter.
(That parse_gin registers every configurable module, whoever imported it first, is
tests/test_configurable_modules.py's check; train/run.py now imports partitioning.py at its top.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from t5explore.config import REPO_ROOT, parse_gin
from t5explore.model.partitioning import DEFAULT_LOGICAL_RULES
from t5explore.train.partitioning import Partitioner

DATA_PARALLEL = "[('batch', 'data'), ('embed', None)]"


pytestmark = pytest.mark.usefixtures("clean_gin")


def test_default_rules_are_the_model_rooms():
    parse_gin(["gin/runs/tiny_cpu.gin"])
    assert Partitioner().axis_rules == DEFAULT_LOGICAL_RULES
    assert dict(DEFAULT_LOGICAL_RULES)["embed"] == "data"  # FSDP over the data axis, not pure data parallelism


def test_parse_gin_binding_reaches_the_partitioner():
    parse_gin(
        ["gin/runs/tiny_cpu.gin"], [f"Partitioner.axis_rules = {DATA_PARALLEL}", "Partitioner.mesh_shape = (1, -1)"]
    )
    part = Partitioner()
    assert part.axis_rules == (("batch", "data"), ("embed", None))
    assert part.data_size == 1 and dict(part.mesh.shape) == {"data": 1, "model": len(part.mesh.devices.flat)}


# Runs `t5explore train` with the flag in a new interpreter; execute is replaced by a stub that parses gin the
# way execute does and reports the Partitioner it then builds, so nothing is trained.
CLI_SCRIPT = textwrap.dedent("""
    import json, sys
    import t5explore.train.run as run
    from t5explore.cli import main
    from t5explore.config import parse_gin

    def execute(run_dir, gin_files, bindings):
        parse_gin(gin_files, bindings)
        from t5explore.train.partitioning import Partitioner
        part = Partitioner()
        print("RULES " + json.dumps(part.axis_rules))
        return {"pretrain": {}, "benchmarks": {}, "downstream": {}, "timing": {"total_s": 0.0}}

    run.execute = execute
    sys.exit(main(sys.argv[1:]))
""")


def test_cli_flag_binds_the_partitioner_in_a_fresh_interpreter(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "T5EXPLORE_COMPILE_CACHE": "off"}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CLI_SCRIPT,
            "train",
            "--gin_file=gin/runs/tiny_cpu.gin",
            f"--gin.Partitioner.axis_rules={DATA_PARALLEL}",
            f"--run_dir={tmp_path / 'run'}",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rules = next(line for line in proc.stdout.splitlines() if line.startswith("RULES "))
    assert json.loads(rules[len("RULES ") :]) == [["batch", "data"], ["embed", None]]
