"""A pulled image's root filesystem, unpacked once per manifest digest, for a site to run.

App Service runs a Functions image as a container: its layers stacked into one
filesystem, its config's `Env` in the environment, the Functions host serving
the script root (`AzureWebJobsScriptRoot`, `/home/site/wwwroot` in Microsoft's
base images). The sandbox has no containers, so it unpacks the layers in order
into `<cache>/<manifest hex>/` (once: a layer can unpack to hundreds of
megabytes; sites and restarts share the tree, never copy it) and runs its own
`FunctionHost` on the script root inside that tree, with the image's
`PYTHONPATH` entries (mapped under the tree) first on the host's `sys.path`.

Extraction is safe: tarfile's "data" filter, members it refuses (absolute or
escaping links, device files) are skipped rather than failing the pull, and OCI
whiteouts are honoured minimally: `.wh.<name>` removes `<name>` from the layers
below, `.wh..wh..opq` empties its folder.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import tarfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.sandbox.oci import ImageStore, StoredManifest

DEFAULT_SCRIPT_ROOT = "/home/site/wwwroot"
MAX_UNPACKED_BYTES = 4 * 1024 * 1024 * 1024
# Path-valued variables whose value names a place inside the image.
_MAPPED = ("AzureWebJobsScriptRoot", "HOME")
# The host's own process needs these from this machine, not from the image.
_NOT_PASSED = ("PATH", "PYTHONPATH")
_COMPLETE = ".complete"

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


class RootfsError(Exception):
    """The image cannot be unpacked; the message says why (for the site's log)."""


@dataclass(frozen=True)
class ImageRoot:
    """Where a site's host runs an image: its script root, sys.path head, environment."""

    root: Path
    script_root: Path
    python_path: tuple[Path, ...]
    environment: dict[str, str]


def _inside(root: Path, image_path: str) -> Path:
    """`image_path` (absolute inside the image) as a path under `root`."""
    relative = posixpath.normpath("/" + image_path).lstrip("/")
    return root / relative if relative else root


def _image_env(config: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in (config.get("config") or {}).get("Env") or []:
        key, sep, value = str(item).partition("=")
        if sep and key:
            env[key] = value
    return env


def _lock_for(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def _skip_refused(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    try:
        return tarfile.data_filter(member, dest)
    except tarfile.FilterError:
        return None


def _within(root: Path, path: Path) -> bool:
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root + os.sep)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def _apply_layer(layer: Path, root: Path, budget: list[int]) -> None:
    try:
        with tarfile.open(layer, mode="r:*") as tar:
            members = []
            for member in tar:
                name = posixpath.normpath(member.name.lstrip("/"))
                parent, base = posixpath.split(name)
                if base == ".wh..wh..opq":
                    folder = _inside(root, parent)
                    if folder.is_dir() and _within(root, folder):
                        for child in folder.iterdir():
                            _remove(child)
                    continue
                if base.startswith(".wh."):
                    target = _inside(root, posixpath.join(parent, base[4:]))
                    if _within(root, target.parent):
                        _remove(target)
                    continue
                budget[0] -= max(member.size, 0)
                if budget[0] < 0:
                    raise RootfsError("the image unpacks to more than 4 GiB")
                members.append(member)
            tar.extractall(root, members=members, filter=_skip_refused)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise RootfsError(f"layer {layer.name} is not a readable tar archive: {exc}") from None


def unpack_image(images: ImageStore, manifest: StoredManifest, cache: Path) -> ImageRoot:
    """The image's tree under `cache` (unpacked now if this digest never was)."""
    document = manifest.document()
    registry = manifest.registry
    try:
        config_path = images.blob_path(registry, str(document["config"]["digest"]))
        config = json.loads(config_path.read_bytes())
    except (OSError, ValueError, KeyError, TypeError):
        raise RootfsError("the image config cannot be read") from None
    if not isinstance(config, dict):
        raise RootfsError("the image config is not a JSON object")
    final = cache / manifest.digest.removeprefix("sha256:")
    with _lock_for(str(final)):
        if not (final / _COMPLETE).is_file():
            cache.mkdir(parents=True, exist_ok=True)
            staging = cache / f".unpack-{uuid.uuid4().hex}"
            rootfs = staging / "rootfs"
            rootfs.mkdir(parents=True)
            try:
                budget = [MAX_UNPACKED_BYTES]
                for layer in document.get("layers") or []:
                    _apply_layer(images.blob_path(registry, str(layer["digest"])), rootfs, budget)
                (staging / _COMPLETE).write_text(manifest.digest, encoding="utf-8")
                shutil.rmtree(final, ignore_errors=True)
                staging.rename(final)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    root = final / "rootfs"
    env = _image_env(config)
    script_root = _inside(root, env.get("AzureWebJobsScriptRoot") or DEFAULT_SCRIPT_ROOT)
    python_path = tuple(
        _inside(root, entry) for entry in env.get("PYTHONPATH", "").split(":")
        if entry.startswith("/")
    )
    environment = {k: v for k, v in env.items() if k not in _NOT_PASSED}
    for key in _MAPPED:
        if environment.get(key, "").startswith("/"):
            environment[key] = str(_inside(root, environment[key]))
    return ImageRoot(root, script_root, python_path, environment)
