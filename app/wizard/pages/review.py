"""Review + create: every rule checked again, problems linked to their fields,
a monthly cost estimate, and the plan exported (ARM, Bicep, azd or an az script)."""

from __future__ import annotations

import copy
import html
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QWidget,
)

from app.rules import CREATED_BY_TAG, CREATED_BY_VALUE, Problem
from app.spec import DeploymentSpec
from app.wizard.errors_view import plain
from app.wizard.fields import PAGE_TITLES, label_of, owner_of, sentence
from app.wizard.last_run import fingerprint
from app.wizard.pages.base import Page
from app.wizard.pages.basics import size_label


class ReviewPage(Page):
    key = "review"
    title = "Review + create"
    heading = "Review + create"

    # A problem link was clicked: the field path to show.
    jump_requested = Signal(str)

    def build(self) -> None:
        self.collect_problems: Callable[[], list[Problem]] = lambda: []
        # Whether a page is still asking if one of its names is free: like the portal's
        # Review + create, validation passes only once every name has its answer.
        self.checking_names: Callable[[], bool] = lambda: False
        # The engine's preflight: its answer (None while asked), what it was asked
        # about (spec, folder and target), and why it could not answer.
        self._preflight: list[Problem] | None = None
        self._checked = ""
        self._preflight_error = ""
        self.banner = QLabel(self.body)
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setAccessibleName("Validation result")
        self.layout_.addWidget(self.banner)
        self.problem_list = QLabel(self.body)
        self.problem_list.setObjectName("problemList")
        self.problem_list.setWordWrap(True)
        self.problem_list.setTextFormat(Qt.TextFormat.RichText)
        self.problem_list.setTextInteractionFlags(
            Qt.TextInteractionFlag.LinksAccessibleByMouse
            | Qt.TextInteractionFlag.LinksAccessibleByKeyboard)
        self.problem_list.setAccessibleName("Problems")
        self.problem_list.linkActivated.connect(self._on_link)
        self.layout_.addWidget(self.problem_list)

        actions = QWidget(self.body)
        row = QHBoxLayout(actions)
        row.setContentsMargins(0, 0, 0, 0)
        self.cost = QLabel("Estimating\u2026", actions)
        self.cost.setWordWrap(True)
        self.cost.setAccessibleName("Monthly cost estimate")
        row.addWidget(self.cost, 1)
        # One button with a menu: four formats side by side do not fit a narrow window.
        self.export_button = QPushButton("E&xport", actions)
        self.export_button.setAccessibleName("Export the deployment")
        self.export_button.setToolTip("Save this deployment as a file Azure tools run: "
                                      "ARM template, Bicep, an azd project or an az CLI script")
        menu = QMenu(self.export_button)
        for fmt, entry in EXPORT_CHOICES:
            action = menu.addAction(entry)
            action.triggered.connect(lambda _checked=False, f=fmt: self._on_export(f))
        self.export_button.setMenu(menu)
        row.addWidget(self.export_button)
        self.layout_.addWidget(actions)
        self.export_message = self.message_for()
        self.layout_.addWidget(self.export_message)

        columns = QWidget(self.body)
        row = QHBoxLayout(columns)
        row.setContentsMargins(0, 0, 0, 0)
        self.summary = QLabel(columns)
        self.summary_right = QLabel(columns)
        for label in (self.summary, self.summary_right):
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setWordWrap(True)
            label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            row.addWidget(label, 1)
        self.summary.setAccessibleName("Summary")
        self.summary_right.setAccessibleName("Summary, continued")
        self.layout_.addWidget(columns)

    # -- validation ------------------------------------------
    def _subject(self) -> str:
        """What a preflight answer is about: the spec, where its paths are read from,
        and the target that answered."""
        session = self.session
        return f"{fingerprint(session.spec)}|{session.spec_dir}|{id(session.backend)}"

    def run_preflight(self, again: bool = False) -> None:
        """Ask the engine (in a worker) for every reason its deploy would refuse the
        spec: the same checks `deploy` runs before creating anything. `again`: ask
        even if the spec is unchanged (the model folder may have changed on disk)."""
        subject = self._subject()
        if subject == self._checked and not again:
            return
        self._checked, self._preflight, self._preflight_error = subject, None, ""
        snapshot = copy.deepcopy(self.session.spec)

        def answered(problems: list[Problem]) -> None:
            if subject == self._checked:
                self._preflight = list(problems)
                self.status_changed.emit()

        def failed(exc: BaseException) -> None:
            if subject == self._checked:
                self._preflight, self._preflight_error = [], plain(exc)
                self.status_changed.emit()

        self.session.submit(lambda b: b.preflight(snapshot), answered, failed)

    @property
    def busy(self) -> bool:
        return self._preflight is None or self.checking_names()

    def preflight_found(self) -> list[Problem]:
        """The engine's last answer while it is still about the spec shown (the step
        list marks the pages it names)."""
        if self._preflight is None or self._subject() != self._checked:
            return []
        return list(self._preflight)

    @property
    def busy_reason(self) -> str:
        if self.checking_names():
            return "Checking that the names are free\u2026"
        return "Running the deploy checks\u2026"

    def problems(self, spec: DeploymentSpec, rules: list[Problem] | None = None) -> list[Problem]:
        """The pages' problems, then what only the engine's preflight finds (a field
        the pages already flag is listed once)."""
        found = self.collect_problems()
        if self._preflight_error:
            return [*found, Problem("target", "the deploy checks could not run: "
                                              f"{self._preflight_error}")]
        flagged = {p.field for p in found}
        return found + [p for p in self._preflight or [] if p.field not in flagged]

    def show_problems(self, spec: DeploymentSpec) -> list[Problem]:
        self.run_preflight()
        problems = self.problems(spec)
        if problems:
            self.banner.setText(f"\u2717  Validation failed: {len(problems)} "
                                f"problem{'s' if len(problems) != 1 else ''} to fix.")
            self.banner.setProperty("state", "failed")
            items = []
            for p in problems:
                owner = owner_of(p.field)
                page = PAGE_TITLES[owner]
                items.append(
                    f"<li><b>{html.escape(page)} \u203a {html.escape(label_of(p.field))}</b>: "
                    f"{html.escape(full_stop(sentence(p.plain)))} "
                    f'<a href="field:{html.escape(p.field)}">Go to {html.escape(page)}</a>'
                    "</li>")
            self.problem_list.setText("<ul style='margin-left:-20px'>" + "".join(items)
                                      + "</ul>")
            self.problem_list.show()
        elif self.busy:
            self.banner.setText(self.busy_reason)
            self.banner.setProperty("state", "checking")
            self.problem_list.clear()
            self.problem_list.hide()
        else:
            self.banner.setText("\u2713  Validation passed")
            self.banner.setProperty("state", "passed")
            self.problem_list.clear()
            self.problem_list.hide()
        self.banner.style().unpolish(self.banner)
        self.banner.style().polish(self.banner)
        self.export_button.setEnabled(not problems)
        return problems

    def _on_link(self, link: str) -> None:
        if link.startswith("field:"):
            self.jump_requested.emit(link[len("field:"):])

    # -- content ------------------------------------------
    def on_shown(self) -> None:
        spec = self.session.spec
        backend = self.session.backend
        subscription = backend.subscription().id if backend is not None else ""
        left, right = summary_html(spec, self.session.target_label, subscription)
        self.summary.setText(left)
        self.summary_right.setText(right)
        self.run_preflight(again=True)
        self.show_problems(spec)
        self.cost.setText("Estimating\u2026")
        snapshot = copy.deepcopy(spec)

        def show_cost(text: str | None) -> None:
            if text:
                self.cost.setText(f"Estimated monthly cost: {text}")
            elif self.session.is_azure:
                self.cost.setText("No monthly cost estimate is available; see the Azure "
                                  "pricing calculator for these sizes.")
            else:
                self.cost.setText("Local sandbox: nothing is billed.")

        self.session.submit(lambda b: b.monthly_cost(snapshot), show_cost,
                            lambda e: self.cost.setText(f"No estimate: {plain(e)}"))

    def _on_export(self, fmt: str) -> None:
        spec = copy.deepcopy(self.session.spec)
        if fmt in FOLDER_EXPORTS:
            folder = QFileDialog.getExistingDirectory(self, "Folder for the azd project")
            if folder:
                self.export_folder_to(Path(folder), fmt)
            return
        title, suffix, kind = EXPORT_FILES[fmt]
        default = f"{spec.resource_group.name or 'deployment'}{suffix}"
        path, _filter = QFileDialog.getSaveFileName(self, f"Save {title}", default, kind)
        if path:
            self.export_to(Path(path), fmt)

    def export_folder_to(self, folder: Path, fmt: str) -> None:
        spec = copy.deepcopy(self.session.spec)
        self.export_message.show_note("Writing…")
        self.session.submit(
            lambda b: b.export_folder(spec, fmt, folder),
            lambda files: self.export_message.show_note(
                f"Saved {', '.join(files)} in {folder}"),
            lambda e: self.export_message.show_messages([f"could not export: {plain(e)}"]))

    def export_to(self, path: Path, fmt: str) -> None:
        spec = copy.deepcopy(self.session.spec)
        self.export_message.show_note("Writing\u2026")

        def write(text: str) -> None:
            path.write_text(text, encoding="utf-8")
            self.export_message.show_note(f"Saved {path}")

        self.session.submit(lambda b: b.export(spec, fmt), write,
                            lambda e: self.export_message.show_messages(
                                [f"could not export: {plain(e)}"]))


# (format, menu label); the file formats' dialog title, default suffix and filter.
EXPORT_CHOICES = (
    ("arm", "ARM &template (JSON)…"),
    ("bicep", "&Bicep file…"),
    ("azd", "&azd project folder…"),
    ("azcli", "a&z CLI script…"),
)
EXPORT_FILES = {
    "arm": ("ARM template", "-template.json", "ARM template (*.json)"),
    "bicep": ("Bicep file", ".bicep", "Bicep (*.bicep)"),
    "azcli": ("az CLI script", "-az.sh", "Shell script (*.sh)"),
}
FOLDER_EXPORTS = ("azd",)


def full_stop(text: str) -> str:
    """A problem ends as a sentence does, so the link after it reads apart."""
    return text if not text or text[-1] in ".!?)" else text + "."


def cache_option_rows(spec: DeploymentSpec) -> list[tuple[str, str]]:
    """The Advanced page's cache options as Review lists them: only what is set, with
    the frequency and policies the cache will really be created with."""
    from app.rules import DEFAULT_CLUSTERING_POLICY, DEFAULT_EVICTION_POLICY, persistence_frequency
    from app.wizard.pages.advanced_options import FREQUENCY_LABELS

    cache = spec.cache
    rows: list[tuple[str, str]] = []
    if cache.persistence:
        every = FREQUENCY_LABELS.get(persistence_frequency(spec) or "", "")
        rows.append(("Persistence", f"{cache.persistence.upper()}"
                                    f"{', ' + every.lower() if every else ''}"))
    if cache.kind == "azure-managed-redis":
        rows.append(("Clustering policy", cache.clustering_policy or DEFAULT_CLUSTERING_POLICY))
        rows.append(("Eviction policy", cache.eviction_policy or DEFAULT_EVICTION_POLICY))
        rows.append(("Modules", ", ".join(cache.modules) or "None"))
        return rows
    if cache.replicas:
        rows.append(("Replicas per primary", str(cache.replicas)))
    rows.append(("Update channel", cache.update_channel or "Stable"))
    return rows


def summary_html(spec: DeploymentSpec, target: str, subscription: str = "") -> tuple[str, str]:
    """The review's key/value summary, grouped by page, in two columns."""
    cache = spec.cache
    managed = cache.kind == "azure-managed-redis"
    image = spec.image
    tags = dict(spec.tags)
    tags[CREATED_BY_TAG] = CREATED_BY_VALUE
    sections: list[tuple[str, list[tuple[str, str]]]] = [
        ("Basics", [
            ("Target", target),
            ("Subscription", spec.subscription_id or subscription or "(sandbox)"),
            ("Resource group", f"{spec.resource_group.name} "
                               f"({'new' if spec.resource_group.create else 'existing'})"),
            ("Region", spec.location),
            ("Cache", f"{cache.name} \u2014 "
                      f"{'Azure Managed Redis' if managed else 'Azure Cache for Redis'} "
                      f"{cache.tier} {size_label(cache.size)}"),
        ]),
        ("Networking", [("Connectivity", "Public endpoint" if cache.public_network_access
                         else "Private endpoint")]),
        ("Advanced", [
            ("Non-TLS port", "Enabled" if cache.non_tls_port else "Disabled"),
            ("Minimum TLS", cache.minimum_tls_version),
            ("Redis version", cache.redis_version or "Managed by Azure"),
            ("Cache authentication",
             "Microsoft Entra ID" if cache.auth == "entra" else "Access keys"),
            ("Registry and storage", "Managed identity" if spec.function_app.auth != "keys"
             else "Registry password and storage key"),
            *([("Shards", str(cache.shards))] if cache.shards else []),
            *cache_option_rows(spec),
            *([("Zones", ", ".join(cache.zones))] if cache.zones else []),
        ]),
        ("Tags", [(k, v) for k, v in tags.items()]),
        ("Model image", [("Image", image.reference)] if image.reference else [
            ("Build from", image.build_from or ""),
            ("Into", f"{image.registry}.azurecr.io/{image.repository}:{image.tag}"),
            ("Built", "with ACR Tasks" if image.builder == "acr-tasks"
             else "on this computer, over the imported Functions base image"),
        ]),
        ("Function app", [
            ("Name", spec.function_app.name),
            ("Plan", f"{spec.function_app.plan_name} ({spec.function_app.plan_sku}, Linux)"),
            ("Storage account", spec.function_app.storage_account),
            ("Monitoring", "Application Insights, on a Log Analytics workspace"
             if spec.monitoring.enabled else "Off"),
        ]),
    ]
    def table(chunk: list[tuple[str, list[tuple[str, str]]]]) -> str:
        parts = ["<table cellspacing='0' cellpadding='3'>"]
        for title, rows in chunk:
            parts.append(f"<tr><td colspan='2' style='padding-top:10px'><b>{html.escape(title)}"
                         "</b></td></tr>")
            for key, value in rows:
                parts.append(f"<tr><td style='color:#605e5c; padding-right:24px'>"
                             f"{html.escape(key)}</td><td>{html.escape(str(value))}</td></tr>")
        parts.append("</table>")
        return "".join(parts)

    return table(sections[:3]), table(sections[3:])
