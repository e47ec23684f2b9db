"""What every page shares: reading from and writing to the spec, showing the
rule problems under their fields, and telling the window whether Next is allowed."""

from __future__ import annotations

import copy
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.rules import Problem, validate_spec
from app.spec import DeploymentSpec
from app.wizard.backend import Availability
from app.wizard.errors_view import plain
from app.wizard.fields import owned_by
from app.wizard.session import Session
from app.wizard.widgets import FieldMessage, NameField


class Page(QWidget):
    """A wizard page. Subclasses build widgets in `build`, and implement
    `load` (spec → widgets) and `store` (widgets → spec)."""

    key = ""
    title = ""
    heading = ""
    intro = ""
    # Form pages keep their fields at the top; log-like pages fill the height.
    fill_height = False
    # Emitted after every edit; the window stores, re-validates and updates Next.
    edited = Signal()
    # Emitted when only the page's state changed (an availability answer arrived).
    status_changed = Signal()

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.setObjectName(f"page-{self.key}")
        # Two-way choices (`two_choices`): first button, its note, and both sentences.
        self._explained: list[tuple[QRadioButton, QLabel, str, str]] = []
        self.setAccessibleName(self.title)
        self._fields: dict[str, QWidget] = {}
        self._messages: dict[str, FieldMessage] = {}
        self._name_fields: dict[str, NameField] = {}
        self._loading = False
        # Messages wait until the user has touched a field (changed it, or left it):
        # what the spec held when it was loaded, and the paths touched since.
        self._loaded: dict[str, object] = {}
        self._touched: set[str] = set()
        self._focus_paths: dict[QObject, str] = {}

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        outer.addWidget(scroll)
        self.body = QWidget()
        self.body.setObjectName("pageBody")
        scroll.setWidget(self.body)
        self.layout_ = QVBoxLayout(self.body)
        self.layout_.setContentsMargins(24, 16, 24, 16)
        self.layout_.setSpacing(10)
        if self.heading:
            head = QLabel(self.heading)
            head.setObjectName("pageHeading")
            head.setAccessibleName(self.heading)
            self.layout_.addWidget(head)
        if self.intro:
            intro = QLabel(self.intro)
            intro.setWordWrap(True)
            intro.setObjectName("pageIntro")
            intro.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
            intro.setOpenExternalLinks(True)
            self.layout_.addWidget(intro)
        self.build()
        if not self.fill_height:
            self.layout_.addStretch(1)

    # -- for subclasses ------------------------------------------
    def add_filling(self, widget: QWidget) -> None:
        """Add the part of a `fill_height` page that takes the height left over.

        Its preferred height is ignored: the page's scroll area sizes a body whose
        text wraps by the body's preferred heights, so a tall preference would push
        the page past the window and hide its lower half behind a scroll bar. Its
        minimum still holds, and below it the page scrolls."""
        # An ignored policy drops the minimum hint too: keep it as an explicit minimum.
        widget.setMinimumHeight(max(widget.minimumHeight(), widget.minimumSizeHint().height()))
        policy = widget.sizePolicy()
        policy.setVerticalPolicy(QSizePolicy.Policy.Ignored)
        widget.setSizePolicy(policy)
        self.layout_.addWidget(widget, 1)

    def build(self) -> None:
        raise NotImplementedError

    def load(self, spec: DeploymentSpec) -> None:
        """Show `spec`'s values; must not emit `edited`."""

    def store(self, spec: DeploymentSpec) -> None:
        """Write the widgets' values into `spec`."""

    def extra_problems(self) -> list[Problem]:
        """Problems rules cannot see (a taken name)."""
        out = []
        for path, field in self._name_fields.items():
            message = field.problem()
            if message:
                out.append(Problem(path, message))
        return out

    def on_shown(self) -> None:
        """The page became current (refresh lists, re-read the spec)."""

    # -- shared behaviour ------------------------------------------
    def bind(self, path: str, widget: QWidget, message: FieldMessage | None = None) -> None:
        """Register a field: problems for `path` show in `message`, links focus `widget`."""
        self._fields[path] = widget
        focus = widget.edit if isinstance(widget, NameField) else widget
        self._focus_paths[focus] = path
        focus.installEventFilter(self)
        if isinstance(widget, NameField):
            self._name_fields[path] = widget
            self._messages[path] = widget.message
            widget.edited.connect(self._on_edit)
            widget.availability_changed.connect(self._on_availability)
        elif message is not None:
            self._messages[path] = message

    def address_hint(self, what: str, on_azure: str) -> str:
        """`what` ("Host name", "Endpoint") as the target gives it: Azure's address, or
        on the sandbox 127.0.0.1 on a port of its own, with Azure's beside it."""
        backend = self.session.backend
        if backend is not None and not backend.is_azure:
            return (f"{what} on the local sandbox: 127.0.0.1, on a port of its own "
                    f"(on Azure: {on_azure})")
        return f"{what}: {on_azure}"

    def message_for(self) -> FieldMessage:
        return FieldMessage(self.body, reserve=not self.fill_height)

    def _on_edit(self, *_args: object) -> None:
        if not self._loading:
            self.edited.emit()

    def _on_availability(self) -> None:
        self.status_changed.emit()

    def do_load(self, spec: DeploymentSpec) -> None:
        self._loading = True
        try:
            self.load(spec)
        finally:
            self._loading = False
        if spec is not self._loaded.get(""):
            # Another spec (a new window's, or a file opened): nothing touched yet.
            self._touched.clear()
            self._loaded = {"": spec, **{path: copy.deepcopy(value_at(spec, path))
                                         for path in self._messages}}

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.FocusOut and watched in self._focus_paths:
            path = self._focus_paths[watched]
            if path not in self._touched:
                self._touched.add(path)
                self.show_problems(self.session.spec)
        return super().eventFilter(watched, event)

    def reveals(self, path: str) -> bool:
        """Whether `path`'s messages show yet: once the user has changed the field or
        left it (a field reached from Review's link shows them at once)."""
        if path in self._touched:
            return True
        loaded = self._loaded.get(path, value_at(self.session.spec, path))
        if value_at(self.session.spec, path) != loaded:
            self._touched.add(path)
            return True
        return False

    def rule_problems(self, spec: DeploymentSpec,
                      rules: list[Problem] | None = None) -> list[Problem]:
        """This page's share of the rule problems; `rules`: `validate_spec(spec)` when
        the caller already has it (the window checks every page at once)."""
        found = validate_spec(spec) if rules is None else rules
        return [p for p in found if owned_by(self.key, p.field)]

    def problems(self, spec: DeploymentSpec,
                 rules: list[Problem] | None = None) -> list[Problem]:
        return self.rule_problems(spec, rules) + self.extra_problems()

    @property
    def busy(self) -> bool:
        return any(f.busy for f in self._name_fields.values())

    @property
    def busy_reason(self) -> str:
        """What Next waits for while the page is busy."""
        return "Checking name availability\u2026"

    def recheck_names(self) -> None:
        """Ask again whether this page's names are free: since the last answer they
        may have been taken, deployed by us, or the target may have changed."""
        for field in self._name_fields.values():
            field.recheck()

    def show_problems(self, spec: DeploymentSpec) -> list[Problem]:
        """Put every rule problem under its field; return them all."""
        problems = self.rule_problems(spec)
        by_path: dict[str, list[str]] = {path: [] for path in self._messages}
        for problem in problems:
            target = self._message_path(problem.field)
            if target is not None:
                by_path[target].append(problem.plain)
        for path, messages in by_path.items():
            shown = self.reveals(path)
            if path in self._name_fields:
                self._name_fields[path].set_rule_messages(messages, shown)
            else:
                self._messages[path].show_messages(messages if shown else [])
        return problems + self.extra_problems()

    def _message_path(self, field: str) -> str | None:
        if field in self._messages:
            return field
        # cache.zones[1] → cache.zones; tags.env → tags
        for path in sorted(self._messages, key=len, reverse=True):
            if field.startswith((path + ".", path + "[")):
                return path
        return None

    def focus_field(self, path: str) -> bool:
        target = self._message_path(path) or path
        widget = self._fields.get(target)
        if widget is None:
            for key, candidate in self._fields.items():
                if path.startswith(key):
                    widget = candidate
                    break
        if widget is None:
            return False
        widget.setFocus(Qt.FocusReason.OtherFocusReason)
        for key, candidate in self._fields.items():
            if candidate is widget:
                self._touched.add(key)
        self.show_problems(self.session.spec)
        return True

    def first_field(self) -> QWidget | None:
        """Where the focus goes when the page is reached with Back or Next: its first
        field a user can change now (None: the window keeps it on its buttons)."""
        for widget in self._fields.values():
            target = widget.edit if isinstance(widget, NameField) else widget
            if target.isEnabled() and target.isVisibleTo(self) and \
                    target.focusPolicy() & Qt.FocusPolicy.TabFocus:
                return target
        return None

    def explain_choices(self) -> None:
        for first, note, first_text, second_text in self._explained:
            note.setText(first_text if first.isChecked() else second_text)

    def two_choices(self, parent: QWidget, form: QFormLayout, field: str, label: str,
                first: tuple[str, str, str], second: tuple[str, str, str],
                ) -> tuple[QRadioButton, QRadioButton, QLabel]:
        """Two radio buttons and one sentence saying what the checked one means.

        Each of `first`/`second` is (button text, accessible name, the sentence); the
        first is checked and bound to `field`. Its message is `_last_message`."""
        box = QWidget(parent)
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        group = QButtonGroup(box)
        buttons = []
        for text, name, _why in (first, second):
            button = QRadioButton(text, box)
            button.setAccessibleName(name)
            group.addButton(button)
            row.addWidget(button)
            buttons.append(button)
        row.addStretch(1)
        note = QLabel(first[2], parent)
        note.setWordWrap(True)
        note.setObjectName("muted")
        buttons[0].setChecked(True)
        self._explained.append((buttons[0], note, first[2], second[2]))

        def explain(_checked: bool) -> None:
            self.explain_choices()
            self._on_edit()

        buttons[0].toggled.connect(explain)
        self._last_message = self.message_for()
        form.addRow(label, stack(box, note, self._last_message))
        self.bind(field, buttons[0], self._last_message)
        return buttons[0], buttons[1], note


def value_at(spec: DeploymentSpec, path: str) -> object:
    """The spec's value at a field path (`cache.name`); None where there is none."""
    value: object = spec
    for part in path.split("."):
        value = getattr(value, part, None)
    return value


def stack(*widgets: QWidget) -> QWidget:
    box = QWidget()
    column = QVBoxLayout(box)
    column.setContentsMargins(0, 0, 0, 0)
    column.setSpacing(2)
    for w in widgets:
        column.addWidget(w)
    return box


def make_checker(
    page: Page, kind: Callable[[], str]
) -> Callable[[str, Callable[[str, Availability | None, str], None]], None]:
    """A NameField checker asking the backend whether `name` is free (in a worker)."""

    def check(name: str, done: Callable[[str, Availability | None, str], None]) -> None:
        what = kind()
        spec = copy.deepcopy(page.session.spec)
        page.session.submit(
            lambda b: b.name_available(what, name, spec),
            lambda answer: done(name, answer, ""),
            lambda exc: done(name, None, plain(exc)),
        )

    return check
