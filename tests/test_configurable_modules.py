"""config.register_configurables() imports every module that registers a gin configurable.

Why: gin knows `@span_corruption()` or `slurm.partition` only once the module defining it was imported. A module
left out of config.CONFIGURABLE_MODULES (as sweep/launch/settings.py once was) works in a process that happens
to import it for another reason and fails with gin's "No configurable matching" in one that does not.

The check is static, like tests/test_import_graph.py: every module whose code calls `gin.configurable`,
`gin.register`, `gin.external_configurable` or `gin.constant` must be listed, or be imported at module level
(not inside a function) by a listed module, directly or through others.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from t5explore.config import CONFIGURABLE_MODULES

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "t5explore"
REGISTRARS = {"configurable", "register", "external_configurable", "constant"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_path(name: str) -> Path | None:
    base = REPO / name.replace(".", "/")
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _nodes_run_at_import(tree: ast.AST):
    """Every node that runs when the module is imported: function bodies are skipped (their imports are lazy),
    decorators and class bodies are not."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            stack.extend(node.decorator_list)
        else:
            stack.extend(ast.iter_child_nodes(node))


def registers_configurables(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr in REGISTRARS and getattr(node.value, "id", None) == "gin":
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "gin" and any(a.name in REGISTRARS for a in node.names):
            return True
    return False


def imported_at_module_level(name: str) -> set[str]:
    """The t5explore modules (and their parent packages) that importing `name` imports directly."""
    path = module_path(name)
    if path is None:
        return set()
    out: set[str] = set()
    for node in _nodes_run_at_import(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for t in targets:
            if t.split(".")[0] == "t5explore" and module_path(t) is not None:
                parts = t.split(".")
                out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return out


def reached_by_registration(listed) -> set[str]:
    """Every module that importing `listed` (and their parent packages) imports, transitively."""
    todo = [".".join(m.split(".")[:i]) for m in listed for i in range(1, len(m.split(".")) + 1)]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(imported_at_module_level(name) - seen)
    return seen


def registering_modules() -> set[str]:
    return {module_name(f) for f in sorted(PACKAGE.rglob("*.py")) if registers_configurables(f)}


def test_every_module_with_gin_configurables_is_registered():
    missing = registering_modules() - reached_by_registration(CONFIGURABLE_MODULES)
    assert not missing, f"gin configurables that config.register_configurables() never imports: {sorted(missing)}"


def test_every_listed_module_exists():
    assert all(module_path(m) is not None for m in CONFIGURABLE_MODULES), CONFIGURABLE_MODULES


def test_the_check_sees_what_it_must():
    """Not vacuous: it finds the known registrars, follows imports, and a list without one of them fails."""
    found = registering_modules()
    assert {"t5explore.run_config", "t5explore.sweep.launch.settings", "t5explore.objectives.named"} <= found
    # model.registry imports the decoder-only model at module level: listed through it, not by name
    assert "t5explore.model.decoder_only" not in CONFIGURABLE_MODULES
    assert "t5explore.model.decoder_only" in reached_by_registration(["t5explore.model.registry"])
    without = [m for m in CONFIGURABLE_MODULES if m != "t5explore.sweep.launch.settings"]
    assert "t5explore.sweep.launch.settings" in found - reached_by_registration(without)


def test_a_lazy_import_does_not_count(tmp_path, monkeypatch):
    """An import inside a function runs only when called, so it registers nothing at parse time."""
    pkg = tmp_path / "t5explore"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("import gin\n\ndef f():\n    from t5explore import b\n")
    (pkg / "b.py").write_text("import gin\n\n@gin.configurable\ndef g():\n    pass\n")
    (pkg / "c.py").write_text("from t5explore import b\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert registers_configurables(pkg / "b.py") and not registers_configurables(pkg / "a.py")
    assert "t5explore.b" not in reached_by_registration(["t5explore.a"])
    assert "t5explore.b" in reached_by_registration(["t5explore.c"])
