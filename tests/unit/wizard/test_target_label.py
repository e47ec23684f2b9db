"""The toolbar's target label while the local sandbox starts.

On the first start the sandbox takes seconds to come up; the label must say so
rather than claim a connection the status bar says is still being made."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import NoReturn

import pytest

from app.wizard.mainwindow import MainWindow
from app.wizard.settings import Settings
from app.wizard.workers import wait_for_tasks

pytestmark = pytest.mark.qt_log_ignore("does not support propagateSizeHints")


def test_label_says_starting_until_the_sandbox_answers(
        qtbot, settings: Settings, tmp_path: Path) -> None:
    release = threading.Event()

    def slow_sandbox() -> NoReturn:
        # Held until the test has looked at the label; then the start fails,
        # which needs no sandbox and ends the start deterministically.
        release.wait(10)
        raise RuntimeError("the local sandbox did not start")

    win = MainWindow(backend_factory=slow_sandbox, settings=settings,
                     working_spec=tmp_path / "last-spec.json")
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    try:
        win.target.start()
        assert win.session.starting
        assert "starting" in win.target.label.text()
        release.set()
        qtbot.waitUntil(lambda: not win.session.starting, timeout=10_000)
        assert "not connected" in win.target.label.text()
    finally:
        release.set()
        win.close()
        wait_for_tasks(5000)


def test_a_lookup_without_a_target_says_so_in_plain_words(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    from app.wizard.errors_view import plain, recommendation

    window.session.backend = None
    failures: list[BaseException] = []
    window.session.submit(lambda b: b.registries(), None, failures.append)
    (failure,) = failures
    assert plain(failure) == "no target is connected"
    assert "Target menu" in recommendation(failure)
