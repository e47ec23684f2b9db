"""Stand-ins for the Azure Functions Python base images Microsoft Container Registry serves.

`mcr.microsoft.com/azure-functions/python:4-python3.X` is what a Functions
container starts from; the product imports it into the user's registry and adds
its own layers on top. The sandbox cannot download it (no network, and it is
hundreds of megabytes), so it serves a tiny image per tag with the same shape:
a single-platform Docker v2 manifest, one gzip'd tar layer (a README saying what
it stands for and an empty `home/site/wwwroot/`), and an image config whose
`config.Env` holds what the real one sets (`AzureWebJobsScriptRoot`, `HOME`,
`FUNCTIONS_WORKER_RUNTIME`, `PATH`, `PYTHON_VERSION`).

Two deliberate differences, both because the sandbox runs the image's code with
its own interpreter rather than in a container:
- `os`/`architecture` are this machine's (x86_64 -> amd64, aarch64 -> arm64);
- `PYTHON_VERSION` is the version of the Python the sandbox host runs, whatever
  the tag says (the real image inherits it from its python base image).

Everything is built from constants with fixed times and owners, so the bytes,
and therefore every digest, are the same on every run.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import platform
import sys
import tarfile
from dataclasses import dataclass

from app.sandbox.oci import DOCKER_CONFIG, DOCKER_MANIFEST, digest_of

REPOSITORY = "azure-functions/python"
TAGS = ("4-python3.10", "4-python3.11", "4-python3.12", "4-python3.13")
LAYER_MEDIA_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
# The host name the real images live at; the sandbox's import takes it as an alias.
MCR_HOST = "mcr.microsoft.com"
SCRIPT_ROOT = "/home/site/wwwroot"
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_PATH = "/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_README = """\
This image stands in for mcr.microsoft.com/azure-functions/python:{tag}.

It is served by the mlcache-deploy sandbox's base-registry stand-in. It holds no
Functions host: the sandbox runs a site's code with its own host process, using
this image's environment (AzureWebJobsScriptRoot, PYTHONPATH, ...) and the
files of the layers pushed on top of it.
"""


@dataclass(frozen=True)
class BaseImage:
    """One stand-in image: its manifest bytes and every blob it names."""

    tag: str
    manifest: bytes
    blobs: dict[str, bytes]

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)


def oci_architecture() -> str:
    machine = platform.machine().lower()
    return _ARCH.get(machine, machine)


def python_version() -> str:
    return ".".join(str(part) for part in sys.version_info[:3])


def _layer_tar(tag: str) -> bytes:
    """The uncompressed tar of the layer (its sha256 is the config's diff_id)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("azure-functions-host/", "home/", "home/site/", "home/site/wwwroot/"):
            info = tarfile.TarInfo(name.rstrip("/"))
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            info.mtime = 0
            tar.addfile(info)
        readme = _README.format(tag=tag).encode("utf-8")
        info = tarfile.TarInfo("azure-functions-host/README.txt")
        info.size = len(readme)
        info.mode = 0o644
        info.mtime = 0
        tar.addfile(info, io.BytesIO(readme))
    return buffer.getvalue()


def _gzip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
        gz.write(data)
    return buffer.getvalue()


def _build(tag: str) -> BaseImage:
    layer_tar = _layer_tar(tag)
    layer = _gzip(layer_tar)
    config = {
        "architecture": oci_architecture(),
        "os": "linux",
        "config": {
            "Env": [
                f"PATH={_PATH}",
                f"PYTHON_VERSION={python_version()}",
                f"AzureWebJobsScriptRoot={SCRIPT_ROOT}",
                "HOME=/home",
                "FUNCTIONS_WORKER_RUNTIME=python",
            ],
            "WorkingDir": "/",
        },
        "created": "1970-01-01T00:00:00Z",
        "rootfs": {
            "type": "layers",
            "diff_ids": [f"sha256:{hashlib.sha256(layer_tar).hexdigest()}"],
        },
        "history": [{"created": "1970-01-01T00:00:00Z", "comment": "sandbox stand-in"}],
    }
    config_bytes = json.dumps(config, indent=2, sort_keys=True).encode("utf-8")
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {
            "mediaType": DOCKER_CONFIG,
            "size": len(config_bytes),
            "digest": digest_of(config_bytes),
        },
        "layers": [
            {"mediaType": LAYER_MEDIA_TYPE, "size": len(layer), "digest": digest_of(layer)}
        ],
    }
    manifest_bytes = json.dumps(manifest, indent=3).encode("utf-8")
    return BaseImage(
        tag, manifest_bytes, {digest_of(config_bytes): config_bytes, digest_of(layer): layer}
    )


@functools.cache
def base_images() -> dict[str, BaseImage]:
    """Every stand-in image, by tag."""
    return {tag: _build(tag) for tag in TAGS}


def find_manifest(repository: str, reference: str) -> BaseImage | None:
    """The image a tag or manifest digest names; None for anything else."""
    if repository != REPOSITORY:
        return None
    images = base_images()
    if reference in images:
        return images[reference]
    return next((i for i in images.values() if i.digest == reference), None)


def find_blob(repository: str, digest: str) -> bytes | None:
    if repository != REPOSITORY:
        return None
    for image in base_images().values():
        if digest in image.blobs:
            return image.blobs[digest]
    return None
