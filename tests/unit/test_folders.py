"""A folder's files and its archive: by-products left out, bytes reproducible."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from app.folders import folder_files, pack_folder


def make_folder(root: Path) -> None:
    (root / "model").mkdir(parents=True)
    (root / "score.py").write_text("def init(): ...\n")
    (root / "model" / "weights.bin").write_bytes(b"\x00\x01")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "score.cpython-311.pyc").write_bytes(b"x")
    (root / "stale.pyc").write_bytes(b"x")
    os.symlink(root / "missing", root / "dangling")


def test_files_skip_by_products_and_are_sorted(tmp_path: Path) -> None:
    make_folder(tmp_path)
    assert [rel for rel, _ in folder_files(tmp_path)] == ["model/weights.bin", "score.py"]


def test_archive_is_reproducible_and_complete(tmp_path: Path) -> None:
    make_folder(tmp_path)
    first = pack_folder(folder_files(tmp_path))
    os.utime(tmp_path / "score.py", (1, 1))
    assert pack_folder(folder_files(tmp_path)) == first
    assert first[4:8] == b"\x00\x00\x00\x00"  # gzip header time: none
    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["model/weights.bin", "score.py"]
        assert all(m.mtime == 0 and m.uid == 0 for m in members)
        extracted = tar.extractfile("model/weights.bin")
        assert extracted is not None and extracted.read() == b"\x00\x01"


def test_a_link_leading_outside_the_folder_is_refused_and_one_inside_is_content(
    tmp_path: Path,
) -> None:
    import pytest

    from app.errors import BadInput

    root = tmp_path / "model"
    make_folder(root)
    (root / "copy.py").symlink_to(root / "score.py")
    names = [name for name, _ in folder_files(root)]
    assert "copy.py" in names
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the image\n")
    (root / "leak.txt").symlink_to(secret)
    with pytest.raises(BadInput, match="outside"):
        folder_files(root)
    (root / "leak.txt").unlink()
    (root / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(BadInput, match="outside"):
        pack_folder(folder_files(root))
