"""The main window: step list on the left (like the portal's create tabs),
the current page, Back/Next, the target indicator and Clean up in the toolbar.

The window keeps the page flow (which page is current, where Back and Next go,
what may be reached); its menus, its target and its spec file are objects of
their own that it wires together.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QKeyEvent, QPaintEvent
from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QStackedWidget,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.errors import Recovery
from app.rules import Problem, validate_spec
from app.spec import DeploymentSpec
from app.wizard.bridge import EngineBridge
from app.wizard.cleanup_dialog import CleanupDialog
from app.wizard.fields import ALL_PAGES, CONFIG_PAGES, PAGE_TITLES, owner_of
from app.wizard.last_run import LastRun, fingerprint
from app.wizard.menus import WindowMenus
from app.wizard.pages.advanced import AdvancedPage
from app.wizard.pages.base import Page
from app.wizard.pages.basics import BasicsPage
from app.wizard.pages.deploy import DeployPage
from app.wizard.pages.endpoint import EndpointPage
from app.wizard.pages.function_app import FunctionAppPage
from app.wizard.pages.image import ImagePage
from app.wizard.pages.networking import NetworkingPage
from app.wizard.pages.review import ReviewPage
from app.wizard.pages.tags import TagsPage
from app.wizard.session import BackendFactory, Session
from app.wizard.settings import Settings
from app.wizard.spec_file import SpecFile
from app.wizard.target_holder import TargetHolder
from app.wizard.widgets import icon

WINDOW_TITLE = "mlcache-deploy"
# The smallest window: every page still fits, scrolling where it is taller.
MINIMUM_SIZE = QSize(640, 480)
# Closing during a deploy waits this long for the run to stop before closing anyway.
STOP_RUN_WAIT_MS = 15_000


def default_spec(settings: Settings) -> DeploymentSpec:
    """A new spec with the user's remembered region and plan."""
    spec = DeploymentSpec()
    spec.location = settings.get("spec/location") or spec.location
    spec.function_app.plan_sku = settings.get("spec/plan_sku") or spec.function_app.plan_sku
    return spec


class MainWindow(QMainWindow):
    """The wizard: pages in a stack, Back/Next, the step list, and what joins them."""

    def __init__(
        self,
        backend_factory: BackendFactory | None = None,
        settings: Settings | None = None,
        spec: DeploymentSpec | None = None,
        working_spec: Path | None = None,
    ) -> None:
        """`working_spec`: where the spec being deployed is kept between runs, so a
        window reopened during or after a deploy shows the same deployment again."""
        super().__init__()
        self.settings = settings or Settings()
        self.session = Session(spec or default_spec(self.settings), self)
        self.bridge = EngineBridge(self)
        self.bridge.attach_logging()
        self._current = ""
        self._start_after_paint = False
        # Closing during a deploy: asked and answered (close once the run stopped),
        # and given up waiting for the run to stop.
        self._close_when_stopped = False
        self._close_now = False
        self._step_marks: dict[str, str] = {}  # the icon each step list row shows

        self.setWindowTitle(WINDOW_TITLE)
        self.setWindowIcon(icon("app"))
        self.setMinimumSize(MINIMUM_SIZE)
        self.resize(self._default_size())

        self.pages: dict[str, Page] = {
            "basics": BasicsPage(self.session),
            "networking": NetworkingPage(self.session),
            "advanced": AdvancedPage(self.session),
            "tags": TagsPage(self.session),
            "image": ImagePage(self.session),
            "function_app": FunctionAppPage(self.session),
            "review": ReviewPage(self.session),
            "deploy": DeployPage(self.session, self.bridge),
            "test": EndpointPage(self.session),
        }
        self.basics: BasicsPage = self.pages["basics"]  # type: ignore[assignment]
        self.review: ReviewPage = self.pages["review"]  # type: ignore[assignment]
        self.deploy: DeployPage = self.pages["deploy"]  # type: ignore[assignment]
        self.test_page: EndpointPage = self.pages["test"]  # type: ignore[assignment]
        self.review.collect_problems = self.all_problems
        self.review.checking_names = lambda: any(self.pages[k].busy for k in CONFIG_PAGES)
        self.review.jump_requested.connect(self.jump_to_field)
        self.deploy.recovery_chosen.connect(self._on_recovery)
        self.deploy.run_state_changed.connect(self._update_navigation)
        self.deploy.run_state_changed.connect(self._on_run_state)

        self.target = TargetHolder(self.session, self.settings, backend_factory, self)
        self.spec_file = SpecFile(self.session, self.settings, self._store_current_page,
                                  working_spec, self)
        self.menus = WindowMenus(self, self.target)
        self.menus.open_action.triggered.connect(self.spec_file.ask_open)
        self.menus.save_action.triggered.connect(self.spec_file.ask_save)
        self.menus.save_as_action.triggered.connect(self.spec_file.ask_save_as)
        self.menus.cleanup_action.triggered.connect(self.open_cleanup)
        self._build_central()
        self.target.message.connect(self.statusBar().showMessage)
        self.spec_file.message.connect(self.statusBar().showMessage)
        self.spec_file.changed.connect(self._update_title)
        self.spec_file.paths_moved.connect(lambda: self.pages["image"].do_load(self.session.spec))
        for key, page in self.pages.items():
            page.edited.connect(lambda k=key: self._on_page_edited(k))
            page.status_changed.connect(self._update_navigation)
            page.do_load(self.session.spec)
        self.session.backend_ready.connect(self._on_backend_ready)
        self.session.spec_replaced.connect(self._on_spec_replaced)
        self._restore_geometry()
        self.spec_file.restore_working_spec()
        self.go(self._reopened_page())
        self.target.refresh()
        self._update_title()

    def _reopened_page(self) -> str:
        """Deploy when the spec put back is the one last deployed to the sandbox (the
        sandbox the window connects to on opening): a run the window closed on
        resumes, a finished one shows how it ended; Basics otherwise. (An Azure
        deployment needs a sign-in first: its spec opens on Basics.)"""
        last = self.spec_file.last_run()
        if last is None or last.target != "sandbox":
            return "basics"
        self.deploy.reopen(last)
        return "deploy"

    def _on_run_state(self) -> None:
        """Keep how the deployment stands for a reopened window, and close once the run
        stopped if the window was asked to close during it."""
        deploy = self.deploy
        self.target.stop_sandbox_action.setEnabled(not deploy.running)
        if self._close_when_stopped:
            # Left as "running": reopening resumes the run this close stopped.
            if not deploy.running:
                self.close()
            return
        if deploy.running or not isinstance(deploy.result, LastRun):
            result = deploy.result
            if deploy.running:
                state = "running"
            elif getattr(result, "succeeded", False):
                state = "succeeded"
            elif getattr(getattr(result, "finished", None), "cancelled", False):
                state = "cancelled"
            else:
                state = "failed"
            finished = getattr(result, "finished", None)
            spec = deploy.run_spec or self.session.spec  # what was deployed, as it started
            self.spec_file.keep_run(LastRun(
                state, "azure" if self.session.is_azure else "sandbox",
                spec.resource_group.name, fingerprint(spec), deploy.status.text(),
                dict(deploy.finished), getattr(finished, "log_path", "")))

    def _default_size(self) -> QSize:
        """1180×740, or less on a small screen (a 1366×768 laptop keeps its taskbar)."""
        screen = self.screen()
        if screen is None:
            return QSize(1180, 740)
        free = screen.availableGeometry()
        return QSize(min(1180, int(free.width() * 0.95)), min(740, int(free.height() * 0.95)))

    def _update_title(self) -> None:
        dirty = " *" if self.spec_file.dirty else ""
        self.setWindowTitle(f"{self.spec_file.display_name}{dirty} \u2014 {WINDOW_TITLE}")

    # -- construction ------------------------------------------
    def _build_central(self) -> None:
        central = QWidget(self)
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        self.steps = QListWidget(central)
        self.steps.setObjectName("stepList")
        self.steps.setAccessibleName("Steps")
        self.steps.setFixedWidth(200)
        self.steps.setIconSize(QSize(14, 14))
        for i, key in enumerate(ALL_PAGES):
            item = QListWidgetItem(f"{i + 1}. {PAGE_TITLES[key]}")
            item.setData(Qt.ItemDataRole.UserRole, key)
            self.steps.addItem(item)
        self.steps.currentRowChanged.connect(self._on_step_clicked)
        row.addWidget(self.steps)

        right = QWidget(central)
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        self.stack = QStackedWidget(right)
        for page in self.pages.values():
            self.stack.addWidget(page)
        column.addWidget(self.stack, 1)
        bar = QWidget(right)
        bar.setObjectName("navBar")
        nav = QHBoxLayout(bar)
        nav.setContentsMargins(24, 10, 24, 10)
        self.back_button = QPushButton("< &Back", bar)
        self.back_button.setAccessibleName("Back")
        self.next_button = QPushButton("&Next >", bar)
        self.next_button.setAccessibleName("Next")
        self.next_button.setObjectName("primary")
        self.nav_status = QLabel(bar)
        self.nav_status.setAccessibleName("Why Next is disabled")
        self.nav_status.setObjectName("muted")
        # Wrapped, so a long reason never widens the window past its minimum.
        self.nav_status.setWordWrap(True)
        nav.addWidget(self.back_button)
        nav.addWidget(self.next_button)
        nav.addSpacing(16)
        nav.addWidget(self.nav_status, 1)
        column.addWidget(bar)
        row.addWidget(right, 1)
        self.setCentralWidget(central)
        self.back_button.clicked.connect(self.back)
        self.next_button.clicked.connect(self.next)
        self.statusBar().showMessage("Starting\u2026")

    # -- target ------------------------------------------
    def _on_backend_ready(self) -> None:
        """A new target answers differently: refresh the current page's lists and
        ask again about every name."""
        current = self.pages.get(self._current)
        if current is not None:
            current.on_shown()
        for page in self.pages.values():
            page.recheck_names()

    # -- navigation ------------------------------------------
    def go(self, key: str) -> None:
        if key not in self.pages:
            return
        previous = self.pages.get(self._current)
        if previous is not None and previous is not self.pages[key]:
            previous.store(self.session.spec)
            hide = getattr(previous, "on_hidden", None)
            if hide is not None:
                hide()
        self._current = key
        page = self.pages[key]
        self.stack.setCurrentWidget(page)
        self.steps.blockSignals(True)
        self.steps.setCurrentRow(ALL_PAGES.index(key))
        self.steps.blockSignals(False)
        page.on_shown()
        page.recheck_names()
        page.show_problems(self.session.spec)
        self._update_navigation()

    @property
    def current(self) -> str:
        return self._current

    def _store_current_page(self) -> None:
        """Write what the visible page shows into the spec (pages store on leaving)."""
        self.pages[self._current].store(self.session.spec)

    def _on_step_clicked(self, row: int) -> None:
        key = ALL_PAGES[row]
        if not self._reachable(key):
            self.steps.blockSignals(True)
            self.steps.setCurrentRow(ALL_PAGES.index(self._current))
            self.steps.blockSignals(False)
            self.statusBar().showMessage("Fix the problems listed on Review + create first.", 4000)
            return
        self.go(key)

    def _reachable(self, key: str, any_problem: bool | None = None) -> bool:
        """`any_problem`: whether a configuration page has a problem, when the caller
        has just worked it out (the checks read files and run every rule)."""
        if key in ("deploy", "test"):
            if any_problem is None:
                any_problem = bool(self.all_problems())
            return not any_problem or self.deploy.running or self.deploy.result is not None
        return True

    def back(self) -> None:
        index = ALL_PAGES.index(self._current)
        if index > 0 and self.back_button.isEnabled():
            self.go(ALL_PAGES[index - 1])
            self._focus_page()

    def next(self) -> None:
        if not self.next_button.isEnabled():
            return
        if self._current == "review":
            self.spec_file.keep_working_spec()
            self.go("deploy")
            self.deploy.start()
            self._focus_page()
            return
        index = ALL_PAGES.index(self._current)
        if index + 1 < len(ALL_PAGES):
            self.go(ALL_PAGES[index + 1])
            self._focus_page()

    def _focus_page(self) -> None:
        """After Back or Next the focus goes to the new page's first field, drawn with
        its keyboard focus ring (the old page's widget is hidden now, and a focus
        left there shows nowhere). Pages without a field keep it on Next."""
        page = self.pages[self._current]
        target = page.first_field()
        if target is None:
            target = self.next_button if self.next_button.isEnabled() else self.back_button
        target.setFocus(Qt.FocusReason.TabFocusReason)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Enter is Next and Esc is Back, as in a wizard dialog, where that is safe.

        Keys reach here only when the focused widget did not use them: a multi-line
        box keeps Enter for new lines, an open list keeps Esc to close. Enter on
        Review does not Create (that starts a deployment: a click, Alt+C, or Enter
        with the focus on Create does),
        and Esc is not Back while the focus is in a multi-line box or a run is on
        (Back is disabled then)."""
        key = event.key()
        focus = self.focusWidget()
        typing = isinstance(focus, QPlainTextEdit | QTextEdit)
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not event.modifiers() & ~(
                Qt.KeyboardModifier.KeypadModifier):
            if isinstance(focus, QAbstractButton) and not focus.isCheckable() and \
                    focus.isEnabled():
                focus.click()  # Enter on a focused push button presses that button
            elif self._current != "review" and not typing:
                self.next()
            event.accept()
            return
        if key == Qt.Key.Key_Escape and not event.modifiers():
            open_list = isinstance(focus, QComboBox) and focus.view().isVisible()
            if not typing and not open_list:
                self.back()
            event.accept()
            return
        super().keyPressEvent(event)

    def jump_to_field(self, path: str) -> None:
        owner = owner_of(path)
        self.go(owner)
        self.pages[owner].focus_field(path)

    # -- validation ------------------------------------------
    def all_problems(self) -> list[Problem]:
        spec = self.session.spec
        rules = validate_spec(spec)  # once, not once per page
        out: list[Problem] = []
        for key in CONFIG_PAGES:
            out += self.pages[key].problems(spec, rules)
        return out

    def _on_page_edited(self, key: str) -> None:
        page = self.pages[key]
        page.store(self.session.spec)
        self.spec_file.mark_edited()
        if key == self._current:
            page.show_problems(self.session.spec)
        self._update_navigation()

    def _update_navigation(self) -> None:
        key = self._current
        page = self.pages[key]
        spec = self.session.spec
        if key == "review":
            # A name check answered after the page was drawn: list it too.
            self.review.show_problems(spec)
        problems = page.problems(spec)
        busy = page.busy
        index = ALL_PAGES.index(key)
        self.back_button.setEnabled(index > 0 and not (key == "deploy" and self.deploy.running))
        if key == "review":
            self.next_button.setText("&Create")
        elif key == "deploy":
            self.next_button.setText("&Next: Test >")
        else:
            self.next_button.setText("&Next >")
        enabled = not problems and not busy and index + 1 < len(ALL_PAGES)
        self.next_button.setEnabled(enabled)
        if problems and key in CONFIG_PAGES:
            n = len(problems)
            self.nav_status.setText(f"Fix {n} problem{'s' if n != 1 else ''} on this page "
                                    "to continue.")
        elif problems and key == "review":
            self.nav_status.setText("Fix the problems above to create.")
        elif busy:
            self.nav_status.setText(page.busy_reason)
        else:
            self.nav_status.clear()
        # Mark pages that have problems in the step list. Each page is checked once
        # per call: this runs on every engine event that changes the run's state.
        rules = validate_spec(spec)  # once for every page, not once per page
        # What only the engine's preflight found (a private endpoint) marks its page too.
        engine = {owner_of(p.field) for p in self.review.preflight_found()}
        bad = {k: k in engine or (bool(problems) if k == key
                                  else bool(self.pages[k].problems(spec, rules)))
               for k in CONFIG_PAGES}
        for i, page_key in enumerate(ALL_PAGES):
            item = self.steps.item(i)
            if page_key in CONFIG_PAGES:
                mark = "error" if bad[page_key] else "check"
                if self._step_marks.get(page_key) != mark:
                    self._step_marks[page_key] = mark
                    item.setIcon(icon(mark))
                    item.setToolTip("Has problems" if bad[page_key] else "")
            elif page_key in ("deploy", "test"):
                flags = item.flags()
                if self._reachable(page_key, any(bad.values())):
                    item.setFlags(flags | Qt.ItemFlag.ItemIsEnabled)
                else:
                    item.setFlags(flags & ~Qt.ItemFlag.ItemIsEnabled)

    # -- spec and clean up ------------------------------------------
    def _on_spec_replaced(self) -> None:
        for page in self.pages.values():
            page.do_load(self.session.spec)
        self.go("basics" if self._current in ("deploy", "test") else self._current)

    def open_cleanup(self) -> CleanupDialog:
        self._store_current_page()
        dialog = CleanupDialog(self.session, self.session.spec.resource_group.name, self)
        dialog.deleted.connect(self._on_group_deleted)
        dialog.open()
        return dialog

    def _on_group_deleted(self, name: str) -> None:
        self.statusBar().showMessage(f"Deleted {name}.", 8000)
        # What the deploy page showed is gone with the group.
        if name.lower() == self.session.spec.resource_group.name.lower():
            self.deploy.forget_run(name)
            self.spec_file.forget_run()
            self.basics.group_deleted(name)
        else:
            self.deploy.result = None
        if self._current == "deploy":
            self.deploy.on_shown()
        self._update_navigation()

    def _on_recovery(self, recovery: Recovery) -> None:
        """Apply the fix a failed step offered: its spec's cache replaces ours."""
        self._store_current_page()
        self.session.spec.cache = recovery.spec.cache
        for page in self.pages.values():
            page.do_load(self.session.spec)
        self.deploy.result = None
        self.statusBar().showMessage("Switched the cache to Azure Managed Redis. "
                                     "Review and create again.", 8000)
        self.go("review")

    # -- window state ------------------------------------------
    def _restore_geometry(self) -> None:
        geometry = self.settings.get_bytes("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.deploy.running and not self._close_now:
            event.ignore()
            if not self._close_when_stopped and self._confirm_stop_run():
                # The run is this program's: stop it the way Cancel does (no new step
                # starts, waiting ones stop at their next poll), then close.
                self._close_when_stopped = True
                self.deploy.cancel()
                self.setEnabled(False)
                self.statusBar().showMessage("Stopping the deployment run, then closing\u2026")
                QTimer.singleShot(STOP_RUN_WAIT_MS, self._close_anyway)
            return
        self._store_current_page()
        self.settings.set_bytes("window/geometry", self.saveGeometry())
        spec = self.session.spec
        if spec.location:
            self.settings.set("spec/location", spec.location)
        self.settings.set("spec/plan_sku", spec.function_app.plan_sku)
        self.settings.sync()
        self.bridge.detach_logging()
        self.session.close()
        super().closeEvent(event)

    def _confirm_stop_run(self) -> bool:
        if self.session.is_azure:
            goes_on = ("What Azure is already creating goes on there. Open the same spec "
                       "again, sign in and deploy to pick the deployment up where it stopped.")
        else:
            goes_on = ("What the local sandbox is already creating goes on there: the "
                       "sandbox keeps running after the window closes (Target > Stop the "
                       "local sandbox stops it). Reopen the wizard to pick the deployment "
                       "up where it stopped.")
        answer = QMessageBox.question(
            self, "A deployment is running",
            "Closing stops this deployment run: the steps that have not started yet do "
            f"not start.\n\n{goes_on}\n\nStop the run and close?")
        return answer == QMessageBox.StandardButton.Yes

    def _close_anyway(self) -> None:
        """The run did not stop in time (a request still in flight): close regardless."""
        if self._close_when_stopped:
            self._close_now = True
            self.close()

    def show_when_ready(self) -> None:
        """Show now; connect to the target once the first frame is on screen, so the
        SDK imports and the sandbox start never delay the first paint."""
        self._start_after_paint = True
        self.show()

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self._start_after_paint:
            self._start_after_paint = False
            QTimer.singleShot(0, self.target.start)

