"""The packages of a function package that carries none: made once per requirements.

An image built by the layer builder brings its packages in a layer, and the
function host runs on those alone. A package stored by `sandbox push` or by the
ACR Tasks emulation is the build context only: on Azure, the Dockerfile's
`RUN pip install -r requirements.txt` puts the packages into the image. The
sandbox does that step here, with this machine's interpreter and pip (pip's own
configuration: index, proxy, certificates), into a folder under the user's cache
keyed by the interpreter, the requirements and the constraints, so every site and
sandbox running the same requirements reuses one folder, as a layer is reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

REQUIREMENTS = "requirements.txt"
CONSTRAINTS = "constraints.txt"
_COMPLETE = ".complete"
_PIP_TIMEOUT_S = 1800.0
_locks: dict[Path, threading.Lock] = {}
_guard = threading.Lock()


class EnvironmentFailed(Exception):
    """pip could not install the package's requirements; the message ends with its output."""


def environment_key(package_dir: Path) -> str:
    """What the folder is cached under: the interpreter, and the requirement and
    constraint files' text (none: an empty environment)."""
    files = {name: (package_dir / name).read_text(encoding="utf-8")
             for name in (REQUIREMENTS, CONSTRAINTS) if (package_dir / name).is_file()}
    text = json.dumps({"python": sys.version, "machine": platform.machine(),
                       "files": files}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def package_environment(package_dir: Path, cache: Path,
                        log_line: Callable[[str], None]) -> Path:
    """The site-packages folder holding `package_dir`'s requirements, made now if no
    earlier site asked for the same ones."""
    final = cache / environment_key(package_dir)
    with _guard:
        lock = _locks.setdefault(final, threading.Lock())
    with lock:
        if (final / _COMPLETE).is_file():
            return final / "site-packages"
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".env-", dir=cache))
        try:
            site = staging / "site-packages"
            site.mkdir()
            if (package_dir / REQUIREMENTS).is_file():
                log_line(f"Installing the packages of {REQUIREMENTS} (once for these "
                         "requirements; later starts reuse them)")
                _pip_install(package_dir, site)
            (staging / _COMPLETE).write_text("", encoding="utf-8")
            shutil.rmtree(final, ignore_errors=True)
            staging.rename(final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final / "site-packages"


def _pip_install(package_dir: Path, site: Path) -> None:
    command = [sys.executable, "-m", "pip", "install", "--target", str(site), "--no-compile",
               "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
               "--no-warn-script-location", "-r", str(package_dir / REQUIREMENTS)]
    if (package_dir / CONSTRAINTS).is_file():
        command += ["-c", str(package_dir / CONSTRAINTS)]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, errors="replace",
                              stdin=subprocess.DEVNULL, env=env, timeout=_PIP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentFailed(f"pip could not run: {exc}") from None
    if done.returncode != 0:
        tail = "; ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        raise EnvironmentFailed(f"pip install -r {REQUIREMENTS} failed "
                                f"(exit {done.returncode}): {tail}")
