"""Readers for the benchmarks' original file formats, laid out like ../shared/data.

    glue/<Task>/{train,dev}.tsv        GLUE TSV, each task's own columns (CoLA has no header), no quoting
    superglue/BoolQ/{train,val}.jsonl  SuperGLUE JSON Lines {"question", "passage", "idx", "label": bool}
    squad/v1.1/{train,dev}.json        official SQuAD v1.1 JSON

Each reader returns records with TFDS's feature names (`sentence1`, `label`, `idx`, ...), so the text
formatting downstream is the same whichever source a record came from. Every malformed row raises
TaskDataError naming the file and line (for SQuAD's nested JSON: the file and the JSON path).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from t5explore.data.tasks.base import TaskDataError

LOCAL_SPLIT_FILES = {
    "tsv": {"train": "train.tsv", "validation": "dev.tsv"},
    "jsonl": {"train": "train.jsonl", "validation": "val.jsonl"},
    "json": {"train": "train.json", "validation": "dev.json"},
    "generation_jsonl": {"train": "train.jsonl", "validation": "validation.jsonl"},  # our CNN/DM, WMT layout
}


def split_file(data_dir: str | Path, folder: str, kind: str, split: str) -> Path:
    """The file holding `split` of a benchmark folder; a clear error if it is missing."""
    path = Path(data_dir) / folder / LOCAL_SPLIT_FILES[kind][split]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (split {split!r} of {folder} under data_dir {data_dir})")
    return path


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise TaskDataError(f"{path}: not valid UTF-8 at byte {e.start}") from None


def _lines(path: Path) -> list[str]:
    """Physical lines split on '\\n' only (str.splitlines would also split on form feeds etc. inside text)."""
    lines = _read_text(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_glue_tsv(
    path: Path,
    columns: Mapping[str, str | int],
    *,
    header: bool,
    num_columns: int | None = None,
) -> list[tuple[int, dict[str, str]]]:
    """Rows of a GLUE TSV as (line number, {feature: cell}). `columns` maps feature -> header name, or ->
    column index when the file has no header (then `num_columns` is the required width)."""
    lines = _lines(path)
    if header:
        if not lines:
            raise TaskDataError(f"{path}: empty file, expected a header line")
        names = lines[0].split("\t")
        missing = [c for c in columns.values() if c not in names]
        if missing:
            raise TaskDataError(f"{path}:1: header lacks column(s) {missing}; it has {names}")
        index = {feature: names.index(name) for feature, name in columns.items()}
        width, first_line = len(names), 2
        body = lines[1:]
    else:
        index = {feature: int(col) for feature, col in columns.items()}
        width, first_line, body = num_columns, 1, lines
    rows = []
    for line_no, line in enumerate(body, start=first_line):
        cells = line.split("\t")
        if len(cells) != width:
            raise TaskDataError(f"{path}:{line_no}: expected {width} tab-separated columns, got {len(cells)}")
        rows.append((line_no, {feature: cells[i] for feature, i in index.items()}))
    if not rows:
        raise TaskDataError(f"{path}: no examples{' (only a header line)' if header else ' (empty file)'}")
    return rows


def parse_label(path: Path, line_no: int, text: str, kind: str, label_words: Sequence[str] | None) -> Any:
    """A GLUE label cell -> class index ('index': '0'/'1'; 'name': a label word) or float ('float')."""
    if kind not in ("float", "index", "name"):
        raise ValueError(f"unknown label kind {kind!r}")
    try:
        if kind == "float":
            value = float(text)
            if math.isfinite(value):
                return value
        elif kind == "index":
            value = int(text)
            if 0 <= value < len(label_words):
                return value
        elif text in label_words:
            return list(label_words).index(text)
    except ValueError:
        pass
    raise TaskDataError(f"{path}:{line_no}: bad label {text!r} (expected {kind} label of {label_words or 'a float'})")


def read_jsonl(path: Path, fields: Mapping[str, type]) -> list[tuple[int, dict[str, Any]]]:
    """JSON Lines rows as (line number, object), each checked to have `fields` of the given types."""
    rows = []
    for line_no, line in enumerate(_lines(path), start=1):
        if not line.strip():
            raise TaskDataError(f"{path}:{line_no}: empty line")
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise TaskDataError(f"{path}:{line_no}: invalid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise TaskDataError(f"{path}:{line_no}: expected a JSON object, got {type(obj).__name__}")
        for name, kind in fields.items():
            value = obj.get(name)
            # bool is a subclass of int: an int field must not silently accept true/false, nor the reverse.
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise TaskDataError(f"{path}:{line_no}: field {name!r} must be {kind.__name__}, got {value!r:.60}")
        rows.append((line_no, obj))
    if not rows:
        raise TaskDataError(f"{path}: no examples (empty file)")
    return rows


def read_squad_json(path: Path) -> list[dict[str, Any]]:
    """SQuAD v1.1 questions as {'id', 'question', 'context', 'answers': [text, ...]}, in file order."""
    try:
        doc = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise TaskDataError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
    records = []
    for a, article in enumerate(_get(doc, "data", list, path, "")):
        for p, paragraph in enumerate(_get(article, "paragraphs", list, path, f"data[{a}]")):
            where = f"data[{a}].paragraphs[{p}]"
            context = _get(paragraph, "context", str, path, where)
            for q, qa in enumerate(_get(paragraph, "qas", list, path, where)):
                where_q = f"{where}.qas[{q}]"
                answers = _get(qa, "answers", list, path, where_q)
                texts = [_get(ans, "text", str, path, f"{where_q}.answers[{i}]") for i, ans in enumerate(answers)]
                if not texts:
                    raise TaskDataError(f"{path}: {where_q} has no answers")
                records.append(
                    {
                        "id": _get(qa, "id", str, path, where_q),
                        "question": _get(qa, "question", str, path, where_q),
                        "context": context,
                        "answers": texts,
                    }
                )
    if not records:
        raise TaskDataError(f"{path}: no questions")
    return records


def _get(obj: Any, key: str, kind: type, path: Path, where: str) -> Any:
    if not isinstance(obj, dict) or not isinstance(obj.get(key), kind):
        got = obj.get(key) if isinstance(obj, dict) else obj
        raise TaskDataError(f"{path}: {where or 'top level'}.{key} must be a {kind.__name__}, got {got!r:.60}")
    return obj[key]
