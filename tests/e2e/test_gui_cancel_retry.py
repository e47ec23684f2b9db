"""Cancel a deploy from the wizard while the cache is still being created, then
Retry: the run stops waiting and says what is still being created, and the
second run finishes by adopting what the first one made."""

from __future__ import annotations

from pathlib import Path

import pytest

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

GROUP = "rg-gui-cancel"


@pytest.fixture
def slow_gui(open_wizard, tmp_path: Path) -> MainWindow:  # type: ignore[no-untyped-def]
    # A quarter of the realistic profile: the cache takes about 5 s to create.
    return open_wizard(sandbox_factory(tmp_path / "sandbox", latency="0.25"), group=GROUP)


def test_cancel_then_retry_finishes(qtbot, slow_gui: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window = slow_gui
    window.session.replace_spec(DeploymentSpec(
        resource_group=ResourceGroupSpec(GROUP),
        cache=CacheSpec(kind="azure-cache-for-redis", name="gui-cancel-cache", tier="Basic",
                        size="C0", redis_version="6", auth="access-keys"),
        image=ImageSpec(build_from=str(SAMPLE_MODEL), registry="guicancelacr",
                        repository="digits", tag="v1"),
        function_app=FunctionAppSpec("gui-cancel-app", "gui-cancel-plan", "B1",
                                     "guicancelstor"),
    ))
    window.go("review")
    qtbot.waitUntil(window.next_button.isEnabled, timeout=10_000)
    deploy = window.deploy
    with qtbot.waitSignal(window.bridge.run_finished, timeout=60_000) as first:
        click(qtbot, window.next_button)
        # The plan (0.5 s) is done while the cache (5 s) is still being created.
        qtbot.waitUntil(lambda: "cache" in deploy.rows
                        and deploy.rows["cache"].text(2) == "Creating"
                        and deploy.rows["plan"].text(2) == "Succeeded", timeout=30_000)
        assert deploy.cancel_button.isEnabled()
        click(qtbot, deploy.cancel_button)
        assert "Cancelling" in deploy.status.text()
    finished = first.args[0]
    assert finished.cancelled and not finished.succeeded
    assert "cache" in finished.still_creating
    qtbot.waitUntil(lambda: not deploy.running, timeout=10_000)
    assert "Cancelled" in deploy.status.text()
    assert "cache" in deploy.status.text()
    assert deploy.retry_button.isEnabled()
    assert not window.next_button.isEnabled()  # nothing to test yet

    with qtbot.waitSignal(window.bridge.run_finished, timeout=120_000) as second:
        click(qtbot, deploy.retry_button)
    assert second.args[0].succeeded, deploy.log.text()
    qtbot.waitUntil(lambda: not deploy.running, timeout=10_000)
    # What the first run finished is adopted, not made again.
    done_first = set(finished.done) - {"resource-group"}
    assert "plan" in done_first
    for step in done_first:
        assert deploy.rows[step].text(2) == "Existing \u2014 used", step
    assert window.next_button.isEnabled()
