"""Sign in to Azure or to the local sandbox's authority: browser or device code,
then pick tenant and subscription.

Signing in and listing run in workers; only ids and names are remembered.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from app.wizard.backend import Subscription, Tenant
from app.wizard.errors_view import plain, recommendation
from app.wizard.settings import Settings
from app.wizard.widgets import ERROR_COLOR, icon
from app.wizard.workers import run_task


class _Prompt(QObject):
    message = Signal(str)


class SignInDialog(QDialog):
    """Produces a signed-in `Backend` in `self.backend` when accepted."""

    def __init__(self, settings: Settings, azure: Any, parent: QWidget | None = None) -> None:
        """`azure` is the sign-in face of the services backend module (see
        services_backend.SignIn): sign_in, tenants, subscriptions, make_backend, and
        optionally title, settings_prefix and hint."""
        super().__init__(parent)
        self.settings = settings
        self.azure = azure
        self.backend: Any = None
        self.credential: Any = None
        self._prefix = getattr(azure, "settings_prefix", "azure")
        self.setWindowTitle(getattr(azure, "title", "Sign in to Azure"))
        self.setWindowIcon(icon("cloud"))
        self.setMinimumWidth(520)

        column = QVBoxLayout(self)
        method = QWidget(self)
        row = QHBoxLayout(method)
        row.setContentsMargins(0, 0, 0, 0)
        self.browser = QRadioButton("&Browser", method)
        self.browser.setAccessibleName("Sign in with a browser")
        self.device = QRadioButton("De&vice code", method)
        self.device.setAccessibleName("Sign in with a device code")
        group = QButtonGroup(method)
        group.addButton(self.browser)
        group.addButton(self.device)
        (self.device if settings.get("azure/sign_in_method") == "device-code"
         else self.browser).setChecked(True)
        row.addWidget(self.browser)
        row.addWidget(self.device)
        row.addStretch(1)
        self.sign_in_button = QPushButton("&Sign in", method)
        row.addWidget(self.sign_in_button)
        column.addWidget(method)
        hint = getattr(azure, "hint", "")
        self.hint = QLabel(hint, self)
        self.hint.setWordWrap(True)
        self.hint.setVisible(bool(hint))
        column.addWidget(self.hint)
        self.device_message = QLabel(self)
        self.device_message.setWordWrap(True)
        self.device_message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.device_message.setAccessibleName("Device code instructions")
        column.addWidget(self.device_message)

        form = QFormLayout()
        self.tenant = QComboBox(self)
        self.tenant.setAccessibleName("Tenant")
        self.tenant.setEnabled(False)
        self.subscription = QComboBox(self)
        self.subscription.setAccessibleName("Subscription")
        self.subscription.setEnabled(False)
        form.addRow("&Tenant", self.tenant)
        form.addRow("S&ubscription", self.subscription)
        column.addLayout(form)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        column.addWidget(self.status)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Use this subscription")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)
        self.buttons.accepted.connect(self._on_accept)
        self.buttons.rejected.connect(self.reject)
        column.addWidget(self.buttons)
        self.sign_in_button.clicked.connect(self._on_sign_in)
        self.tenant.activated.connect(self._on_tenant)

    def _method(self) -> str:
        return "device-code" if self.device.isChecked() else "browser"

    def _on_sign_in(self) -> None:
        method = self._method()
        self.settings.set("azure/sign_in_method", method)
        self.sign_in_button.setEnabled(False)
        self.status.setStyleSheet("")
        self.status.setText("Signing in\u2026 (finish in the browser)" if method == "browser"
                            else "Signing in\u2026")
        prompt = _Prompt(self)
        prompt.message.connect(self.device_message.setText)
        tenant = self.settings.get(f"{self._prefix}/tenant_id") or None

        def work() -> tuple[Any, list[Tenant]]:
            credential = self.azure.sign_in(
                method, tenant, lambda text: prompt.message.emit(text))
            return credential, self.azure.tenants(credential)

        run_task(work, self._on_signed_in, self._on_failed)

    def _on_signed_in(self, answer: tuple[Any, list[Tenant]]) -> None:
        self.credential, tenants = answer
        self.sign_in_button.setEnabled(True)
        self.tenant.clear()
        remembered = self.settings.get(f"{self._prefix}/tenant_id")
        for t in tenants:
            self.tenant.addItem(f"{t.name} ({t.id})", t.id)
        index = self.tenant.findData(remembered)
        self.tenant.setCurrentIndex(max(index, 0))
        self.tenant.setEnabled(bool(tenants))
        self.status.setText("Signed in. Pick a subscription.")
        self._on_tenant(self.tenant.currentIndex())

    def _on_tenant(self, _index: int) -> None:
        tenant = self.tenant.currentData()
        credential = self.credential
        self.subscription.clear()
        self.subscription.setEnabled(False)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)

        def fill(subs: list[Subscription]) -> None:
            # An answer for a tenant the user has since left must not land.
            if self.tenant.currentData() != tenant:
                return
            self.subscription.clear()
            remembered = self.settings.get(f"{self._prefix}/subscription_id")
            for s in subs:
                self.subscription.addItem(f"{s.name} ({s.id})", s)
            ids = [s.id for s in subs]
            self.subscription.setCurrentIndex(ids.index(remembered) if remembered in ids else 0)
            self.subscription.setEnabled(bool(subs))
            self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(subs))
            if not subs:
                self.status.setText("This tenant has no subscription you can use.")

        run_task(lambda: self.azure.subscriptions(credential, tenant), fill, self._on_failed)

    def _on_failed(self, exc: BaseException) -> None:
        self.sign_in_button.setEnabled(True)
        self.status.setStyleSheet(f"color: {ERROR_COLOR};")
        hint = recommendation(exc)
        # The engine's words already say what failed: no second "sign-in failed".
        words = plain(exc)
        if words and words[-1] not in ".!?":
            words += "."
        self.status.setText(words[:1].upper() + words[1:] + (f"\n{hint}" if hint else ""))
        self.status.setToolTip(str(exc))

    def _on_accept(self) -> None:
        sub = self.subscription.currentData()
        if not isinstance(sub, Subscription):
            return
        tenant = self.tenant.currentData() or sub.tenant_id
        self.settings.set(f"{self._prefix}/tenant_id", tenant or "")
        self.settings.set(f"{self._prefix}/subscription_id", sub.id)
        self.backend = self.azure.make_backend(self.credential, sub, tenant)
        self.accept()
