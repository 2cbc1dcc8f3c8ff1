"""Imports only go down the package order that docs/ARCHITECTURE.md writes ("Package order").

Every `import` / `from ... import` in t5explore/ is read with `ast` (module level, inside functions and under
TYPE_CHECKING alike: a lazy import is still a dependency), each module is given its layer, and an import from
a lower layer into a higher one fails, naming file, line and both layers. The order itself is parsed from
ARCHITECTURE.md, so the document and the code cannot drift apart.

Edges that break the order today and cannot be moved yet are in ALLOWED, each with its reason. An entry
whose import is gone fails too, so the list can only shrink.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "t5explore"
DOC = REPO / "docs" / "ARCHITECTURE.md"

# (importing file, imported module) -> why it is not moved yet. Remove an entry when its import goes.
ALLOWED: dict[tuple[str, str], str] = {}


def documented_order() -> tuple[list[str], set[str]]:
    """The layers (lowest first) and the leaf modules, as ARCHITECTURE.md's "Package order" section says."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Package order", 1)[1].split("\n## ", 1)[0]
    line = re.search(r"```\n(.+?)\n```", section, re.S)
    assert line, f"{DOC}: the Package order section has no fenced order line"
    layers = [p.strip() for p in line.group(1).split("<")]
    leaves = re.search(r"^- `leaves`: (.+?)\n(?:- |\n)", section, re.M | re.S)
    assert leaves, f"{DOC}: the Package order section does not list the `leaves` modules"
    return layers, set(re.findall(r"`(\w+)`", leaves.group(1)))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str, layers: list[str], leaves: set[str]) -> str:
    """The layer of a t5explore module: cli.py and every package's commands.py (the CLI's command table, reached
    by name from cli.COMMAND_MODULES) are `cli`; top-level modules are `leaves`; the rest, their package."""
    parts = module.split(".")
    if parts[-1] == "commands" or parts[:2] == ["t5explore", "cli"]:
        return "cli"
    if len(parts) == 1 or parts[1] in leaves:
        return "leaves"
    assert parts[1] in layers, f"{module}: package {parts[1]!r} is not in ARCHITECTURE.md's Package order"
    return parts[1]


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every t5explore import in a file; `from a import b` names a.b when b is a module."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "t5explore"]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import (t5explore imports absolutely)"
            if node.module and node.module.split(".")[0] == "t5explore":
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    out.append((node.lineno, sub if _is_module(sub) else node.module))
    return out


def _is_module(name: str) -> bool:
    path = REPO / name.replace(".", "/")
    return path.is_dir() or path.with_suffix(".py").exists()


def edges() -> list[tuple[str, int, str]]:
    return [
        (str(f.relative_to(REPO)), line, target) for f in sorted(PACKAGE.rglob("*.py")) for line, target in imports(f)
    ]


def test_no_import_goes_up_the_documented_order():
    layers, leaves = documented_order()
    rank = {name: i for i, name in enumerate(layers)}
    upward = []
    for path, line, target in edges():
        src = layer_of(module_name(REPO / path), layers, leaves)
        dst = layer_of(target, layers, leaves)
        if rank[dst] > rank[src] and (path, target) not in ALLOWED:
            upward.append(f"{path}:{line} imports {target} ({src} -> {dst})")
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_the_allow_list_only_shrinks():
    """Every allowed back-edge still exists and still goes up (else delete its entry)."""
    layers, leaves = documented_order()
    rank = {name: i for i, name in enumerate(layers)}
    present = {(p, t) for p, _, t in edges()}
    for path, target in ALLOWED:
        assert (path, target) in present, f"{path} no longer imports {target}: remove it from ALLOWED"
        src, dst = layer_of(module_name(REPO / path), layers, leaves), layer_of(target, layers, leaves)
        assert rank[dst] > rank[src], f"{path} -> {target} goes {src} -> {dst}, not up: remove it from ALLOWED"


def test_every_module_has_a_layer_and_leaves_exist():
    layers, leaves = documented_order()
    assert layers[0] == "leaves" and layers[-1] == "cli" and len(set(layers)) == len(layers)
    top_level = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "cli"}
    assert top_level == leaves, f"top-level modules not listed as leaves (or gone): {top_level ^ leaves}"
    for f in PACKAGE.rglob("*.py"):
        layer_of(module_name(f), layers, leaves)  # a new package must be placed in the order


def test_command_modules_are_reached_only_through_the_cli_table():
    """`commands.py` modules sit at the cli layer only because nothing but cli.COMMAND_MODULES reaches them."""
    from t5explore import cli

    on_disk = {module_name(f) for f in PACKAGE.rglob("commands.py")}
    assert on_disk <= set(cli.COMMAND_MODULES)
    importers = [f"{p}:{line}" for p, line, t in edges() if t.rsplit(".", 1)[-1] == "commands"]
    assert not importers, f"a commands module imported outside the CLI table: {importers}"


def test_the_checker_sees_lazy_imports_and_upward_edges(tmp_path):
    """The scan is not vacuous: an import inside a function and one under `from a import b` are both found."""
    f = tmp_path / "x.py"
    f.write_text("def f():\n    from t5explore.train import trainer\n    import t5explore.report.results\n")
    assert imports(f) == [(2, "t5explore.train.trainer"), (3, "t5explore.report.results")]
    layers, leaves = documented_order()
    rank = {name: i for i, name in enumerate(layers)}
    assert rank[layer_of("t5explore.train.trainer", layers, leaves)] > rank[layer_of("t5explore.data", layers, leaves)]
