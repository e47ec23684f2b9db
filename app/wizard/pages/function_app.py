"""Function app: the app's global name, its Linux App Service plan, the storage
account the Functions runtime needs, and whether Application Insights watches it."""

from __future__ import annotations

import re

from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QGroupBox, QLabel, QPushButton

from app.rules import PLAN_SKUS
from app.spec import DeploymentSpec
from app.wizard.pages.base import Page, make_checker, stack
from app.wizard.widgets import NameField

PLAN_NOTES = {
    "B1": "Basic B1: 1 core, 1.75 GB, the cheapest plan that runs a container",
    "B2": "Basic B2: 2 cores, 3.5 GB",
    "B3": "Basic B3: 4 cores, 7 GB",
    "S1": "Standard S1: 1 core, 1.75 GB, autoscale",
    "P0v3": "Premium v3 P0v3: 1 core, 4 GB",
    "P1v3": "Premium v3 P1v3: 2 cores, 8 GB",
    "EP1": "Elastic Premium EP1: 1 core, 3.5 GB, scales out on demand",
}


def suggest_names(app_name: str) -> tuple[str, str]:
    """Plan and storage names derived from the app name (storage: 3–24 a-z0-9)."""
    plan = f"{app_name}-plan"[:60]
    letters = re.sub(r"[^a-z0-9]", "", app_name.lower())
    storage = (letters[:20] + "stor")[:24] if letters else ""
    return plan, storage


class FunctionAppPage(Page):
    key = "function_app"
    title = "Function app"
    heading = "Function app"
    intro = ("The HTTP endpoint that scores requests runs as an Azure Functions app "
             "from your model image, on a Linux App Service plan.")

    def build(self) -> None:
        box = QGroupBox("App", self.body)
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.name = NameField("Function app name", "e.g. digits-scoring")
        self.name.checker = make_checker(self, lambda: "function_app")
        self.name.edit.textEdited.connect(self._on_app_name)
        label = QLabel("Function app &name")
        label.setBuddy(self.name.edit)
        self.endpoint_hint = QLabel(self.body)
        self.endpoint_hint.setObjectName("muted")
        self.endpoint_hint.setWordWrap(True)
        self.name.edit.textChanged.connect(self._update_endpoint_hint)
        self._update_endpoint_hint()
        form.addRow(label, stack(self.name, self.endpoint_hint))
        self.bind("function_app.name", self.name)

        self.plan = NameField("App Service plan name", "e.g. digits-scoring-plan")
        self.plan.checker = make_checker(self, lambda: "plan")
        self.plan.edit.textEdited.connect(self._on_manual)
        label = QLabel("App Service &plan")
        label.setBuddy(self.plan.edit)
        form.addRow(label, self.plan)
        self.bind("function_app.plan_name", self.plan)

        self.sku = QComboBox(box)
        self.sku.setAccessibleName("Pricing plan")
        for sku in PLAN_SKUS:
            self.sku.addItem(PLAN_NOTES.get(sku, sku), sku)
        self.sku.currentIndexChanged.connect(self._on_edit)
        self.sku_message = self.message_for()
        label = QLabel("Pricing p&lan")
        label.setBuddy(self.sku)
        form.addRow(label, stack(self.sku, self.sku_message))
        self.bind("function_app.plan_sku", self.sku, self.sku_message)

        self.storage = NameField("Storage account", "3-24 lowercase letters and digits")
        self.storage.checker = make_checker(self, lambda: "storage_account")
        self.storage.edit.textEdited.connect(self._on_manual)
        label = QLabel("&Storage account")
        label.setBuddy(self.storage.edit)
        form.addRow(label, self.storage)
        self.bind("function_app.storage_account", self.storage)
        self.suggest = QPushButton("Suggest names from the app name", box)
        self.suggest.setAccessibleName("Suggest plan and storage names")
        self.suggest.clicked.connect(self._on_suggest)
        form.addRow("", self.suggest)
        self.monitoring = QCheckBox("Monitor with &Application Insights", box)
        self.monitoring.setToolTip("Application Insights and its Log Analytics workspace, "
                                   "named after the app: requests, failures, live metrics")
        self.monitoring.toggled.connect(self._on_edit)
        self.monitoring_message = self.message_for()
        form.addRow("", stack(self.monitoring, self.monitoring_message))
        self.bind("monitoring.enabled", self.monitoring, self.monitoring_message)
        self.layout_.addWidget(box)
        self._manual = False

    def _on_manual(self, _text: str) -> None:
        self._manual = True
        self._on_edit()

    def _on_app_name(self, text: str) -> None:
        # Until the user types their own, follow the app name like the portal does.
        if not self._manual:
            self._apply_suggestion(text.strip())
            self._on_edit()

    def _on_suggest(self) -> None:
        self._manual = False
        self._apply_suggestion(self.name.text())
        self._on_edit()

    def _apply_suggestion(self, app_name: str) -> None:
        plan, storage = suggest_names(app_name)
        self.plan.set_text(plan if app_name else "")
        self.storage.set_text(storage)

    def load(self, spec: DeploymentSpec) -> None:
        app = spec.function_app
        self.name.set_text(app.name)
        self.plan.set_text(app.plan_name)
        self.storage.set_text(app.storage_account)
        index = self.sku.findData(app.plan_sku)
        self.sku.setCurrentIndex(max(index, 0))
        self._manual = bool(app.plan_name or app.storage_account) and \
            (app.plan_name, app.storage_account) != suggest_names(app.name)
        self.monitoring.setChecked(spec.monitoring.enabled)

    def on_shown(self) -> None:
        # The region is chosen on Basics: the prices are the ones of the region shown now.
        self._show_plan_prices(self.session.spec)
        self._update_endpoint_hint()

    def _update_endpoint_hint(self) -> None:
        """The scoring URL as the name is typed (<name>.azurewebsites.net on Azure; the
        sandbox serves each site on 127.0.0.1 with a port of its own)."""
        url = f"https://{self.name.text().strip() or '<name>'}.azurewebsites.net/api/score"
        self.endpoint_hint.setText(self.address_hint("Endpoint", url))

    def _show_plan_prices(self, spec: DeploymentSpec) -> None:
        """Each plan with its monthly list price in the spec's region."""
        import copy

        from app.wizard.pages.prices import show_choice_prices

        show_choice_prices(self.session, self.sku, copy.deepcopy(spec), "function_app.plan_sku",
                           lambda sku: PLAN_NOTES.get(sku, sku))

    def store(self, spec: DeploymentSpec) -> None:
        app = spec.function_app
        app.name = self.name.text()
        app.plan_name = self.plan.text()
        app.plan_sku = str(self.sku.currentData() or "B1")
        app.storage_account = self.storage.text()
        spec.monitoring.enabled = self.monitoring.isChecked()
