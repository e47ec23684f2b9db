"""Sign in to Azure: tenant and subscription pickers, remembered ids (never a
secret), and the window switching its target. Azure itself cannot be reached
from the tests, so the sign-in face is a stand-in with the real one's methods."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QDialogButtonBox

from app.wizard.backend import Subscription, Tenant
from app.wizard.mainwindow import MainWindow
from app.wizard.services_backend import SignIn
from app.wizard.settings import Settings
from app.wizard.signin_dialog import SignInDialog

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("does not support propagateSizeHints"),
]

SUB_A = Subscription("11111111-1111-1111-1111-111111111111", "Team dev", "t-1")
SUB_B = Subscription("22222222-2222-2222-2222-222222222222", "Team prod", "t-1")


class _AzureBackend:
    label = "Azure \u2014 Team prod"
    is_azure = True
    signed_in = True
    identity = f"alice@contoso.example (tenant t-1), subscription {SUB_B.id}"
    spec_dir: Path | None = None

    def subscription(self) -> Subscription:
        return SUB_B

    def close(self) -> None:
        pass


class StandInSignIn:
    """The four calls SignInDialog makes, answering as a signed-in user would."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def sign_in(self, method: str, tenant_id: str | None, prompt: Any) -> object:
        if method == "device-code":
            prompt("To sign in, open https://microsoft.com/devicelogin and enter ABCD-1234.")
        return object()

    def tenants(self, credential: object) -> list[Tenant]:
        return [Tenant("t-1", "Contoso")]

    def subscriptions(self, credential: object, tenant_id: str | None) -> list[Subscription]:
        return [SUB_A, SUB_B]

    def make_backend(self, credential: object, sub: Subscription, tenant: str | None) -> Any:
        return _AzureBackend()


def test_stand_in_matches_the_real_sign_in_face() -> None:
    for name in ("sign_in", "tenants", "subscriptions", "make_backend"):
        assert callable(getattr(SignIn, name))


def test_device_code_sign_in_picks_and_remembers_subscription(qtbot, window: MainWindow,  # type: ignore[no-untyped-def]
                                                              settings: Settings) -> None:
    dialog = SignInDialog(settings, StandInSignIn(), window)
    qtbot.addWidget(dialog)
    dialog.device.setChecked(True)
    dialog.sign_in_button.click()
    qtbot.waitUntil(lambda: dialog.subscription.count() == 2, timeout=5000)
    assert "ABCD-1234" in dialog.device_message.text()
    assert dialog.tenant.currentText() == "Contoso (t-1)"
    dialog.subscription.setCurrentIndex(1)
    dialog.accepted.connect(lambda: window.target.use_backend(dialog.backend))
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert window.session.spec.target == "azure"
    assert window.session.spec.subscription_id == SUB_B.id
    assert "Team prod" in window.target.label.text()
    assert window.target.label.text().strip() == (
        f"Target: Azure \u2014 Team prod \u2014 alice@contoso.example (tenant t-1), "
        f"subscription {SUB_B.id}")
    assert settings.get("azure/subscription_id") == SUB_B.id
    assert settings.get("azure/tenant_id") == "t-1"
    assert settings.get("azure/sign_in_method") == "device-code"
    text = Path(settings.file_name).read_text()
    assert "ABCD-1234" not in text


class RealCredentialSignIn(StandInSignIn):
    """Signs in with the real SignIn (a real DeviceCodeCredential), then does what
    azure-identity does once Microsoft Entra hands out a code: calls the credential's
    prompt callback, from the worker thread."""

    def sign_in(self, method: str, tenant_id: str | None, prompt: Any) -> object:
        from datetime import UTC, datetime

        import azure.identity as identity

        credential = SignIn().sign_in(method, tenant_id, prompt)
        assert isinstance(getattr(credential, "inner", None), identity.DeviceCodeCredential)
        credential._prompt_callback("https://microsoft.com/devicelogin", "WXYZ-9876",
                                    datetime.now(UTC))
        return credential


def test_device_code_message_reaches_the_dialog_through_the_real_credential(
        qtbot, window: MainWindow, settings: Settings,  # type: ignore[no-untyped-def]
        capsys: pytest.CaptureFixture[str]) -> None:
    dialog = SignInDialog(settings, RealCredentialSignIn(), window)
    qtbot.addWidget(dialog)
    dialog.device.setChecked(True)
    dialog.sign_in_button.click()
    qtbot.waitUntil(lambda: "WXYZ-9876" in dialog.device_message.text(), timeout=5000)
    assert "https://microsoft.com/devicelogin" in dialog.device_message.text()
    qtbot.waitUntil(lambda: dialog.subscription.count() == 2, timeout=5000)
    assert "WXYZ-9876" not in capsys.readouterr().out


class UnreachableSignIn(StandInSignIn):
    """A real credential whose sign-in service cannot be found (`.invalid` never
    resolves), asked for tenants the way the real dialog asks."""

    def sign_in(self, method: str, tenant_id: str | None, prompt: Any) -> object:
        from azure.identity import ClientSecretCredential

        return ClientSecretCredential("00000000-0000-0000-0000-000000000001", "app", "s",
                                      authority="https://login.invalid",
                                      disable_instance_discovery=True)

    def tenants(self, credential: object) -> list[Tenant]:
        return SignIn().tenants(credential)


@pytest.mark.qt_log_ignore("get_token")
def test_an_unreachable_sign_in_service_is_one_plain_sentence_with_the_cause(
        qtbot, window: MainWindow, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    dialog = SignInDialog(settings, UnreachableSignIn(), window)
    qtbot.addWidget(dialog)
    dialog.device.setChecked(True)
    dialog.sign_in_button.click()
    qtbot.waitUntil(lambda: dialog.sign_in_button.isEnabled() and bool(dialog.status.text()),
                    timeout=30_000)
    first, *rest = dialog.status.text().splitlines()
    assert first == ("Could not reach the sign-in service at login.invalid: its name could "
                     "not be resolved (no network connection, or DNS is not answering).")
    assert rest == ["Check the network connection (and the proxy, if one is needed), "
                    "then sign in again."]
    assert "Errno" not in dialog.status.text()
    assert dialog.status.text().lower().count("sign-in") == 1
