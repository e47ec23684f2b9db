"""Typing helpers shared by the wizard tests."""

from __future__ import annotations

from PySide6.QtCore import Qt


def type_into(qtbot, edit, text: str) -> None:  # type: ignore[no-untyped-def]
    """Replace the text as a user would: focus, select all, erase, type."""
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key.Key_Backspace)
    if text:
        qtbot.keyClicks(edit, text)


def click(qtbot, button) -> None:  # type: ignore[no-untyped-def]
    """Click a button where its label starts: radio buttons and check boxes only
    react on their indicator and text, not anywhere in a stretched row."""
    from PySide6.QtCore import QPoint

    qtbot.mouseClick(button, Qt.MouseButton.LeftButton, pos=QPoint(6, button.height() // 2))
