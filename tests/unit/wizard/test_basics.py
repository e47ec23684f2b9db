"""Basics page: rule messages under the field as the user types, Next follows them."""

from __future__ import annotations

import pytest

from tests.unit.wizard.helpers import click, type_into

STANDARD = "Azure Cache for Redis \u2014 Standard"
PREMIUM = "Azure Cache for Redis \u2014 Premium"

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    # The headless platform cannot size dialogs from their hints; harmless there.
    pytest.mark.qt_log_ignore("does not support propagateSizeHints"),
]


def test_invalid_cache_name_shows_message_and_disables_next(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    page = window.pages["basics"]
    type_into(qtbot, page.group.edit, "rg-demo")
    type_into(qtbot, page.cache_name.edit, "bad--name-")
    message = page.cache_name.message
    assert message.isVisible()
    assert "Must not contain consecutive hyphens" in message.text()
    assert "Must end with a letter or digit" in message.text()
    assert not window.next_button.isEnabled()
    assert "Fix 2 problems" in window.nav_status.text()

    type_into(qtbot, page.cache_name.edit, "good-name")
    assert "hyphens" not in message.text()
    assert window.session.spec.cache.name == "good-name"
    # No target is connected: the check says so, which is not a problem for Next.
    qtbot.waitUntil(lambda: not page.busy, timeout=3000)
    assert window.next_button.isEnabled()


def test_empty_group_name_is_a_problem(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    page = window.pages["basics"]
    type_into(qtbot, page.cache_name.edit, "cachename")
    # Not reached yet: no red text under it, but Next stays disabled and says why.
    assert page.group.message.text() == ""
    assert not window.next_button.isEnabled()
    assert "Fix 1 problem on this page" in window.nav_status.text()
    type_into(qtbot, page.group.edit, "rg.")
    assert "Must not end with a period" in page.group.message.text()
    type_into(qtbot, page.group.edit, "")
    assert "Must not be empty" in page.group.message.text()
    assert not window.next_button.isEnabled()


def test_managed_redis_offered_with_retirement_note(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    page = window.pages["basics"]
    labels = [page.cache_type.itemText(i) for i in range(page.cache_type.count())]
    assert any("Azure Managed Redis" in t for t in labels)
    assert any(t.endswith("Premium") for t in labels)
    assert "30 September 2028" in page.retirement.text()
    assert "1 April 2026" in page.retirement.text()
    # Standard C0 suggests Balanced B0, as Microsoft's mapping does.
    page.cache_type.setCurrentIndex(page.cache_type.findText(STANDARD))
    page.size_combo.setCurrentIndex(page.size_combo.findData("C0"))
    assert "Balanced B0" in page.suggestion.text()
    click(qtbot, page.switch_button)
    spec = window.session.spec
    assert (spec.cache.kind, spec.cache.tier, spec.cache.size) == (
        "azure-managed-redis", "Balanced", "B0")
    assert spec.cache.redis_version is None
    assert "redis.azure.net" in page.host_suffix.text()
    assert not page._suggestion_row.isVisible()


def test_premium_options_only_for_premium(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    basics = window.pages["basics"]
    advanced = window.pages["advanced"]
    basics.cache_type.setCurrentIndex(basics.cache_type.findText(STANDARD))
    window.go("advanced")
    # In view, disabled, with the reason: a Standard cache cannot have them.
    assert advanced.premium.isVisible() and not advanced.cluster.isEnabled()
    assert "Premium tier" in advanced.premium_reason.text()
    assert advanced.zones_box.isVisible()
    window.go("basics")
    basics.cache_type.setCurrentIndex(basics.cache_type.findText(PREMIUM))
    assert [basics.size_combo.itemData(i) for i in range(basics.size_combo.count())] == [
        "P1", "P2", "P3", "P4", "P5"]
    window.go("advanced")
    assert advanced.premium.isVisible() and advanced.cluster.isEnabled()
    assert not advanced.premium_reason.isVisible()
    click(qtbot, advanced.cluster)
    advanced.shards.setValue(3)
    assert window.session.spec.cache.shards == 3
    # Back to Standard: the Premium-only choices leave the spec.
    window.go("basics")
    basics.cache_type.setCurrentIndex(basics.cache_type.findText(STANDARD))
    assert window.session.spec.cache.shards is None
    window.go("advanced")
    assert not advanced.cluster.isEnabled()


def test_shard_count_typed_out_of_range_is_refused_with_the_range(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import Qt

    basics = window.pages["basics"]
    advanced = window.pages["advanced"]
    basics.cache_type.setCurrentIndex(basics.cache_type.findText(PREMIUM))
    window.go("advanced")
    click(qtbot, advanced.cluster)
    advanced.shards.setFocus()
    advanced.shards.selectAll()
    qtbot.keyClicks(advanced.shards, "99")
    # Not clamped to 9 without a word: kept as typed, and the page says the range.
    assert advanced.shards.value() == 99
    assert window.session.spec.cache.shards == 99
    assert advanced.shards_message.text() == "Must be between 1 and 10 (got 99)"
    assert not window.next_button.isEnabled()
    advanced.shards.selectAll()
    qtbot.keyClicks(advanced.shards, "10")
    qtbot.keyClick(advanced.shards, Qt.Key.Key_Tab)
    assert window.session.spec.cache.shards == 10
    assert not advanced.shards_message.isVisible()
