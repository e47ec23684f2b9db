"""Start the Qt application and show the main window.

Only Qt and the wizard's own modules load before the first paint; the engine
and the Azure SDK are imported by a worker while the window is already up.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from app.wizard.local_sandbox import SandboxFactory
    from app.wizard.mainwindow import MainWindow


def configure_app(app: QApplication) -> None:
    """Name, icon and stylesheet shared by the real app, tests and screenshots."""
    from app.paths import resources_dir
    from app.wizard.widgets import icon

    app.setApplicationName("mlcache-deploy")
    app.setOrganizationName("mlcache-deploy")
    app.setApplicationDisplayName("mlcache-deploy")
    app.setWindowIcon(icon("app"))
    style = resources_dir() / "style.qss"
    if style.exists():
        app.setStyleSheet(style.read_text(encoding="utf-8"))


def sandbox_factory(sandbox_state: str | Path | None, latency: str = "fast") -> SandboxFactory:
    """The backend factory for the local sandbox (a process of its own; runs in a worker)."""
    from app.wizard.local_sandbox import SandboxFactory

    return SandboxFactory(sandbox_state, latency)


def create_window(sandbox_state: str | Path | None = None) -> MainWindow:
    from app.paths import user_data_dir
    from app.wizard.mainwindow import MainWindow

    return MainWindow(backend_factory=sandbox_factory(sandbox_state),
                      working_spec=user_data_dir() / "wizard" / "last-spec.json")


def _close_on_signals(window: MainWindow) -> None:
    """Ctrl-C or a TERM from the terminal closes the window properly (asking first
    while a deployment runs; the sandbox process, in a session of its own, gets
    neither signal and keeps running). Python runs signal handlers only between
    bytecodes, so a short timer gives it the chance while Qt's loop waits."""
    import signal

    from PySide6.QtCore import QTimer

    def close(_signum: int, _frame: object) -> None:
        window.close()

    signal.signal(signal.SIGINT, close)
    signal.signal(signal.SIGTERM, close)
    timer = QTimer(window)
    timer.setInterval(250)
    timer.timeout.connect(lambda: None)
    timer.start()


def run_gui(sandbox_state: str | None = None) -> int:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from app.wizard.workers import wait_for_tasks

    # Crisp at 125 % and 150 %: scale by the screen's exact factor, not a rounded one.
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    configure_app(app)
    window = create_window(sandbox_state)
    _close_on_signals(window)
    window.show_when_ready()
    code = int(app.exec())
    wait_for_tasks(5000)
    return code
