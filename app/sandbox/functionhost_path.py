"""The function host child's sys.path: the app's packages, never the sandbox's.

A container holds only what its image put there; the sandbox runs the app in a
process of its own interpreter, so the host imports its serving stack first and
then gives the app a sys.path of its script root, the image's packages (or the
environment made for a pushed package) and the standard library alone.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path


def app_sys_path(package_dir: Path, python_path: Sequence[Path],
                 current: Sequence[str]) -> list[str]:
    """The app's sys.path: its script root, the image's packages (its PYTHONPATH),
    then the interpreter's standard library; never the sandbox's site-packages, the
    user's, or the project, as a container holds only what its image put there."""
    base = os.path.realpath(sys.base_prefix)
    stdlib = [entry for entry in current if entry
              and os.path.realpath(entry).startswith(base + os.sep)
              and not {"site-packages", "dist-packages"} & set(Path(entry).parts)]
    head = [str(package_dir), *(str(p) for p in python_path)]
    return [*dict.fromkeys([*head, *stdlib])]


def preload_host() -> None:
    """Import the host's own serving stack (and what it imports lazily while it
    serves) while the sandbox's environment is still on sys.path; the app's
    imports then find only the image's packages."""
    import anyio._backends._asyncio  # noqa: F401 (anyio picks its backend on first use)
    import azure.functions  # noqa: F401 (the host's types, as the Functions worker's)
    import starlette.applications
    import starlette.concurrency
    import starlette.requests
    import starlette.responses
    import starlette.routing  # noqa: F401
    import uvicorn.lifespan.off
    import uvicorn.loops.asyncio
    import uvicorn.protocols.http.h11_impl  # noqa: F401
