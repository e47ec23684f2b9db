"""The model image's own layers, made on this machine with neither Docker nor ACR Tasks.

An image is its base's layers plus what the model adds. What it adds is files
under `/home/site/wwwroot`: the function app (template, model, requirements) and
the Python packages the requirements name, resolved by pip for the *site's*
platform and Python (`pip install --target --platform ... --only-binary=:all:`,
as Azure Functions Core Tools' local build does), so they come from Linux wheels
whatever machine builds them.

They travel as two layers, packages below the app: the packages (tens of MB)
change only when the requirements do, so a changed model file uploads a layer of
a few KB, and an unchanged model nothing at all. Both are byte-for-byte
reproducible (sorted entries, owner root, time 0, a gzip header without name or
time): the same input gives the same digest on any machine and run. The packages
layer is kept in the user's cache, keyed by what went into it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from app.errors import BadInput, Cancelled, ServiceFailure
from app.folders import folder_files

SCRIPT_ROOT = "home/site/wwwroot"
# Where Core Tools' local build puts packages, and the worker looks for them.
PACKAGES_ROOT = f"{SCRIPT_ROOT}/.python_packages/lib/site-packages"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
# Changed whenever the layers' layout changes, so cached packages layers are remade.
LAYER_FORMAT = 1
# Files of a built package that describe a Docker build, not the app.
_NOT_APP_FILES = frozenset({"Dockerfile", ".dockerignore"})
# Newest manylinux the layer asks pip for: glibc 2.28 runs on the Debian bullseye
# and bookworm bases of Functions v4 images; older tags are accepted too.
_MANYLINUX_NEWEST = 28
_MANYLINUX_OLDEST = 17
_OCI_ARCH_TO_WHEEL = {"amd64": "x86_64", "arm64": "aarch64"}
_NO_DISTRIBUTION = re.compile(r"No matching distribution found for ([^\s;]+)")
_PIP_TIMEOUT_S = 1800.0

LogLine = Callable[[str], None]


@dataclass(frozen=True)
class Platform:
    """What the site's container runs: OS, CPU and Python ("3.11"), read from the
    base image's config."""

    os: str
    architecture: str
    python: str

    def describe(self) -> str:
        return f"{self.os}/{self.architecture}, CPython {self.python}"

    def wheel_platforms(self) -> list[str]:
        if self.os != "linux" or self.architecture not in _OCI_ARCH_TO_WHEEL:
            raise BadInput(
                f"the base image is {self.os}/{self.architecture}, which the layer build "
                "cannot resolve packages for",
                'Set image.builder to "acr-tasks" to build in the cloud.',
            )
        arch = _OCI_ARCH_TO_WHEEL[self.architecture]
        tags = [f"manylinux_2_{minor}_{arch}"
                for minor in range(_MANYLINUX_NEWEST, _MANYLINUX_OLDEST - 1, -1)]
        return [*tags, f"manylinux2014_{arch}"]

    def pip_arguments(self) -> list[str]:
        args = []
        for tag in self.wheel_platforms():
            args += ["--platform", tag]
        return [*args, "--python-version", self.python, "--implementation", "cp",
                "--only-binary=:all:"]


def platform_of(config: dict[str, Any]) -> Platform:
    """The platform an image config describes; its Python from the `PYTHON_VERSION`
    the official python images set (the Functions images are built on them)."""
    env = dict(item.partition("=")[::2] for item in (config.get("config") or {}).get("Env") or [])
    version = env.get("PYTHON_VERSION", "")
    match = re.match(r"^(\d+)\.(\d+)", version)
    if match is None:
        raise ServiceFailure(
            "the base image's config names no PYTHON_VERSION, so the packages cannot be "
            "resolved for it")
    return Platform(str(config.get("os") or ""), str(config.get("architecture") or ""),
                    f"{match.group(1)}.{match.group(2)}")


@dataclass(frozen=True)
class Layer:
    """One gzipped tar layer on disk and its two names: `digest` (of the gzip, what
    the registry stores) and `diff_id` (of the tar, what the image config lists)."""

    path: Path
    digest: str
    diff_id: str
    size: int
    files: int

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": LAYER_MEDIA_TYPE, "digest": self.digest, "size": self.size}

    def as_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "diff_id": self.diff_id, "size": self.size,
                "files": self.files}


class _Hashing:
    """A write-only file that hashes and counts what passes through to `inner`."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()
        self.count = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.count += len(data)
        return self.inner.write(data)

    def tell(self) -> int:
        return self.count

    def flush(self) -> None:
        self.inner.flush()


def _directories(paths: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for path in paths:
        parts = path.split("/")[:-1]
        for end in range(1, len(parts) + 1):
            found.add("/".join(parts[:end]))
    return found


def write_layer(entries: list[tuple[str, Path]], out: Path) -> Layer:
    """Write (archive path, file) pairs as a reproducible tar.gz at `out`."""
    files = dict(entries)
    names = sorted({*files, *_directories(files)})
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as handle:
        compressed = _Hashing(handle)
        # No file name and time 0 in the gzip header: identical input, identical bytes.
        with gzip.GzipFile(filename="", fileobj=cast(Any, compressed), mode="wb", mtime=0,
                           compresslevel=6) as gz:
            plain = _Hashing(cast(IO[bytes], gz))
            with tarfile.open(fileobj=cast(Any, plain), mode="w",
                              format=tarfile.PAX_FORMAT) as tar:
                for name in names:
                    info = tarfile.TarInfo(name)
                    info.mtime = 0
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    source = files.get(name)
                    if source is None:
                        info.type = tarfile.DIRTYPE
                        info.mode = 0o755
                        tar.addfile(info)
                        continue
                    info.size = source.stat().st_size
                    info.mode = 0o755 if os.access(source, os.X_OK) else 0o644
                    with source.open("rb") as data:
                        tar.addfile(info, data)
    return Layer(out, f"sha256:{compressed.hash.hexdigest()}",
                 f"sha256:{plain.hash.hexdigest()}", compressed.count, len(files))


def app_layer(package_dir: Path, out: Path) -> Layer:
    """The function app (a built package: template, model/, requirements) as the
    layer that puts it at /home/site/wwwroot."""
    entries = [(f"{SCRIPT_ROOT}/{relative}", path)
               for relative, path in folder_files(package_dir)
               if relative not in _NOT_APP_FILES]
    return write_layer(entries, out)


# ------------------------------------------------------------------ packages


def _requirement_lines(requirements: Iterable[str]) -> list[str]:
    return [line for line in requirements if line.strip()]


def packages_key(requirements: Iterable[str], platform: Platform,
                 constraints: Iterable[str] = ()) -> str:
    """What a packages layer is cached under: its format, platform, requirements and
    the pins they are resolved under."""
    text = json.dumps({"format": LAYER_FORMAT, "platform": platform.describe(),
                       "wheel_platforms": platform.wheel_platforms(),
                       "requirements": _requirement_lines(requirements),
                       "constraints": _requirement_lines(constraints)}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _no_wheel(output: list[str], platform: Platform) -> BadInput | None:
    for line in reversed(output):
        match = _NO_DISTRIBUTION.search(line)
        if match:
            package = match.group(1)
            return BadInput(
                f"requirements.txt: {package} has no wheel for {platform.describe()}, "
                "and the layer build installs wheels only (it compiles nothing); "
                "nothing was uploaded",
                f'Pin a version of {package} that publishes Linux wheels, or set '
                'image.builder to "acr-tasks" (a cloud Docker build can compile it), or '
                "build the image elsewhere and set image.reference to it.",
            )
    return None


def resolve_packages(requirements: list[str], platform: Platform, target: Path,
                     pip_cache: Path, log_line: LogLine,
                     check_cancelled: Callable[[], None],
                     constraints: Iterable[str] = ()) -> None:
    """`pip install --target` for the site's platform, with pip's own configuration
    (index, proxy, certificates) and wheels cached under `pip_cache`; `constraints`
    (the template's pins) go to pip as `-c`, so a rebuild resolves the same versions."""
    target.mkdir(parents=True, exist_ok=True)
    lines = _requirement_lines(requirements)
    if not any(not line.startswith("-") for line in lines):
        return
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False,
                                     encoding="utf-8") as listing:
        listing.write("\n".join(lines) + "\n")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False,
                                     encoding="utf-8") as pins:
        pins.write("".join(line + "\n" for line in _requirement_lines(constraints)))
    command = [sys.executable, "-m", "pip", "install", "--target", str(target),
               *platform.pip_arguments(), "--no-compile", "--disable-pip-version-check",
               "--no-input", "--progress-bar", "off", "--no-warn-script-location",
               "--cache-dir", str(pip_cache), "-r", listing.name, "-c", pins.name]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    output: list[str] = []
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, text=True, errors="replace",
                                   env=env)
    except OSError as exc:
        os.unlink(listing.name)
        os.unlink(pins.name)
        raise ServiceFailure(f"cannot run pip: {exc.strerror}") from None
    try:
        assert process.stdout is not None
        with process.stdout:
            for raw in process.stdout:
                text = raw.rstrip()
                if text:
                    output.append(text)
                    log_line(f"pip: {text}")
                check_cancelled()
        code = process.wait(timeout=_PIP_TIMEOUT_S)
    except (Cancelled, subprocess.TimeoutExpired):
        process.kill()
        process.wait()
        raise
    finally:
        os.unlink(listing.name)
        os.unlink(pins.name)
    if code != 0:
        problem = _no_wheel(output, platform)
        if problem is not None:
            raise problem
        tail = "; ".join(line for line in output[-3:])
        raise ServiceFailure(f"pip could not resolve the requirements for "
                             f"{platform.describe()} (exit {code}): {tail}")


def packages_layer(requirements: list[str], platform: Platform, cache_root: Path,
                   log_line: LogLine, check_cancelled: Callable[[], None],
                   constraints: Iterable[str] = ()) -> tuple[Layer, bool]:
    """The packages layer for these requirements (resolved under `constraints`) and
    platform, and whether it came from the cache. Made in a scratch folder and moved
    into the cache whole."""
    key = packages_key(requirements, platform, constraints)
    layers = cache_root / "layers"
    path, meta = layers / f"packages-{key}.tar.gz", layers / f"packages-{key}.json"
    try:
        known = json.loads(meta.read_text(encoding="utf-8"))
        if path.stat().st_size == known["size"]:
            return Layer(path, known["digest"], known["diff_id"], known["size"],
                         known["files"]), True
    except (OSError, ValueError, KeyError, TypeError):
        pass
    layers.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="packages-", dir=layers))
    try:
        site = scratch / "site-packages"
        resolve_packages(requirements, platform, site, cache_root / "pip", log_line,
                         check_cancelled, constraints)
        # Console scripts carry this machine's interpreter path; the site has its own.
        shutil.rmtree(site / "bin", ignore_errors=True)
        entries = [(f"{PACKAGES_ROOT}/{relative}", file) for relative, file in folder_files(site)]
        layer = write_layer(entries, scratch / "layer.tar.gz")
        os.replace(layer.path, path)
        staged = meta.with_suffix(".tmp")
        staged.write_text(json.dumps(layer.as_json()), encoding="utf-8")
        os.replace(staged, meta)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return Layer(path, layer.digest, layer.diff_id, layer.size, layer.files), False
