"""The live log pane: levels, search, copy and save, over a bounded buffer.

Entries arrive from the bridge (engine events and `mlcache.*` records, already
redacted at the source). The pane keeps the last `capacity` entries so it can
be filtered again without asking anyone to resend. New lines are drawn together,
a moment after they arrive: a deploy's steps report in bursts (five start at
once), and one edit of the document per burst keeps the UI thread free.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QTextCharFormat,
    QTextCursor,
    QTextOption,
)
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LEVEL_COLORS = {"DEBUG": "#8a8886", "INFO": "#323130", "WARNING": "#8a5300", "ERROR": "#c50f1f"}
# How long new lines wait to be drawn with the ones that follow them (about two
# frames: too short to notice, long enough to gather a burst of events).
FLUSH_MS = 30


@dataclass(frozen=True)
class LogEntry:
    time: float
    level: str
    source: str
    message: str

    def line(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.time))
        return f"{stamp} {self.level:<7} {self.source}: {self.message}"


class LogPane(QWidget):
    """A read-only, filterable log view."""

    def __init__(self, title: str = "Log", capacity: int = 5000,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entries: collections.deque[LogEntry] = collections.deque(maxlen=capacity)
        self._pending: list[LogEntry] = []
        self._formats: dict[str, QTextCharFormat] = {}
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(FLUSH_MS)
        self._flush_timer.timeout.connect(self.flush)
        self.view = QPlainTextEdit(self)
        self.view.setReadOnly(True)
        self.view.setUndoRedoEnabled(False)  # nothing to undo; the stack would only grow
        self.view.setMaximumBlockCount(capacity)
        # Long lines (an ARM error, a URL) wrap: a cut line hides the part that says why.
        self.view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.view.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.view.setAccessibleName(title)
        self.level = QComboBox(self)
        self.level.setAccessibleName(f"{title} level")
        for name in ("All levels", "Info and above", "Warnings and errors", "Errors only"):
            self.level.addItem(name)
        self.level.setCurrentIndex(1)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Filter\u2026")
        self.search.setAccessibleName(f"{title} filter")
        self.search.setClearButtonEnabled(True)
        self.copy_button = QPushButton("Copy", self)
        self.copy_button.setAccessibleName(f"Copy {title.lower()}")
        self.save_button = QPushButton("Save\u2026", self)
        self.save_button.setAccessibleName(f"Save {title.lower()} to a file")
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.level)
        bar.addWidget(self.search, 1)
        bar.addWidget(self.copy_button)
        bar.addWidget(self.save_button)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(bar)
        column.addWidget(self.view, 1)
        self.level.currentIndexChanged.connect(self._refilter)
        self.search.textChanged.connect(self._refilter)
        self.copy_button.clicked.connect(self.copy_to_clipboard)
        self.save_button.clicked.connect(self._on_save)

    # -- feeding ------------------------------------------
    def add(self, level: str, source: str, message: str, when: float | None = None) -> None:
        entry = LogEntry(when or time.time(), level.upper(), source, message)
        self.entries.append(entry)
        if self._visible(entry):
            self._pending.append(entry)
            if not self._flush_timer.isActive():
                self._flush_timer.start()

    def flush(self) -> None:
        """Draw the lines added since the last flush (the timer calls it)."""
        self._flush_timer.stop()
        pending, self._pending = self._pending, []
        if pending:
            self._append(pending)

    def clear_entries(self) -> None:
        self.entries.clear()
        self._pending.clear()
        self.view.clear()

    # -- filtering ------------------------------------------
    def _min_level(self) -> int:
        return self.level.currentIndex()

    def _visible(self, entry: LogEntry) -> bool:
        rank = LEVELS.index(entry.level) if entry.level in LEVELS else 1
        if rank < self._min_level():
            return False
        needle = self.search.text().strip().lower()
        return not needle or needle in entry.line().lower()

    def visible_lines(self) -> list[str]:
        return [e.line() for e in self.entries if self._visible(e)]

    def _refilter(self) -> None:
        self._flush_timer.stop()
        self._pending.clear()  # they are in `entries`, redrawn below
        self.view.clear()
        self._append([entry for entry in self.entries if self._visible(entry)])

    def _format(self, level: str) -> QTextCharFormat:
        fmt = self._formats.get(level)
        if fmt is None:
            fmt = QTextCharFormat()
            fmt.setForeground(QColor(LEVEL_COLORS.get(level, "#323130")))
            if level == "ERROR":
                fmt.setFontWeight(QFont.Weight.Bold)
            self._formats[level] = fmt
        return fmt

    def _append(self, entries: list[LogEntry]) -> None:
        """Add lines at the end in one edit; follow them if the view was at the end."""
        if not entries:
            return
        bar = self.view.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 2
        document = self.view.document()
        cursor = QTextCursor(document)
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.beginEditBlock()
        first = document.isEmpty()
        for entry in entries:
            if not first:
                cursor.insertBlock()
            first = False
            cursor.insertText(entry.line(), self._format(entry.level))
        cursor.endEditBlock()
        if at_end:
            bar.setValue(bar.maximum())

    # -- copy / save -------------------------------------------------------------------
    def text(self) -> str:
        return "\n".join(self.visible_lines())

    def copy_to_clipboard(self) -> None:
        selected = self.view.textCursor().selectedText().replace("\u2029", "\n")
        QApplication.clipboard().setText(selected or self.text())

    def _on_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save log", "deployment-log.txt",
                                              "Text files (*.txt *.log)")
        if path:
            self.save_to(Path(path))

    def save_to(self, path: Path) -> None:
        path.write_text(self.text() + "\n", encoding="utf-8")

    def scroll_to_end(self) -> None:
        self.flush()
        self.view.moveCursor(QTextCursor.MoveOperation.End)
        self.view.ensureCursorVisible()
