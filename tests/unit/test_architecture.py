"""The layout's rules, checked on the source: no import cycle, keys and sealing only in security/,
SQL only in store/, and modules a person reads in one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "faceward"
MAX_LINES = 400
# Exempt from the line limit: a reader of one binary file format, whose length is the format's, read top to bottom.
SINGLE_FORMAT_READERS = {"vision/onnx/dlib_format.py"}  # dlib's serialised networks (432 lines)
KEY_CALLS = {"tenant_key", "subject_key", "wrap_tenant_key", "wrap_subject_key", "rewrap"}
SEALING = {"aad", "seal", "open_sealed"}


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = modules()


def module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports run when the module loads: top level and inside top-level try/if, not ``if TYPE_CHECKING``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def walk(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append(node)
            elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
                walk(node.body)
                walk(node.orelse)
            elif isinstance(node, ast.Try):
                walk(node.body)

    walk(tree.body)
    return found


def targets(node: ast.Import | ast.ImportFrom) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name.startswith("faceward")}
    base = node.module or ""
    if not base.startswith("faceward"):
        return set()
    return {f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names}


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        edges[name] = {t for node in module_level_imports(tree) for t in targets(node) if t in MODULES and t != name}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle() -> None:
    assert cycles(graph()) == []


def outside(folder: str) -> list[tuple[str, Path]]:
    return [(name, path) for name, path in MODULES.items() if not name.startswith(f"faceward.{folder}")]


@pytest.mark.parametrize(("name", "path"), outside("security"), ids=lambda v: v if isinstance(v, str) else "")
def test_only_security_builds_associated_data_or_unwraps_keys(name: str, path: Path) -> None:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "faceward.security.crypto":
            found += [f"imports {a.name}" for a in node.names if a.name in SEALING]
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in SEALING:
                found.append(f"calls {func.id}() at line {node.lineno}")
            if isinstance(func, ast.Attribute) and func.attr in KEY_CALLS | SEALING:
                found.append(f"calls .{func.attr}() at line {node.lineno}")
    assert not found, f"{name}: {found}"


@pytest.mark.parametrize(("name", "path"), outside("store"), ids=lambda v: v if isinstance(v, str) else "")
def test_no_sql_outside_the_store(name: str, path: Path) -> None:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "sqlalchemy"]
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            # A connection may be handed through (an act's audit entry joins its transaction); no statement is built.
            found += [f"{node.module}.{a.name}" for a in node.names if a.name != "Connection"]
    assert not found, f"{name}: {found}"


@pytest.mark.parametrize(("name", "path"), list(MODULES.items()), ids=lambda v: v if isinstance(v, str) else "")
def test_modules_stay_readable(name: str, path: Path) -> None:
    rel = str(path.relative_to(PACKAGE))
    if rel in SINGLE_FORMAT_READERS:
        return
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{rel} has {lines} lines (at most {MAX_LINES}): split it by concept"
