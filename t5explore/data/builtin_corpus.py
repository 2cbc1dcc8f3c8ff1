"""The built-in offline corpus: English prose that ships with every CPython.

Why: the quickstart must pretrain on real text with no download. Every Python install carries ~2 MB of
English in its standard library: module/class/function docstrings plus the `pydoc_data.topics` help texts.

Extraction is deterministic and safe: stdlib sources are *parsed* with `ast` (never imported, so no side
effects and no platform-dependent imports), files are visited in sorted relative-path order, docstrings in
source order, pydoc topics in sorted key order. Nothing depends on dict or filesystem order.

Each document remembers the module it came from (`email.mime.text`, or `pydoc_data.topics:<topic>`); the
downstream `stdlib_module` task uses that label, so a docstring found verbatim in two different modules is
dropped (its label would be ambiguous).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import json
import os
import sysconfig
import warnings
from pathlib import Path

from t5explore.data.cache import hash_update, resolve_cache_dir
from t5explore.io_utils import atomic_write_text

# Directories under the stdlib that hold tests, demos, IDE code, installed third-party packages or binaries.
SKIP_DIRS = frozenset(
    {
        "test",
        "tests",
        "idle_test",
        "idlelib",
        "turtledemo",
        "site-packages",
        "dist-packages",
        "__pycache__",
        "lib-dynload",
        "ensurepip",
        "__phello__",
    }
)
MIN_DOC_CHARS = 80  # shorter docstrings ("Return self.") carry almost no prose
MIN_DOC_WORDS = 8
TOPICS_MODULE = "pydoc_data.topics"
EXTRACTOR_VERSION = 1  # bump when the extraction rules change (part of the fingerprint)


@dataclasses.dataclass(frozen=True)
class BuiltinDocument:
    text: str
    module: str  # dotted module name, or "pydoc_data.topics:<topic>"


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _skip_dir(name: str) -> bool:
    return name in SKIP_DIRS or name.startswith("config-") or name.startswith(".")


def stdlib_source_files(root: Path) -> list[tuple[str, Path]]:
    """(dotted module name, path) for every stdlib .py file we read, sorted by module name."""
    out = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if any(_skip_dir(part) for part in rel.parts[:-1]):
            continue
        if rel.name.startswith("test_") or rel.as_posix() == "pydoc_data/topics.py":
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not parts or not all(p.isidentifier() for p in parts):
            continue  # not importable as a module (e.g. scripts with dashes)
        out.append((".".join(parts), path))
    return sorted(out, key=lambda mp: (mp[0], mp[1].as_posix()))


def _is_prose(text: str) -> bool:
    return len(text) >= MIN_DOC_CHARS and len(text.split()) >= MIN_DOC_WORDS


_DEFS = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
_BLOCKS = ("body", "orelse", "finalbody", "handlers", "cases")


def _definitions(statements):
    """Class/function definitions in source order, visiting statement blocks only (cheaper than ast.walk)."""
    for node in statements:
        if isinstance(node, _DEFS):
            yield node
        for field in _BLOCKS:
            block = getattr(node, field, None)
            if isinstance(block, list):
                yield from _definitions(block)


def docstrings_of(source: bytes) -> list[str]:
    """Module, class and function docstrings in source order (cleaned like `inspect.cleandoc`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escape sequences etc. in old sources
        tree = ast.parse(source)
    docs = []
    nodes = [tree, *_definitions(tree.body)]
    for node in nodes:
        doc = ast.get_docstring(node, clean=True)
        if doc and _is_prose(doc):
            docs.append(doc)
    return docs


def pydoc_topics(path: Path) -> list[tuple[str, str]]:
    """(topic, text) pairs from pydoc_data/topics.py, read as a literal (not imported), sorted by topic."""
    tree = ast.parse(path.read_bytes())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "topics" for t in node.targets):
            topics = ast.literal_eval(node.value)
            return sorted((k, v.strip()) for k, v in topics.items() if _is_prose(v.strip()))
    raise ValueError(f"{path}: no `topics = {{...}}` assignment found")


def _drop_ambiguous(docs: list[BuiltinDocument]) -> list[BuiltinDocument]:
    """Keep the first copy of a repeated text if all copies share a module; drop it if modules differ."""
    modules: dict[str, set[str]] = {}
    for d in docs:
        modules.setdefault(d.text, set()).add(d.module)
    seen: set[str] = set()
    out = []
    for d in docs:
        if len(modules[d.text]) == 1 and d.text not in seen:
            seen.add(d.text)
            out.append(d)
    return out


def extract_builtin_documents(root: Path) -> list[BuiltinDocument]:
    """Walk a stdlib directory and return its docstrings and pydoc topics (uncached)."""
    docs: list[BuiltinDocument] = []
    for module, path in stdlib_source_files(root):
        try:
            texts = docstrings_of(path.read_bytes())
        except (SyntaxError, ValueError):  # a stdlib file this Python cannot parse: not prose we can use
            continue
        docs.extend(BuiltinDocument(t, module) for t in texts)
    topics_path = root / "pydoc_data" / "topics.py"
    if topics_path.is_file():
        docs.extend(BuiltinDocument(text, f"{TOPICS_MODULE}:{topic}") for topic, text in pydoc_topics(topics_path))
    docs = _drop_ambiguous(docs)
    if not docs:
        raise ValueError(f"no docstrings found under the stdlib directory {root}")
    return docs


def source_key(root: Path) -> str:
    """Content hash of every source file we read (cheap: ~30 MB of bytes), naming the disk cache entry."""
    h = hashlib.sha256(f"builtin-sources-v{EXTRACTOR_VERSION}".encode())
    files = [*stdlib_source_files(root), (TOPICS_MODULE, root / "pydoc_data" / "topics.py")]
    for module, path in files:
        data = path.read_bytes() if path.is_file() else b""
        h.update(module.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
    return h.hexdigest()[:24]


@functools.lru_cache(maxsize=4)
def _cached_documents(root: str, cache_dir: str) -> tuple[BuiltinDocument, ...]:
    path = Path(cache_dir) / "builtin" / f"stdlib-{source_key(Path(root))}.json"
    if path.is_file():
        try:
            return tuple(BuiltinDocument(text, module) for module, text in json.loads(path.read_text("utf-8")))
        except (ValueError, TypeError):
            pass  # a damaged entry: rebuild it below
    docs = extract_builtin_documents(Path(root))
    atomic_write_text(path, json.dumps([[d.module, d.text] for d in docs], ensure_ascii=False))
    return tuple(docs)


def builtin_documents(cache_dir: str | os.PathLike | None = None) -> list[BuiltinDocument]:
    """The built-in corpus of this Python: extracted once, then read from the cache (~0.5 s)."""
    return list(_cached_documents(str(stdlib_dir()), str(resolve_cache_dir(cache_dir))))


def documents_fingerprint(docs) -> str:
    """Content hash of (module, text) pairs, in order."""
    h = hashlib.sha256(f"builtin-v{EXTRACTOR_VERSION}".encode())
    for d in docs:
        hash_update(h, d.module, d.text)
    return h.hexdigest()
