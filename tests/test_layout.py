"""The package's shape: modules import downwards only (no cycles), and a module imports another
gabic module inside a function only when that module needs an optional dependency."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "gabic"

#: gabic modules that need an optional dependency (an extra of pyproject.toml): the only ones
#: (with their submodules) another gabic module may import inside a function.
OPTIONAL = {"gabic.plots", "gabic.demo", "gabic.notebooks", "gabic.widgets.rd", "gabic.widgets.attention"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, bool, int]]:
    """``(imported gabic module, inside a function, line)`` for every import of a gabic module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    for node in tree.body:  # imports inside a module-level `with` or `try` count as module level
        if isinstance(node, ast.With | ast.Try):
            top_level |= {id(n) for n in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gabic"):
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found += [(n, id(node) not in top_level, node.lineno) for n in names]
        elif isinstance(node, ast.Import):
            found += [(a.name, id(node) not in top_level, node.lineno) for a in node.names if a.name.startswith("gabic")]
    return found


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py") if p.name != "__main__.py"}  # entry points sit on top
    graph: dict[str, set[str]] = {name: set() for name in modules}
    late = []
    for name, path in modules.items():
        for target, in_function, line in _imports(path):
            if target not in modules:  # "from gabic.x import function": the module is gabic.x
                continue
            if target != name:
                graph[name].add(target)
            if in_function and target not in OPTIONAL and not target.startswith(tuple(f"{o}." for o in OPTIONAL)):
                late.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target} inside a function")
    return graph, late


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_modules_import_downwards_only():
    graph, _ = _graph()
    assert len(graph) > 30
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_gabic_modules_are_imported_at_the_top():
    _, late = _graph()
    assert not late, "\n".join(late)
