"""The Test page: a correct median, a response box and a log pane that show more than
a few lines at the default size, a splitter between them, the endpoint with a curl
line that leaves the key out unless asked, honest log levels, and Send keeping focus."""

from __future__ import annotations

import math
import shlex

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QScrollArea, QSplitter

from app.services.logstream import line_level, split_line
from app.wizard.backend import CallResult, InsightsLinks, ScoringEndpoint
from app.wizard.latency_summary import median_ms
from app.wizard.mainwindow import MainWindow
from app.wizard.widgets import visible_lines
from tests.unit.wizard.helpers import click

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("does not support propagateSizeHints"),
]

KEY = "s3cr3t-function-key=="


def test_median_of_two_is_their_mean() -> None:
    assert median_ms([150.9, 47.1]) == pytest.approx(99.0)
    assert median_ms([3.0, 1.0, 2.0]) == 2.0


def test_summary_shows_the_median_of_two_misses(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.go("test")
    page = window.test_page
    page._on_single(CallResult(200, "{}", 150.9, "MISS"))
    page._on_single(CallResult(200, "{}", 47.1, "MISS"))
    assert "MISS 2 \u00d7, median 99.0 ms" in page.stats.text()


def test_chart_ticks_fall_on_round_numbers(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.go("test")
    page = window.test_page
    for i, latency in enumerate([30.1, 12.4, 7.8, 26.3, 5.9] * 4 + [8.0]):
        page._on_single(CallResult(200, "{}", latency, "MISS" if i == 0 else "HIT"))
    for axis, top in ((page.axis_y, 30.1), (page.axis_x, 21)):
        step = (axis.max() - axis.min()) / (axis.tickCount() - 1)
        mantissa = step / 10 ** math.floor(math.log10(step))
        assert axis.min() == 0 and axis.max() >= top
        assert round(mantissa, 6) in (1.0, 2.0, 2.5, 5.0), (axis.min(), axis.max(), step)


def test_body_and_log_show_several_lines_at_the_default_size(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.resize(1180, 740)
    window.go("test")
    page = window.test_page
    qtbot.waitUntil(lambda: page.body_view.viewport().height() > 0, timeout=5000)
    QApplication.processEvents()
    assert visible_lines(page.body_view) > 3
    assert visible_lines(page.function_log.view) > 4
    # ... and on screen: the page fits the window, nothing hides below a scroll bar.
    assert page.findChild(QScrollArea).verticalScrollBar().maximum() == 0
    # A splitter the user can move sits between the calls and the log.
    splitter = page.splitter
    assert isinstance(splitter, QSplitter) and splitter.orientation() == Qt.Orientation.Vertical
    assert splitter.indexOf(page.function_log.parentWidget()) == 1
    assert all(size > 0 for size in splitter.sizes())


def test_curl_leaves_the_key_out_unless_asked(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.go("test")
    page = window.test_page
    assert not page.curl_button.isEnabled()  # nothing to copy before the URL is known
    page._show_endpoint(ScoringEndpoint("https://app.example.test/api/score", KEY,
                                        "/tmp/sandbox ca.pem"))
    assert page.url.text() == "https://app.example.test/api/score"
    page.payload.setPlainText('{"data": [[1, 2]]}')
    click(qtbot, page.curl_button)
    copied = QApplication.clipboard().text()
    assert KEY not in copied
    words = shlex.split(copied)
    assert words[0] == "curl" and "https://app.example.test/api/score" in words
    assert "x-functions-key: $FUNCTION_KEY" in words
    assert words[words.index("--cacert") + 1] == "/tmp/sandbox ca.pem"
    assert words[words.index("--data-binary") + 1] == '{"data": [[1, 2]]}'
    click(qtbot, page.include_key)
    click(qtbot, page.curl_button)
    assert f"x-functions-key: {KEY}" in shlex.split(QApplication.clipboard().text())
    assert all(KEY not in entry.message for entry in page.function_log.entries)


def test_send_keeps_the_focus(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.activateWindow()  # focus moves only in the active window
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    window.go("test")
    page = window.test_page
    page.send_button.setFocus()
    assert page.send_button.hasFocus()
    page.send()  # no target: the call fails in a worker, as a lost network would
    assert window.focusWidget() is page.send_button
    qtbot.waitUntil(lambda: not page._sending, timeout=10_000)
    assert window.focusWidget() is page.send_button
    assert window.focusWidget() is not page.repeat


@pytest.mark.parametrize(("line", "level"), [
    ("2026-12-02 09:00:00,123 INFO functionhost: 0 errors, error handler ready", "INFO"),
    ("2026-12-02T09:00:00.123Z INFO  - Starting container for site", "INFO"),
    ("2026-12-02T09:00:00.123Z ERROR - Container exited", "ERROR"),
    ("info: Host.General[337] no error here", "INFO"),
    ("fail: Function.score[3]", "ERROR"),
    ("warn: Host.Startup[0]", "WARNING"),
    ("2024-01-01T00:00:00.000 [Error] Executed 'Functions.score' (Failed)", "ERROR"),
    ("Executing 'Functions.score' after an error page", "INFO"),
    ("Traceback (most recent call last):", "ERROR"),
])
def test_function_log_levels_come_from_the_level_word(line: str, level: str) -> None:
    assert line_level(line) == level


@pytest.mark.parametrize(("line", "level", "stamp", "message"), [
    ("2026-12-02 09:00:00,123 INFO mlcache.functionhost: GET /api/health 200",
     "INFO", "2026-12-02 09:00:00.123", "mlcache.functionhost: GET /api/health 200"),
    ("2026-12-02T09:00:00.123Z INFO  - Starting container for site", "INFO",
     "2026-12-02T09:00:00.123+00:00", "Starting container for site"),
    ("2024-01-01T00:00:00.000 [Error] Executed 'Functions.score' (Failed)", "ERROR",
     "2024-01-01 00:00:00", "Executed 'Functions.score' (Failed)"),
    ("2026-12-02T09:00:00.123456789Z Host started", "INFO",
     "2026-12-02T09:00:00.123456+00:00", "Host started"),
    ("fail: Function.score[3]", "ERROR", None, "fail: Function.score[3]"),
])
def test_function_log_lines_keep_their_own_time_once(
    line: str, level: str, stamp: str | None, message: str
) -> None:
    from datetime import datetime

    got_level, when, got_message = split_line(line)
    assert (got_level, got_message) == (level, message)
    if stamp is None:
        assert when is None
    else:
        assert when == datetime.fromisoformat(stamp).timestamp()


def test_the_log_pane_shows_the_function_s_own_time(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime

    window.go("test")
    pane = window.test_page.function_log
    level, when, message = split_line("2026-12-02 09:00:07,000 WARNING worker: slow model")
    pane.add(level, "function", message, when)
    pane.flush()
    shown = pane.text().splitlines()[-1]
    assert shown.startswith(datetime(2026, 12, 2, 9, 0, 7).strftime("%H:%M:%S"))
    assert "WARNING" in shown and shown.count("2026-12-02") == 0
    assert shown.endswith("function: worker: slow model")


def test_application_insights_line_links_on_azure_and_names_the_id_on_the_sandbox(
        qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.go("test")
    page = window.test_page
    rid = ("/subscriptions/s/resourceGroups/rg/providers/microsoft.insights/components/app")
    page._show_insights(InsightsLinks("app", rid))
    assert page.insights.isVisible()
    assert page.insights.text() == f"Application Insights: app ({rid})"
    page._show_insights(InsightsLinks("app", rid, "https://portal.example/live",
                                      "https://portal.example/requests?a=1&b=2"))
    text = page.insights.text()
    assert '<a href="https://portal.example/live">live metrics</a>' in text
    assert 'href="https://portal.example/requests?a=1&amp;b=2"' in text
    assert page.insights.openExternalLinks()
    page._show_insights(None)  # monitoring off, or nothing deployed yet
    assert not page.insights.isVisible()
