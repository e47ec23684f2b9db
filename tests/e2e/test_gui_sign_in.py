"""The wizard signs in at the sandbox's Entra authority with a real device-code
credential, switches to the tenant where the sandbox user is a guest, and deploys
into that tenant's subscription."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from app.sandbox import connect
from app.spec import load_spec
from app.wizard.launch import sandbox_factory
from app.wizard.signin_dialog import SignInDialog
from tests.e2e.test_cli import make_spec
from tests.e2e.test_sign_in import logged_subscriptions

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.sandbox,
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("does not support propagateSizeHints"),
]


def open_dialog(qtbot, window) -> SignInDialog:  # type: ignore[no-untyped-def]
    window.target.sandbox_sign_in_action.trigger()
    found: list[SignInDialog] = []

    def shown() -> bool:
        found[:] = [w for w in QApplication.topLevelWidgets()
                    if isinstance(w, SignInDialog) and w.isVisible()]
        return bool(found)

    qtbot.waitUntil(shown, timeout=10_000)
    return found[0]


def test_device_code_sign_in_picks_the_guest_tenant_and_deploys_there(  # type: ignore[no-untyped-def]
        qtbot, open_wizard, tmp_path: Path) -> None:
    state = tmp_path / "sandbox"
    spec_path, data = make_spec(tmp_path)
    group = data["resource_group"]["name"]
    window = open_wizard(sandbox_factory(state), group=group)
    assert window.target.sandbox_sign_in_action.isVisible()
    sandbox = connect(state)
    guest = sandbox.guest_tenant
    assert guest is not None

    dialog = open_dialog(qtbot, window)
    assert dialog.windowTitle() == "Sign in to the local sandbox"
    assert sandbox.username in dialog.hint.text()
    assert sandbox.password not in dialog.hint.text()
    dialog.device.setChecked(True)
    dialog.sign_in_button.click()
    qtbot.waitUntil(lambda: "enter the code" in dialog.device_message.text(), timeout=30_000)
    match = re.search(r"open (\S+) and enter the code (\S+?)[ .]", dialog.device_message.text())
    assert match and match.group(1) == f"{sandbox.authority}/devicelogin"
    # The person at the browser: types the code and signs in, while the dialog waits.
    approver = threading.Thread(target=sandbox.approve_device_code, args=(match.group(2),))
    approver.start()
    try:
        qtbot.waitUntil(lambda: dialog.tenant.count() == 2, timeout=30_000)
    except Exception:
        raise AssertionError(f"status {dialog.status.text()!r} message "
                             f"{dialog.device_message.text()!r}") from None
    finally:
        approver.join(30)
    assert dialog.status.text() == "Signed in. Pick a subscription.", dialog.status.text()
    index = dialog.tenant.findData(guest.tenant_id)
    assert index >= 0
    dialog.tenant.setCurrentIndex(index)
    dialog.tenant.activated.emit(index)
    qtbot.waitUntil(lambda: dialog.subscription.count() == 1
                    and dialog.subscription.currentData().id == guest.subscriptions[0],
                    timeout=30_000)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: window.session.backend is not None
                    and window.session.backend.signed_in, timeout=30_000)
    backend = window.session.backend
    assert "Sandbox partner subscription" in window.target.label.text()
    # The toolbar names who acts, where: the identity from the token the sign-in got,
    # the guest tenant and its subscription, as the CLI prints them; never a secret.
    label = window.target.label.text().strip()
    assert label == (f"Target: Local sandbox \u2014 Sandbox partner subscription \u2014 "
                     f"{sandbox.username} (tenant {guest.tenant_id}), "
                     f"subscription {guest.subscriptions[0]}"), label
    assert sandbox.password not in label and sandbox.token not in label
    assert window.target.label.toolTip().startswith(f"Signed in as {sandbox.username}")
    assert backend.subscription().id == guest.subscriptions[0]
    assert not backend.is_azure
    assert window.target.sandbox_action.isVisible()

    # The Deploy page's call, on the signed-in backend: everything in the guest's subscription.
    spec = load_spec(spec_path)
    result = backend.deploy(spec, lambda _event: None, threading.Event())
    assert result.succeeded
    answer = backend.call(spec, {"data": [[0.0] * 64]})
    assert answer.status == 200, answer.body
    assert logged_subscriptions(sandbox, group) == {guest.subscriptions[0]}
