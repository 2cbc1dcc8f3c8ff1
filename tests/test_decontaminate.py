"""Evaluation hygiene: the pre-training corpus loses every document sharing a long n-gram with an evaluation or
selection example (data/decontaminate.py), and fine-tuning chooses its best checkpoint on held-out training
examples that are never reported (Finetune.selection_examples)."""

from __future__ import annotations

import json

import pytest

from t5explore.config import ConfigError
from t5explore.data.corpus import CorpusSource, jsonl_files
from t5explore.data.decontaminate import DecontaminatedCorpus, HeldOutGrams, decontaminate, fields, measure
from t5explore.data.tasks import TextExample
from t5explore.run_config import Finetune
from t5explore.train.finetune import TaskRecord
from t5explore.train.finetune_data import held_out_texts, selection_split, train_subset

WORDS = [f"w{i}" for i in range(40)]


class ListCorpus(CorpusSource):
    name = "list"

    def __init__(self, docs, shard_size=2):
        self.docs, self.shard_size = list(docs), shard_size

    def documents(self):
        return iter(self.docs)

    def shards(self, shard_bytes=None, shard_documents=1_000_000):
        return [(i, i + self.shard_size) for i in range(0, len(self.docs), self.shard_size)]

    def shard_documents(self, shard):
        return iter(self.docs[shard[0] : shard[1]])

    def _compute_fingerprint(self):
        return "list:" + "|".join(self.docs)


def text(lo, hi):
    return " ".join(WORDS[lo:hi])


def test_a_shared_13_gram_removes_a_document_and_12_words_do_not():
    held = HeldOutGrams(["task sentence: " + text(0, 20)])
    docs = [
        "Intro. " + text(5, 18).upper() + ", and more.",  # 13 words in a row, other case and punctuation
        text(0, 12),  # only 12 of them
        text(0, 6) + " x " + text(6, 18),  # broken by a word that is not in the example: 6 + 12 words
    ]
    kept = list(DecontaminatedCorpus(ListCorpus(docs), held).documents())
    assert kept == docs[1:]


def test_grams_never_span_two_fields_and_short_fields_match_whole():
    # two 7-word fields: no 13-gram exists, each field (>= 8 words? no: 7) is too short to check
    held = HeldOutGrams(["rte sentence1: " + text(0, 7) + " sentence2: " + text(7, 14)])
    assert held.unchecked == 1 and not held.grams
    assert fields("qnli question: a b c sentence: d e") == [["qnli"], ["a", "b", "c"], ["d", "e"]]
    # a 9-word field is matched as a whole word sequence, nothing shorter
    held = HeldOutGrams(["sst2 sentence: " + text(0, 9)])
    assert held.grams == {text(0, 9)}
    assert held.found_in("so " + text(0, 9) + " indeed") and not held.found_in(text(0, 8))


def test_filtering_is_the_same_shard_by_shard_and_the_fingerprint_covers_the_held_out_texts():
    docs = [text(i, i + 14) for i in range(0, 26, 2)]
    corpus = ListCorpus(docs)
    filtered = DecontaminatedCorpus(corpus, HeldOutGrams([text(10, 24)]))
    by_shard = [d for s in filtered.shards() for d in filtered.shard_documents(s)]
    assert by_shard == list(filtered.documents()) and 0 < len(by_shard) < len(docs)
    other = DecontaminatedCorpus(corpus, HeldOutGrams([text(0, 14)]))
    assert len({corpus.fingerprint(), filtered.fingerprint(), other.fingerprint()}) == 3


def test_measure_counts_what_was_removed_and_finds_a_broken_filter():
    docs = ["a b c", text(0, 20), text(20, 40)]
    held_texts = ["boolq passage: " + text(2, 18), "boolq passage: " + text(22, 38), "boolq passage: " + "zz " * 20]
    filtered = DecontaminatedCorpus(ListCorpus(docs), HeldOutGrams(held_texts))
    report = measure(filtered)
    assert report == {
        "ngram": 13,
        "min_words": 8,
        "eval_examples": 3,
        "unchecked_examples": 0,
        "contaminated_before": 2,
        "documents": 3,
        "documents_removed": 2,
        "overlap_after": 0,
    }

    class Broken(DecontaminatedCorpus):
        def keep(self, doc):
            return True

    assert measure(Broken(ListCorpus(docs), HeldOutGrams(held_texts)))["overlap_after"] == 2


def test_report_is_cached_under_the_filtered_fingerprint(tmp_path):
    corpus = ListCorpus([text(0, 20), "x y"])
    first, report = decontaminate(corpus, ["t s: " + text(0, 15)], tmp_path)
    assert report["documents_removed"] == 1 and list(first.documents()) == ["x y"]
    (cached,) = (tmp_path / "decontamination").iterdir()
    assert json.loads(cached.read_text()) == report


@pytest.mark.slow
def test_real_wiki_intros_against_boolq_validation(shared_data, tmp_path):
    """BoolQ's passages are Wikipedia: the wiki intros hold some of them word for word; after filtering none."""
    from t5explore.data.tasks import get_task

    val = get_task("superglue_boolq").examples("validation", str(shared_data))
    corpus = jsonl_files(pattern="*.jsonl", directory=str(shared_data / "pretrain" / "wiki_intros"))
    filtered, report = decontaminate(corpus, [e.inputs for e in val], tmp_path)
    assert report["contaminated_before"] > 0 and report["documents_removed"] > 0
    assert report["overlap_after"] == 0
    assert report["documents"] - report["documents_removed"] == sum(1 for _ in filtered.documents())


# ----------------------------------------------------------------------------------------- selection split


def examples(n):
    return [TextExample(f"input {i}", str(i % 3), {"i": i}) for i in range(n)]


def test_selection_split_is_disjoint_fixed_and_leaves_training_examples():
    cfg = Finetune(tasks=["t"], selection_examples=30, max_train_examples=50)
    selection, rest = selection_split("t", examples(200), cfg)
    assert len(selection) == 30 and len(rest) == 170
    assert not {e.meta["i"] for e in selection} & {e.meta["i"] for e in rest}
    assert selection_split("t", examples(200), cfg) == (selection, rest)  # no seed involved
    trained = train_subset(rest, cfg.max_train_examples)
    assert not {e.meta["i"] for e in selection} & {e.meta["i"] for e in trained}
    assert selection_split("t", examples(200), Finetune(tasks=["t"])) == ([], examples(200))
    capped, _ = selection_split("t", examples(200), Finetune(tasks=["t"], selection_examples=500))
    assert len(capped) == 50  # at most a quarter of the training split
    with pytest.raises(ConfigError, match="Finetune.selection_examples: task t has 3 training examples"):
        selection_split("t", examples(3), Finetune(tasks=["t"], selection_examples=10))


def test_held_out_texts_are_every_validation_and_selection_input():
    class Task:
        def examples(self, split, data_dir):
            return examples(40) if split == "train" else [TextExample("val input", "0", {})] * 5

    cfg = Finetune(tasks=["t"], selection_examples=4, eval_max_examples=2)
    texts = held_out_texts({"t": Task()}, cfg)
    selection, _ = selection_split("t", examples(40), cfg)
    assert texts == ["val input"] * 5 + [e.inputs for e in selection]  # validation uncapped


def test_best_checkpoint_follows_the_selection_examples_not_the_reported_ones():
    rec = TaskRecord("accuracy", selected_on="selection")
    evaluations = [  # (validation, selection) accuracy at three evaluations
        ({"accuracy": 50.0}, {"accuracy": 40.0}),
        ({"accuracy": 70.0}, {"accuracy": 35.0}),  # the reported examples peak here: not chosen
        ({"accuracy": 60.0}, {"accuracy": 45.0}),
    ]
    for step, (val, sel) in enumerate(evaluations):
        if rec.improves(val, sel):
            rec.best, rec.best_step, rec.best_selection = val, step, sel
    assert rec.best_step == 2 and rec.best == {"accuracy": 60.0}
    assert rec.as_dict()["selected_on"] == "selection"
    rec = TaskRecord("accuracy")
    for step, (val, _) in enumerate(evaluations):
        if rec.improves(val, None):
            rec.best, rec.best_step = val, step
    assert rec.best_step == 1  # without a selection split the reported examples choose (and flatter)
