"""Small reusable widgets: the message under a field, the busy/available mark,
and the name field that checks rules as you type and availability after a pause."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.paths import resources_dir
from app.wizard.backend import Availability
from app.wizard.fields import sentence
from app.wizard.workers import Debouncer

ERROR_COLOR = "#c50f1f"
OK_COLOR = "#107c10"
MUTED_COLOR = "#605e5c"


@functools.cache
def lines_high(view: QPlainTextEdit, lines: int) -> int:
    """The height that shows `lines` lines of `view`'s font, frame and margins
    included: a minimum that holds whatever font size the user runs with."""
    margins = view.contentsMargins()
    text = int(view.fontMetrics().lineSpacing() * lines + 2 * view.document().documentMargin())
    return text + margins.top() + margins.bottom() + 2 * view.frameWidth()


def visible_lines(view: QPlainTextEdit) -> int:
    """How many whole lines of text `view` shows now (for tests and layout checks)."""
    usable = view.viewport().height() - 2 * view.document().documentMargin()
    return int(usable // view.fontMetrics().lineSpacing())


def icon(name: str) -> QIcon:
    """An icon from resources/icons (SVG scales cleanly on high-DPI screens); one
    QIcon per name, so its rendered pixmaps are cached across rows and repaints."""
    path: Path = resources_dir() / "icons" / f"{name}.svg"
    return QIcon(str(path))


class FieldMessage(QLabel):
    """The line under a field: rule messages in red, notes in grey."""

    def __init__(self, parent: QWidget | None = None, reserve: bool = True) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.PlainText)
        # `reserve`: room for a line is kept while there is nothing to say, so the
        # fields below do not move (and a click aimed at one does not land on another)
        # when a message appears. Pages that fill the window's height do without.
        policy = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        policy.setRetainSizeWhenHidden(reserve)
        self.setSizePolicy(policy)
        if reserve:
            self.setMinimumHeight(self.fontMetrics().lineSpacing())
        self.messages: list[str] = []
        self.hide()

    def show_messages(self, messages: list[str]) -> None:
        self.messages = list(messages)
        if not messages:
            self.clear()
            self.hide()
            return
        self.setStyleSheet(f"color: {ERROR_COLOR};")
        self.setText("\n".join(sentence(m) for m in messages))
        self.setAccessibleDescription(self.text())
        self.show()

    def show_note(self, text: str, color: str = MUTED_COLOR) -> None:
        self.messages = []
        self.setStyleSheet(f"color: {color};")
        self.setText(text)
        self.setVisible(bool(text))


class Spinner(QWidget):
    """A small busy indicator drawn with QPainter (no animated image needed)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._angle = 0
        self._timer = QTimer(self)
        self._timer.setInterval(80)
        self._timer.timeout.connect(self._on_tick)
        self.setFixedSize(QSize(16, 16))
        self.setAccessibleName("Checking")

    def start(self) -> None:
        self._timer.start()
        self.show()

    def stop(self) -> None:
        self._timer.stop()
        self.hide()

    @property
    def spinning(self) -> bool:
        return self._timer.isActive()

    def _on_tick(self) -> None:
        self._angle = (self._angle + 30) % 360
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(QColor("#0f6cbd"), 2.2)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        rect = QRectF(2, 2, self.width() - 4, self.height() - 4)
        painter.drawArc(rect, -self._angle * 16, 270 * 16)


class NameField(QWidget):
    """A name box: rule messages as you type, then a debounced availability check.

    The page sets the rule messages (from app.rules) with `set_rule_messages`;
    when there are none and the text changed, the field waits `delay_ms` and
    calls `checker(name, done)`, which must answer on the UI thread via `done`.
    """

    edited = Signal(str)
    availability_changed = Signal()

    def __init__(
        self,
        accessible_name: str,
        placeholder: str = "",
        delay_ms: int = 400,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText(placeholder)
        self.edit.setAccessibleName(accessible_name)
        self.edit.setClearButtonEnabled(True)
        self.spinner = Spinner(self)
        self.spinner.hide()
        self.mark = QLabel(self)
        self.mark.setAccessibleName(f"{accessible_name} availability")
        self.message = FieldMessage(self)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(self.spinner)
        row.addWidget(self.mark)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addLayout(row)
        column.addWidget(self.message)
        self.setFocusProxy(self.edit)
        self.checker: Callable[[str, Callable[[str, Availability | None, str], None]],
                               None] | None = None
        self._debounce = Debouncer(self._on_quiet, delay_ms, self)
        self._rule_messages: list[str] = []
        self._touched = False
        self._checked_name: str | None = None
        self._in_flight: str | None = None
        self.availability: Availability | None = None
        self.check_error = ""
        self.edit.textEdited.connect(self._on_text_edited)

    # -- public ------------------------------------------
    def text(self) -> str:
        return self.edit.text().strip()

    def set_text(self, text: str) -> None:
        if text != self.edit.text():
            self.edit.setText(text)
            self._reset_availability()

    def set_rule_messages(self, messages: list[str], shown: bool = True) -> None:
        """`shown`: whether the page lets messages show yet (the user touched the field)."""
        self._rule_messages = list(messages)
        if messages:
            self._debounce.cancel()
            self._reset_availability()
            # Like the portal: a field the user has not reached yet is not scolded;
            # Next stays disabled and the page says why.
            pristine = not self._touched and not self.edit.text()
            self.message.show_messages([] if pristine or not shown else messages)
        else:
            self._show_availability()
            if self.checker is not None and self._checked_name != self.text() \
                    and self._in_flight != self.text():
                self._debounce.poke()

    def recheck(self) -> None:
        """Forget the last answer (e.g. the target or group changed) and ask again."""
        self._reset_availability()
        if not self._rule_messages and self.checker is not None:
            self._debounce.poke()

    @property
    def busy(self) -> bool:
        return self._debounce.pending or self._in_flight is not None

    def problem(self) -> str | None:
        """A taken name is a problem; rule problems are reported by the page."""
        if self.availability is not None and self.availability.state == "taken" \
                and self._checked_name == self.text():
            return self.availability.message or "this name is already taken"
        return None

    # -- internals ------------------------------------------
    def _on_text_edited(self, text: str) -> None:
        self._touched = True
        self._reset_availability()
        self.edited.emit(text)

    def _reset_availability(self) -> None:
        changed = self.availability is not None or self._checked_name is not None \
            or bool(self.check_error)
        self.availability = None
        self._checked_name = None
        self.check_error = ""
        self.mark.clear()
        self.mark.setToolTip("")
        if changed:
            self.availability_changed.emit()

    def _on_quiet(self) -> None:
        name = self.text()
        if self.checker is None or self._rule_messages or not name:
            return
        self._in_flight = name
        self.spinner.start()
        self.availability_changed.emit()
        self.checker(name, self._on_answer)

    def _on_answer(self, name: str, answer: Availability | None, error: str) -> None:
        if name != self._in_flight:
            return  # superseded by a newer check
        self._in_flight = None
        self.spinner.stop()
        if name != self.text():
            self.availability_changed.emit()
            if not self._rule_messages:
                self._debounce.poke()
            return
        self._checked_name = name
        self.availability = answer
        self.check_error = error
        self._show_availability()
        self.availability_changed.emit()

    def _show_availability(self) -> None:
        answer = self.availability
        if self._rule_messages:
            return
        if answer is None:
            if self.check_error:
                self.mark.setText("?")
                self.mark.setStyleSheet(f"color: {MUTED_COLOR}; font-weight: bold;")
                self.message.show_note(
                    f"Could not check availability: {self.check_error}"
                )
            else:
                self.mark.clear()
                self.message.show_messages([])
            return
        if answer.usable:
            self.mark.setText("\u2713")
            self.mark.setStyleSheet(f"color: {OK_COLOR}; font-weight: bold;")
            self.mark.setToolTip(answer.message or "Available")
            note = answer.message or "Available"
            self.message.show_note(note, OK_COLOR)
        elif answer.state == "unknown":
            self.mark.setText("?")
            self.mark.setStyleSheet(f"color: {MUTED_COLOR}; font-weight: bold;")
            self.message.show_note(answer.message or "Availability unknown")
        else:
            self.mark.setText("\u2717")
            self.mark.setStyleSheet(f"color: {ERROR_COLOR}; font-weight: bold;")
            self.mark.setToolTip(answer.message or "Taken")
            self.message.show_messages([answer.message or "this name is already taken"])
