"""Corpus sources on the real shared files, the TFDS source under tfds' mock, and the built-in stdlib corpus."""

from __future__ import annotations

import collections
import json
import os
import re
from pathlib import Path

import gin
import pytest

from t5explore.config import REPO_ROOT
from t5explore.data import builtin_corpus as bc
from t5explore.data import vocab as _registers_vocabulary_configurable  # noqa: F401
from t5explore.data.corpus import (
    CorpusError,
    builtin_corpus,
    corpus_names,
    get_corpus,
    jsonl_files,
    split_paragraphs,
    text_files,
    tfds_corpus,
)


def direct_paragraph_count(text: str) -> int:
    return len([b for b in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if b.strip()])


def test_text_files_paragraphs_match_a_direct_count(shared_data):
    books = shared_data / "pretrain" / "gutenberg"
    corpus = text_files(pattern=str(books / "*.txt"))
    files = sorted(books.glob("*.txt"))
    assert [p.name for p in corpus.files] == [p.name for p in files]
    docs = list(corpus.documents())
    assert len(docs) == sum(direct_paragraph_count(p.read_text("utf-8")) for p in files) > 10_000
    assert all(d and "\n" not in d and d == d.strip() for d in docs)
    first_block = re.split(r"\n\s*\n", files[0].read_text("utf-8").strip())[0]
    assert docs[0] == " ".join(line.strip() for line in first_block.split("\n"))


def test_text_files_order_does_not_depend_on_pattern_order(shared_data):
    books = shared_data / "pretrain" / "gutenberg"
    a = text_files(pattern=["pg1*.txt", "pg2*.txt"], directory=str(books))
    b = text_files(pattern=[str(books / "pg2*.txt"), str(books / "pg1*.txt")])
    assert a.files == b.files and a.fingerprint() == b.fingerprint()
    assert list(a.documents())[:50] == list(b.documents())[:50]


def test_split_paragraphs_handles_whitespace_lines_and_crlf():
    assert split_paragraphs("a\nb\n  \n\n\nc  \n") == ["a b", "c"]
    assert split_paragraphs("a\nb\n\nc", join_lines=False) == ["a\nb", "c"]


def test_glob_matching_nothing_names_the_pattern(tmp_path):
    with pytest.raises(CorpusError, match=r"no_such_\*\.txt"):
        text_files(pattern=str(tmp_path / "no_such_*.txt"))
    with pytest.raises(CorpusError, match=r"jsonl_files\.pattern"):
        jsonl_files(pattern="*.jsonl", directory=str(tmp_path))


def test_fingerprint_hashes_content_not_file_stats(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("one paragraph\n\nanother one\n", encoding="utf-8")
    before = text_files(pattern=str(f)).fingerprint()
    stat = f.stat()
    f.write_text("one paragraph\n\nanother ONE\n", encoding="utf-8")  # same size
    os.utime(f, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime
    assert text_files(pattern=str(f)).fingerprint() != before


def test_invalid_utf8_names_the_file(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"fine\n\n\xff\xfe broken\n")
    with pytest.raises(CorpusError, match=r"bad\.txt.*UTF-8"):
        list(text_files(pattern=str(tmp_path / "*.txt")).documents())


def test_jsonl_files_on_wiki_intros(shared_data):
    wiki = shared_data / "pretrain" / "wiki_intros"
    files = sorted(wiki.glob("*.jsonl"))
    corpus = jsonl_files(pattern=str(wiki / "*.jsonl"))
    docs = list(corpus.documents())
    lines = [line for p in files for line in p.read_text("utf-8").splitlines() if line.strip()]
    assert len(docs) == len(lines) == 4064
    assert docs[0] == json.loads(lines[0])["text"] and docs[-1] == json.loads(lines[-1])["text"]
    titles = list(jsonl_files(pattern=str(wiki / "*.jsonl"), field="title").documents())
    assert titles[0] == json.loads(lines[0])["title"]
    assert corpus.fingerprint() != jsonl_files(pattern=str(wiki / "*.jsonl"), field="title").fingerprint()


def test_jsonl_errors_name_file_line_and_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a"}\n\n{"text": "b"\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad\.jsonl:3: malformed JSON"):
        list(jsonl_files(pattern=str(bad)).documents())
    missing = tmp_path / "missing.jsonl"
    missing.write_text('{"text": "a"}\n{"body": "b"}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"missing\.jsonl:2: no field 'text'"):
        list(jsonl_files(pattern=str(missing)).documents())
    with pytest.raises(CorpusError, match=r"missing\.jsonl:1: no field 'body'"):
        list(jsonl_files(pattern=str(missing), field="body").documents())


def test_tfds_corpus_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=7):
        corpus = tfds_corpus(name="c4/en", split="train")
        docs = list(corpus.documents())
        assert len(docs) == 7 and all(isinstance(d, str) and d for d in docs)
        assert list(corpus.documents()) == docs  # deterministic order
        assert len(list(tfds_corpus(name="c4/en", max_documents=3).documents())) == 3
        assert corpus.fingerprint() == tfds_corpus(name="c4/en", split="train").fingerprint()
        assert corpus.fingerprint() != tfds_corpus(name="c4/en", split="validation").fingerprint()
        with pytest.raises(CorpusError, match=r"tfds_corpus\.field 'body'"):
            list(tfds_corpus(name="c4/en", field="body").documents())


def test_registry_and_gin_bindings(shared_data):
    assert {"builtin_corpus", "text_files", "jsonl_files", "tfds_corpus"} <= set(corpus_names())
    books = shared_data / "pretrain" / "gutenberg"
    assert len(get_corpus("text_files", pattern=str(books / "*.txt")).files) == 40
    with pytest.raises(CorpusError, match="unknown corpus 'nope'"):
        get_corpus("nope")
    try:
        gin.parse_config_file(str(REPO_ROOT / "gin/data/gutenberg.gin"), skip_unknown=True)
        gin.bind_parameter("%GUTENBERG_DIR", str(books))
        corpus = text_files()
        assert len(corpus.files) == 40 and corpus.files[0].parent == books
        assert gin.query_parameter("vocabulary.sp_vocab_size") == 8000
        gin.clear_config()
        gin.parse_config_file(str(REPO_ROOT / "gin/data/builtin.gin"), skip_unknown=True)
        assert gin.query_parameter("vocabulary.sp_vocab_size") == 2000
        gin.clear_config()
        gin.parse_config_file(str(REPO_ROOT / "gin/data/c4.gin"), skip_unknown=True)
        assert gin.query_parameter("tfds_corpus.name").startswith("c4/en")
        assert gin.query_parameter("vocabulary.sp_vocab_size") == 32000
    finally:
        gin.clear_config()


# ---- built-in corpus ------------------------------------------------------------------------------------


def test_builtin_corpus_is_big_varied_and_labelled_accurately(cache_dir):
    docs = bc.builtin_documents(cache_dir)
    assert sum(len(d.text.encode("utf-8")) for d in docs) >= 1_500_000
    modules = collections.Counter(d.module for d in docs)
    packages = {m.split(":")[0].split(".")[0] for m in modules}
    assert len(modules) > 300 and len(packages) > 100
    assert any(m.startswith("pydoc_data.topics:") for m in modules)
    assert not any(p in {"test", "idlelib", "turtledemo"} for p in packages)
    assert len({d.text for d in docs}) == len(docs)
    root = bc.stdlib_dir()
    for d in docs[:: len(docs) // 40]:  # the first line of each sampled docstring is in its module's source
        if d.module.startswith("pydoc_data.topics:"):
            continue
        rel = Path(*d.module.split("."))
        path = root / rel.with_suffix(".py")
        path = path if path.is_file() else root / rel / "__init__.py"
        assert d.text.split("\n")[0] in path.read_text("utf-8", errors="replace"), (d.module, d.text[:60])
    corpus = builtin_corpus(cache_dir=str(cache_dir))
    assert list(corpus.documents()) == [d.text for d in docs]


def test_builtin_extraction_is_deterministic_whatever_the_filesystem_order(cache_dir, monkeypatch):
    cached = bc.builtin_documents(cache_dir)
    original_rglob = Path.rglob
    monkeypatch.setattr(Path, "rglob", lambda self, pat: reversed(list(original_rglob(self, pat))))
    fresh = bc.extract_builtin_documents(bc.stdlib_dir())
    assert bc.documents_fingerprint(fresh) == bc.documents_fingerprint(cached)
    assert builtin_corpus(cache_dir=str(cache_dir)).fingerprint() == bc.documents_fingerprint(cached)


def test_builtin_extraction_rules_on_a_fake_stdlib(tmp_path):
    long = "This docstring is long enough to count as prose for the corpus extraction rules, surely."

    def write(rel, body):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(body, encoding="utf-8")

    write("pkg/__init__.py", f'"""Package: {long}"""\n')
    write(
        "pkg/mod.py",
        f'"""Module: {long}"""\nclass A:\n    """Class A: {long}"""\n    def f(self):\n'
        f'        """Too short."""\ndef g():\n    """Shared: {long}"""\n',
    )
    write("other.py", f'def h():\n    """Shared: {long}"""\n')  # same text, other module: ambiguous, dropped
    write("test/test_x.py", f'"""Test: {long}"""\n')
    write("idlelib/x.py", f'"""Idle: {long}"""\n')
    write("site-packages/y.py", f'"""Third party: {long}"""\n')
    write("pydoc_data/topics.py", f"topics = {{'zeta': {long!r}, 'alpha': {('Alpha ' + long)!r}, 'tiny': 'x'}}\n")
    docs = bc.extract_builtin_documents(tmp_path)
    assert [(d.module, d.text.split(":")[0]) for d in docs] == [
        ("pkg", "Package"),
        ("pkg.mod", "Module"),
        ("pkg.mod", "Class A"),
        ("pydoc_data.topics:alpha", "Alpha " + long.split(":")[0]),
        ("pydoc_data.topics:zeta", long),
    ]
