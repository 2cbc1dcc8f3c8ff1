"""Each gin/objectives/NAME.gin binds `Pretrain.objective = @NAME()` and its parameters build that objective.

`Pretrain` lives in t5explore/train, so the files are parsed with skip_unknown=True and the
`Pretrain.objective` statement is checked with gin's own parser.
"""

from __future__ import annotations

import gin
import pytest
from gin import config_parser

from t5explore.config import REPO_ROOT
from t5explore.objectives import named
from t5explore.objectives.mixture import Mixture

GIN_DIR = REPO_ROOT / "gin" / "objectives"


@pytest.fixture(autouse=True)
def clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


def pretrain_objective_reference(path):
    parser = config_parser.ConfigParser(path.read_text(), gin.config.ParserDelegate(skip_unknown=True))
    for statement in parser:
        if isinstance(statement, config_parser.BindingStatement) and (statement.selector, statement.arg_name) == (
            "Pretrain",
            "objective",
        ):
            return statement.value
    return None


def test_one_gin_file_per_named_objective():
    assert sorted(p.stem for p in GIN_DIR.glob("*.gin")) == sorted(named.NAMED_OBJECTIVES)


@pytest.mark.parametrize("name", sorted(named.NAMED_OBJECTIVES))
def test_gin_file_binds_pretrain_objective_and_builds_it(name):
    path = GIN_DIR / f"{name}.gin"
    ref = pretrain_objective_reference(path)
    assert ref is not None and ref.configurable.name == name and ref.evaluate
    gin.parse_config_file(str(path), skip_unknown=True)
    obj = named.NAMED_OBJECTIVES[name]()
    plan = obj.plan(128)
    assert plan.inputs_length == (1 if name == "lm" else 128) and plan.raw_length > 0  # lm: EOS-only inputs


def test_table6_and_table7_settings_are_plain_bindings():
    gin.parse_config_file(str(GIN_DIR / "iid_replace_spans.gin"), skip_unknown=True)
    gin.parse_config("iid_replace_spans.noise_density = 0.5")
    assert named.iid_replace_spans().mask.noise_density == 0.5
    gin.parse_config_file(str(GIN_DIR / "span_corruption.gin"), skip_unknown=True)
    gin.parse_config("span_corruption.mean_noise_span_length = 10")
    obj = named.span_corruption()
    assert obj.mask.mean_noise_span_length == 10 and obj.plan(512).raw_length == 591  # T5 helper value


def test_mixture_gin_file_builds_its_parts_and_rates():
    gin.parse_config_file(str(GIN_DIR / "mixture.gin"), skip_unknown=True)
    obj = named.mixture()
    assert isinstance(obj, Mixture) and [p.name for p in obj.parts] == ["span_corruption", "prefix_lm"]
    assert obj.rates == (0.75, 0.25)


def test_bad_gin_value_names_the_binding():
    gin.parse_config("span_corruption.noise_density = 1.5")
    with pytest.raises(ValueError, match=r"span_corruption\.noise_density=1\.5"):
        named.span_corruption()
