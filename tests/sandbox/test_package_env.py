"""The environment a pushed package (which carries no packages) runs on: real pip,
reading only a local folder of wheels, once per requirements."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from app.sandbox.providers.package_env import (
    EnvironmentFailed,
    environment_key,
    package_environment,
)


def _wheel(folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    dist = f"{name}-1.0.dist-info"
    files = {f"{name}/__init__.py": "VALUE = 'installed'\n",
             f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\n"
                              "Tag: py3-none-any\n"}
    record = "".join(f"{path},,\n" for path in files) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(folder / f"{name}-1.0-py3-none-any.whl", "w") as wheel:
        for path, text in {**files, f"{dist}/RECORD": record}.items():
            wheel.writestr(path, text)


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    links = tmp_path / "links"
    _wheel(links, "pushedpkg")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    root = tmp_path / "package"
    root.mkdir()
    (root / "function_app.py").write_text("import pushedpkg\n")
    (root / "requirements.txt").write_text("pushedpkg\n")
    return root


def test_made_once_per_requirements_and_reused(package: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    site = package_environment(package, tmp_path / "envs", lines.append)
    assert (site / "pushedpkg" / "__init__.py").read_text() == "VALUE = 'installed'\n"
    assert lines and "requirements.txt" in lines[0]
    marker = (site.parent / ".complete").stat().st_ino
    again: list[str] = []
    assert package_environment(package, tmp_path / "envs", again.append) == site
    assert again == [] and (site.parent / ".complete").stat().st_ino == marker
    # Other requirements, another environment.
    key = environment_key(package)
    (package / "requirements.txt").write_text("pushedpkg\n# changed\n")
    assert environment_key(package) != key


def test_a_requirement_pip_cannot_find_fails_naming_it_and_leaves_nothing(
    package: Path, tmp_path: Path
) -> None:
    (package / "requirements.txt").write_text("pushedpkg\nnot-published-anywhere\n")
    with pytest.raises(EnvironmentFailed) as failed:
        package_environment(package, tmp_path / "envs", lambda _line: None)
    assert "not-published-anywhere" in str(failed.value)
    assert list((tmp_path / "envs").iterdir()) == []
