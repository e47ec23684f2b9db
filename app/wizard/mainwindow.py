"""The main window: step list on the left (like the portal's create tabs),
the current page, Back/Next, the target indicator and Clean up in the toolbar."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QPaintEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app import __version__
from app.errors import MlcacheError
from app.rules import Problem
from app.spec import DeploymentSpec, load_spec, save_spec
from app.wizard.backend import Backend
from app.wizard.bridge import EngineBridge
from app.wizard.cleanup_dialog import CleanupDialog
from app.wizard.errors_view import show_error
from app.wizard.fields import ALL_PAGES, CONFIG_PAGES, PAGE_TITLES, owner_of
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
from app.wizard.widgets import icon
from app.wizard.workers import run_task

log = logging.getLogger("mlcache.wizard")

WINDOW_TITLE = "mlcache-deploy"


def default_spec(settings: Settings) -> DeploymentSpec:
    """A new spec with the user's remembered region and plan."""
    spec = DeploymentSpec()
    spec.location = settings.get("spec/location") or spec.location
    spec.function_app.plan_sku = settings.get("spec/plan_sku") or spec.function_app.plan_sku
    return spec


class MainWindow(QMainWindow):
    def __init__(
        self,
        backend_factory: BackendFactory | None = None,
        settings: Settings | None = None,
        spec: DeploymentSpec | None = None,
        azure_sign_in: Callable[[], object] | None = None,
        working_spec: Path | None = None,
    ) -> None:
        """`working_spec`: where the spec being deployed is kept between runs, so a
        window reopened during or after a deploy shows the same deployment again."""
        super().__init__()
        self.settings = settings or Settings()
        self.session = Session(spec or default_spec(self.settings), self)
        self.bridge = EngineBridge(self)
        self.bridge.attach_logging()
        self.backend_factory = backend_factory
        self.azure_sign_in = azure_sign_in
        self.spec_path: Path | None = None
        self.working_spec = working_spec
        self._current = ""
        self._dirty = False
        self._start_after_paint = False

        self.setWindowTitle(WINDOW_TITLE)
        self.setWindowIcon(icon("app"))
        self.setMinimumSize(QSize(900, 600))
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
        self.review: ReviewPage = self.pages["review"]  # type: ignore[assignment]
        self.deploy: DeployPage = self.pages["deploy"]  # type: ignore[assignment]
        self.test_page: EndpointPage = self.pages["test"]  # type: ignore[assignment]
        self.review.collect_problems = self.all_problems
        self.review.jump_requested.connect(self.jump_to_field)
        self.deploy.switch_to_managed.connect(self._on_switch_to_managed)
        self.deploy.run_state_changed.connect(self._update_navigation)

        self._build_actions()
        self._build_central()
        for key, page in self.pages.items():
            page.edited.connect(lambda k=key: self._on_page_edited(k))
            page.status_changed.connect(self._update_navigation)
            page.do_load(self.session.spec)
        self.session.backend_ready.connect(self._on_backend_ready)
        self.session.backend_failed.connect(self._on_backend_failed)
        self.session.target_changed.connect(self._update_target)
        self.session.spec_replaced.connect(self._on_spec_replaced)
        self._restore_geometry()
        self._restore_working_spec()
        self.go("basics")
        self._update_target()
        self._update_title()

    def _default_size(self) -> QSize:
        """1180×740, or less on a small screen (a 1366×768 laptop keeps its taskbar)."""
        screen = self.screen()
        if screen is None:
            return QSize(1180, 740)
        free = screen.availableGeometry()
        return QSize(min(1180, int(free.width() * 0.95)), min(740, int(free.height() * 0.95)))

    def _update_title(self) -> None:
        name = self.spec_path.name if self.spec_path else "new deployment"
        self.setWindowTitle(f"{name}{' *' if self._dirty else ''} \u2014 {WINDOW_TITLE}")

    # -- construction ------------------------------------------
    def _build_actions(self) -> None:
        menu = self.menuBar().addMenu("&File")
        self.open_action = QAction("&Open spec\u2026", self)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_action.triggered.connect(self._on_open)
        self.save_action = QAction("&Save spec", self)
        self.save_action.setShortcut(QKeySequence.StandardKey.Save)
        self.save_action.triggered.connect(self._on_save)
        self.save_as_action = QAction("Save spec &as\u2026", self)
        self.save_as_action.setShortcut(QKeySequence.StandardKey.SaveAs)
        self.save_as_action.triggered.connect(self._on_save_as)
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        for action in (self.open_action, self.save_action, self.save_as_action):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(quit_action)

        self.sign_in_action = QAction(icon("cloud"), "Sign in to &Azure\u2026", self)
        self.sign_in_action.triggered.connect(self._on_sign_in)
        self.sandbox_action = QAction(icon("sandbox"), "Use the local &sandbox", self)
        self.sandbox_action.triggered.connect(self._on_use_sandbox)
        self.cleanup_action = QAction(icon("delete"), "&Clean up\u2026", self)
        self.cleanup_action.setShortcut(QKeySequence("Ctrl+Shift+Delete"))
        self.cleanup_action.setToolTip("Delete the resource group and everything in it")
        self.cleanup_action.triggered.connect(self.open_cleanup)
        target_menu = self.menuBar().addMenu("&Target")
        target_menu.addAction(self.sandbox_action)
        target_menu.addAction(self.sign_in_action)
        target_menu.addSeparator()
        target_menu.addAction(self.cleanup_action)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About", self)
        about.triggered.connect(self._on_about)
        help_menu.addAction(about)

        toolbar = QToolBar("Target", self)
        toolbar.setObjectName("targetToolbar")
        toolbar.setMovable(False)
        toolbar.setIconSize(QSize(18, 18))
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.target_icon = QLabel(toolbar)
        self.target_label = QLabel(toolbar)
        self.target_label.setObjectName("targetLabel")
        self.target_label.setAccessibleName("Target")
        toolbar.addWidget(self.target_icon)
        toolbar.addWidget(self.target_label)
        toolbar.addSeparator()
        toolbar.addAction(self.sign_in_action)
        toolbar.addAction(self.sandbox_action)
        spacer = QWidget(toolbar)
        spacer.setSizePolicy(spacer.sizePolicy().horizontalPolicy().Expanding,
                             spacer.sizePolicy().verticalPolicy().Preferred)
        toolbar.addWidget(spacer)
        toolbar.addAction(self.cleanup_action)
        self.addToolBar(toolbar)

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

    # -- backend ------------------------------------------
    def start_backend(self) -> None:
        if self.backend_factory is None:
            return
        self.statusBar().showMessage("Connecting to the local sandbox\u2026")
        self.session.start_backend(self.backend_factory)

    def _on_backend_ready(self) -> None:
        self.statusBar().showMessage(f"Connected to {self.session.target_label}.", 5000)
        self._update_target()
        current = self.pages.get(self._current)
        if current is not None:
            current.on_shown()
        for page in self.pages.values():
            page.recheck_names()

    def _on_backend_failed(self, message: str) -> None:
        self.statusBar().showMessage(f"Could not reach the target: {message}. "
                                     "Target > Use the local sandbox tries again.")
        self._update_target()

    def _update_target(self) -> None:
        backend = self.session.backend
        azure = backend is not None and backend.is_azure
        self.target_icon.setPixmap(icon("cloud" if azure else "sandbox").pixmap(18, 18))
        if backend is None and self.session.starting:
            text = "Target: Local sandbox (starting\u2026)"
        elif backend is None and self.session.backend_error:
            text = "Target: not connected"
        else:
            text = f"Target: {self.session.target_label}"
        self.target_label.setText(text + "   ")
        # Offered on Azure, and to try again when the sandbox could not start.
        self.sandbox_action.setVisible(azure or (backend is None and not self.session.starting
                                                 and bool(self.session.backend_error)))
        self.sign_in_action.setText("Change Azure subscription\u2026" if azure
                                    else "Sign in to Azure\u2026")

    def use_backend(self, backend: Backend) -> None:
        self.session.use_backend(backend)
        self.settings.set("target", "azure" if backend.is_azure else "sandbox")

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

    def _on_step_clicked(self, row: int) -> None:
        key = ALL_PAGES[row]
        if not self._reachable(key):
            self.steps.blockSignals(True)
            self.steps.setCurrentRow(ALL_PAGES.index(self._current))
            self.steps.blockSignals(False)
            self.statusBar().showMessage("Fix the problems listed on Review + create first.", 4000)
            return
        self.go(key)

    def _reachable(self, key: str) -> bool:
        if key in ("deploy", "test"):
            return not self.all_problems() or self.deploy.running or \
                self.deploy.result is not None
        return True

    def back(self) -> None:
        index = ALL_PAGES.index(self._current)
        if index > 0:
            self.go(ALL_PAGES[index - 1])

    def next(self) -> None:
        if not self.next_button.isEnabled():
            return
        if self._current == "review":
            self.keep_working_spec()
            self.go("deploy")
            self.deploy.start()
            return
        index = ALL_PAGES.index(self._current)
        if index + 1 < len(ALL_PAGES):
            self.go(ALL_PAGES[index + 1])

    def jump_to_field(self, path: str) -> None:
        owner = owner_of(path)
        self.go(owner)
        self.pages[owner].focus_field(path)

    # -- validation ------------------------------------------
    def all_problems(self) -> list[Problem]:
        spec = self.session.spec
        out: list[Problem] = []
        for key in CONFIG_PAGES:
            out += self.pages[key].problems(spec)
        return out

    def _on_page_edited(self, key: str) -> None:
        page = self.pages[key]
        page.store(self.session.spec)
        if not self._dirty:
            self._dirty = True
            self._update_title()
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
            self.nav_status.setText("Checking name availability\u2026")
        else:
            self.nav_status.clear()
        # Mark pages that have problems in the step list.
        for i, page_key in enumerate(ALL_PAGES):
            item = self.steps.item(i)
            if page_key in CONFIG_PAGES:
                bad = bool(self.pages[page_key].problems(spec))
                item.setIcon(icon("error") if bad else icon("check"))
                item.setToolTip("Has problems" if bad else "")
            elif page_key in ("deploy", "test"):
                flags = item.flags()
                if self._reachable(page_key):
                    item.setFlags(flags | Qt.ItemFlag.ItemIsEnabled)
                else:
                    item.setFlags(flags & ~Qt.ItemFlag.ItemIsEnabled)

    # -- spec files ------------------------------------------
    def _on_open(self) -> None:
        start = self.settings.get("spec/last_path")
        path, _ = QFileDialog.getOpenFileName(self, "Open deployment spec", start,
                                              "Deployment spec (*.json *.toml)")
        if path:
            self.open_spec(Path(path))

    def open_spec(self, path: Path) -> bool:
        try:
            spec = load_spec(path)
        except MlcacheError as exc:
            show_error(self, "Cannot open the spec", exc)
            return False
        self.spec_path = path
        self.settings.set("spec/last_path", str(path))
        self.session.replace_spec(spec, path.resolve().parent)
        self.statusBar().showMessage(f"Opened {path}", 5000)
        return True

    def _restore_working_spec(self) -> None:
        if self.working_spec is None or not self.working_spec.exists():
            return
        try:
            spec = load_spec(self.working_spec)
        except MlcacheError as exc:
            log.warning("could not restore the last spec: %s", exc)
            return
        last = self.settings.get("spec/last_path")
        self.session.replace_spec(spec, Path(last).parent if last else None)
        self.statusBar().showMessage(
            f"Reopened the last deployment ({spec.resource_group.name}); the Deploy page "
            "shows what of it exists.", 8000)

    def keep_working_spec(self) -> None:
        """Called as a deploy starts: the spec survives the window (no secrets in it)."""
        if self.working_spec is None:
            return
        try:
            self.working_spec.parent.mkdir(parents=True, exist_ok=True)
            save_spec(self.session.spec, self.working_spec)
        except (MlcacheError, OSError) as exc:
            log.warning("could not keep the spec for next time: %s", exc)

    def _on_spec_replaced(self) -> None:
        for page in self.pages.values():
            page.do_load(self.session.spec)
        self._dirty = False
        self._update_title()
        self.go("basics" if self._current in ("deploy", "test") else self._current)

    def _on_save(self) -> None:
        if self.spec_path is None:
            self._on_save_as()
        else:
            self.save_spec(self.spec_path)

    def _on_save_as(self) -> None:
        start = str(self.spec_path or Path(self.settings.get("spec/last_path") or ".")
                    .with_name(f"{self.session.spec.resource_group.name or 'deployment'}.json"))
        path, _ = QFileDialog.getSaveFileName(self, "Save deployment spec", start,
                                              "JSON (*.json);;TOML (*.toml)")
        if path:
            self.save_spec(Path(path))

    def save_spec(self, path: Path) -> bool:
        self.pages[self._current].store(self.session.spec)
        try:
            save_spec(self.session.spec, path)
        except (MlcacheError, OSError) as exc:
            show_error(self, "Cannot save the spec", exc)
            return False
        self.spec_path = path
        self._dirty = False
        self._update_title()
        self.settings.set("spec/last_path", str(path))
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    # -- target and clean up ------------------------------------------
    def _on_sign_in(self) -> None:
        from app.wizard.signin_dialog import SignInDialog

        azure = self.azure_sign_in() if self.azure_sign_in else _default_azure_sign_in()
        dialog = SignInDialog(self.settings, azure, self)
        dialog.accepted.connect(lambda: self._on_signed_in(dialog))
        dialog.open()

    def _on_signed_in(self, dialog: object) -> None:
        backend = getattr(dialog, "backend", None)
        if backend is not None:
            self.use_backend(backend)

    def _on_use_sandbox(self) -> None:
        self.settings.set("target", "sandbox")
        if self.backend_factory is not None:
            old, self.session.backend = self.session.backend, None
            if old is not None:
                run_task(old.close)
            self.session.start_backend(self.backend_factory)
            self._update_target()

    def open_cleanup(self) -> CleanupDialog:
        self.pages[self._current].store(self.session.spec)
        dialog = CleanupDialog(self.session, self.session.spec.resource_group.name, self)
        dialog.deleted.connect(self._on_group_deleted)
        dialog.open()
        return dialog

    def _on_group_deleted(self, name: str) -> None:
        self.statusBar().showMessage(f"Deleted {name}.", 8000)
        # What the deploy page showed is gone with the group.
        self.deploy.result = None
        if self._current == "deploy":
            self.deploy.on_shown()
        self._update_navigation()

    def _on_switch_to_managed(self) -> None:
        from app.services.managed_redis import switch_to_managed_redis

        self.pages[self._current].store(self.session.spec)
        switched = switch_to_managed_redis(self.session.spec)
        self.session.spec.cache = switched.cache
        for page in self.pages.values():
            page.do_load(self.session.spec)
        self.deploy.result = None
        self.statusBar().showMessage("Switched the cache to Azure Managed Redis. "
                                     "Review and create again.", 8000)
        self.go("review")

    def _on_about(self) -> None:
        QMessageBox.about(
            self, "About mlcache-deploy",
            f"<b>mlcache-deploy {__version__}</b><p>Serve a trained model on Azure "
            "Functions with a Redis cache in front of it: validated, observable, and "
            "removed in one click.</p>")

    # -- window state ------------------------------------------
    def _restore_geometry(self) -> None:
        geometry = self.settings.get_bytes("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.deploy.running:
            answer = QMessageBox.question(
                self, "A deployment is running",
                "Closing stops watching the deployment; what Azure is creating keeps being "
                "created. Open the same spec again and deploy to resume.\n\nClose anyway?")
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            self.deploy.cancel()
        self.pages[self._current].store(self.session.spec)
        self.settings.set_bytes("window/geometry", self.saveGeometry())
        spec = self.session.spec
        if spec.location:
            self.settings.set("spec/location", spec.location)
        self.settings.set("spec/plan_sku", spec.function_app.plan_sku)
        self.settings.sync()
        self.bridge.detach_logging()
        self.session.close()
        super().closeEvent(event)

    def show_when_ready(self) -> None:
        """Show now; connect to the target once the first frame is on screen, so the
        SDK imports and the sandbox start never delay the first paint."""
        self._start_after_paint = True
        self.show()

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self._start_after_paint:
            self._start_after_paint = False
            QTimer.singleShot(0, self.start_backend)


def _default_azure_sign_in() -> object:
    from app.wizard.services_backend import AzureSignIn

    return AzureSignIn()
