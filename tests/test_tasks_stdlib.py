"""The built-in `stdlib_module` task: real labels, deterministic, disjoint splits; gin files and options."""

from __future__ import annotations

import ast
import collections
import re

import gin
import pytest

from t5explore import seeds
from t5explore.config import REPO_ROOT
from t5explore.data.builtin_corpus import BuiltinDocument, builtin_documents
from t5explore.data.tasks import TASK_NAMES, stdlib_module_task
from t5explore.data.tasks.stdlib_module import build_splits, package_of


@pytest.fixture(scope="module")
def real_docs(cache_dir):
    return builtin_documents(cache_dir)


def test_real_task_is_deterministic_with_disjoint_nonempty_splits(real_docs):
    task = stdlib_module_task(documents=real_docs)
    train, val = task.examples("train"), task.examples("validation")
    assert len(task.label_words) >= 8 and all(re.fullmatch(r"[a-z0-9_]+", w) for w in task.label_words)
    assert len(train) > 0 and len(val) > 0
    assert not {e.inputs for e in train} & {e.inputs for e in val}
    again = stdlib_module_task(documents=list(real_docs))
    assert again.examples("train") == train and again.examples("validation") == val
    for e in train + val:  # the label is a fact about the docstring's source module
        assert e.targets == e.meta["module"].split(".")[0] == task.label_words[e.meta["label"]]
        assert e.inputs.startswith("stdlib_module docstring: ")
    counts = collections.Counter(e.targets for e in train + val)
    assert set(counts) == set(task.label_words) and max(counts.values()) <= 150
    assert all(collections.Counter(e.targets for e in val).values())  # every label is in validation
    perfect = task.score([e.targets for e in val], [e.targets for e in val], [e.meta for e in val])
    assert perfect == {"accuracy": 100.0, "invalid_predictions": 0.0}


def _fake_docs():
    docs = [BuiltinDocument(f"email doc {i} about headers and mime parts", f"email.mod{i % 3}") for i in range(30)]
    docs += [BuiltinDocument(f"json doc {i} about decoding objects", "json.decoder") for i in range(12)]
    docs += [BuiltinDocument(f"xml doc {i} about trees and parsers", "xml.etree") for i in range(10)]
    docs += [BuiltinDocument(f"rare doc {i}", "rare") for i in range(3)]  # too few examples
    docs += [BuiltinDocument(f"private doc {i} text", "_private") for i in range(20)]  # not a public package
    docs += [BuiltinDocument(f"topic {i} text", f"pydoc_data.topics:t{i}") for i in range(20)]
    docs += [
        BuiltinDocument("shared text in two packages", "email"),
        BuiltinDocument("shared text in two packages", "json"),
    ]
    return docs


def test_selection_balance_and_ambiguity_on_fake_corpus():
    opts = dict(num_labels=2, min_examples=5, max_per_label=20, max_words=6, validation_fraction=0.25)
    labels, splits = build_splits(_fake_docs(), **opts)
    assert labels == ("email", "json")  # the two most frequent public packages
    everything = splits["train"] + splits["validation"]
    assert collections.Counter(e.targets for e in everything) == {"email": 20, "json": 12}  # email capped
    assert collections.Counter(e.targets for e in splits["validation"]) == {"email": 5, "json": 3}
    assert all("shared text" not in e.inputs for e in everything)  # ambiguous input dropped
    assert all(len(e.inputs.split()) <= 2 + 6 for e in everything)  # prefix + max_words
    # Independent of corpus order:
    shuffled = list(_fake_docs())
    seeds.numpy_rng(0, seeds.STREAM_SPLIT).shuffle(shuffled)
    assert build_splits(shuffled, **opts) == (labels, splits)
    with pytest.raises(ValueError, match="min_examples"):
        build_splits(_fake_docs(), **{**opts, "min_examples": 1000})


def test_package_of():
    assert package_of("email.mime.text") == "email" and package_of("json") == "json"
    assert package_of("pydoc_data.topics:for") is None and package_of("_pydecimal") is None


def test_gin_bindings_reach_the_task_and_gin_files_name_real_tasks():
    try:
        gin.parse_config("stdlib_module_task.num_labels = 3\nstdlib_module_task.min_examples = 5")
        assert stdlib_module_task(documents=_fake_docs()).label_words == ("email", "json", "xml")
    finally:
        gin.clear_config()
    files = sorted((REPO_ROOT / "gin/data").glob("tasks_*.gin"))
    assert len(files) >= 4
    for path in files:
        try:  # syntax check; Finetune belongs to t5explore.train and may not be registered here
            gin.parse_config_file(str(path), skip_unknown=True)
        finally:
            gin.clear_config()
        text = re.sub(r"#.*", "", path.read_text())
        names = ast.literal_eval(re.search(r"Finetune\.tasks\s*=\s*(\[[^\]]*\])", text).group(1))
        assert names and set(names) <= set(TASK_NAMES), (path, names)
