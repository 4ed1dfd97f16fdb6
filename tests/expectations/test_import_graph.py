"""The import graph of ``expectations`` and ``catalog.documents``: no cycle, counting imports
inside functions, and imports inside functions only where a heavy import is kept off a fast path.

Read from the source with ``ast`` (nothing is imported), so a cycle held together by a function-
level import is found as surely as one at module level. The repository-wide test will cover every
package; these two had cycles (``metrics <-> results``, ``card <-> card_html <-> croissant``).
"""
from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("pipelines", "connectors", "expectations", "catalog")
CHECKED = ("expectations", "catalog.documents")
#: (module, imported module) pairs allowed inside a function, each for a stated reason
LAZY = {
    # the helper process imports GE (seconds) on purpose, off the driver's path
    ("expectations.validation.ge.process", "expectations.validation.judgement"),
    # pandas only when a suite asks for a column type
    ("expectations.validation.checks", "pandas.api.types"),
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module ``name`` names (a module, or a name inside one), else None."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _base(module: str, node: ast.ImportFrom) -> str:
    """The module a ``from ... import`` reads from, relative imports resolved."""
    base = node.module or ""
    if not node.level:
        return base
    package = module.split(".") if MODULES[module].name == "__init__.py" else \
        module.split(".")[:-1]
    package = package[:len(package) - node.level + 1]
    return ".".join([*package, base] if base else package)


def _imported(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Every dotted name the statement imports (``from a import b`` imports ``a.b``: a
    module or a name inside ``a``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = _base(module, node)
    return [f"{base}.{alias.name}" if base else alias.name for alias in node.names]


@functools.cache
def _edges(module: str) -> frozenset[str]:
    """Project modules ``module`` imports anywhere in its file."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    targets = {_resolve(name) for node in ast.walk(tree)
               if isinstance(node, (ast.Import, ast.ImportFrom))
               for name in _imported(module, node)}
    return frozenset(t for t in targets if t is not None and t != module)


def _cycle_through(start: str, graph: dict[str, frozenset[str]]) -> list[str] | None:
    """A path start -> ... -> start, if there is one (depth-first, iterative)."""
    stack = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in graph.get(node, ()):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def _checked(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in CHECKED)


def test_the_resolver_sees_relative_and_function_level_imports():
    assert "expectations.validation.judgement" in _edges("expectations.validation.ge.process")
    assert "catalog.documents.svg" in _edges("catalog.documents.report_plots")


def test_a_cycle_is_found_however_long():
    graph = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a", "d"}),
             "d": frozenset()}
    assert _cycle_through("a", graph) == ["a", "b", "c", "a"]
    assert _cycle_through("d", graph) is None


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _checked(m)))
def test_no_import_cycle(module):
    graph = {m: _edges(m) for m in MODULES}
    assert _cycle_through(module, graph) is None


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _checked(m)))
def test_imports_inside_functions_only_for_a_stated_reason(module):
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    lazy = {(module, name)
            for function in ast.walk(tree)
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
            for node in ast.walk(function) if isinstance(node, (ast.Import, ast.ImportFrom))
            for name in ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [_base(module, node)])}
    assert lazy <= LAZY
