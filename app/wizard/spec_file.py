"""The file behind the spec being edited: where it was opened from or saved to,
whether it has unsaved edits, and the working copy kept while a deploy runs.

The window decides what "current" means for its pages; this object only needs
to be told to flush the visible page into the spec before it writes it.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from app.errors import MlcacheError
from app.paths import rebase_spec_path
from app.spec import load_spec, save_spec
from app.wizard.errors_view import show_error
from app.wizard.last_run import LastRun, read_last_run, write_last_run
from app.wizard.session import Session
from app.wizard.settings import Settings

log = logging.getLogger("mlcache.wizard")


class SpecFile(QObject):
    """Open, save and save-as for one window's spec, plus its path and dirty state."""

    # The path or the dirty state changed: the window title shows both.
    changed = Signal()
    # Save as rewrote a path in the spec (a model folder, to mean the same from the
    # file's folder): the pages show the spec again.
    paths_moved = Signal()
    # A line for the status bar and how long it stays (milliseconds, 0 = until replaced).
    message = Signal(str, int)

    def __init__(
        self,
        session: Session,
        settings: Settings,
        store_edits: Callable[[], None],
        working_spec: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """`store_edits` writes the visible page into `session.spec`; it runs before
        every save so the file has what the user sees. `working_spec`: where the spec
        being deployed is kept between runs, so a window reopened during or after a
        deploy shows the same deployment again. `parent` owns the file dialogs."""
        super().__init__(parent)
        self.session = session
        self.settings = settings
        self.working_spec = working_spec
        self.path: Path | None = None
        self._store_edits = store_edits
        self._dialog_parent = parent
        self._dirty = False
        # A spec read from a file, or put in place of the old one, has no edits yet.
        session.spec_replaced.connect(self._mark_clean)

    @property
    def dirty(self) -> bool:
        return self._dirty

    @property
    def display_name(self) -> str:
        return self.path.name if self.path else "new deployment"

    def mark_edited(self) -> None:
        if not self._dirty:
            self._dirty = True
            self.changed.emit()

    def _mark_clean(self) -> None:
        self._dirty = False
        self.changed.emit()

    # -- open ------------------------------------------
    def ask_open(self) -> None:
        if not self.keep_or_drop_edits():
            return
        start = self.settings.get("spec/last_path")
        path, _ = QFileDialog.getOpenFileName(self._dialog_parent, "Open deployment spec", start,
                                              "Deployment spec (*.json *.toml)")
        if path:
            self.open(Path(path))

    def open(self, path: Path) -> bool:
        try:
            spec = load_spec(path)
        except MlcacheError as exc:
            show_error(self._dialog_parent, "Cannot open the spec", exc)
            return False
        self.path = path
        self.settings.set("spec/last_path", str(path))
        self.session.replace_spec(spec, path.resolve().parent)
        self.message.emit(f"Opened {path}", 5000)
        return True

    def keep_or_drop_edits(self) -> bool:
        """Before the spec is replaced: with unsaved edits, ask whether to save them,
        drop them or stay. False: stay (Cancel, or the save did not happen)."""
        self._store_edits()
        if not self._dirty:
            return True
        answer = QMessageBox.question(
            self._dialog_parent, "Unsaved changes",
            f"{self.display_name} has changes that are not saved. Save them first?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            return self.ask_save()
        return answer == QMessageBox.StandardButton.Discard

    # -- save ------------------------------------------
    def ask_save(self) -> bool:
        if self.path is None:
            return self.ask_save_as()
        return self.save(self.path)

    def suggested_path(self) -> Path:
        """Where Save as starts: the file itself, else the last spec's folder (or the
        opened spec's, or the home folder) with a name after the resource group."""
        if self.path is not None:
            return self.path
        last = self.settings.get("spec/last_path")
        folder = Path(last).parent if last else (self.session.spec_dir or Path.home())
        return folder / f"{self.session.spec.resource_group.name or 'deployment'}.json"

    def ask_save_as(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(self._dialog_parent, "Save deployment spec",
                                              str(self.suggested_path()),
                                              "JSON (*.json);;TOML (*.toml)")
        return bool(path) and self.save(Path(path))

    def save(self, path: Path) -> bool:
        """Write the spec to `path`. A relative model folder is rewritten when the new
        file's folder would read it elsewhere, so the file deploys the same from the CLI."""
        self._store_edits()
        spec = copy.deepcopy(self.session.spec)
        here = self.session.spec_dir or Path.cwd()
        there = path.resolve().parent
        if spec.image.build_from:
            spec.image.build_from = rebase_spec_path(spec.image.build_from, here, there)
        try:
            save_spec(spec, path)
        except (MlcacheError, OSError) as exc:
            show_error(self._dialog_parent, "Cannot save the spec", exc)
            return False
        self.path = path
        self._dirty = False
        if there != self.session.spec_dir:
            # The window now edits the file just written: read its paths from its folder.
            moved = self.session.spec.image.build_from != spec.image.build_from
            self.session.spec.image.build_from = spec.image.build_from
            self.session.move_spec_dir(there)
            if moved:
                self.paths_moved.emit()
        self.changed.emit()
        self.settings.set("spec/last_path", str(path))
        self.message.emit(f"Saved {path}", 5000)
        return True

    # -- working copy ------------------------------------------
    def restore_working_spec(self) -> None:
        """Put the spec kept by the last deploy back in place, if there is one."""
        if self.working_spec is None or not self.working_spec.exists():
            return
        try:
            spec = load_spec(self.working_spec)
        except MlcacheError as exc:
            log.warning("could not restore the last spec: %s", exc)
            return
        last = self.settings.get("spec/last_path")
        self.session.replace_spec(spec, Path(last).parent if last else None)
        self.message.emit(
            f"Reopened the last deployment ({spec.resource_group.name}); the Deploy page "
            "shows what of it exists.", 8000)

    @property
    def _run_record(self) -> Path | None:
        return self.working_spec.with_name("last-run.json") if self.working_spec else None

    def last_run(self) -> LastRun | None:
        """How the last deployment of the spec now in the window ended (None: no
        record, or the record is about another spec)."""
        path = self._run_record
        record = read_last_run(path) if path is not None else None
        return record if record is not None and record.is_for(self.session.spec) else None

    def keep_run(self, record: LastRun) -> None:
        path = self._run_record
        if path is None:
            return
        try:
            write_last_run(path, record)
        except OSError as exc:
            log.warning("could not keep the deployment's outcome for next time: %s", exc)

    def forget_run(self) -> None:
        """The deployment is gone (its group deleted): reopen on Basics again."""
        path = self._run_record
        if path is not None:
            path.unlink(missing_ok=True)

    def keep_working_spec(self) -> None:
        """Called as a deploy starts: the spec survives the window (no secrets in it)."""
        if self.working_spec is None:
            return
        try:
            self.working_spec.parent.mkdir(parents=True, exist_ok=True)
            save_spec(self.session.spec, self.working_spec)
        except (MlcacheError, OSError) as exc:
            log.warning("could not keep the spec for next time: %s", exc)
