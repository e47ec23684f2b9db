"""Clean up: list what the resource group holds, have its name typed (as the
portal does), delete it with progress, and confirm it is gone."""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.errors import NotPermitted
from app.wizard.backend import GroupInfo
from app.wizard.errors_view import plain, recommendation
from app.wizard.session import Session
from app.wizard.widgets import ERROR_COLOR, OK_COLOR, icon
from app.wizard.workers import Debouncer


class _Progress(QObject):
    message = Signal(str)


class CleanupDialog(QDialog):
    """Typed confirmation, then delete and verify; never blocks the window."""

    deleted = Signal(str)

    def __init__(self, session: Session, group: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.setWindowTitle("Clean up")
        self.setWindowIcon(icon("delete"))
        self.setMinimumWidth(520)
        self.info: GroupInfo | None = None
        self.deleting = False
        self.gone = False

        column = QVBoxLayout(self)
        form = QFormLayout()
        self.group = QLineEdit(group, self)
        self.group.setAccessibleName("Resource group to delete")
        # The listing follows the name as it is typed (after a pause), not only when
        # the field loses focus: what is shown is always the group named.
        self._debounce = Debouncer(self.refresh, 300, self)
        self.group.textEdited.connect(self._on_group_typed)
        self.group.editingFinished.connect(self._on_group_done)
        form.addRow("Resource &group", self.group)
        column.addLayout(form)
        self.summary = QLabel("Looking at the resource group\u2026", self)
        self.summary.setWordWrap(True)
        self.summary.setAccessibleName("What will be deleted")
        column.addWidget(self.summary)
        self.contents = QListWidget(self)
        self.contents.setAccessibleName("Resources in the group")
        self.contents.setMinimumHeight(140)
        column.addWidget(self.contents)
        self.force = QCheckBox("Delete it although mlcache-deploy did not create it", self)
        self.force.setAccessibleName("Delete a group this tool did not create")
        self.force.hide()
        self.force.toggled.connect(self._update_button)
        column.addWidget(self.force)
        self.prompt = QLabel(self)
        self.prompt.setWordWrap(True)
        column.addWidget(self.prompt)
        self.confirm = QLineEdit(self)
        self.confirm.setAccessibleName("Type the resource group name to confirm")
        self.confirm.setPlaceholderText("resource group name")
        self.confirm.textChanged.connect(self._update_button)
        column.addWidget(self.confirm)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 0)
        self.progress.setAccessibleName("Deletion progress")
        self.progress.hide()
        column.addWidget(self.progress)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Clean-up status")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        column.addWidget(self.status)
        self.buttons = QDialogButtonBox(self)
        self.delete_button = QPushButton(icon("delete"), "&Delete", self)
        self.delete_button.setAccessibleName("Delete resource group")
        self.delete_button.setEnabled(False)
        self.buttons.addButton(self.delete_button, QDialogButtonBox.ButtonRole.DestructiveRole)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.close_button.clicked.connect(self.reject)
        self.delete_button.clicked.connect(self.delete)
        column.addWidget(self.buttons)
        self.refresh()

    # -- listing ------------------------------------------
    def _on_group_typed(self, text: str) -> None:
        name = text.strip()
        self.info = None
        self.contents.clear()
        self.force.hide()
        self.prompt.clear()
        self.summary.setText(f"Looking at {name}\u2026" if name
                             else "Name the resource group to delete.")
        self._update_button()
        self._debounce.poke()

    def _on_group_done(self) -> None:
        if self._debounce.pending:
            self._debounce.cancel()
            self.refresh()

    def refresh(self) -> None:
        name = self.group.text().strip()
        self.info = None
        self.contents.clear()
        self._update_button()
        if not name:
            self.summary.setText("Name the resource group to delete.")
            return
        self.summary.setText(f"Looking at {name}\u2026")
        self.session.submit(lambda b: b.group_info(name), lambda i: self._show(name, i),
                            lambda e: self.summary.setText(f"Could not list {name}: {plain(e)}"))

    def _show(self, name: str, info: GroupInfo) -> None:
        if name != self.group.text().strip():
            return
        self.info = info
        self.contents.clear()
        if not info.exists:
            self.summary.setText(f"There is no resource group named {name}: nothing to delete.")
            self.prompt.clear()
            self._update_button()
            return
        for res in info.resources:
            item = QListWidgetItem(icon(res.icon),
                                   f"{res.name}    {res.type}")
            self.contents.addItem(item)
        count = len(info.resources)
        self.summary.setText(
            f"Deleting {name} deletes everything in it: {count} resource"
            f"{'s' if count != 1 else ''}. This cannot be undone.")
        self.force.setVisible(not info.created_by_us)
        if not info.created_by_us:
            self.summary.setText(self.summary.text() + " This group is not tagged "
                                 "created-by: mlcache-deploy.")
        self.prompt.setText(f"Type <b>{name}</b> to confirm.")
        self._update_button()

    def _update_button(self) -> None:
        name = self.group.text().strip()
        ok = (
            not self.deleting
            and self.info is not None
            and self.info.exists
            and self.confirm.text() == name
            and (self.info.created_by_us or self.force.isChecked())
        )
        self.delete_button.setEnabled(ok)

    # -- deleting ------------------------------------------
    def delete(self) -> None:
        name = self.group.text().strip()
        if self.confirm.text() != name or self.deleting:
            return
        self.deleting = True
        self._update_button()
        self.group.setEnabled(False)
        self.confirm.setEnabled(False)
        self.progress.show()
        self.status.setStyleSheet("")
        self.status.setText(f"Deleting {name}\u2026")
        progress = _Progress(self)
        progress.message.connect(self.status.setText)
        force = self.force.isChecked()
        done = threading.Event()

        def report(text: str) -> None:
            if not done.is_set():
                progress.message.emit(text)

        def run(backend: object) -> GroupInfo:
            backend.delete_group(name, report, force)  # type: ignore[attr-defined]
            # Confirm: ask again rather than trusting the delete's answer.
            return backend.group_info(name)  # type: ignore[attr-defined]

        def finished(info: GroupInfo) -> None:
            done.set()
            self.deleting = False
            self.progress.hide()
            if info.exists:
                self.status.setStyleSheet(f"color: {ERROR_COLOR};")
                self.status.setText(f"{name} still exists with {len(info.resources)} "
                                    "resources. Try again in a moment.")
            else:
                self.gone = True
                self.info = info
                self.contents.hide()
                self.confirm.clear()
                self.confirm.hide()
                self.force.hide()
                self.status.setStyleSheet(f"color: {OK_COLOR};")
                self.status.setText(f"\u2713 {name} is gone: nothing is left.")
                self.contents.clear()
                self.summary.setText(f"{name} and everything in it were deleted.")
                self.prompt.clear()
                self.deleted.emit(name)
            self._update_button()

        def failed(exc: BaseException) -> None:
            done.set()
            self.deleting = False
            self.progress.hide()
            self.group.setEnabled(True)
            self.confirm.setEnabled(True)
            self.status.setStyleSheet(f"color: {ERROR_COLOR};")
            hint = recommendation(exc)
            self.status.setText(f"Could not delete {name}: {plain(exc)}"
                                + (f"\n{hint}" if hint else ""))
            self.status.setToolTip(str(exc))
            if isinstance(exc, NotPermitted) and self.info is not None:
                # Not tagged created-by: mlcache-deploy: deleting needs an explicit choice.
                self.info.created_by_us = False
                self.force.show()
            self._update_button()

        self.session.submit(run, finished, failed)

    def reject(self) -> None:
        if self.deleting:
            # Deleting carries on in the cloud; closing only stops watching.
            self.status.setText("Still deleting; the group goes away in the background.")
        super().reject()
