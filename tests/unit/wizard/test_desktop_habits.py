"""Desktop habits: every control has a name a screen reader can say, Tab walks the
Basics fields in reading order, and Next/Back answer to Alt shortcuts."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QTableWidget,
    QWidget,
)

from app.wizard.mainwindow import MainWindow

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("does not support propagateSizeHints"),
]

CONTROLS = (QLineEdit, QComboBox, QPlainTextEdit, QSpinBox, QTableWidget, QAbstractButton)


def test_every_control_has_an_accessible_name_or_label(window: MainWindow) -> None:
    unnamed = []
    for key, page in window.pages.items():
        for widget in page.findChildren(QWidget):
            if not isinstance(widget, CONTROLS):
                continue
            text = widget.text() if isinstance(widget, QAbstractButton) else ""
            # Parts of a named control (a combo's line edit, a line edit's clear button,
            # a table's corner button) are announced through their owner.
            owner = widget.parentWidget()
            if isinstance(owner, QComboBox | QSpinBox | QLineEdit | QTableWidget):
                continue
            if not (widget.accessibleName() or text.replace("&", "").strip()):
                unnamed.append(f"{key}: {type(widget).__name__} {widget.objectName()}")
    assert unnamed == []


def test_tab_walks_basics_in_reading_order(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    basics = window.pages["basics"]
    basics.group.edit.setFocus()
    order = []
    for _ in range(5):
        qtbot.keyClick(window.focusWidget(), Qt.Key.Key_Tab)
        order.append(window.focusWidget())
    assert order[0] is basics.cache_name.edit
    assert basics.location in order or basics.location.lineEdit() in order
    assert order.index(basics.cache_type) < order.index(basics.size_combo)


def test_next_and_back_have_alt_shortcuts(window: MainWindow) -> None:
    # The offscreen platform never activates a window, so key presses cannot reach
    # the mnemonic map; what the buttons register is checked instead.
    assert window.next_button.shortcut() == QKeySequence("Alt+N")
    assert window.back_button.shortcut() == QKeySequence("Alt+B")
    assert window.menus.open_action.shortcut() == QKeySequence(QKeySequence.StandardKey.Open)
    assert window.menus.save_action.shortcut() == QKeySequence(QKeySequence.StandardKey.Save)
