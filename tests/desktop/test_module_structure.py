"""The shape of ``qp_desktop``: every module imports, no import cycle (counting imports inside
functions too, which only hide one), and nothing in the product depends on the demo package."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import qp_desktop

ROOT = Path(qp_desktop.__file__).parent
DEMO = "qp_desktop.demo"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The qp_desktop modules ``module`` imports at run time (not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def add(name: str) -> None:
        # The deepest module named: importing a.b.c runs a.b.c (its packages are trivial).
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name and name != module and name != "qp_desktop":
            found.add(name)

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                add(full if full in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []

    def strong(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                strong(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            strong(node)
    return result


def test_every_module_imports():
    for name in _modules():
        importlib.import_module(name)


def test_no_import_cycle_in_qp_desktop():
    assert _cycles(_graph()) == []


def test_the_cycle_check_sees_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_product_module_imports_the_demo_package():
    offenders = {name: sorted(t for t in targets if t == DEMO or t.startswith(DEMO + "."))
                 for name, targets in _graph().items()
                 if not (name == DEMO or name.startswith(DEMO + ".")) and name != "qp_desktop.main"}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_no_ui_module_is_over_400_lines():
    long = {name: len(path.read_text().splitlines()) for name, path in _modules().items()
            if name.startswith("qp_desktop.ui.")}
    assert {name: n for name, n in long.items() if n > 400} == {}
