"""Pieces of the function-app runtime that need no sandbox: image names, function scan."""

from __future__ import annotations

from pathlib import Path

from app.sandbox.providers.package_functions import scan_functions
from app.sandbox.providers.web_runtime import image_of


def test_image_of_linux_fx_version() -> None:
    assert image_of("DOCKER|myacr01.azurecr.io/app:v1") == "myacr01.azurecr.io/app:v1"
    assert image_of("docker| myacr01.azurecr.io/app:v1 ") == "myacr01.azurecr.io/app:v1"
    assert image_of("PYTHON|3.11") is None
    assert image_of("DOCKER|") is None
    assert image_of("") is None


def test_scan_functions_reads_decorators(tmp_path: Path) -> None:
    (tmp_path / "function_app.py").write_text(
        """
import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.function_name(name="Scorer")
@app.route(route="score/{id}", methods=[func.HttpMethod.POST, "get"])
def score(request: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("x")


@app.route("health", auth_level=func.AuthLevel.ADMIN)
async def health(req):
    return None


def helper():
    return 1
"""
    )
    found = scan_functions(tmp_path)
    assert [(f.name, f.route, f.methods, f.auth_level, f.trigger_arg) for f in found] == [
        ("Scorer", "score/{id}", ("POST", "GET"), "anonymous", "request"),
        ("health", "health", (), "admin", "req"),
    ]


def test_scan_functions_without_a_readable_app(tmp_path: Path) -> None:
    assert scan_functions(tmp_path) == []
    (tmp_path / "function_app.py").write_text("def broken(:\n")
    assert scan_functions(tmp_path) == []
