"""The HTTP functions a Python (v2 model) package declares, read without running it."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FunctionInfo:
    """An HTTP function as App Service lists it (found in the package without running it)."""

    name: str
    route: str
    methods: tuple[str, ...]
    auth_level: str
    trigger_arg: str


def _call_name(node: ast.expr) -> str:
    """`app.route` -> `route`, for a decorator call's function."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _literal(node: ast.expr | None) -> str | None:
    """A string constant, or the member name of an enum like `func.AuthLevel.ANONYMOUS`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def scan_functions(package_dir: Path) -> list[FunctionInfo]:
    """HTTP functions declared in the package's `function_app.py` (Python v2 model).

    The Functions runtime indexes an app by importing it; the sandbox reads the
    decorators instead (`@app.route(...)`, `@app.function_name(...)`), so listing
    functions never runs user code in the sandbox's own process.
    """
    script = package_dir / "function_app.py"
    try:
        tree = ast.parse(script.read_text(encoding="utf-8"), filename=str(script))
    except (OSError, SyntaxError, ValueError):
        return []
    default_auth = "function"
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node.func) == "FunctionApp":
            for keyword in node.keywords:
                if keyword.arg == "http_auth_level":
                    default_auth = (_literal(keyword.value) or default_auth).lower()
    found: list[FunctionInfo] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        route_call = None
        name = node.name
        for decorator in node.decorator_list:
            if not isinstance(decorator, ast.Call):
                continue
            kind = _call_name(decorator.func)
            if kind == "route":
                route_call = decorator
            elif kind == "function_name":
                given = decorator.args[0] if decorator.args else None
                for keyword in decorator.keywords:
                    if keyword.arg == "name":
                        given = keyword.value
                name = _literal(given) or name
        if route_call is None:
            continue
        route = _literal(route_call.args[0]) if route_call.args else None
        methods: tuple[str, ...] = ()
        auth = default_auth
        for keyword in route_call.keywords:
            if keyword.arg == "route":
                route = _literal(keyword.value)
            elif keyword.arg == "methods" and isinstance(keyword.value, ast.List | ast.Tuple):
                methods = tuple(
                    (_literal(item) or "").upper() for item in keyword.value.elts if _literal(item)
                )
            elif keyword.arg == "auth_level":
                auth = (_literal(keyword.value) or auth).lower()
        trigger_arg = node.args.args[0].arg if node.args.args else "req"
        found.append(FunctionInfo(name, route or name, methods, auth, trigger_arg))
    return sorted(found, key=lambda f: f.name)
