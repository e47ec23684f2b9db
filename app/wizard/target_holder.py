"""Where the window deploys to: the local sandbox or a signed-in Azure subscription.

The session keeps the backend the pages talk to; this object decides which
backend that is (starting the sandbox, signing in, switching back) and shows
the choice: the connection label in the toolbar and the two target actions,
whose text and visibility follow what is connected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QWidget

from app.wizard.backend import Backend
from app.wizard.session import BackendFactory, Session
from app.wizard.settings import Settings
from app.wizard.widgets import icon
from app.wizard.workers import run_task

if TYPE_CHECKING:
    from app.wizard.signin_dialog import SignInDialog


class TargetHolder(QObject):
    """The target of one window: its sandbox factory, Azure sign-in and indicator."""

    # A line for the status bar and how long it stays (milliseconds, 0 = until replaced).
    message = Signal(str, int)

    def __init__(
        self,
        session: Session,
        settings: Settings,
        backend_factory: BackendFactory | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """`backend_factory` starts the local sandbox (None: no target until one is
        given). `parent` owns the actions and the sign-in dialog."""
        super().__init__(parent)
        self.session = session
        self.settings = settings
        self.backend_factory = backend_factory
        self._dialog_parent = parent

        self.sign_in_action = QAction(icon("cloud"), "Sign in to &Azure\u2026", parent)
        self.sign_in_action.triggered.connect(self.sign_in)
        self.sandbox_action = QAction(icon("sandbox"), "Use the local &sandbox", parent)
        self.sandbox_action.triggered.connect(self.use_sandbox)
        # The sandbox is also a Microsoft Entra authority: sign in there as a person
        # would at Azure, and reach its other tenant's subscription.
        self.sandbox_sign_in_action = QAction(
            icon("sandbox"), "Sign &in to the sandbox as a user\u2026", parent)
        self.sandbox_sign_in_action.triggered.connect(self.sign_in_to_sandbox)
        self.sandbox_sign_in_action.setVisible(False)
        self.stop_sandbox_action = QAction("S&top the local sandbox", parent)
        self.stop_sandbox_action.setToolTip(
            "The sandbox keeps running when the window closes; this stops it and its "
            "caches and function apps (they start again with it, cache contents kept)")
        self.stop_sandbox_action.triggered.connect(self.stop_sandbox)
        # Placed in the toolbar, which becomes their parent.
        self.icon_label = QLabel()
        self.label = QLabel()
        self.label.setObjectName("targetLabel")
        self.label.setAccessibleName("Target")

        session.backend_ready.connect(self._on_backend_ready)
        session.backend_failed.connect(self._on_backend_failed)
        session.target_changed.connect(self.refresh)

    def start(self) -> None:
        """Start the local sandbox (in a worker), if this window has one."""
        if self.backend_factory is None:
            return
        self.message.emit("Connecting to the local sandbox\u2026", 0)
        self.session.start_backend(self.backend_factory)
        # The first start takes seconds: the label says "starting", not connected.
        self.refresh()

    def use_backend(self, backend: Backend) -> None:
        self.session.use_backend(backend)
        self.settings.set("target", "azure" if backend.is_azure else "sandbox")

    def use_sandbox(self) -> None:
        """Back to the local sandbox from Azure, or try again when it could not start."""
        self.settings.set("target", "sandbox")
        if self.backend_factory is not None:
            old, self.session.backend = self.session.backend, None
            if old is not None:
                run_task(old.close)
            self.session.start_backend(self.backend_factory)
            self.refresh()

    def stop_sandbox(self) -> None:
        """Stop the local sandbox process (it outlives the window otherwise)."""
        stop = getattr(self.backend_factory, "stop", None)
        if stop is None or self.session.starting:
            return
        backend = self.session.backend
        if backend is not None and not backend.is_azure:
            self.session.backend = None
            self.session.backend_error = "the local sandbox is stopped"
        self.stop_sandbox_action.setEnabled(False)
        self.message.emit("Stopping the local sandbox…", 0)

        def work() -> bool:
            if backend is not None and not backend.is_azure:
                backend.close()
            return bool(stop())

        run_task(work, self._on_sandbox_stopped, self._on_sandbox_stop_failed)
        self.refresh()

    def _on_sandbox_stopped(self, was_running: bool) -> None:
        self.stop_sandbox_action.setEnabled(True)
        self.message.emit("Stopped the local sandbox. Target > Use the local sandbox starts "
                          "it again." if was_running else "The local sandbox was not running.",
                          0)
        self.refresh()

    def _on_sandbox_stop_failed(self, exc: BaseException) -> None:
        self.stop_sandbox_action.setEnabled(True)
        self.message.emit(f"Could not stop the local sandbox: {exc}", 0)
        self.refresh()

    def sign_in(self) -> None:
        # Loaded on the first sign-in, not with the window.
        from app.wizard.services_backend import SignIn

        self._open_sign_in(SignIn())

    def sign_in_to_sandbox(self) -> None:
        backend = self.session.backend
        if backend is None or backend.is_azure:
            return
        self._open_sign_in(backend.cloud_sign_in())

    def _open_sign_in(self, face: object) -> None:
        from app.wizard.signin_dialog import SignInDialog

        dialog = SignInDialog(self.settings, face, self._dialog_parent)
        dialog.accepted.connect(lambda: self._on_signed_in(dialog))
        dialog.open()

    def _on_signed_in(self, dialog: SignInDialog) -> None:
        if dialog.backend is not None:
            self.use_backend(dialog.backend)

    def _on_backend_ready(self) -> None:
        self.message.emit(f"Connected to {self.session.target_label}.", 5000)
        self.refresh()

    def _on_backend_failed(self, message: str) -> None:
        self.message.emit(f"Could not reach the target: {message}. "
                          "Target > Use the local sandbox tries again.", 0)
        self.refresh()

    def refresh(self) -> None:
        """Show what is connected (or starting, or failed) and offer what makes sense."""
        backend = self.session.backend
        azure = backend is not None and backend.is_azure
        self.icon_label.setPixmap(icon("cloud" if azure else "sandbox").pixmap(18, 18))
        if backend is None and self.session.starting:
            text = "Target: Local sandbox (starting\u2026)"
        elif backend is None and self.session.backend_error:
            text = "Target: not connected"
        else:
            text = f"Target: {self.session.target_label}"
        # A person's sign-in: who, in which tenant and subscription (the CLI's words).
        identity = backend.identity if backend is not None and backend.signed_in else ""
        if identity:
            text += f" — {identity}"
        self.label.setText(text + "   ")
        self.label.setToolTip(f"Signed in as {identity}" if identity else "")
        # Offered on Azure, and to try again when the sandbox could not start.
        signed_in = backend is not None and backend.signed_in
        self.sandbox_action.setVisible(signed_in or (backend is None and not self.session.starting
                                                     and bool(self.session.backend_error)))
        self.sign_in_action.setText("Change Azure subscription\u2026" if azure
                                    else "Sign in to Azure\u2026")
        self.sandbox_sign_in_action.setVisible(backend is not None and not azure)
        self.sandbox_action.setText("Use the sandbox's own &token" if signed_in and not azure
                                    else "Use the local &sandbox")
        self.stop_sandbox_action.setVisible(hasattr(self.backend_factory, "stop"))

