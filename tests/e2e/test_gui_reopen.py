"""The wizard's sandbox is a process of its own: it outlives the window, a reopened
window reattaches to it and opens on the deployment it showed last (resuming a run
the window closed on), and a `connection.json` left by a dead sandbox starts a new one.

Every test stops the sandbox process it started (the `open_wizard` fixture stops it
through the factory) and checks that nothing mentioning its folder is left."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from app.sandbox import SandboxProcess
from app.sandbox.api import CONNECTION_FILE, running_pid
from app.sandbox.processes import pid_alive, processes_mentioning
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

GROUP = "rg-gui-reopen"


def spec() -> DeploymentSpec:
    return DeploymentSpec(
        resource_group=ResourceGroupSpec(GROUP),
        cache=CacheSpec(kind="azure-cache-for-redis", name="gui-reopen-cache", tier="Basic",
                        size="C0", redis_version="6", auth="access-keys"),
        image=ImageSpec(build_from=str(SAMPLE_MODEL), registry="guireopenacr",
                        repository="digits", tag="v1"),
        function_app=FunctionAppSpec("gui-reopen-app", "gui-reopen-plan", "B1",
                                     "guireopenstor"),
    )


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """The sandbox's folder; at the end no process mentioning it may be left."""
    folder = (tmp_path / "sandbox").resolve()
    yield folder
    assert not processes_mentioning(str(folder))


@pytest.fixture
def wizard(state_dir: Path, open_wizard):  # type: ignore[no-untyped-def]
    """`open_wizard`, torn down (windows closed, sandbox stopped) before the check
    that nothing of `state_dir` is left."""
    return open_wizard


def endpoint_of(window: MainWindow) -> str:
    backend = window.session.backend
    assert backend is not None
    return str(backend.target.arm_endpoint)  # type: ignore[attr-defined]


def create(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """Put the spec in and press Create on Review."""
    window.session.replace_spec(spec())
    window.go("review")
    qtbot.waitUntil(window.next_button.isEnabled, timeout=15_000)
    click(qtbot, window.next_button)
    assert window.current == "deploy" and window.deploy.running


def test_sandbox_outlives_the_window_and_reopening_shows_the_deployment(  # type: ignore[no-untyped-def]
        qtbot, wizard, state_dir: Path, tmp_path: Path) -> None:
    working = tmp_path / "wizard" / "last-spec.json"
    first = wizard(sandbox_factory(state_dir), working_spec=working)
    pid = running_pid(state_dir)
    assert pid is not None and pid != os.getpid()
    # Its own session and process group: the app's Ctrl-C and group signals miss it.
    assert os.getsid(pid) != os.getsid(0)
    assert os.getpgid(pid) != os.getpgid(0)
    endpoint = endpoint_of(first)

    with qtbot.waitSignal(first.bridge.run_finished, timeout=120_000) as finished:
        create(qtbot, first)
    assert finished.args[0].succeeded, first.deploy.log.text()
    qtbot.waitUntil(lambda: not first.deploy.running, timeout=10_000)
    # One call, a MISS: the answer is now in the sandbox's cache.
    qtbot.waitUntil(first.next_button.isEnabled, timeout=10_000)
    click(qtbot, first.next_button)
    click(qtbot, first.test_page.send_button)
    qtbot.waitUntil(lambda: len(first.test_page.results) == 1, timeout=30_000)
    assert first.test_page.results[0].cache == "MISS"

    first.close()
    first.session.close()
    assert not first.isVisible()
    assert running_pid(state_dir) == pid and pid_alive(pid)

    second = wizard(sandbox_factory(state_dir), group=GROUP, working_spec=working)
    # The same process, reattached: same pid, same endpoint.
    assert running_pid(state_dir) == pid
    assert endpoint_of(second) == endpoint
    # The finished deployment, as it ended, with the Test page reachable.
    assert second.current == "deploy"
    deploy = second.deploy
    qtbot.waitUntil(lambda: deploy.result is not None, timeout=30_000)
    assert "every resource is still there" in deploy.status.text()
    assert deploy.rows["cache"].text(2) == "Succeeded"
    assert deploy.rows["function-app"].text(2) == "Succeeded"
    assert "Last deployment of rg-gui-reopen" in deploy.log.text()
    qtbot.waitUntil(second.next_button.isEnabled, timeout=10_000)
    click(qtbot, second.next_button)
    assert second.current == "test"
    # The cache kept its data: the same call is a HIT.
    click(qtbot, second.test_page.send_button)
    qtbot.waitUntil(lambda: len(second.test_page.results) == 1, timeout=30_000)
    assert second.test_page.results[0].status == 200
    assert second.test_page.results[0].cache == "HIT"


def test_closing_mid_deploy_stops_the_run_and_reopening_resumes_it(  # type: ignore[no-untyped-def]
        qtbot, wizard, state_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    working = tmp_path / "wizard" / "last-spec.json"
    # A quarter of the realistic profile: the cache takes about 5 s to create.
    first = wizard(sandbox_factory(state_dir, latency="0.25"), working_spec=working)
    pid = running_pid(state_dir)
    asked: list[str] = []

    def answer_yes(_parent, title: str, text: str, *args):  # type: ignore[no-untyped-def]
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", answer_yes)
    deploy = first.deploy
    with qtbot.waitSignal(first.bridge.run_finished, timeout=60_000) as stopped:
        create(qtbot, first)
        qtbot.waitUntil(lambda: "cache" in deploy.rows
                        and deploy.rows["cache"].text(2) == "Creating", timeout=30_000)
        first.close()
        assert first.isVisible()  # it closes once the run has stopped
        assert "Closing stops this deployment run" in asked[0]
    assert stopped.args[0].cancelled
    assert "cache" in stopped.args[0].still_creating
    qtbot.waitUntil(lambda: not first.isVisible(), timeout=15_000)
    first.session.close()
    assert running_pid(state_dir) == pid

    second = wizard(sandbox_factory(state_dir, latency="0.25"), group=GROUP,
                         working_spec=working)
    assert second.current == "deploy"
    resumed = second.deploy
    with qtbot.waitSignal(second.bridge.run_finished, timeout=120_000) as finished:
        qtbot.waitUntil(lambda: resumed.running, timeout=10_000)
    assert finished.args[0].succeeded, resumed.log.text()
    assert "resuming" in resumed.log.text()
    # What the first run had finished is adopted, not created again; the cache it
    # left Creating went on being created in the sandbox: adopted, or waited for.
    assert resumed.rows["plan"].text(2) == "Existing \u2014 used"
    assert resumed.rows["cache"].text(2) == "Existing \u2014 used" or \
        "gui-reopen-cache finished creating" in resumed.log.text()
    assert running_pid(state_dir) == pid


def test_a_stale_connection_file_starts_a_fresh_sandbox(  # type: ignore[no-untyped-def]
        qtbot, wizard, state_dir: Path) -> None:
    dead = SandboxProcess.start(state_dir)
    old_pid = dead.pid
    old = json.loads((state_dir / CONNECTION_FILE).read_text())
    dead.popen.send_signal(signal.SIGKILL)  # no clean-up: connection.json stays
    dead.kill()
    assert (state_dir / CONNECTION_FILE).exists()
    assert running_pid(state_dir) is None

    window = wizard(sandbox_factory(state_dir))
    pid = running_pid(state_dir)
    assert pid is not None and pid != old_pid
    assert json.loads((state_dir / CONNECTION_FILE).read_text())["endpoint"] == \
        endpoint_of(window)
    assert endpoint_of(window) != old["endpoint"] or pid != old_pid
    assert window.target.label.text().strip() == "Target: Local sandbox"
    assert window.session.backend is not None
    assert window.session.backend.resource_groups() is not None
