"""The portal's cache options on the Advanced page, and prices beside sizes and plans.

An option the tier cannot have stays in view, disabled, with the reason the rules give;
a size or plan shows the monthly list price from the same price table as the estimate
(the sandbox's price API here)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.rules import cache_option_blockers
from app.sandbox import Sandbox
from app.services.target import sandbox_target_from_connection
from app.wizard.services_backend import ServicesBackend
from tests.unit.wizard.helpers import click

STANDARD = "Azure Cache for Redis \u2014 Standard"
PREMIUM = "Azure Cache for Redis \u2014 Premium"

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("does not support propagateSizeHints"),
]


def _choose(window, text: str) -> None:  # type: ignore[no-untyped-def]
    window.go("basics")
    basics = window.pages["basics"]
    basics.cache_type.setCurrentIndex(basics.cache_type.findText(text))
    window.go("advanced")


def test_persistence_on_standard_is_disabled_with_the_reason(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    _choose(window, STANDARD)
    page = window.pages["advanced"]
    box = page.persistence_box
    assert box.isVisible() and not box.mode.isEnabled() and not box.frequency.isEnabled()
    reason = cache_option_blockers(window.session.spec)["persistence"]
    assert box.reason.isVisible() and reason in box.reason.text()
    assert "Premium tier" in box.reason.text()
    assert not page.replica_options.replicas.isEnabled()
    assert "Premium tier" in page.premium_reason.text()
    assert page.channel.isEnabled()  # every classic tier has an update channel
    assert window.session.spec.cache.persistence is None


def test_premium_rdb_frequency_replicas_and_channel_reach_the_spec(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    _choose(window, PREMIUM)
    page = window.pages["advanced"]
    box = page.persistence_box
    assert box.mode.isEnabled() and not box.reason.isVisible()
    box.mode.setCurrentIndex(box.mode.findData("rdb"))
    # The classic RDB frequencies, the engine's default (an hour) chosen.
    assert [box.frequency.itemData(i) for i in range(box.frequency.count())] == [
        "15", "30", "60", "360", "720", "1440"]
    assert box.frequency.currentData() == "60" and box.frequency.isEnabled()
    box.frequency.setCurrentIndex(box.frequency.findData("15"))
    page.replica_options.replicas.setValue(2)
    page.channel.setCurrentIndex(page.channel.findData("Preview"))
    cache = window.session.spec.cache
    assert (cache.persistence, cache.persistence_frequency) == ("rdb", "15")
    assert (cache.replicas, cache.update_channel) == (2, "Preview")
    # AOF with two replicas is refused, with the reason under the replica count.
    box.mode.setCurrentIndex(box.mode.findData("aof"))
    assert not box.frequency.isEnabled() and "AOF writes every second" in \
        box.frequency_reason.text()
    assert "AOF persistence cannot be used with more than one replica" in \
        page.replica_options.message.text()
    assert not window.next_button.isEnabled()


def test_managed_redis_policies_and_modules(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.go("advanced")  # Azure Managed Redis, Balanced, by default
    page = window.pages["advanced"]
    options = page.managed_options
    assert options.isVisible() and not page.replica_options.replicas.isVisible()
    assert not page.channel.isEnabled() and "Azure Cache for Redis only" in \
        page.channel_reason.text()
    oss = options.clustering.model().item(options.clustering.findData("OSSCluster"))
    assert not oss.isEnabled() and "cluster-aware client" in oss.toolTip()
    click(qtbot, options.module_checks["RediSearch"])
    cache = window.session.spec.cache
    assert cache.modules == ["RediSearch"] and cache.eviction_policy == "NoEviction"
    assert cache.clustering_policy is None  # EnterpriseCluster, the default
    assert "both are set" in options.modules_note.text()
    box = page.persistence_box
    box.mode.setCurrentIndex(box.mode.findData("rdb"))
    assert [box.frequency.itemData(i) for i in range(box.frequency.count())] == [
        "1h", "6h", "12h"]
    box.frequency.setCurrentIndex(box.frequency.findData("6h"))
    assert (cache.persistence, cache.persistence_frequency) == ("rdb", "6h")


def test_review_lists_the_options_the_cache_is_created_with() -> None:
    from app.spec import CacheSpec, DeploymentSpec
    from app.wizard.pages.review import summary_html

    spec = DeploymentSpec(cache=CacheSpec(kind="azure-cache-for-redis", name="c", tier="Premium",
                                          size="P1", persistence="rdb", replicas=2))
    left, _right = summary_html(spec, "Local sandbox")
    assert "RDB, every hour" in left and "Replicas per primary" in left
    assert "Update channel</td><td>Stable" in left
    spec = DeploymentSpec(cache=CacheSpec(name="c", modules=["RedisJSON"]))
    left, _right = summary_html(spec, "Local sandbox")
    assert "EnterpriseCluster" in left and "VolatileLRU" in left and "RedisJSON" in left


@pytest.fixture
def sandbox_backend(tmp_path: Path) -> Iterator[ServicesBackend]:
    with Sandbox.start(tmp_path / "sandbox", latency="fast") as sb:
        target = sandbox_target_from_connection({
            "endpoint": sb.endpoint, "ca_cert": str(sb.ca_cert),
            "subscription_id": sb.subscription_id, "token": sb.token,
        })
        backend = ServicesBackend(target, "Local sandbox")
        yield backend
        backend.close()


@pytest.mark.sandbox
def test_prices_beside_sizes_and_plans(qtbot, window, sandbox_backend) -> None:  # type: ignore[no-untyped-def]
    window.target.use_backend(sandbox_backend)
    window.go("basics")
    basics = window.pages["basics"]
    basics.cache_type.setCurrentIndex(basics.cache_type.findText(STANDARD))
    combo = basics.size_combo
    want = sandbox_backend.choice_prices(window.session.spec, "cache.size")
    assert want["C1"].startswith("USD ") and want["C1"].endswith("/month")
    index = combo.findData("C1")
    qtbot.waitUntil(lambda: want["C1"] in combo.itemText(index), timeout=10_000)
    assert combo.itemText(index) == f"C1 (1 GB) \u2014 {want['C1']}"
    # What the sample table does not list says so, rather than a guessed figure.
    unknown = [s for s, text in want.items() if text == "price unknown"]
    for size in unknown:
        assert combo.itemText(combo.findData(size)).endswith("price unknown")
    window.go("function_app")
    plans = window.pages["function_app"].sku
    b1 = plans.findData("B1")
    qtbot.waitUntil(lambda: "USD " in plans.itemText(b1), timeout=10_000)
    assert plans.itemText(b1).endswith(
        sandbox_backend.choice_prices(window.session.spec, "function_app.plan_sku")["B1"])
