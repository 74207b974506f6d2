"""The engine's structure as the architecture promises it (docs/ARCHITECTURE.md).

Checked from the source: these are the rules a reader relies on, and they break
silently when a shortcut is taken.
"""

from __future__ import annotations

import ast
from pathlib import Path

import fswan
from fswan.ike.engine import TRANSITIONS
from fswan.ike.state import StateKind

PACKAGE = Path(fswan.__file__).parent
IKE = PACKAGE / "ike"


def _imports(path: Path) -> set[str]:
    """fswan.ike modules imported by ``path``, at run time or for type checking."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "fswan.ike":
                found.update(f"fswan.ike.{a.name}" for a in node.names)
            elif node.module.startswith("fswan.ike."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("fswan.ike."))
    return found


def test_no_import_cycle_inside_ike():
    graph = {f"fswan.ike.{p.stem}": _imports(p) for p in IKE.glob("*.py") if p.stem != "__init__"}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        assert module not in path, " -> ".join(path + [module])
        if module in done:
            return
        for imported in graph.get(module, ()):
            visit(imported, path + [module])
        done.add(module)

    for module in graph:
        visit(module, [])


def test_module_sizes():
    assert len((IKE / "engine.py").read_text().splitlines()) < 800
    too_big = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 1000 and p.name != "payloads.py"
    }
    assert too_big == {}


def test_transition_rows_name_functions_and_cover_every_waiting_state():
    assert set(TRANSITIONS) == {k for k in StateKind if not k.established and not k.is_v2}
    for kind, row in TRANSITIONS.items():
        assert callable(row.handler) and not isinstance(row.handler, str), kind
        assert row.handler.__module__.startswith("fswan.ike."), kind
    assert "importlib" not in (IKE / "engine.py").read_text()
