"""The layer builder: reproducible layers, packages resolved by pip for the site's
platform from pip's own configuration, a requirement without a wheel refused."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from app.errors import BadInput
from app.services.image_layers import (
    PACKAGES_ROOT,
    Platform,
    app_layer,
    packages_layer,
    platform_of,
    write_layer,
)

SITE = Platform("linux", "amd64", "3.11")


def _tree(root: Path, mtime: int, mode: int) -> Path:
    for relative, text in (("function_app.py", "app = 1\n"), ("model/model.joblib", "weights"),
                           ("Dockerfile", "FROM x\n"), ("host.json", "{}")):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        path.chmod(mode)
        os.utime(path, (mtime, mtime))
    return root


def _members(path: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(path, "r:gz") as tar:
        return tar.getmembers()


def test_the_same_files_make_the_same_layer_whatever_their_times(tmp_path: Path) -> None:
    first = app_layer(_tree(tmp_path / "a", 1_000, 0o644), tmp_path / "a.tar.gz")
    second = app_layer(_tree(tmp_path / "b", 2_000_000, 0o664), tmp_path / "b.tar.gz")
    assert first.digest == second.digest
    assert first.path.read_bytes() == second.path.read_bytes()
    data = first.path.read_bytes()
    assert first.digest == f"sha256:{hashlib.sha256(data).hexdigest()}"
    assert first.diff_id == f"sha256:{hashlib.sha256(gzip.decompress(data)).hexdigest()}"
    assert data[4:8] == b"\0\0\0\0"  # the gzip header's time
    names = [m.name for m in _members(first.path)]
    assert names == sorted(names)
    assert "home/site/wwwroot/function_app.py" in names
    assert "home/site/wwwroot/model/model.joblib" in names
    assert "home/site/wwwroot" in names  # directories are entries of their own
    assert not any(name.endswith("Dockerfile") for name in names)
    assert {(m.uid, m.gid, m.mtime, m.uname) for m in _members(first.path)} == {(0, 0, 0, "")}


def test_a_changed_file_changes_the_layer(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "a", 0, 0o644)
    before = app_layer(tree, tmp_path / "before.tar.gz")
    (tree / "model" / "model.joblib").write_text("new weights", encoding="utf-8")
    after = app_layer(tree, tmp_path / "after.tar.gz")
    assert before.digest != after.digest


def _wheel(folder: Path, name: str, version: str = "1.0") -> None:
    """A minimal pure-Python wheel, as any build backend writes one."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": f"VALUE = {version!r}\n",
             f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\n"
                              "Tag: py3-none-any\n"}
    record = "".join(f"{path},,\n" for path in files) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as wheel:
        for path, text in {**files, f"{dist}/RECORD": record}.items():
            wheel.writestr(zipfile.ZipInfo(path, (1980, 1, 1, 0, 0, 0)), text)


@pytest.fixture
def local_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip configured, through its environment, to read only a local folder."""
    links = tmp_path / "links"
    _wheel(links, "tinymodelpkg")
    sdist = io.BytesIO()
    with tarfile.open(fileobj=sdist, mode="w:gz") as tar:
        info = tarfile.TarInfo("onlysource-1.0/PKG-INFO")
        body = b"Metadata-Version: 2.1\nName: onlysource\nVersion: 1.0\n"
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    (links / "onlysource-1.0.tar.gz").write_bytes(sdist.getvalue())
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    return links


def test_packages_come_from_pips_configuration_into_the_site_packages_folder(
    local_index: Path, tmp_path: Path
) -> None:
    lines: list[str] = []
    layer, cached = packages_layer(["tinymodelpkg"], SITE, tmp_path / "cache", lines.append,
                                   lambda: None)
    assert not cached
    names = [m.name for m in _members(layer.path)]
    assert f"{PACKAGES_ROOT}/tinymodelpkg/__init__.py" in names
    assert not any(name.endswith(".pyc") for name in names)
    assert any("tinymodelpkg" in line for line in lines)

    again, cached = packages_layer(["tinymodelpkg"], SITE, tmp_path / "cache", lines.append,
                                   lambda: None)
    assert cached and again.digest == layer.digest
    # Made afresh in another cache, the same layer: the digest is the content's.
    fresh, cached = packages_layer(["tinymodelpkg"], SITE, tmp_path / "other", lines.append,
                                   lambda: None)
    assert not cached and fresh.digest == layer.digest


def test_a_requirement_without_a_wheel_is_named_and_nothing_is_kept(
    local_index: Path, tmp_path: Path
) -> None:
    with pytest.raises(BadInput) as refused:
        packages_layer(["tinymodelpkg", "onlysource"], SITE, tmp_path / "cache",
                       lambda _line: None, lambda: None)
    message = refused.value.message
    assert "onlysource has no wheel for linux/amd64, CPython 3.11" in message
    assert "nothing was uploaded" in message
    assert "acr-tasks" in refused.value.recommendation
    assert not list((tmp_path / "cache" / "layers").glob("*.tar.gz"))


def test_the_platform_is_read_from_the_base_images_config() -> None:
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Env": ["PATH=/usr/local/bin:/usr/bin", "PYTHON_VERSION=3.11.14",
                                 "HOME=/home"]}}
    platform = platform_of(config)
    assert platform == SITE
    arguments = platform.pip_arguments()
    assert arguments[arguments.index("--python-version") + 1] == "3.11"
    assert "manylinux2014_x86_64" in arguments and "manylinux_2_28_x86_64" in arguments
    with pytest.raises(BadInput, match="windows/amd64"):
        Platform("windows", "amd64", "3.11").pip_arguments()


def test_write_layer_lists_each_folder_once_before_its_files(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("x", encoding="utf-8")
    layer = write_layer([("a/b/x.txt", tmp_path / "x.txt"), ("a/y.txt", tmp_path / "x.txt")],
                        tmp_path / "l.tar.gz")
    assert [(m.name, m.isdir()) for m in _members(layer.path)] == [
        ("a", True), ("a/b", True), ("a/b/x.txt", False), ("a/y.txt", False)]
    assert layer.files == 2


def test_the_templates_pins_hold_the_resolved_version_and_name_the_layer(
    local_index: Path, tmp_path: Path
) -> None:
    """A release made after the pins changes nothing: pip gets them with -c."""
    _wheel(local_index, "tinymodelpkg", "2.0")  # released since
    newest, _ = packages_layer(["tinymodelpkg"], SITE, tmp_path / "cache", lambda _l: None,
                               lambda: None)
    pinned, cached = packages_layer(["tinymodelpkg"], SITE, tmp_path / "cache",
                                    lambda _l: None, lambda: None, ["tinymodelpkg==1.0"])
    assert not cached and pinned.digest != newest.digest

    def version_in(layer_path: Path) -> str:
        with tarfile.open(layer_path) as tar:
            member = tar.extractfile(f"{PACKAGES_ROOT}/tinymodelpkg/__init__.py")
            assert member is not None
            return member.read().decode()

    assert version_in(newest.path) == "VALUE = '2.0'\n"
    assert version_in(pinned.path) == "VALUE = '1.0'\n"
