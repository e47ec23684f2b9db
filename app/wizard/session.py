"""The wizard's shared state: the spec being edited, the target and its backend.

Pages read and write `session.spec`; anything that needs the cloud goes through
`session.submit`, which runs in a worker once the backend is ready (starting
the local sandbox takes a moment, so requests made before then wait for it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.errors import ServiceFailure
from app.spec import DeploymentSpec
from app.wizard.backend import Backend
from app.wizard.workers import run_task

log = logging.getLogger("mlcache.wizard")

BackendFactory = Callable[[], Backend]


class Session(QObject):
    """Spec + target + backend, shared by every page of one window."""

    backend_ready = Signal()
    backend_failed = Signal(str)
    target_changed = Signal()
    spec_replaced = Signal()

    def __init__(self, spec: DeploymentSpec | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.spec = spec or DeploymentSpec()
        self.backend: Backend | None = None
        self.backend_error = ""
        # Relative paths in a spec opened from a file are relative to its folder.
        self.spec_dir: Path | None = None
        self._starting = False
        self._waiting: list[tuple[Callable[[Backend], Any], Callable[[Any], None] | None,
                                  Callable[[BaseException], None] | None]] = []

    # -- target ------------------------------------------
    @property
    def target_label(self) -> str:
        if self.backend is not None:
            return self.backend.label
        return "Local sandbox" if self.spec.target == "sandbox" else "Azure"

    @property
    def is_azure(self) -> bool:
        return bool(self.backend is not None and self.backend.is_azure)

    @property
    def starting(self) -> bool:
        return self._starting

    def start_backend(self, factory: BackendFactory) -> None:
        """Make the backend in a worker; queued requests run once it is ready."""
        if self._starting:
            return
        self._starting = True
        self.backend_error = ""
        run_task(factory, self._on_backend_made, self._on_backend_failed)

    def use_backend(self, backend: Backend) -> None:
        old = self.backend
        self.backend = backend
        backend.spec_dir = self.spec_dir
        self.backend_error = ""
        self.spec.target = "azure" if backend.is_azure else "sandbox"
        if backend.is_azure:
            self.spec.subscription_id = backend.subscription().id
        else:
            self.spec.subscription_id = None
        if old is not None and old is not backend:
            run_task(old.close)
        self.target_changed.emit()
        self.backend_ready.emit()
        self._flush()

    def _on_backend_made(self, backend: Backend) -> None:
        self._starting = False
        self.use_backend(backend)

    def _on_backend_failed(self, exc: BaseException) -> None:
        self._starting = False
        self.backend_error = str(exc) or type(exc).__name__
        log.warning("could not reach the target: %s", self.backend_error)
        waiting, self._waiting = self._waiting, []
        for _fn, _done, failed in waiting:
            if failed is not None:
                failed(exc)
        self.backend_failed.emit(self.backend_error)

    # -- calls ------------------------------------------
    def submit(
        self,
        fn: Callable[[Backend], Any],
        on_done: Callable[[Any], None] | None = None,
        on_failed: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Run `fn(backend)` in a worker; callbacks run on the UI thread."""
        backend = self.backend
        if backend is None:
            if self._starting:
                self._waiting.append((fn, on_done, on_failed))
            elif on_failed is not None:
                on_failed(ServiceFailure(
                    self.backend_error or "no target is connected",
                    "Sign in to Azure or start the local sandbox from the Target menu."))
            return
        run_task(lambda: fn(backend), on_done, on_failed)

    def _flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        for fn, done, failed in waiting:
            self.submit(fn, done, failed)

    def replace_spec(self, spec: DeploymentSpec, spec_dir: Path | None = None) -> None:
        """A spec opened from a file; the target stays the one the toolbar shows."""
        if self.backend is not None:
            spec.target = "azure" if self.backend.is_azure else "sandbox"
            spec.subscription_id = self.backend.subscription().id if self.backend.is_azure \
                else None
        self.spec = spec
        # Relative paths (a model folder to build) are read from the spec's folder.
        self.move_spec_dir(spec_dir)
        self.spec_replaced.emit()

    def move_spec_dir(self, spec_dir: Path | None) -> None:
        """The spec was saved to another folder: its relative paths are read from there."""
        self.spec_dir = spec_dir
        if self.backend is not None:
            self.backend.spec_dir = spec_dir

    def close(self) -> None:
        if self.backend is not None:
            try:
                self.backend.close()
            except Exception as exc:
                log.warning("closing the target failed: %s", exc)
            self.backend = None
