"""The sandbox registry's package store: digests, tags, archives, deletion."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from app.errors import BadInput
from app.sandbox.registry import (
    PackageError,
    PackageStore,
    pack_package,
    package_digest,
    parse_push_reference,
    unpack_package,
)


def _package(root: Path, body: str = "print('hello')\n") -> Path:
    (root / "scoring").mkdir(parents=True)
    (root / "function_app.py").write_text(body)
    (root / "scoring" / "model.bin").write_bytes(b"\x00\x01model")
    return root


def test_digest_is_content_addressed_and_ignores_bytecode(tmp_path: Path) -> None:
    first = _package(tmp_path / "a")
    second = _package(tmp_path / "b")
    digest = package_digest(first)
    assert digest.startswith("sha256:") and len(digest) == len("sha256:") + 64
    assert package_digest(second) == digest

    (second / "__pycache__").mkdir()
    (second / "__pycache__" / "function_app.cpython-311.pyc").write_bytes(b"junk")
    assert package_digest(second) == digest

    (second / "function_app.py").write_text("print('changed')\n")
    assert package_digest(second) != digest


def test_digest_depends_on_paths_not_only_bytes(tmp_path: Path) -> None:
    first = _package(tmp_path / "a")
    second = _package(tmp_path / "b")
    (second / "scoring" / "model.bin").rename(second / "scoring" / "other.bin")
    assert package_digest(first) != package_digest(second)


def test_push_resolve_by_tag_and_digest(tmp_path: Path) -> None:
    store = PackageStore(tmp_path / "store")
    source = _package(tmp_path / "pkg")
    digest = store.push_directory("MyAcr01", "ml/score", "v1", source)

    by_tag = store.resolve("myacr01", "ml/score", "v1")
    assert by_tag is not None and by_tag.digest == digest
    assert (by_tag.path / "function_app.py").read_text() == "print('hello')\n"
    by_digest = store.resolve("myacr01", "ml/score", digest)
    assert by_digest is not None and by_digest.path == by_tag.path
    assert store.resolve("myacr01", "ml/score", "v2") is None
    assert store.resolve("myacr01", "other", "v1") is None
    assert store.resolve("otheracr", "ml/score", "v1") is None
    assert store.repositories("myacr01") == ["ml/score"]
    assert store.tags("myacr01", "ml/score") == ["v1"]
    assert store.tags("myacr01", "missing") is None


def test_retag_moves_tag_and_keeps_old_digest(tmp_path: Path) -> None:
    store = PackageStore(tmp_path / "store")
    old = store.push_directory("myacr01", "app", "latest", _package(tmp_path / "one"))
    new = store.push_directory(
        "myacr01", "app", "latest", _package(tmp_path / "two", "print('v2')\n")
    )
    assert old != new
    latest = store.resolve("myacr01", "app", "latest")
    assert latest is not None and latest.digest == new
    assert store.resolve("myacr01", "app", old) is not None
    store.push_directory("myacr01", "app", "stable", _package(tmp_path / "three"))
    assert store.tags("myacr01", "app") == ["latest", "stable"]


def test_archive_roundtrip_and_reproducible(tmp_path: Path) -> None:
    source = _package(tmp_path / "pkg")
    archive = pack_package(source)
    assert archive == pack_package(source)
    store = PackageStore(tmp_path / "store")
    digest = store.push_archive("myacr01", "app", "v1", archive)
    assert digest == package_digest(source)
    found = store.resolve("myacr01", "app", "v1")
    assert found is not None
    assert (found.path / "scoring" / "model.bin").read_bytes() == b"\x00\x01model"


def _archive_with(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data) if data else None)
    return buffer.getvalue()


def test_unpack_refuses_escaping_paths_and_links(tmp_path: Path) -> None:
    escaping = tarfile.TarInfo("../evil.py")
    with pytest.raises(PackageError):
        unpack_package(_archive_with(escaping, b"x"), tmp_path / "dest1")
    assert not (tmp_path / "evil.py").exists()

    link = tarfile.TarInfo("link")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    with pytest.raises(PackageError, match="not a file or folder"):
        unpack_package(_archive_with(link), tmp_path / "dest2")

    with pytest.raises(PackageError, match="not a readable package archive"):
        unpack_package(b"not a tarball", tmp_path / "dest3")


def test_push_archive_refuses_empty(tmp_path: Path) -> None:
    store = PackageStore(tmp_path / "store")
    empty = io.BytesIO()
    with tarfile.open(fileobj=empty, mode="w:gz"):
        pass
    with pytest.raises(PackageError, match="no files"):
        store.push_archive("myacr01", "app", "v1", empty.getvalue())
    assert store.repositories("myacr01") == []


def test_delete_registry_removes_packages(tmp_path: Path) -> None:
    store = PackageStore(tmp_path / "store")
    store.push_directory("myacr01", "app", "v1", _package(tmp_path / "pkg"))
    store.push_directory("keepacr1", "app", "v1", _package(tmp_path / "pkg2"))
    store.delete_registry("MYACR01")
    assert store.repositories("myacr01") == []
    assert store.resolve("myacr01", "app", "v1") is None
    assert not (tmp_path / "store" / "myacr01").exists()
    assert store.resolve("keepacr1", "app", "v1") is not None
    assert list(store.iter_registries()) == ["keepacr1"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("docker.io/library/python:3", "login server"),
        ("myacr01.azurecr.io/app", "must end with :tag"),
        ("myacr01.azurecr.io/App:v1", "lowercase"),
        ("myacr01.azurecr.io/app@sha256:" + "a" * 64, "needs a tag"),
        ("myacr01.azurecr.io/app:v1@sha256:" + "a" * 64, "only a tag"),
    ],
)
def test_push_reference_errors_are_bad_input(text: str, fragment: str) -> None:
    with pytest.raises(BadInput, match=fragment):
        parse_push_reference(text)


def test_push_reference_lowercases_registry() -> None:
    image = parse_push_reference("MyAcr01.azurecr.io/ml/score:v1")
    assert image.registry == "myacr01" and image.repository == "ml/score" and image.tag == "v1"
