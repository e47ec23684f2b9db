"""Fixtures for the wizard's page-level tests: a window with private settings.

These tests need no cloud: with no target connected, availability checks
answer "could not check" and rule checks run as they do for a user.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from app.wizard.mainwindow import MainWindow
from app.wizard.settings import Settings
from app.wizard.workers import wait_for_tasks


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def window(qtbot, settings: Settings) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QApplication

    from app.wizard.launch import configure_app

    configure_app(QApplication.instance())  # type: ignore[arg-type]
    win = MainWindow(backend_factory=None, settings=settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()
    wait_for_tasks(5000)
