"""Errors in plain words, with the details one click away.

The words come from the engine's one translator (`app.services.explain`), the
same the CLI prints: an MlcacheError carries them already, anything else (an
SDK error, a dropped connection) is translated first. The exception's own text
goes to "Show Details...".
"""

from __future__ import annotations

import traceback

from PySide6.QtWidgets import QMessageBox, QWidget

from app.errors import MlcacheError


def translated(exc: BaseException) -> MlcacheError:
    if isinstance(exc, MlcacheError):
        return exc
    from app.services.explain import as_error

    return as_error(exc)


def plain(exc: BaseException) -> str:
    """One line a person can read."""
    return translated(exc).message


def recommendation(exc: BaseException) -> str:
    return translated(exc).recommendation


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
