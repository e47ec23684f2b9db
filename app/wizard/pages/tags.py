"""Tags: name/value pairs put on every resource the deployment creates."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from app.rules import CREATED_BY_TAG, CREATED_BY_VALUE, check_tag_name, check_tag_value
from app.spec import DeploymentSpec
from app.wizard.fields import sentence
from app.wizard.pages.base import Page


class TagsPage(Page):
    key = "tags"
    title = "Tags"
    heading = "Tags"
    intro = ("Tags are name/value pairs that let you group resources and see their "
             "cost together. They go on every resource this deployment creates.")

    def build(self) -> None:
        self.table = QTableWidget(0, 2, self.body)
        self.table.setAccessibleName("Tags")
        self.table.setHorizontalHeaderLabels(["Name", "Value"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setTabKeyNavigation(True)
        self.table.setMinimumHeight(180)
        self.table.itemChanged.connect(self._on_item_changed)
        self.layout_.addWidget(self.table)

        buttons = QWidget(self.body)
        row = QHBoxLayout(buttons)
        row.setContentsMargins(0, 0, 0, 0)
        self.add_button = QPushButton("&Add tag", buttons)
        self.add_button.setAccessibleName("Add tag")
        self.add_button.clicked.connect(self._on_add)
        self.remove_button = QPushButton("&Remove selected", buttons)
        self.remove_button.setAccessibleName("Remove selected tags")
        self.remove_button.clicked.connect(self._on_remove)
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        self.layout_.addWidget(buttons)
        self.message = self.message_for()
        self.layout_.addWidget(self.message)
        fixed = QLabel(f"Always added: {CREATED_BY_TAG} = {CREATED_BY_VALUE} "
                       "(clean up uses it to recognise what this tool created).")
        fixed.setObjectName("muted")
        fixed.setWordWrap(True)
        self.layout_.addWidget(fixed)
        self.bind("tags", self.table, self.message)

    # -- editing ------------------------------------------
    def _on_add(self) -> None:
        row = self.table.rowCount()
        self._loading = True
        self.table.insertRow(row)
        self.table.setItem(row, 0, QTableWidgetItem(""))
        self.table.setItem(row, 1, QTableWidgetItem(""))
        self._loading = False
        self.table.setCurrentCell(row, 0)
        first = self.table.item(row, 0)
        if first is not None:
            self.table.editItem(first)

    def _on_remove(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True)
        if not rows and self.table.currentRow() >= 0:
            rows = [self.table.currentRow()]
        for row in rows:
            self.table.removeRow(row)
        self._on_edit()

    def _on_item_changed(self, _item: QTableWidgetItem) -> None:
        if not self._loading:
            self._mark_rows()
            self._on_edit()

    def rows(self) -> list[tuple[str, str]]:
        out = []
        for r in range(self.table.rowCount()):
            name = self.table.item(r, 0)
            value = self.table.item(r, 1)
            out.append(((name.text() if name else "").strip(),
                        (value.text() if value else "")))
        return out

    def set_row(self, row: int, name: str, value: str) -> None:
        """Fill one row (used by keyboard users' paste and by tests)."""
        while self.table.rowCount() <= row:
            self._on_add()
        for col, text in ((0, name), (1, value)):
            item = self.table.item(row, col)
            if item is not None:
                item.setText(text)

    def _mark_rows(self) -> None:
        """Colour the cells that break a rule, with the message as tooltip."""
        seen: set[str] = set()
        self._loading = True
        for r, (name, value) in enumerate(self.rows()):
            if not name and not value:
                problems_name: list[str] = []
            else:
                problems_name = check_tag_name(name)
                if name.lower() in seen:
                    problems_name = [*problems_name, "tag name used twice"]
                seen.add(name.lower())
            problems_value = check_tag_value(value)
            for col, problems in ((0, problems_name), (1, problems_value)):
                item = self.table.item(r, col)
                if item is None:
                    continue
                item.setToolTip("\n".join(sentence(p) for p in problems))
                item.setForeground(Qt.GlobalColor.red if problems else Qt.GlobalColor.black)
        self._loading = False

    def extra_problems(self) -> list:
        from app.rules import Problem

        out = []
        names = [n.lower() for n, v in self.rows() if n or v]
        for name in sorted({n for n in names if names.count(n) > 1}):
            out.append(Problem(f"tags.{name}", f"tag {name!r}: used twice (names ignore case)"))
        for r, (name, value) in enumerate(self.rows()):
            if not name and value:
                out.append(Problem("tags", f"row {r + 1}: tag name must not be empty"))
        return out

    def show_problems(self, spec: DeploymentSpec) -> list:
        problems = super().show_problems(spec)
        extra = self.extra_problems()
        # Each message names its tag, quoted as typed (app.rules).
        lines = [p.plain for p in [*self.rule_problems(spec), *extra]]
        self.message.show_messages(lines if self.reveals("tags") else [])
        return problems

    # -- spec ------------------------------------------
    def load(self, spec: DeploymentSpec) -> None:
        self._loading = True
        self.table.setRowCount(0)
        for name, value in spec.tags.items():
            row = self.table.rowCount()
            self.table.insertRow(row)
            self.table.setItem(row, 0, QTableWidgetItem(name))
            self.table.setItem(row, 1, QTableWidgetItem(value))
        self._loading = False
        self._mark_rows()

    def store(self, spec: DeploymentSpec) -> None:
        tags: dict[str, str] = {}
        for name, value in self.rows():
            if name:
                tags[name] = value
        spec.tags = tags
