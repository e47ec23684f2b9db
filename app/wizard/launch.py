"""Start the Qt application and show the main window."""

from __future__ import annotations

import sys


def run_gui(sandbox_state: str | None = None) -> int:
    from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("mlcache-deploy")
    window = QMainWindow()
    window.setWindowTitle("mlcache-deploy")
    window.setCentralWidget(QLabel("Deploy a model to Azure Functions with Redis in front of it."))
    window.resize(1100, 720)
    window.show()
    return int(app.exec())
