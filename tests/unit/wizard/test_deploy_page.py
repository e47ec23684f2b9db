"""The Deploy page tells the real state: no "succeeded" once the group is deleted, a
cancel is a warning, long log lines wrap, and the log shows more than a few lines."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from PySide6.QtWidgets import QApplication, QScrollArea

from app.services.events import RunFinished
from app.wizard.logpane import LogPane
from app.wizard.mainwindow import MainWindow
from app.wizard.widgets import visible_lines

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("does not support propagateSizeHints"),
]


def test_clean_up_clears_the_succeeded_header(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.go("deploy")
    deploy = window.deploy
    window.bridge.run_finished.emit(RunFinished(succeeded=True, cancelled=False, elapsed=42.0))
    deploy._on_result(SimpleNamespace(succeeded=True))
    assert "Deployment succeeded" in deploy.status.text()
    window._update_navigation()
    assert window.next_button.isEnabled()  # Next: Test, as after a real run

    # Cleaned up from another page (no target here to plan again): the header
    # already says so when Deploy is next shown.
    window.go("review")
    window._on_group_deleted(window.session.spec.resource_group.name)
    assert "succeeded" not in deploy.status.text().lower()
    assert "deleted" in deploy.status.text()
    window.go("deploy")
    assert deploy.result is None
    assert not window.next_button.isEnabled()
    assert all(item.text(2) != "Succeeded" for item in deploy.rows.values())


def test_a_cancel_is_a_warning_not_an_error(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.go("deploy")
    deploy = window.deploy
    window.bridge.run_finished.emit(RunFinished(succeeded=False, cancelled=True, elapsed=3.0))
    last = deploy.log.entries[-1]
    assert last.message.startswith("Cancelled after")
    assert last.level == "WARNING"
    window.bridge.run_finished.emit(RunFinished(succeeded=False, cancelled=False, elapsed=3.0,
                                                failed=("cache",)))
    assert deploy.log.entries[-1].level == "ERROR"


def test_long_log_lines_wrap(qtbot) -> None:  # type: ignore[no-untyped-def]
    pane = LogPane("Deployment log")
    qtbot.addWidget(pane)
    pane.resize(320, 200)
    pane.show()
    qtbot.waitExposed(pane)
    long = "ResourceGroupNotFound: " + "x" * 300 + " THE-END"
    pane.add("ERROR", "cache", long)
    pane.flush()
    QApplication.processEvents()
    block = pane.view.document().firstBlock()
    assert block.layout().lineCount() > 1
    assert pane.view.horizontalScrollBar().maximum() == 0  # nothing hides to the right


def test_deploy_log_shows_more_than_four_lines(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.resize(1180, 740)
    window.go("deploy")
    QApplication.processEvents()
    assert visible_lines(window.deploy.log.view) > 4
    # ... and on screen: the page fits the window, nothing hides below a scroll bar.
    assert window.deploy.findChild(QScrollArea).verticalScrollBar().maximum() == 0
