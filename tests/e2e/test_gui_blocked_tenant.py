"""A tenant Azure no longer lets create an Azure Cache for Redis: the deploy page
says so in plain words, offers the switch to Azure Managed Redis, and the
switched spec deploys — all through the wizard, against a sandbox whose faults
file answers the cache create with Azure's refusal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.sandbox import Sandbox
from app.services.resources.redis_cache import BLOCKED_CODE, BLOCKED_MESSAGE
from app.spec import CacheSpec, DeploymentSpec, FunctionAppSpec, ImageSpec, ResourceGroupSpec
from app.wizard.launch import sandbox_factory
from app.wizard.mainwindow import MainWindow
from app.wizard.pages.image import SAMPLE_MODEL
from tests.unit.wizard.helpers import click

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.sandbox,
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("does not support propagateSizeHints"),
]

GROUP = "rg-gui-blocked"
CACHE = "gui-blocked-cache"


@pytest.fixture
def blocked_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox whose Microsoft.Cache/redis create answers as for a blocked tenant."""
    sandbox = Sandbox.start(tmp_path / "sandbox", latency="fast", faults={"rules": [{
        "method": "PUT", "path": f"/providers/Microsoft.Cache/redis/{CACHE}$",
        "status": 400, "code": BLOCKED_CODE, "message": BLOCKED_MESSAGE,
    }]})
    yield sandbox
    sandbox.stop()


@pytest.fixture
def blocked_gui(blocked_sandbox: Sandbox, open_wizard) -> MainWindow:  # type: ignore[no-untyped-def]
    # Requested after the sandbox, so the window's teardown (deleting the group)
    # runs while the sandbox is still up.
    return open_wizard(sandbox_factory(blocked_sandbox.state_dir), group=GROUP)


def test_blocked_cache_offers_managed_redis_and_the_switch_deploys(
    qtbot, blocked_gui: MainWindow  # type: ignore[no-untyped-def]
) -> None:
    window = blocked_gui
    window.session.replace_spec(DeploymentSpec(
        resource_group=ResourceGroupSpec(GROUP),
        cache=CacheSpec(kind="azure-cache-for-redis", name=CACHE, tier="Standard", size="C0",
                        redis_version="6", auth="access-keys"),
        image=ImageSpec(build_from=str(SAMPLE_MODEL), registry="guiblockedacr",
                        repository="digits", tag="v1"),
        function_app=FunctionAppSpec("gui-blocked-app", "gui-blocked-plan", "B1",
                                     "guiblockedstor"),
    ))
    window.go("review")
    qtbot.waitUntil(window.next_button.isEnabled, timeout=10_000)
    deploy = window.deploy
    with qtbot.waitSignal(window.bridge.run_finished, timeout=120_000) as first:
        click(qtbot, window.next_button)
    assert not first.args[0].succeeded
    assert first.args[0].failed == ("cache",)
    qtbot.waitUntil(lambda: not deploy.running, timeout=10_000)
    assert deploy.rows["cache"].text(2) == "Failed"
    assert deploy.error_box.isVisible()
    assert "blocked for this tenant" in deploy.error_text.text()
    assert "Balanced_B0" in deploy.error_text.text()
    assert deploy.switch_button.isVisible()

    click(qtbot, deploy.switch_button)
    cache = window.session.spec.cache
    assert (cache.kind, cache.tier, cache.size) == ("azure-managed-redis", "Balanced", "B0")
    assert window.current == "review"
    # The switched spec's name checks go to the sandbox again: on a busy machine they
    # take a while, so the bound is generous (the wait ends as soon as they answer).
    qtbot.waitUntil(lambda: "Validation passed" in window.review.banner.text()
                    and window.next_button.isEnabled(), timeout=60_000)
    with qtbot.waitSignal(window.bridge.run_finished, timeout=120_000) as second:
        click(qtbot, window.next_button)
    assert second.args[0].succeeded, deploy.log.text()
    qtbot.waitUntil(lambda: not deploy.running, timeout=10_000)
    assert deploy.rows["cache-cluster"].text(1) == "Microsoft.Cache/redisEnterprise"
    assert deploy.rows["function-app"].text(2) == "Existing \u2014 used"
