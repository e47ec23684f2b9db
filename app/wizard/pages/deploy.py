"""Deploy: a row per resource with its state and elapsed time, overall progress,
and the live log, all fed by the engine's events through the bridge."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QBrush, QColor, QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.errors import MlcacheError, Recovery
from app.services.events import (
    RunFinished,
    StepFailed,
    StepLog,
    StepProgress,
    StepSkipped,
    StepStarted,
    StepSucceeded,
)
from app.spec import DeploymentSpec
from app.wizard.backend import PlannedStep
from app.wizard.bridge import EngineBridge
from app.wizard.errors_view import details, plain, recommendation
from app.wizard.last_run import LastRun
from app.wizard.logpane import LogPane
from app.wizard.pages.base import Page
from app.wizard.widgets import ERROR_COLOR, OK_COLOR, icon, lines_high

COL_NAME, COL_TYPE, COL_STATE, COL_ELAPSED, COL_LINK = range(5)
SKIPPED_COLOR = "#8a8886"

class DeployPage(Page):
    key = "deploy"
    title = "Deploy"
    heading = "Deployment"
    fill_height = True

    # The user asked to switch the spec to Azure Managed Redis after a blocked create.
    # The user chose the fix a failed step offered (an app.errors.Recovery).
    recovery_chosen = Signal(object)
    run_state_changed = Signal()

    def __init__(self, session: Any, bridge: EngineBridge, parent: QWidget | None = None) -> None:
        self.bridge = bridge
        super().__init__(session, parent)

    def build(self) -> None:
        self.rows: dict[str, QTreeWidgetItem] = {}
        self.planned: dict[str, PlannedStep] = {}
        self.started_at: dict[str, float] = {}
        self.finished: dict[str, str] = {}
        self.running = False
        self.result: Any = None
        self._cancel = threading.Event()
        self._run_spec: object = None
        self._reopened: LastRun | None = None
        # What the header says while nothing runs and no run is shown.
        self._idle_text = "Ready to deploy."
        # Made now, not at the first event: PySide6 builds the Python enums of
        # QBrush's and QGradient's types the first time a brush is made (~10 ms).
        self._brushes = {color: QBrush(QColor(color))
                         for color in (OK_COLOR, ERROR_COLOR, SKIPPED_COLOR)}

        top = QWidget(self.body)
        row = QHBoxLayout(top)
        row.setContentsMargins(0, 0, 0, 0)
        self.status = QLabel("Ready to deploy.", top)
        self.status.setObjectName("runStatus")
        self.status.setAccessibleName("Deployment status")
        self.status.setWordWrap(True)
        row.addWidget(self.status, 1)
        self.deploy_button = QPushButton(icon("cloud"), "&Deploy", top)
        self.deploy_button.setAccessibleName("Deploy")
        self.cancel_button = QPushButton("&Cancel", top)
        self.cancel_button.setAccessibleName("Cancel deployment")
        self.retry_button = QPushButton("&Retry failed", top)
        self.retry_button.setAccessibleName("Retry failed steps")
        for button in (self.deploy_button, self.cancel_button, self.retry_button):
            row.addWidget(button)
        self.layout_.addWidget(top)
        self.progress = QProgressBar(self.body)
        self.progress.setAccessibleName("Overall progress")
        self.progress.setFormat("%v of %m resources")
        self.layout_.addWidget(self.progress)

        self.error_box = QWidget(self.body)
        self.error_box.setObjectName("errorBox")
        column = QVBoxLayout(self.error_box)
        self.error_text = QLabel(self.error_box)
        self.error_text.setWordWrap(True)
        self.error_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_details = QLabel(self.error_box)
        self.error_details.setWordWrap(True)
        self.error_details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_details.setObjectName("muted")
        self.error_details.hide()
        buttons = QHBoxLayout()
        self.details_button = QToolButton(self.error_box)
        self.details_button.setText("Show details")
        self.details_button.setCheckable(True)
        self.details_button.toggled.connect(self._on_details)
        self.recovery: Recovery | None = None
        self.switch_button = QPushButton("Apply the suggested fix", self.error_box)
        self.switch_button.clicked.connect(self._on_recovery_clicked)
        self.switch_button.hide()
        buttons.addWidget(self.details_button)
        buttons.addWidget(self.switch_button)
        buttons.addStretch(1)
        column.addWidget(self.error_text)
        column.addLayout(buttons)
        column.addWidget(self.error_details)
        self.error_box.hide()
        self.layout_.addWidget(self.error_box)

        splitter = QSplitter(Qt.Orientation.Vertical, self.body)
        self.tree = QTreeWidget(splitter)
        self.tree.setAccessibleName("Resources")
        self.tree.setColumnCount(5)
        self.tree.setHeaderLabels(["Resource", "Type", "State", "Elapsed", ""])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.tree.header()
        header.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Stretch)
        for col in (COL_TYPE, COL_STATE, COL_ELAPSED, COL_LINK):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.log = LogPane("Deployment log", parent=splitter)
        splitter.addWidget(self.tree)
        splitter.addWidget(self.log)
        self.tree.setMinimumHeight(215)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([230, 300])
        self.log.view.setMinimumHeight(lines_high(self.log.view, 5))
        self.add_filling(splitter)

        self._ticker = QTimer(self)
        self._ticker.setInterval(500)
        self._ticker.timeout.connect(self._on_tick)

        self.deploy_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.retry_button.clicked.connect(self.start)
        self.cancel_button.setEnabled(False)
        self.retry_button.setEnabled(False)

        b = self.bridge
        b.step_started.connect(self._on_started)
        b.step_progress.connect(self._on_progress)
        b.step_log.connect(self._on_log)
        b.step_succeeded.connect(self._on_succeeded)
        b.step_failed.connect(self._on_failed)
        b.step_skipped.connect(self._on_skipped)
        b.run_finished.connect(self._on_finished)
        b.log_record.connect(self._on_record)

    # -- Next is allowed once the run succeeded ----------------------------------------
    def problems(self, spec: DeploymentSpec, rules: list | None = None) -> list:
        from app.rules import Problem

        if self.running:
            return [Problem("deploy", "the deployment is still running")]
        if self.result is None or not getattr(self.result, "succeeded", False):
            return [Problem("deploy", "deploy first")]
        return []

    def show_problems(self, spec: DeploymentSpec) -> list:
        return self.problems(spec)

    def first_field(self) -> QWidget | None:
        """Cancel while a run is on (Back and Next are disabled then)."""
        return self.cancel_button if self.running else None

    @property
    def run_spec(self) -> DeploymentSpec | None:
        """The spec of the last run this page started (a copy taken as it started)."""
        return self._run_spec if isinstance(self._run_spec, DeploymentSpec) else None

    # -- reopened ------------------------------------------
    def reopen(self, last: LastRun) -> None:
        """The window reopened on this page for the last deployment of its spec:
        shown once, when the page is first shown."""
        self._reopened = last

    def _show_reopened(self, last: LastRun) -> None:
        spec = copy.deepcopy(self.session.spec)
        group = spec.resource_group.name
        if last.state == "running":
            # The window closed while it ran: the run stopped, the cloud kept what it
            # had been asked to create. Running it again adopts that and goes on.
            self.log.add("INFO", "wizard", f"The window closed while {group} was being "
                         "deployed; resuming: what exists is adopted, the rest created.")
            self.start()
            self.status.setText("Resuming the deployment…")
            return
        self.log.add("INFO", "wizard", f"Last deployment of {group} ({last.when}): "
                     f"{last.status or last.state}")
        if last.log_path:
            self.log.add("INFO", "wizard", f"Its log: {last.log_path}")
        if last.state != "succeeded":
            self.on_shown()  # the rows show what exists now; Deploy resumes
            return

        def planned(steps: list[PlannedStep]) -> None:
            self._show_plan(steps, during_run=True)
            for step, state in last.steps.items():
                self._set_state(step, state, OK_COLOR)
            self._set_progress(self.progress.maximum())
            self.status.setText(f"Deployed {last.when}. Checking that it is all still "
                                "there…")
            self.session.submit(lambda b: b.missing(spec), checked,
                                lambda e: self._show_error("Could not check the deployment", e))

        def checked(missing: list[str]) -> None:
            if self.running:
                return
            if missing:
                self.status.setText(f"Deployed {last.when}, but {', '.join(missing)} no longer "
                                    "exist. Deploy to create what is missing.")
                self._set_progress(0)
                return
            self.result = last
            self._run_spec = spec
            self.status.setText(f"Deployed {last.when}; every resource is still there. "
                                "Next: test the endpoint.")
            self.run_state_changed.emit()  # Next: Test is allowed now

        self.session.submit(lambda b: b.plan(spec), planned,
                            lambda e: self._show_error("Could not plan the deployment", e))

    # -- plan ------------------------------------------
    def on_shown(self) -> None:
        if self.running:
            return
        if self._reopened is not None:
            if self.session.backend is None and not self.session.starting:
                return  # the window is still opening: shown again once the target is up
            last, self._reopened = self._reopened, None
            self._show_reopened(last)
            return
        if self.result is not None and self._run_spec == self.session.spec:
            return  # keep showing the last run of this same spec
        spec = copy.deepcopy(self.session.spec)
        self.session.submit(lambda b: b.plan(spec), self._show_plan,
                            lambda e: self._show_error("Could not plan the deployment", e))

    def _show_plan(self, steps: list[PlannedStep], during_run: bool = False) -> None:
        if self.running and not during_run:
            return
        if not during_run:
            # A new plan, not a run: the header tells no earlier run's outcome.
            self.status.setText(self._idle_text)
            self.error_box.hide()
        self.tree.clear()
        self.rows.clear()
        self.planned = {s.name: s for s in steps}
        for step in steps:
            item = QTreeWidgetItem([step.resource_name or step.title, step.resource_type,
                                    "Pending", ""])
            item.setIcon(COL_NAME, icon(step.icon))
            item.setToolTip(COL_NAME, step.title)
            item.setData(COL_NAME, Qt.ItemDataRole.UserRole, step.name)
            self.tree.addTopLevelItem(item)
            self.rows[step.name] = item
            if self.session.is_azure and step.resource_id:
                link = QLabel('<a href="portal">Open in portal</a>')
                link.setAccessibleName(f"Open {step.resource_name} in the Azure portal")
                url = self.session.backend.portal_url(step.resource_id)  # type: ignore[union-attr]
                link.linkActivated.connect(lambda _l, u=url: QDesktopServices.openUrl(QUrl(u)))
                self.tree.setItemWidget(item, COL_LINK, link)
        self._set_progress(0, maximum=max(len(steps), 1))
        if during_run:
            return
        spec = copy.deepcopy(self.session.spec)
        # Reattach: show what already exists from an earlier (or interrupted) run.
        self.session.submit(lambda b: b.existing(spec), self._show_existing, lambda _e: None)

    def _show_existing(self, states: dict[str, str]) -> None:
        if self.running:
            return
        for name, state in states.items():
            item = self.rows.get(name)
            if item is not None and state:
                item.setText(COL_STATE, state)
        if states:
            self.status.setText(f"{len(states)} of {len(self.rows)} resources exist already; "
                                "deploying adopts them and creates the rest.")

    def forget_run(self, group: str) -> None:
        """The group was deleted (Clean up): what this page showed of it is gone, so
        the header, the rows and Next follow what exists now."""
        if self.running:
            return
        self.result = None
        self._run_spec = None
        self._reopened = None
        self._idle_text = f"{group} was deleted. Deploy to create it again."
        self.status.setText(self._idle_text)
        self.error_box.hide()
        self.retry_button.setEnabled(False)
        for item in self.rows.values():
            item.setText(COL_STATE, "Deleted")
            item.setText(COL_ELAPSED, "")
            item.setForeground(COL_STATE, self._brushes[SKIPPED_COLOR])
        self._set_progress(0)
        self.run_state_changed.emit()

    # -- run ------------------------------------------
    def start(self) -> None:
        if self.running:
            return
        self.running = True
        self._idle_text = "Ready to deploy."
        self.result = None
        self.finished.clear()
        self.started_at.clear()
        self._cancel = threading.Event()
        self.error_box.hide()
        self._set_progress(0)
        self.status.setText("Deploying\u2026")
        self.deploy_button.setEnabled(False)
        self.retry_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self._ticker.start()
        self.log.add("INFO", "wizard", f"Deploying to {self.session.target_label}")
        spec = copy.deepcopy(self.session.spec)
        self._run_spec = copy.deepcopy(spec)
        cancel = self._cancel
        bridge = self.bridge
        self.run_state_changed.emit()

        def planned(steps: list[PlannedStep]) -> None:
            # Rows first (all Waiting), then the run whose events fill them.
            self._show_plan(steps, during_run=True)
            for item in self.rows.values():
                item.setText(COL_STATE, "Waiting")
            self.session.submit(lambda b: b.deploy(spec, bridge, cancel), self._on_result,
                                self._on_run_error)

        self.session.submit(lambda b: b.plan(spec), planned, self._on_run_error)

    def cancel(self) -> None:
        if self.running:
            self._cancel.set()
            self.cancel_button.setEnabled(False)
            self.status.setText("Cancelling: waiting for running steps to stop\u2026")

    def _on_result(self, result: Any) -> None:
        self.result = result
        self._end_run()

    def _on_run_error(self, exc: BaseException) -> None:
        self.result = None
        self._show_error("The deployment did not start", exc)
        self.log.add("ERROR", "wizard", plain(exc))
        self._end_run()

    def _end_run(self) -> None:
        self.running = False
        self._ticker.stop()
        self.cancel_button.setEnabled(False)
        self.deploy_button.setEnabled(True)
        failed = [n for n, s in self.finished.items() if s in ("Failed", "Skipped", "Cancelled")]
        self.retry_button.setEnabled(bool(failed) or self.result is None or
                                     not getattr(self.result, "succeeded", False))
        self.run_state_changed.emit()
        self.edited.emit()

    # -- events (UI thread, through the bridge) ----------------------------------------------
    def _set_state(self, step: str, state: str, color: str | None = None) -> None:
        item = self.rows.get(step)
        if item is None:
            return
        item.setText(COL_STATE, state)
        if color:
            brush = self._brushes.get(color)
            item.setForeground(COL_STATE, brush if brush is not None else QBrush(QColor(color)))

    def _on_started(self, event: StepStarted) -> None:
        self.started_at[event.step] = time.monotonic()
        self._set_state(event.step, "Starting")
        self.log.add("INFO", event.step, f"Started: {event.title}", event.time)

    def _on_progress(self, event: StepProgress) -> None:
        self.started_at.setdefault(event.step, time.monotonic() - event.elapsed)
        self._set_state(event.step, event.provisioning_state)
        item = self.rows.get(event.step)
        if item is not None:
            item.setText(COL_ELAPSED, _elapsed(event.elapsed))
        text = f"{event.provisioning_state} ({event.elapsed:.1f} s)"
        if event.message:
            text += f" {event.message}"
        self.log.add("INFO", event.step, text, event.time)

    def _on_log(self, event: StepLog) -> None:
        self.log.add(event.level, event.step or "deploy", event.message, event.time)

    def _set_progress(self, value: int, maximum: int | None = None) -> None:
        """QProgressBar.setValue repaints at once (a few ms of painting per event, the
        window's background included); with updates off it only schedules a paint,
        drawn with everything else that changed in the same pass of the event loop."""
        self.progress.setUpdatesEnabled(False)
        if maximum is not None:
            self.progress.setRange(0, maximum)
        self.progress.setValue(value)
        self.progress.setUpdatesEnabled(True)

    def _finish_row(self, step: str, state: str, elapsed: float | None, color: str) -> None:
        self.finished[step] = state
        self._set_state(step, state, color)
        item = self.rows.get(step)
        if item is not None and elapsed is not None:
            item.setText(COL_ELAPSED, _elapsed(elapsed))
        self._set_progress(len(self.finished))

    def _on_succeeded(self, event: StepSucceeded) -> None:
        state = "Existing \u2014 used" if event.adopted else "Succeeded"
        self._finish_row(event.step, state, event.elapsed, OK_COLOR)
        self.log.add("INFO", event.step, event.message, event.time)

    def _on_failed(self, event: StepFailed) -> None:
        self._finish_row(event.step, "Failed", event.elapsed, ERROR_COLOR)
        item = self.rows.get(event.step)
        if item is not None:
            item.setToolTip(COL_STATE, f"{event.message}\n{event.hint}")
        self.log.add("ERROR", event.step, f"{event.message} ({event.code}). {event.hint}",
                     event.time)
        self.error_text.setText(f"{event.message}\n\n{event.hint}")
        self.error_details.setText(f"Step: {event.step}\nError code: {event.code}")
        self._offer(event.recovery)
        self.error_box.show()

    def _on_skipped(self, event: StepSkipped) -> None:
        self._finish_row(event.step, "Skipped", None, SKIPPED_COLOR)
        item = self.rows.get(event.step)
        if item is not None:
            item.setToolTip(COL_STATE, event.reason)
        self.log.add("WARNING", event.step, f"Skipped: {event.reason}", event.time)

    def _on_finished(self, event: RunFinished) -> None:
        if event.succeeded:
            self.status.setText(f"Deployment succeeded in {_elapsed(event.elapsed)}. "
                                "Next: test the endpoint.")
            self._set_progress(self.progress.maximum())
        elif event.cancelled:
            still = ", ".join(event.still_creating) or "nothing"
            self.status.setText(f"Cancelled after {_elapsed(event.elapsed)}. Still being "
                                f"created in the cloud: {still}. Deploy again to resume.")
        else:
            self.status.setText(f"Deployment failed: {len(event.failed)} failed, "
                                f"{len(event.skipped)} skipped. Fix the cause and retry; "
                                "finished resources are kept.")
        for step in event.still_creating:
            self._set_state(step, "Cancelled")
        # A cancel is the user's choice, not a failure.
        level = "INFO" if event.succeeded else "WARNING" if event.cancelled else "ERROR"
        self.log.add(level, "deploy", self.status.text(), event.time)
        if event.log_path:
            self.log.add("INFO", "deploy", f"Deployment log: {event.log_path}", event.time)

    def _on_record(self, level: str, name: str, message: str, when: float) -> None:
        self.log.add(level, name.removeprefix("mlcache."), message, when)

    def _on_tick(self) -> None:
        now = time.monotonic()
        for step, began in self.started_at.items():
            if step in self.finished:
                continue
            item = self.rows.get(step)
            if item is not None:
                item.setText(COL_ELAPSED, _elapsed(now - began))

    # -- errors ------------------------------------------
    def _show_error(self, title: str, exc: BaseException) -> None:
        hint = recommendation(exc)
        self.error_text.setText(f"{title}: {plain(exc)}" + (f"\n\n{hint}" if hint else ""))
        self.error_details.setText(details(exc))
        self._offer(exc.recovery if isinstance(exc, MlcacheError) else None)
        self.error_box.show()
        self.status.setText(title + ".")

    def _offer(self, recovery: Recovery | None) -> None:
        """Show the fix the error carries, if it carries one (never guessed from its text)."""
        self.recovery = recovery
        if recovery is not None:
            self.switch_button.setText(recovery.label)
        self.switch_button.setVisible(recovery is not None)

    def _on_recovery_clicked(self) -> None:
        if self.recovery is not None:
            self.recovery_chosen.emit(self.recovery)

    def _on_details(self, shown: bool) -> None:
        self.error_details.setVisible(shown)
        self.details_button.setText("Hide details" if shown else "Show details")


def _elapsed(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"

