"""The shape of the code: an acyclic import graph, layered packages, families as folders.

Imports are read with ``ast`` from every module of the four packages, *including* imports inside
functions and under ``TYPE_CHECKING``: an import moved into a function to dodge a cycle is still a
cycle of ideas, and a type imported from a higher layer still couples the lower one to it.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("connectors", "expectations", "catalog", "pipelines")
#: a package may import only from packages left of it (and itself)
LAYERS = {name: PACKAGES[: i + 1] for i, name in enumerate(PACKAGES)}


def module_files() -> dict[str, Path]:
    files: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            if "migrations" in parts:   # Alembic revisions are frozen scripts, not modules we import
                continue
            files[".".join(parts)] = path
    return files


def _targets(node: ast.AST, module: str, is_package: bool, known: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    base = node.module or ""
    if node.level:  # relative: resolve against this module's package
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(node, module, path.name == "__init__.py", known):
                    while target and target not in known:   # `import a.b.c` names a.b.c
                        target = target.rpartition(".")[0]
                    if target and target != module:
                        edges.add(target)
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path (first == last), or None. Iterative DFS, colours."""
    colour = dict.fromkeys(graph, 0)
    for root in sorted(graph):
        if colour[root]:
            continue
        stack = [(root, iter(sorted(graph[root])))]
        path = [root]
        colour[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour.get(child) == 1:
                return [*path[path.index(child):], child]
            elif colour.get(child) == 0:
                colour[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(graph[child]))))
    return None


def test_the_import_graph_has_no_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_find_cycle_sees_a_cycle_through_three_modules():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_lower_layers(package):
    wrong = sorted(f"{m} imports {t}" for m, edges in import_graph().items()
                   if m.split(".")[0] == package for t in edges
                   if t.split(".")[0] not in LAYERS[package])
    assert not wrong, f"{package} may import only {LAYERS[package]}:\n" + "\n".join(wrong)


def test_families_are_folders_not_filename_prefixes():
    # `qc_plan.py` beside `qc_stats.py` is a folder `qc/` waiting to happen
    prefixes: dict[str, list[str]] = {}
    for module in module_files():
        head, _, leaf = module.rpartition(".")
        if "_" in leaf and not leaf.startswith("_"):
            prefixes.setdefault(f"{head}.{leaf.split('_')[0]}", []).append(leaf)
    crowded = {p: leaves for p, leaves in prefixes.items() if len(leaves) >= 3}
    assert not crowded, f"families spelled as filename prefixes: {crowded}"
