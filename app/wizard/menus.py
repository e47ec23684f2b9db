"""The window's menu bar (File, Target, Help) and its target toolbar.

The spec-file and clean-up commands are made here and connected by the window;
the target's own actions and connection label come from the TargetHolder,
which keeps them current, and are only placed here.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMessageBox, QSizePolicy, QToolBar, QWidget

from app import __version__
from app.wizard.target_holder import TargetHolder
from app.wizard.widgets import icon


class WindowMenus:
    """Builds the menus and toolbar of `window` and keeps the actions the window
    connects: open, save, save as and clean up. Quit and About need nothing but
    the window, so they are connected here."""

    def __init__(self, window: QMainWindow, target: TargetHolder) -> None:
        self.open_action = QAction("&Open spec\u2026", window)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.save_action = QAction("&Save spec", window)
        self.save_action.setShortcut(QKeySequence.StandardKey.Save)
        self.save_as_action = QAction("Save spec &as\u2026", window)
        self.save_as_action.setShortcut(QKeySequence.StandardKey.SaveAs)
        quit_action = QAction("&Quit", window)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(window.close)
        self.cleanup_action = QAction(icon("delete"), "&Clean up\u2026", window)
        self.cleanup_action.setShortcut(QKeySequence("Ctrl+Shift+Delete"))
        self.cleanup_action.setToolTip("Delete the resource group and everything in it")
        about = QAction("&About", window)
        about.triggered.connect(lambda: show_about(window))

        file_menu = window.menuBar().addMenu("&File")
        for action in (self.open_action, self.save_action, self.save_as_action):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)
        target_menu = window.menuBar().addMenu("&Target")
        target_menu.addAction(target.sandbox_action)
        target_menu.addAction(target.sign_in_action)
        target_menu.addAction(target.sandbox_sign_in_action)
        target_menu.addAction(target.stop_sandbox_action)
        target_menu.addSeparator()
        target_menu.addAction(self.cleanup_action)
        help_menu = window.menuBar().addMenu("&Help")
        help_menu.addAction(about)

        toolbar = QToolBar("Target", window)
        toolbar.setObjectName("targetToolbar")
        toolbar.setMovable(False)
        toolbar.setIconSize(QSize(18, 18))
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.addWidget(target.icon_label)
        toolbar.addWidget(target.label)
        toolbar.addSeparator()
        toolbar.addAction(target.sign_in_action)
        toolbar.addAction(target.sandbox_action)
        # Pushes Clean up to the far end, away from the target buttons.
        spacer = QWidget(toolbar)
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        toolbar.addWidget(spacer)
        toolbar.addAction(self.cleanup_action)
        window.addToolBar(toolbar)


def show_about(parent: QWidget) -> None:
    QMessageBox.about(
        parent, "About mlcache-deploy",
        f"<b>mlcache-deploy {__version__}</b><p>Serve a trained model on Azure "
        "Functions with a Redis cache in front of it: validated, observable, and "
        "removed in one click.</p>")
