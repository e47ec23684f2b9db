"""A pulled image's root filesystem, unpacked once per manifest digest, for a site to run.

App Service runs a Functions image as a container: its layers stacked into one
filesystem, its config's `Env` in the environment, the Functions host serving
the script root (`AzureWebJobsScriptRoot`, `/home/site/wwwroot` in Microsoft's
base images). The sandbox has no containers, so it unpacks each layer once per
machine (`unpacked_layer`, by layer digest, as a container host keeps its layers)
and stacks them in order into `<cache>/<manifest hex>/` with hard links (once per
image: a layer can unpack to hundreds of megabytes; sites and restarts share the
tree, never copy it) and runs its own
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


def _apply_layer(layer: Path, root: Path, budget: list[int],
                 whiteouts: list[str] | None = None) -> None:
    """Extract one layer over `root`; its whiteouts are applied, or, with `whiteouts`
    given, listed there (image paths) for whoever stacks the layer later."""
    try:
        with tarfile.open(layer, mode="r:*") as tar:
            members = []
            for member in tar:
                name = posixpath.normpath(member.name.lstrip("/"))
                if posixpath.basename(name).startswith(".wh."):
                    if whiteouts is not None:
                        whiteouts.append("/" + name)
                    else:
                        _whiteout(root, "/" + name)
                    continue
                budget[0] -= max(member.size, 0)
                if budget[0] < 0:
                    raise RootfsError("the image unpacks to more than 4 GiB")
                members.append(member)
            tar.extractall(root, members=members, filter=_skip_refused)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise RootfsError(f"layer {layer.name} is not a readable tar archive: {exc}") from None


def _whiteout(root: Path, image_path: str) -> None:
    parent, base = posixpath.split(image_path)
    if base == ".wh..wh..opq":
        folder = _inside(root, parent)
        if folder.is_dir() and _within(root, folder):
            for child in folder.iterdir():
                _remove(child)
        return
    target = _inside(root, posixpath.join(parent, base[4:]))
    if _within(root, target.parent):
        _remove(target)


def unpacked_layer(blob: Path, digest: str, layers: Path,
                   budget: list[int]) -> tuple[Path, list[str]]:
    """One layer unpacked alone under `layers/<hex>/tree`, once per machine (a layer
    is named by its content), and the whiteouts it carries."""
    final = layers / digest.removeprefix("sha256:")
    with _lock_for(str(final)):
        if not (final / _COMPLETE).is_file():
            layers.mkdir(parents=True, exist_ok=True)
            staging = layers / f".unpack-{uuid.uuid4().hex}"
            try:
                whiteouts: list[str] = []
                (staging / "tree").mkdir(parents=True)
                _apply_layer(blob, staging / "tree", budget, whiteouts)
                (staging / "whiteouts.json").write_text(json.dumps(whiteouts), encoding="utf-8")
                (staging / _COMPLETE).write_text(digest, encoding="utf-8")
                shutil.rmtree(final, ignore_errors=True)
                staging.rename(final)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    try:
        listed = json.loads((final / "whiteouts.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise RootfsError(f"the unpacked layer {digest} is incomplete") from None
    return final / "tree", [str(item) for item in listed]


def _link_tree(tree: Path, root: Path) -> None:
    """Stack `tree` over `root` with hard links (a copy across file systems): later
    layers win, as in a container's overlay."""
    for folder, dirnames, filenames in os.walk(tree):
        relative = os.path.relpath(folder, tree)
        target = root / relative if relative != "." else root
        if target.is_symlink() or target.is_file():
            target.unlink()
        target.mkdir(parents=True, exist_ok=True)
        for name in [*filenames, *(d for d in dirnames if (Path(folder) / d).is_symlink())]:
            source, dest = Path(folder) / name, target / name
            if dest.is_symlink() or dest.is_file():
                dest.unlink()
            elif dest.is_dir():
                shutil.rmtree(dest)
            if source.is_symlink():
                dest.symlink_to(os.readlink(source))
                continue
            try:
                os.link(source, dest)
            except OSError:
                shutil.copy2(source, dest)


def unpack_image(images: ImageStore, manifest: StoredManifest, cache: Path,
                 layers: Path | None = None) -> ImageRoot:
    """The image's tree under `cache` (made now if this digest never was): each layer
    unpacked once under `layers` (default: beside `cache`) and stacked with links."""
    layers = layers if layers is not None else cache / "layers"
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
                    digest = str(layer["digest"])
                    tree, whiteouts = unpacked_layer(images.blob_path(registry, digest),
                                                     digest, layers, budget)
                    for path in whiteouts:
                        _whiteout(rootfs, path)
                    _link_tree(tree, rootfs)
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
