"""Fail on any import circle among the ``conveyor`` package's modules.

Every import counts, at module level and inside functions alike: an import moved into a
function still ties the two modules together, it only hides the circle from Python's loader.
Imports under ``if TYPE_CHECKING:`` are left out, since they never run. ``from .bus import
batch`` depends on ``conveyor.bus.batch`` when that is a module, else on ``conveyor.bus`` (the
package's ``__init__``); the parent packages Python loads on the way are left out, or every
module would sit in a circle with ``conveyor/__init__``.

Usage: ``python tools/check_imports.py [src/conveyor]``; prints one line per circle and
exits 1 if there is any, else exits 0. ``--function-level`` lists the imports made inside
functions instead.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "conveyor"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(tree: ast.Module) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement outside ``if TYPE_CHECKING:``, and whether it is in a function."""

    def walk(
        node: ast.AST, in_function: bool
    ) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child.test):
                for other in child.orelse:
                    yield from walk(other, in_function)
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, in_function
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            yield from walk(child, inner)

    yield from walk(tree, False)


def targets(
    node: ast.Import | ast.ImportFrom, here: str, is_package: bool, known: set[str]
) -> set[str]:
    """The ``conveyor`` modules an import statement loads."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in known}
    if node.level:
        base = here.split(".") if is_package else here.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    found = set()
    for alias in node.names:
        submodule = f"{prefix}.{alias.name}"
        if submodule in known:
            found.add(submodule)
        elif prefix in known:
            found.add(prefix)
    return found


def graph(root: Path) -> tuple[dict[str, set[str]], list[str]]:
    """Module -> the modules it imports, and the function-level imports as ``path:line``."""
    files = {module_name(path, root): path for path in sorted(root.rglob("*.py"))}
    known = set(files)
    edges: dict[str, set[str]] = {name: set() for name in files}
    inside: list[str] = []
    for name, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        for node, in_function in imports(tree):
            found = targets(node, name, path.name == "__init__.py", known) - {name}
            edges[name] |= found
            if in_function and found:
                inside.append(f"{path}:{node.lineno}")
    return edges, inside


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each with one
    circle through it spelled out."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(edges[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def circle(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside it."""
    members, start = set(component), component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for succ in sorted(edges[node] & members):
            if succ == start:
                return [*paths[node], start]
            if succ not in paths:
                paths[succ] = [*paths[node], succ]
                queue.append(succ)
    return component


def main(argv: list[str]) -> int:
    args = [arg for arg in argv if not arg.startswith("--")]
    root = Path(args[0] if args else "src/conveyor")
    edges, inside = graph(root)
    if "--function-level" in argv:
        print("\n".join(inside))
        return 0
    found = cycles(edges)
    for component in found:
        print(
            f"import circle of {len(component)} modules: {' -> '.join(circle(component, edges))}"
            f" (all: {', '.join(component)})"
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
