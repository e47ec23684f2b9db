"""What an ACR Tasks quick build does in the sandbox, step by step, with its log.

There is no Docker here, and a sandbox registry holds function packages, not
images. So "building" an uploaded context means: download it (the tar.gz the
client PUT to the upload URL), check it is a Docker build context with the
named Dockerfile and a function package (`host.json`, `function_app.py`),
walk the Dockerfile's instructions as build steps in the log, and "push"
the context folder into the registry's package store under every
`repository:tag` asked for. The digest is the store's own (a hash of the
folder's files), so building a package folder gives the digest a push of the
same folder gives, and a site running that image runs exactly that folder.

The log follows ACR's: timestamped agent lines (`2024/01/31 12:00:00 ...`),
the build's own output between them, `\\r\\n` line ends (azure-cli splits on
them), and a last line `Run ID: ca1 was successful after 3s` or
`Run ID: ca1 failed after 2s. Error: ...`.
"""

from __future__ import annotations

import datetime
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.sandbox.registry import PackageError, PackageStore, unpack_package

# Files the sandbox's function host needs to run a package.
PACKAGE_FILES = ("host.json", "function_app.py")


class BuildFailed(Exception):
    """The build cannot go on; the message is the run's `runErrorMessage`."""


@dataclass(frozen=True)
class BuildRequest:
    """One quick build, as scheduleRun asked for it."""

    registry: str
    login_server: str
    run_id: str
    source: bytes | None
    dockerfile: str
    images: tuple[tuple[str, str], ...]  # (repository, tag)
    push: bool


@dataclass(frozen=True)
class BuiltImage:
    registry: str
    repository: str
    tag: str
    digest: str


def log_time() -> str:
    """ACR's agent timestamp: `2024/01/31 12:00:00`."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y/%m/%d %H:%M:%S")


def dockerfile_steps(text: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments left out."""
    steps: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        steps.append((pending + line).strip())
        pending = ""
    if pending.strip():
        steps.append(pending.strip())
    return steps


class QuickBuild:
    """Runs one build: writes its log with `log`, waits on `stop` between steps."""

    def __init__(
        self,
        request: BuildRequest,
        packages: PackageStore,
        log: Callable[[str], None],
        stop: threading.Event,
        seconds: float,
    ) -> None:
        self.request = request
        self.packages = packages
        self._log = log
        self._stop = stop
        self._seconds = seconds

    def agent(self, message: str) -> None:
        self._log(f"{log_time()} {message}\r\n")

    def output(self, message: str) -> None:
        self._log(f"{message}\r\n")

    def _pause(self, seconds: float) -> None:
        if self._stop.wait(max(seconds, 0.0)):
            raise InterruptedError("the sandbox is stopping")

    def run(self) -> list[BuiltImage]:
        """Do the build; BuildFailed says why it failed, InterruptedError on stop."""
        request = self.request
        steps_time = self._seconds
        self.agent("Downloading source code...")
        workspace = Path(tempfile.mkdtemp(prefix=f"acb-{request.run_id}-"))
        try:
            context = workspace / "workspace"
            context.mkdir()
            self._download(context)
            self.agent("Finished downloading source code")
            self.agent(f"Using acb_vol_{request.run_id} as the home volume")
            self.agent(f"Logging in to registry: {request.login_server}")
            self.agent(f"Successfully logged into {request.login_server}")
            self.agent(
                "Executing step ID: build. Timeout(sec): 28800, Working directory: '', "
                "Network: 'acb_default_network'"
            )
            steps = self._dockerfile(context)
            self._check_package(context)
            self.agent("Launching container with name: build")
            self.output("Sending build context to Docker daemon")
            for index, step in enumerate(steps, 1):
                self._pause(steps_time / (len(steps) + 1))
                self.output(f"Step {index}/{len(steps)} : {step}")
            self.output("Successfully built")
            for repository, tag in request.images:
                self.output(f"Successfully tagged {request.login_server}/{repository}:{tag}")
            self.agent("Successfully executed container: build")
            if not request.push:
                return []
            self._pause(steps_time / (len(steps) + 1))
            return self._push(context)
        finally:
            shutil.rmtree(workspace, ignore_errors=True)

    def _download(self, context: Path) -> None:
        if self.request.source is None:
            self.output("error: the source location does not name an uploaded build context")
            raise BuildFailed(
                "failed to download the source: no build context was uploaded to the "
                "sourceLocation; PUT it to the listBuildSourceUploadUrl upload URL first"
            )
        try:
            unpack_package(self.request.source, context)
        except PackageError as exc:
            self.output(f"error: failed to extract the build context: {exc}")
            raise BuildFailed(
                f"failed to download the source: the build context is not a tar.gz: {exc}"
            ) from None

    def _dockerfile(self, context: Path) -> list[str]:
        path = (context / self.request.dockerfile).resolve()
        if not path.is_relative_to(context.resolve()) or not path.is_file():
            self.output(
                "unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
                f"lstat /workspace/{self.request.dockerfile}: no such file or directory"
            )
            raise BuildFailed(
                f"failed during run, err: the build context has no {self.request.dockerfile}"
            )
        steps = dockerfile_steps(path.read_text(encoding="utf-8", errors="replace"))
        if not steps or not steps[0].upper().startswith(("FROM", "ARG")):
            self.output("Error response from daemon: the Dockerfile has no FROM instruction")
            raise BuildFailed("failed during run, err: exit status 1 (no FROM in Dockerfile)")
        return steps

    def _check_package(self, context: Path) -> None:
        missing = [name for name in PACKAGE_FILES if not (context / name).is_file()]
        if missing:
            self.output(
                "error: the sandbox builds Azure Functions packages only; the context has no "
                + " and no ".join(missing)
            )
            raise BuildFailed(
                "failed during run, err: the build context is not a function package "
                f"(missing {', '.join(missing)}); build it with `mlcache-deploy package build`"
            )

    def _push(self, context: Path) -> list[BuiltImage]:
        request = self.request
        self.agent(
            "Executing step ID: push. Timeout(sec): 3600, Working directory: '', Network: ''"
        )
        built: list[BuiltImage] = []
        for repository, tag in request.images:
            image = f"{request.login_server}/{repository}:{tag}"
            self.agent(f"Pushing image: {image}, attempt 1")
            self.output(f"The push refers to repository [{request.login_server}/{repository}]")
            try:
                digest = self.packages.push_directory(request.registry, repository, tag, context)
            except PackageError as exc:
                raise BuildFailed(f"failed to push {image}: {exc}") from None
            self.output(f"{tag}: digest: {digest}")
            self.agent(f"Successfully pushed image: {image}")
            built.append(BuiltImage(request.login_server, repository, tag, digest))
        self.agent("Step ID: build marked as successful")
        self.agent("Step ID: push marked as successful")
        return built


def elapsed_text(started: float) -> str:
    """`3s` / `1m5s`, as ACR's last log line says how long a run took."""
    seconds = max(int(time.monotonic() - started), 0)
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"
