"""Typing helpers and a stand-in backend shared by the wizard tests."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from app.wizard.backend import Subscription


class StandInBackend:
    """What the window reads of any backend; a test adds the answers it needs (a
    call it does not add fails in its worker, as a failed lookup does)."""

    label = "Azure \u2014 Team dev"
    is_azure = True
    signed_in = True
    identity = "dev@contoso.example (tenant t-1), subscription Team dev"
    spec_dir: Path | None = None

    def subscription(self) -> Subscription:
        return Subscription("11111111-1111-1111-1111-111111111111", "Team dev")

    def close(self) -> None:
        pass


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
