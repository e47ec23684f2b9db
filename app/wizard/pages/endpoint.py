"""Test: call the deployed function with a JSON payload, see status, body,
latency and whether Redis answered; repeat and chart the latencies."""

from __future__ import annotations

import copy
import html
import json
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCharts import QChart, QChartView, QScatterSeries, QValueAxis
from PySide6.QtCore import QMargins, QObject, QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFontDatabase, QPainter
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.paths import resources_dir
from app.spec import DeploymentSpec
from app.wizard.backend import CallResult, InsightsLinks, ScoringEndpoint
from app.wizard.errors_view import plain
from app.wizard.latency_summary import summary
from app.wizard.logpane import LogPane
from app.wizard.pages.base import Page
from app.wizard.widgets import ERROR_COLOR, OK_COLOR, lines_high

HIT_COLOR = OK_COLOR
MISS_COLOR = "#ca5010"
SAMPLE_REQUEST = "sample-request.json"


def sample_payload(spec: DeploymentSpec) -> str:
    """The package's sample request: the model folder's, else the bundled sample's."""
    candidates = []
    if spec.image.build_from:
        candidates.append(Path(spec.image.build_from).expanduser() / SAMPLE_REQUEST)
    candidates.append(resources_dir() / "sample-model" / SAMPLE_REQUEST)
    for path in candidates:
        try:
            return json.dumps(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return "{\n  \"data\": []\n}"


class _RepeatSignals(QObject):
    result = Signal(int, object)  # call number, CallResult | Exception
    finished = Signal()


class EndpointPage(Page):
    key = "test"
    title = "Test"
    heading = "Test the endpoint"
    fill_height = True
    intro = ("Send a request to the function's scoring endpoint. The first call for a "
             "payload computes the prediction (cache MISS); repeating it is answered "
             "from Redis (cache HIT).")

    def build(self) -> None:
        self.results: list[CallResult] = []
        self._stop = threading.Event()
        self._repeating = False
        self._sending = False
        self._log_offset = 0

        self.layout_.addWidget(self._endpoint_row())
        self.insights = QLabel("", self.body)
        self.insights.setAccessibleName("Application Insights")
        self.insights.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.insights.setOpenExternalLinks(True)
        self.insights.setWordWrap(True)
        self.insights.hide()
        self.layout_.addWidget(self.insights)
        # Request and response side by side above the function log; the split between
        # them and the log is the user's to move.
        self.splitter = QSplitter(Qt.Orientation.Vertical, self.body)
        self.splitter.setChildrenCollapsible(False)
        calls = QSplitter(Qt.Orientation.Horizontal, self.splitter)
        calls.setChildrenCollapsible(False)
        left = QWidget(calls)
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(QLabel("Request body (JSON)"))
        self.payload = QPlainTextEdit(left)
        self.payload.setAccessibleName("Request body")
        self.payload.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.payload.setTabChangesFocus(True)
        self.payload.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.payload.setMinimumHeight(lines_high(self.payload, 3))
        column.addWidget(self.payload, 1)
        self.payload_message = self.message_for()
        column.addWidget(self.payload_message)
        buttons = QHBoxLayout()
        self.send_button = QPushButton("&Send", left)
        self.send_button.setAccessibleName("Send request")
        self.send_button.setDefault(True)
        self.repeat = QSpinBox(left)
        self.repeat.setRange(2, 500)
        self.repeat.setValue(20)
        self.repeat.setAccessibleName("Number of calls")
        self.repeat_button = QPushButton("R&un N times", left)
        self.repeat_button.setAccessibleName("Run N times")
        self.stop_button = QPushButton("Sto&p", left)
        self.stop_button.setAccessibleName("Stop repeated calls")
        self.stop_button.setEnabled(False)
        buttons.addWidget(self.send_button)
        buttons.addStretch(1)
        buttons.addWidget(QLabel("N ="))
        buttons.addWidget(self.repeat)
        buttons.addWidget(self.repeat_button)
        buttons.addWidget(self.stop_button)
        column.addLayout(buttons)
        column.addWidget(QLabel("Latency per call (ms)"))
        column.addWidget(self._build_chart(left), 2)
        self.stats = QLabel("", left)
        self.stats.setAccessibleName("Latency summary")
        column.addWidget(self.stats)

        right = QWidget(calls)
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        result = QGroupBox("Response", right)
        form = QFormLayout(result)
        self.status_label = QLabel("\u2014", result)
        self.status_label.setAccessibleName("Response status")
        self.latency_label = QLabel("\u2014", result)
        self.latency_label.setAccessibleName("Latency")
        self.cache_label = QLabel("\u2014", result)
        self.cache_label.setAccessibleName("Cache result")
        self.cache_label.setObjectName("cacheBadge")
        self.cache_label.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        form.addRow("Status", self.status_label)
        form.addRow("Latency", self.latency_label)
        form.addRow("Cache", self.cache_label)
        self.body_view = QPlainTextEdit(result)
        self.body_view.setReadOnly(True)
        self.body_view.setAccessibleName("Response body")
        self.body_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.body_view.setMinimumHeight(lines_high(self.body_view, 6))
        form.addRow("Body", self.body_view)
        column.addWidget(result, 1)
        calls.addWidget(left)
        calls.addWidget(right)
        calls.setStretchFactor(0, 1)
        calls.setStretchFactor(1, 1)

        logs = QWidget(self.splitter)
        column = QVBoxLayout(logs)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(QLabel("Function log stream"))
        self.function_log = LogPane("Function log", parent=logs)
        self.function_log.view.setMinimumHeight(lines_high(self.function_log.view, 6))
        self.function_log.level.setCurrentIndex(0)
        column.addWidget(self.function_log, 1)
        self.splitter.addWidget(calls)
        self.splitter.addWidget(logs)
        # The calls get what they need first; the log grows with the window.
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.add_filling(self.splitter)

        self._log_timer = QTimer(self)
        self._log_timer.setInterval(2000)
        self._log_timer.timeout.connect(self._poll_logs)
        self._log_in_flight = False
        self.send_button.clicked.connect(self.send)
        self.repeat_button.clicked.connect(self.run_repeated)
        self.stop_button.clicked.connect(self._stop.set)

    def _endpoint_row(self) -> QWidget:
        """The scoring URL, read-only, and a curl line to call it from a shell."""
        row_widget = QWidget(self.body)
        row = QHBoxLayout(row_widget)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Endpoint"))
        self.url = QLineEdit(row_widget)
        self.url.setReadOnly(True)
        self.url.setAccessibleName("Endpoint URL")
        self.url.setPlaceholderText("Known once the function app answers")
        row.addWidget(self.url, 1)
        self.include_key = QCheckBox("Include the function &key", row_widget)
        self.include_key.setAccessibleName("Include the function key in the curl command")
        self.include_key.setToolTip("Off: the command reads the key from $FUNCTION_KEY, "
                                    "so it can be shared without the secret.")
        row.addWidget(self.include_key)
        self.curl_button = QPushButton("Copy as c&url", row_widget)
        self.curl_button.setAccessibleName("Copy the call as a curl command")
        self.curl_button.setEnabled(False)
        self.curl_button.clicked.connect(self.copy_curl)
        row.addWidget(self.curl_button)
        self.endpoint: ScoringEndpoint | None = None
        return row_widget

    def _build_chart(self, parent: QWidget) -> QChartView:
        self.chart = QChart()
        self.chart.setMargins(QMargins(2, 2, 2, 2))
        self.chart.setBackgroundRoundness(0)
        self.chart.legend().setAlignment(Qt.AlignmentFlag.AlignTop)
        self.hits = QScatterSeries()
        self.hits.setName("HIT (from Redis)")
        self.hits.setColor(QColor(HIT_COLOR))
        self.hits.setMarkerSize(9)
        self.misses = QScatterSeries()
        self.misses.setName("MISS (model ran)")
        self.misses.setColor(QColor(MISS_COLOR))
        self.misses.setMarkerShape(QScatterSeries.MarkerShape.MarkerShapeRectangle)
        self.misses.setMarkerSize(10)
        self.chart.addSeries(self.hits)
        self.chart.addSeries(self.misses)
        self.axis_x = QValueAxis()
        self.axis_x.setLabelFormat("%d")
        self.axis_x.setTickCount(6)
        self.axis_y = QValueAxis()
        self.axis_y.setLabelFormat("%.0f")
        self.chart.addAxis(self.axis_x, Qt.AlignmentFlag.AlignBottom)
        self.chart.addAxis(self.axis_y, Qt.AlignmentFlag.AlignLeft)
        for series in (self.hits, self.misses):
            series.attachAxis(self.axis_x)
            series.attachAxis(self.axis_y)
        self.axis_x.setRange(0, 10)
        self.axis_y.setRange(0, 100)
        self.chart_view = QChartView(self.chart, parent)
        self.chart_view.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.chart_view.setAccessibleName("Latency chart")
        self.chart_view.setMinimumHeight(160)
        return self.chart_view

    def problems(self, spec: DeploymentSpec, rules: list | None = None) -> list:
        return []

    def show_problems(self, spec: DeploymentSpec) -> list:
        return []

    # -- lifecycle ------------------------------------------
    def on_shown(self) -> None:
        if not self.payload.toPlainText().strip():
            self.payload.setPlainText(sample_payload(self.session.spec))
        self._log_timer.start()
        self._poll_logs()
        self._ask_endpoint()

    def _ask_endpoint(self) -> None:
        """Read the URL (and key) once the page is shown: the call path reads them too."""
        if self.session.backend is None:
            return
        spec = copy.deepcopy(self.session.spec)
        self.session.submit(lambda b: b.endpoint(spec), self._show_endpoint, lambda _e: None)
        self.session.submit(lambda b: b.insights(spec), self._show_insights, lambda _e: None)

    def _show_insights(self, links: InsightsLinks | None) -> None:
        """The component's name, with links to its live metrics and recent requests (on
        the sandbox, which has no portal, its resource id)."""
        if links is None:
            self.insights.hide()
            return
        if links.live_metrics is None:
            self.insights.setTextFormat(Qt.TextFormat.PlainText)
            self.insights.setText(f"Application Insights: {links.name} ({links.resource_id})")
        else:
            self.insights.setTextFormat(Qt.TextFormat.RichText)
            self.insights.setText(
                f"Application Insights: <b>{html.escape(links.name)}</b> — "
                f'<a href="{html.escape(links.live_metrics)}">live metrics</a> · '
                f'<a href="{html.escape(links.recent_requests or "")}">requests of the last '
                "30 minutes</a>")
        self.insights.show()

    def _show_endpoint(self, endpoint: ScoringEndpoint) -> None:
        self.endpoint = endpoint
        self.url.setText(endpoint.url)
        self.url.setCursorPosition(0)
        self.curl_button.setEnabled(True)

    def curl(self) -> str:
        """The current request as a curl line; the key only when the box is ticked."""
        from app.services.scoring import curl_command  # loaded by the endpoint's read

        if self.endpoint is None:
            return ""
        try:
            payload = json.dumps(json.loads(self.payload.toPlainText()))
        except ValueError:
            payload = self.payload.toPlainText()
        key = self.endpoint.key if self.include_key.isChecked() else None
        return curl_command(self.endpoint.url, payload, self.endpoint.ca_bundle, key)

    def copy_curl(self) -> None:
        """To the clipboard only: the line may hold the key, so it is never logged."""
        command = self.curl()
        if command:
            QApplication.clipboard().setText(command)

    def on_hidden(self) -> None:
        self._log_timer.stop()

    def _poll_logs(self) -> None:
        if self._log_in_flight or self.session.backend is None:
            return
        self._log_in_flight = True
        spec = copy.deepcopy(self.session.spec)
        since = self._log_offset

        def show(answer: tuple[list[str], int]) -> None:
            from app.services.logstream import split_line  # loaded by the call already

            self._log_in_flight = False
            lines, self._log_offset = answer
            for line in lines:
                level, when, message = split_line(line)
                self.function_log.add(level, "function", message, when)

        def failed(_exc: BaseException) -> None:
            self._log_in_flight = False

        self.session.submit(lambda b: b.function_logs(spec, since), show, failed)

    # -- calls ------------------------------------------
    def _parsed_payload(self) -> Any | None:
        try:
            payload = json.loads(self.payload.toPlainText())
        except ValueError as exc:
            self.payload_message.show_messages([f"not valid JSON: {exc}"])
            return None
        self.payload_message.show_messages([])
        return payload

    def send(self) -> None:
        """One call. Send stays enabled (a second press while a call is out does
        nothing): disabling the focused button would hand the focus to the N field."""
        if self._sending or self._repeating:
            return
        payload = self._parsed_payload()
        if payload is None:
            return
        self._sending = True
        self.status_label.setText("Sending\u2026")
        spec = copy.deepcopy(self.session.spec)
        self.session.submit(lambda b: b.call(spec, payload), self._on_single,
                            self._on_call_error)

    def _on_single(self, result: CallResult) -> None:
        self._sending = False
        self._show_result(result)
        self._plot(result)
        if self.endpoint is None:
            self._ask_endpoint()  # the app answers now: its URL can be read

    def _on_call_error(self, exc: BaseException) -> None:
        self._sending = False
        self.send_button.setEnabled(not self._repeating)
        self.status_label.setText(f"Failed: {plain(exc)}")
        self.status_label.setStyleSheet(f"color: {ERROR_COLOR};")
        self.function_log.add("ERROR", "test", plain(exc))

    def run_repeated(self) -> None:
        payload = self._parsed_payload()
        if payload is None or self._repeating:
            return
        count = self.repeat.value()
        self._repeating = True
        self._stop.clear()
        self.stop_button.setEnabled(True)  # first: the focus leaving Run lands on Stop
        self.repeat_button.setEnabled(False)
        self.send_button.setEnabled(False)
        signals = _RepeatSignals(self)
        signals.result.connect(self._on_repeat_result)
        signals.finished.connect(self._on_repeat_done)
        spec = copy.deepcopy(self.session.spec)
        stop = self._stop

        def loop(backend: Any) -> None:
            try:
                for i in range(count):
                    if stop.is_set():
                        break
                    try:
                        signals.result.emit(i, backend.call(spec, payload))
                    except Exception as exc:
                        signals.result.emit(i, exc)
                        break
            finally:
                signals.finished.emit()

        self.session.submit(loop, None, self._on_call_error)

    def _on_repeat_result(self, _index: int, result: object) -> None:
        if isinstance(result, Exception):
            self._on_call_error(result)
            return
        assert isinstance(result, CallResult)
        self._show_result(result)
        self._plot(result)

    def _on_repeat_done(self) -> None:
        self._repeating = False
        stop_focused = self.stop_button.hasFocus()
        self.repeat_button.setEnabled(True)
        self.send_button.setEnabled(True)
        if stop_focused:
            self.repeat_button.setFocus(Qt.FocusReason.OtherFocusReason)
        self.stop_button.setEnabled(False)

    # -- display ------------------------------------------
    def _show_result(self, result: CallResult) -> None:
        ok = 200 <= result.status < 300
        self.status_label.setText(str(result.status))
        self.status_label.setStyleSheet(f"color: {OK_COLOR if ok else ERROR_COLOR};")
        self.latency_label.setText(f"{result.latency_ms:.1f} ms")
        cache = result.cache or "unknown"
        color = HIT_COLOR if cache == "HIT" else MISS_COLOR if cache == "MISS" else "#605e5c"
        self.cache_label.setText(cache)
        self.cache_label.setStyleSheet(
            f"color: white; background: {color}; padding: 1px 8px; border-radius: 3px;")
        try:
            shown = json.dumps(json.loads(result.body), indent=2)
        except ValueError:
            shown = result.body
        self.body_view.setPlainText(shown)
        detail = f" ({result.cache_detail})" if result.cache_detail else ""
        self.function_log.add("INFO" if ok else "ERROR", "test",
                              f"{result.status} {cache}{detail} {result.latency_ms:.1f} ms")
        self.cache_label.setToolTip(result.cache_detail)

    def _plot(self, result: CallResult) -> None:
        self.results.append(result)
        n = len(self.results)
        series = self.hits if result.cache == "HIT" else self.misses
        series.append(QPointF(n, result.latency_ms))
        top = max(r.latency_ms for r in self.results)
        self.axis_x.setRange(0, max(10, n + 1))
        self.axis_y.setRange(0, max(10.0, top * 1.15))
        # Ticks at 0, 10, 20… rather than at fifths of whatever the top happens to be.
        self.axis_x.applyNiceNumbers()
        self.axis_y.applyNiceNumbers()
        self.stats.setText(summary(self.results))

    def clear_results(self) -> None:
        self.results.clear()
        self.hits.clear()
        self.misses.clear()
        self.stats.clear()
