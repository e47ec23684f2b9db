"""Errors in plain words, with the details one click away.

An MlcacheError already carries a message and a recommendation; anything else
is summarised in one sentence and its text goes to "Show Details...".
"""

from __future__ import annotations

import traceback

from PySide6.QtWidgets import QMessageBox, QWidget

from app.errors import MlcacheError


def plain(exc: BaseException) -> str:
    """One line a person can read."""
    if isinstance(exc, MlcacheError):
        return exc.message
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, ConnectionError | TimeoutError | OSError):
        return f"Could not reach the target ({text or type(exc).__name__})."
    return text or f"Unexpected failure ({type(exc).__name__})."


def recommendation(exc: BaseException) -> str:
    if isinstance(exc, MlcacheError):
        return exc.recommendation
    return ""


def details(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).strip()


def show_error(parent: QWidget | None, title: str, exc: BaseException) -> QMessageBox:
    """A non-modal message box: summary, recommendation, and the details button."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(plain(exc))
    hint = recommendation(exc)
    if hint:
        box.setInformativeText(hint)
    box.setDetailedText(details(exc))
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.setModal(False)
    box.show()
    return box
