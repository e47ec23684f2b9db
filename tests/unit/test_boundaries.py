"""The layout's rules, checked on the source: who may import what, and how big a house is.

Read from the code with `ast`, imports inside functions included (those under
`if TYPE_CHECKING:` aside, as they never run), so a rule broken anywhere fails here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
MAX_LINES = 600

# The sandbox-only roads left in the engine, as "module: imported name": none. The
# engine reaches the sandbox only as a target (app/connect.py builds it), so every
# request it makes on Azure it makes the same way on the sandbox.
SANDBOX_IMPORTS_IN_SERVICES: set[str] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def app_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(APP.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: Path) -> Iterator[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for every import that can run."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]

    def walk(node: ast.AST) -> Iterator[tuple[str, list[str], int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    yield from walk(other)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, [], child.lineno
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                yield base, [a.name for a in child.names], child.lineno
            yield from walk(child)

    yield from walk(tree)


def app_edges() -> dict[str, set[str]]:
    """Module → the app modules it imports (a `from pkg import mod` counts as pkg.mod)."""
    modules = app_modules()
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for target, names, _ in imports(path):
            if not target.startswith("app"):
                continue
            for imported in names or [""]:
                full = f"{target}.{imported}" if imported else target
                chosen = full if full in modules else target
                if chosen in modules and chosen != name:
                    edges[name].add(chosen)
    return edges


def test_no_import_circles_in_app() -> None:
    edges = app_edges()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            # A package's __init__ importing its own modules is not a circle of ours.
            if node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_pyside6_only_in_the_wizard_and_no_sdk_there() -> None:
    wrong = []
    for name, path in app_modules().items():
        in_wizard = name.startswith("app.wizard")
        for target, _, line in imports(path):
            if target.startswith("PySide6") and not in_wizard:
                wrong.append(f"{name}:{line} imports {target} outside app/wizard/")
            if target.startswith("azure") and in_wizard:
                wrong.append(f"{name}:{line} imports the Azure SDK ({target}) in app/wizard/")
    assert not wrong, "\n".join(wrong)


def test_services_reach_the_sandbox_only_where_listed() -> None:
    found = set()
    for name, path in app_modules().items():
        if not name.startswith("app.services"):
            continue
        for target, _, _ in imports(path):
            if target == "app.sandbox" or target.startswith("app.sandbox."):
                found.add(f"{name}: {target}")
    assert found == SANDBOX_IMPORTS_IN_SERVICES, (
        f"new: {sorted(found - SANDBOX_IMPORTS_IN_SERVICES)}; "
        f"gone (remove from the list): {sorted(SANDBOX_IMPORTS_IN_SERVICES - found)}"
    )


def test_services_never_print() -> None:
    printing = []
    for name, path in app_modules().items():
        if not name.startswith("app.services"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id == "print":
                printing.append(f"{name}:{node.lineno}")
            if isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr") \
                    and isinstance(node.value, ast.Name) and node.value.id == "sys":
                printing.append(f"{name}:{node.lineno} uses sys.{node.attr}")
    assert not printing, "services print:\n" + "\n".join(printing)


def test_no_module_imports_another_modules_private_names() -> None:
    wrong = []
    for name, path in app_modules().items():
        for target, names, line in imports(path):
            if target.startswith("app"):
                wrong += [f"{name}:{line} takes {target}.{n}" for n in names
                          if n.startswith("_") and not n.startswith("__")]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("path", sorted(APP.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_file_in_app_is_over_the_limit(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines (at most {MAX_LINES})"


def test_is_sandbox_is_asked_only_where_the_target_is_built() -> None:
    askers = sorted(
        name for name, path in app_modules().items()
        if name.startswith("app.services") and "is_sandbox" in path.read_text(encoding="utf-8")
    )
    assert askers == ["app.services.target"], askers
