"""Basics: the region picker is closed to the subscription's regions, shown as the
portal names them, and the host name hint follows the name as it is typed.

The backend is a stand-in answering `locations()` as ServicesBackend does (the
sandbox's own answer is exercised in tests/e2e/test_gui_lookups.py)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app.spec import DeploymentSpec
from app.wizard.backend import Region
from tests.unit.wizard.helpers import StandInBackend, type_into

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("does not support propagateSizeHints"),
]

CLASSIC = "Azure Cache for Redis \u2014 Standard"


class RegionsBackend(StandInBackend):
    """Answers what Basics asks on Azure."""

    def locations(self) -> list[Region]:
        return [Region("swedencentral", "Sweden Central (swedencentral)"),
                Region("westeurope", "West Europe (westeurope)")]

    def resource_groups(self) -> list[str]:
        return []


def _with_regions(qtbot, window):  # type: ignore[no-untyped-def]
    window.target.use_backend(RegionsBackend())
    window.go("basics")
    basics = window.pages["basics"]
    qtbot.waitUntil(lambda: basics.location.findText("Sweden Central (swedencentral)") >= 0,
                    timeout=5000)
    return basics


def test_region_list_is_the_subscriptions_with_display_names(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    basics = _with_regions(qtbot, window)
    combo = basics.location
    assert not combo.isEditable()
    assert [combo.itemText(i) for i in range(combo.count())] == [
        "Sweden Central (swedencentral)", "West Europe (westeurope)"]
    assert combo.currentText() == "West Europe (westeurope)"
    # Typing a display name's first letters picks it, as in the portal's list.
    combo.setFocus()
    qtbot.keyClicks(combo, "Sw")
    assert combo.currentText() == "Sweden Central (swedencentral)"
    assert window.session.spec.location == "swedencentral"


def test_a_spec_region_the_subscription_lacks_is_named_not_replaced(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    basics = _with_regions(qtbot, window)
    spec = DeploymentSpec()
    spec.location = "marsnorth"
    window.session.replace_spec(spec)
    window.go("basics")
    assert basics.region() == "marsnorth"
    assert "not offered" in basics.location.currentText()
    # Not touched yet: Next is disabled and says why, the field is not scolded yet.
    assert not window.next_button.isEnabled()
    assert not basics.location_message.isVisible()
    # Leaving the field is touching it.
    basics.location.setFocus()
    qtbot.waitUntil(basics.location.hasFocus, timeout=2000)
    basics.cache_name.edit.setFocus()
    qtbot.waitUntil(basics.location_message.isVisible, timeout=2000)
    assert basics.location_message.text() == (
        "'marsnorth' is not a region this subscription offers; pick one from the list")
    assert not window.next_button.isEnabled()
    basics.location.setCurrentIndex(basics.location.findData("westeurope"))
    assert window.session.spec.location == "westeurope"
    assert not basics.location_message.isVisible()


def test_host_name_follows_the_name_kind_and_region(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    basics = _with_regions(qtbot, window)
    hint = basics.host_suffix
    assert hint.text() == "Host name: <name>.westeurope.redis.azure.net, port 10000"
    type_into(qtbot, basics.cache_name.edit, "digits-cache")
    assert hint.text() == "Host name: digits-cache.westeurope.redis.azure.net, port 10000"
    basics.location.setCurrentIndex(basics.location.findData("swedencentral"))
    assert "digits-cache.swedencentral.redis.azure.net" in hint.text()
    basics.cache_type.setCurrentIndex(basics.cache_type.findText(CLASSIC))
    assert hint.text() == "Host name: digits-cache.redis.cache.windows.net, port 6380"


def test_without_a_target_the_hint_still_follows_the_name(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    basics = window.pages["basics"]
    basics.cache_name.edit.setFocus(Qt.FocusReason.OtherFocusReason)
    type_into(qtbot, basics.cache_name.edit, "abc")
    assert "abc." in basics.host_suffix.text()


def test_the_endpoint_hint_follows_the_app_name(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    _with_regions(qtbot, window)  # an Azure stand-in backend
    window.go("function_app")
    page = window.pages["function_app"]
    type_into(qtbot, page.name.edit, "digits-scoring")
    assert page.endpoint_hint.text() == \
        "Endpoint: https://digits-scoring.azurewebsites.net/api/score"
    type_into(qtbot, page.name.edit, "")
    assert "https://<name>.azurewebsites.net" in page.endpoint_hint.text()
