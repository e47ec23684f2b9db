"""Words for people: no message before a field is touched (Review lists everything),
field labels rather than spec keys, and room kept for messages so fields stay put."""

from __future__ import annotations

import re

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QApplication

from app.spec import CacheSpec, DeploymentSpec, FunctionAppSpec, ImageSpec, ResourceGroupSpec
from app.wizard.fields import CONFIG_PAGES
from app.wizard.widgets import FieldMessage
from tests.unit.wizard.helpers import type_into

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("does not support propagateSizeHints"),
]

SPEC_KEYS = re.compile(r"\b(reference|build_from|public_network_access|plan_sku|"
                       r"storage_account|cache\.\w+|image\.\w+|function_app\.\w+)\b")


def _shown(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [m.text() for m in page.findChildren(FieldMessage) if m.isVisible() and m.text()]


def test_no_message_on_any_page_before_a_field_is_touched(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    for key in CONFIG_PAGES:
        window.go(key)
        QApplication.processEvents()
        assert _shown(window.pages[key]) == [], key
    # The function app's names are empty: Next says so, the page does not scold yet.
    assert not window.next_button.isEnabled()
    assert window.nav_status.text().startswith("Fix 3 problems")


def test_an_opened_specs_problems_wait_for_the_field_but_review_lists_them(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    spec = DeploymentSpec(
        resource_group=ResourceGroupSpec("rg-words"),
        cache=CacheSpec(kind="azure-cache-for-redis", name="bad--name", tier="Basic",
                        size="C0"),
        image=ImageSpec(reference="words1234.azurecr.io/m:v1", build_from="model"),
        function_app=FunctionAppSpec("words-app", "words-plan", "B1", "wordsstor"),
    )
    window.session.replace_spec(spec)
    window.go("basics")
    basics = window.pages["basics"]
    assert not basics.cache_name.message.isVisible()
    window.go("review")
    review = window.pages["review"]
    listed = re.sub(r"<[^>]+>", " ", review.problem_list.text())
    assert "DNS name" in listed and "consecutive hyphens" in listed
    assert "Model image" in listed and "a model folder to build, not both" in listed
    # What a person reads names fields by their labels, never by spec keys.
    assert not SPEC_KEYS.search(listed), listed
    # Review's link opens the field with its message showing.
    review.problem_list.linkActivated.emit("field:cache.name")
    assert window.current == "basics"
    assert "Must not contain consecutive hyphens" in basics.cache_name.message.text()
    assert basics.cache_name.message.isVisible()
    window.go("image")
    image = window.pages["image"]
    image.focus_field("image")
    assert ("Choose either an image already in a registry, or a model folder to build, "
            "not both") in _shown(image)


def test_a_message_appearing_does_not_move_the_fields_below(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    basics = window.pages["basics"]
    below = basics.cache_name.edit

    def top() -> int:
        return below.mapTo(window, QPoint(0, 0)).y()

    before = top()
    type_into(qtbot, basics.group.edit, "rg.")
    QApplication.processEvents()
    assert basics.group.message.isVisible()
    assert "Must not end with a period" in basics.group.message.text()
    assert top() == before
