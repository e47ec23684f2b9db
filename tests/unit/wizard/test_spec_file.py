"""Save and open from the window: Save as works on a fresh window, and opening a
spec with unsaved changes asks (Save / Discard / Cancel) instead of dropping them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from tests.unit.wizard.helpers import type_into

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("does not support propagateSizeHints"),
]

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "digits-sandbox.json"
Button = QMessageBox.StandardButton


def answer(monkeypatch: pytest.MonkeyPatch, button: QMessageBox.StandardButton) -> list[str]:
    """Answer the unsaved-changes question with `button`; the texts asked are kept."""
    asked: list[str] = []

    def question(_parent: Any, title: str, text: str, *_args: Any) -> QMessageBox.StandardButton:
        asked.append(f"{title}: {text}")
        return button

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


def pick_files(monkeypatch: pytest.MonkeyPatch, open_path: Path | None = None,
               save_path: Path | None = None) -> list[str]:
    """File dialogs answering with these paths; where each dialog started is kept."""
    started: list[str] = []

    def get_open(_parent: Any, _title: str, start: str, _filter: str) -> tuple[str, str]:
        started.append(start)
        return (str(open_path) if open_path else "", "")

    def get_save(_parent: Any, _title: str, start: str, _filter: str) -> tuple[str, str]:
        started.append(start)
        return (str(save_path) if save_path else "", "")

    monkeypatch.setattr(QFileDialog, "getOpenFileName", get_open)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", get_save)
    return started


def test_save_as_on_a_fresh_window(qtbot, window, tmp_path: Path,  # type: ignore[no-untyped-def]
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    type_into(qtbot, window.pages["basics"].group.edit, "rg-fresh")
    target = tmp_path / "fresh.json"
    started = pick_files(monkeypatch, save_path=target)
    assert window.spec_file.ask_save_as()
    # It started in a real folder, named after the group.
    assert Path(started[0]).name == "rg-fresh.json"
    assert Path(started[0]).parent.is_dir()
    assert json.loads(target.read_text())["resource_group"]["name"] == "rg-fresh"
    assert not window.spec_file.dirty
    assert window.windowTitle().startswith("fresh.json \u2014")


def edited(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    type_into(qtbot, window.pages["basics"].group.edit, "rg-unsaved")
    assert window.spec_file.dirty


def test_cancel_keeps_the_unsaved_changes(qtbot, window, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    edited(qtbot, window)
    asked = answer(monkeypatch, Button.Cancel)
    started = pick_files(monkeypatch, open_path=EXAMPLE)
    window.spec_file.ask_open()
    assert asked and "not saved" in asked[0]
    assert started == []  # no file dialog: the user stayed
    assert window.session.spec.resource_group.name == "rg-unsaved"
    assert window.spec_file.dirty


def test_discard_opens_the_other_spec(qtbot, window, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    edited(qtbot, window)
    answer(monkeypatch, Button.Discard)
    pick_files(monkeypatch, open_path=EXAMPLE)
    window.spec_file.ask_open()
    assert window.session.spec.resource_group.name == "rg-digits-demo"
    assert not window.spec_file.dirty


def test_save_writes_the_changes_then_opens(qtbot, window, tmp_path: Path,  # type: ignore[no-untyped-def]
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    edited(qtbot, window)
    answer(monkeypatch, Button.Save)
    kept = tmp_path / "kept.json"
    pick_files(monkeypatch, open_path=EXAMPLE, save_path=kept)
    window.spec_file.ask_open()
    assert json.loads(kept.read_text())["resource_group"]["name"] == "rg-unsaved"
    assert window.session.spec.resource_group.name == "rg-digits-demo"


def test_a_save_given_up_keeps_the_changes(qtbot, window, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    edited(qtbot, window)
    answer(monkeypatch, Button.Save)
    pick_files(monkeypatch, open_path=EXAMPLE, save_path=None)  # Save as cancelled
    window.spec_file.ask_open()
    assert window.session.spec.resource_group.name == "rg-unsaved"
    assert window.spec_file.dirty


def test_no_question_without_changes(qtbot, window, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    asked = answer(monkeypatch, Button.Cancel)
    pick_files(monkeypatch, open_path=EXAMPLE)
    window.spec_file.ask_open()
    assert asked == []
    assert window.session.spec.resource_group.name == "rg-digits-demo"
