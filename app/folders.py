"""Which files make up a code folder, and its reproducible archive.

A model folder, a built function package and a package pushed to a registry
are all "the folder's files, minus what Python and tools leave behind". One
definition here keeps a package's digest, its build-context upload and its
copy in the sandbox registry in agreement. Pure standard library.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

from app.errors import BadInput

# By-products that are not part of a folder's content (Python writes __pycache__
# next to sources, so a folder that has run once would otherwise change).
SKIPPED_DIRS = frozenset(
    {"__pycache__", ".git", ".venv", "venv", ".pytest_cache", ".mypy_cache", ".ruff_cache",
     ".hypothesis"}
)
SKIPPED_SUFFIXES = (".pyc", ".pyo")


def folder_files(root: Path) -> list[tuple[str, Path]]:
    """The folder's regular files as (relative POSIX path, path), sorted by path.

    A symbolic link to a file inside the folder is that file's content; one that
    leads outside is refused, so nothing beyond the folder (an /etc/passwd, a key)
    is ever packaged, pushed or copied into a site.
    """
    inside = root.resolve()
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
        for filename in filenames:
            if filename.endswith(SKIPPED_SUFFIXES):
                continue
            path = Path(dirpath, filename)
            if path.is_symlink() and not path.resolve().is_relative_to(inside):
                raise BadInput(
                    f"{path} is a link to {os.readlink(path)}, outside {root}",
                    "Copy the file into the folder, or remove the link: files from "
                    "outside the folder are never packaged.",
                )
            if not path.is_file():
                # Sockets, fifos and dangling links have no content to carry.
                continue
            found.append((path.relative_to(root).as_posix(), path))
    found.sort(key=lambda item: item[0])
    return found


def pack_folder(files: list[tuple[str, Path]]) -> bytes:
    """A byte-for-byte reproducible tar.gz: fixed owner, times and order."""
    buffer = io.BytesIO()
    # mtime=0 in the gzip header too, or identical folders differ by the clock.
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for relative, path in files:
            info = tarfile.TarInfo(relative)
            info.size = path.stat().st_size
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.mtime = 0
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    return buffer.getvalue()
