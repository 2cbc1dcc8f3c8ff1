"""Every wrong gin value is one ConfigError naming its binding: types come from the config dataclasses'
annotations (one checker), unparseable values name their binding, and the CLI exits 2 with one line."""

from __future__ import annotations

import pytest

from t5explore import cli
from t5explore.config import ConfigError, parse_gin
from t5explore.run_config import Experiment, Finetune, Optimizer, Pretrain, check_gin_bindings

pytestmark = pytest.mark.usefixtures("clean_gin")


@pytest.mark.parametrize(
    "obj, message",
    [
        (Pretrain(steps="abc"), "gin binding Pretrain.steps: must be int, got 'abc' (str)"),
        (Pretrain(steps=2.5), "gin binding Pretrain.steps: must be int, got 2.5 (float)"),
        (Pretrain(steps=True), "gin binding Pretrain.steps: must be int, got True (bool)"),
        (Pretrain(z_loss="0"), "gin binding Pretrain.z_loss: must be float, got '0' (str)"),
        (
            Finetune(tasks=["glue_rte", 3]),
            "gin binding Finetune.tasks: must be a list of str, got ['glue_rte', 3] (list)",
        ),
        (Finetune(eval_max_examples=1.5), "gin binding Finetune.eval_max_examples: must be int or None, got 1.5"),
        (Finetune(data_dir=3), "gin binding Finetune.data_dir: must be str or None, got 3 (int)"),
        (Experiment(seed="0"), "gin binding Experiment.seed: must be int, got '0' (str)"),
        (Optimizer(warmup_steps=1e4), "gin binding Optimizer.warmup_steps: must be int, got 10000.0 (float)"),
    ],
)
def test_wrong_types_are_one_error_naming_the_binding(obj, message):
    with pytest.raises(ConfigError) as e:
        obj.validate()
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_right_types_pass_and_an_int_is_a_fine_float():
    Pretrain(steps=0, z_loss=0).validate()
    Finetune(tasks=("stdlib_module",), learning_rate=1).validate()
    Optimizer(learning_rate=1, grad_clip_norm=None).validate()
    Experiment(seed=3, cache_dir=None).validate()


def test_scoped_optimizer_is_checked_under_its_scope():
    with pytest.raises(ConfigError, match=r"^gin binding Finetune.optimizer.learning_rate: must be float"):
        Optimizer(learning_rate="x").validate("Finetune.optimizer")


def test_parsed_bindings_are_type_checked_before_anything_is_built():
    parse_gin(["gin/runs/tiny_cpu.gin"], ["finetune/Optimizer.learning_rate = 'x'"])
    with pytest.raises(ConfigError, match=r"^gin binding finetune/Optimizer.learning_rate: must be float, got 'x'"):
        check_gin_bindings()
    parse_gin(["gin/runs/tiny_cpu.gin"], ["Pretrain.steps = %STEPS", "STEPS = 3"])
    check_gin_bindings()  # a macro is checked when the dataclass is built


@pytest.mark.parametrize(
    "binding, message",
    [
        (
            "Pretrain.batch_size = eight",
            "gin binding Pretrain.batch_size: cannot parse the value 'eight' (a string needs quotes: 'eight')",
        ),
        (
            "Pretrain.objective = span corruption",
            "gin binding Pretrain.objective: cannot parse the value 'span corruption'",
        ),
        ("Pretrain.steps = ", "gin binding Pretrain.steps: has no value"),
        (
            "Pretrain.stepz = 3",
            "in gin binding 'Pretrain.stepz = 3': Configurable 'Pretrain' doesn't have a parameter "
            "named 'stepz' (line 1: Pretrain.stepz = 3)",
        ),
        ("Pretrain.steps = [1,", "in gin binding 'Pretrain.steps = [1,': EOF in multi-line statement"),
    ],
)
def test_gin_parse_errors_are_one_line_naming_the_binding(binding, message):
    with pytest.raises(ConfigError) as e:
        parse_gin([], [binding])
    assert str(e.value).startswith(message) and "\n" not in str(e.value) and "ast.Name" not in str(e.value)


def test_unparseable_value_in_a_gin_file_names_file_line_and_binding(tmp_path):
    f = tmp_path / "bad.gin"
    f.write_text("include 'gin/runs/tiny_cpu.gin'\nPretrain.batch_size = eight\n")
    with pytest.raises(ConfigError) as e:
        parse_gin([str(f)])
    assert str(e.value) == (
        f"in gin file {f}: gin binding Pretrain.batch_size: cannot parse the value 'eight' "
        f"(a string needs quotes: 'eight') ({f}, line 2)"
    )


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--gin.Pretrain.steps='abc'", "gin binding Pretrain.steps: must be int, got 'abc' (str)"),
        ("--gin.Pretrain.steps=2.5", "gin binding Pretrain.steps: must be int, got 2.5 (float)"),
        ("--gin.Pretrain.batch_size=eight", "gin binding Pretrain.batch_size: cannot parse the value 'eight'"),
    ],
)
def test_cli_train_exits_2_with_one_line_before_anything_runs(tmp_path, capsys, flag, message):
    run_dir = tmp_path / "run"
    assert cli.main(["train", "--gin_file=gin/runs/tiny_cpu.gin", flag, f"--run_dir={run_dir}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"t5explore: configuration error: {message}") and err.count("\n") == 1
    assert not run_dir.exists()  # refused while fingerprinting: not even fingerprint.json


def test_pep604_and_optional_annotations_are_checked_alike():
    """`str | None` (what ruff's UP045 writes) and `Optional[str]` must accept and refuse the same values."""
    from typing import Optional

    from t5explore.run_config import check_value

    for annotation in (str | None, Optional[str]):  # noqa: UP045 - the old spelling is the point
        check_value("A.b", "x", annotation)
        check_value("A.b", None, annotation)
        with pytest.raises(ConfigError, match=r"gin binding A\.b: must be str or None, got 3 \(int\)"):
            check_value("A.b", 3, annotation)
