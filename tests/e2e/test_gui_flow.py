"""The whole wizard against a local sandbox, driven as a user drives it: type names
(a wrong one first), walk every page, deploy, test (MISS then HIT), clean up,
and stop the local sandbox: nothing is left, no resource group, no process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from app.wizard.launch import sandbox_factory
from app.wizard.mainwindow import MainWindow
from tests.unit.wizard.helpers import click, type_into

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.sandbox,
    pytest.mark.qt_log_level_fail("WARNING"),
    # The headless platform cannot size dialogs from their hints; harmless there.
    pytest.mark.qt_log_ignore("does not support propagateSizeHints"),
]

GROUP = "rg-gui-e2e"


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line mentions `text` (the sandbox's state dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


@pytest.fixture
def gui(open_wizard, tmp_path: Path) -> MainWindow:  # type: ignore[no-untyped-def]
    return open_wizard(sandbox_factory(tmp_path / "sandbox"))


def next_page(qtbot, window: MainWindow, expected: str) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(window.next_button.isEnabled, timeout=10_000)
    click(qtbot, window.next_button)
    assert window.current == expected


def test_wizard_deploys_tests_and_cleans_up(qtbot, gui: MainWindow, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    window = gui
    assert window.target.label.text().strip() == "Target: Local sandbox"

    # -- Basics: a wrong name first, then a good one.
    basics = window.pages["basics"]
    type_into(qtbot, basics.group.edit, GROUP)
    type_into(qtbot, basics.cache_name.edit, "Bad_Cache--")
    assert "May contain only letters, digits and hyphens" in basics.cache_name.message.text()
    assert not window.next_button.isEnabled()
    type_into(qtbot, basics.cache_name.edit, "gui-e2e-cache")
    basics.cache_type.setCurrentIndex(
        basics.cache_type.findText("Azure Cache for Redis \u2014 Basic"))
    basics.size_combo.setCurrentIndex(basics.size_combo.findData("C0"))
    # The group does not exist yet: the check says a new one will be created.
    qtbot.waitUntil(lambda: basics.group.availability is not None, timeout=10_000)
    assert basics.group.availability.state == "available"
    next_page(qtbot, window, "networking")
    next_page(qtbot, window, "advanced")
    next_page(qtbot, window, "tags")

    tags = window.pages["tags"]
    click(qtbot, tags.add_button)
    tags.set_row(0, "env", "e2e")
    next_page(qtbot, window, "image")

    image = window.pages["image"]
    image._on_sample()
    type_into(qtbot, image.registry.edit, "guie2eacr")
    next_page(qtbot, window, "function_app")

    app = window.pages["function_app"]
    type_into(qtbot, app.name.edit, "gui-e2e-app")
    assert app.storage.text() == "guie2eappstor"
    next_page(qtbot, window, "review")

    review = window.pages["review"]
    # The engine's preflight answers from a worker.
    qtbot.waitUntil(lambda: "Validation passed" in review.banner.text(), timeout=30_000)
    export = tmp_path / "template.json"
    review.export_to(export, "arm")
    qtbot.waitUntil(export.exists, timeout=10_000)
    assert "Microsoft.Cache/redis" in export.read_text()
    # Every export format is one menu entry; azd writes a project folder.
    labels = [a.text().replace("&", "") for a in review.export_button.menu().actions()]
    assert [label.split()[0] for label in labels] == ["ARM", "Bicep", "azd", "az"]
    review.export_folder_to(tmp_path / "azd", "azd")
    qtbot.waitUntil(lambda: "Saved" in review.export_message.text(), timeout=10_000)
    assert "infra/main.bicep" in review.export_message.text()
    assert "services:" in (tmp_path / "azd" / "azure.yaml").read_text()
    assert "Microsoft.Cache/redis@" in (tmp_path / "azd" / "infra" / "main.bicep").read_text()

    # -- Create: deploy with live rows.
    deploy = window.deploy
    with qtbot.waitSignal(window.bridge.run_finished, timeout=120_000) as finished:
        click(qtbot, window.next_button)
        assert window.current == "deploy"
    assert finished.args[0].succeeded, deploy.log.text()
    qtbot.waitUntil(lambda: not deploy.running, timeout=10_000)
    states = {name: item.text(2) for name, item in deploy.rows.items()}
    assert set(states) >= {"resource-group", "cache", "storage", "plan", "function-app"}
    # Keyless, the function app is created with its cache settings when the cache's
    # address is already known, so the settings step then finds them in place.
    assert states.pop("app-settings") in ("Succeeded", "Existing \u2014 used")
    assert all(state == "Succeeded" for state in states.values()), sorted(states.items())
    assert deploy.progress.value() == deploy.progress.maximum()
    assert "gui-e2e-app" in deploy.log.text()

    # -- Test: MISS, then HIT, then a repeated run charted.
    next_page(qtbot, window, "test")
    test_page = window.test_page
    assert '"data"' in test_page.payload.toPlainText()
    click(qtbot, test_page.send_button)
    qtbot.waitUntil(lambda: len(test_page.results) == 1, timeout=30_000)
    first = test_page.results[0]
    assert first.status == 200, first.body
    assert first.cache == "MISS"
    click(qtbot, test_page.send_button)
    qtbot.waitUntil(lambda: len(test_page.results) == 2, timeout=30_000)
    assert test_page.results[1].cache == "HIT"
    assert test_page.cache_label.text() == "HIT"
    # The page names the Application Insights component; on the sandbox, by its id.
    qtbot.waitUntil(test_page.insights.isVisible, timeout=10_000)
    assert test_page.insights.text().startswith("Application Insights: gui-e2e-app (")
    assert "/providers/microsoft.insights/components/gui-e2e-app)" in \
        test_page.insights.text().lower()
    test_page.repeat.setValue(3)
    click(qtbot, test_page.repeat_button)
    qtbot.waitUntil(lambda: len(test_page.results) == 5 and test_page.repeat_button.isEnabled(),
                    timeout=30_000)
    assert test_page.hits.count() == 4
    assert test_page.misses.count() == 1
    # The function's own log stream tails into the pane.
    qtbot.waitUntil(lambda: any(e.source == "function" for e in test_page.function_log.entries),
                    timeout=15_000)

    # -- The endpoint is shown, and Copy as curl leaves the key out unless asked.
    qtbot.waitUntil(lambda: test_page.url.text().startswith("https://"), timeout=15_000)
    assert test_page.url.text().endswith("/api/score")
    assert test_page.endpoint is not None
    key = test_page.endpoint.key
    click(qtbot, test_page.curl_button)
    copied = QApplication.clipboard().text()
    assert copied.startswith("curl ") and test_page.url.text() in copied
    assert key not in copied and "$FUNCTION_KEY" in copied
    assert key not in test_page.function_log.text() and key not in deploy.log.text()

    # -- Names are checked again when a page is shown: the app now exists in our
    # group ("yours"), and for another group the same global name is taken.
    window.go("function_app")
    qtbot.waitUntil(lambda: app.name.availability is not None, timeout=10_000)
    assert app.name.availability.state == "yours"
    # The plan and storage names are being checked too; then Next is allowed.
    qtbot.waitUntil(window.next_button.isEnabled, timeout=10_000)
    window.go("basics")
    type_into(qtbot, basics.group.edit, "rg-gui-other")
    window.go("function_app")
    qtbot.waitUntil(lambda: app.name.availability is not None, timeout=10_000)
    assert app.name.availability.state == "taken"
    assert app.name.mark.text() == "\u2717"
    assert not window.next_button.isEnabled()
    window.go("basics")
    type_into(qtbot, basics.group.edit, GROUP)

    # -- Clean up: typed confirmation, delete, confirmed gone.
    dialog = window.open_cleanup()
    qtbot.waitUntil(lambda: dialog.info is not None, timeout=10_000)
    listed = [dialog.contents.item(i).text() for i in range(dialog.contents.count())]
    assert any("gui-e2e-cache" in line for line in listed)
    assert not dialog.delete_button.isEnabled()
    type_into(qtbot, dialog.confirm, GROUP[:-1])
    assert not dialog.delete_button.isEnabled()
    type_into(qtbot, dialog.confirm, GROUP)
    assert dialog.delete_button.isEnabled()
    click(qtbot, dialog.delete_button)
    qtbot.waitUntil(lambda: dialog.gone, timeout=60_000)
    assert "is gone" in dialog.status.text()
    backend = window.session.backend
    assert backend is not None
    assert not backend.group_info(GROUP).exists
    dialog.close()
    # The Deploy page no longer says the deployment succeeded.
    window.go("deploy")
    assert "succeeded" not in deploy.status.text().lower()
    qtbot.waitUntil(lambda: bool(deploy.rows) and all(
        item.text(2) == "Pending" for item in deploy.rows.values()), timeout=10_000)
    assert "succeeded" not in deploy.status.text().lower()
    assert not window.next_button.isEnabled()

    # -- Target > Stop the local sandbox stops it, and every process with it (closing
    # the window would leave it running: tests/e2e/test_gui_reopen.py).
    state_dir = str(tmp_path / "sandbox")
    assert processes_mentioning(state_dir)
    assert window.target.stop_sandbox_action.isVisible()
    window.target.stop_sandbox_action.trigger()
    qtbot.waitUntil(lambda: not processes_mentioning(state_dir), timeout=20_000)
    qtbot.waitUntil(window.target.sandbox_action.isVisible, timeout=10_000)
    assert window.target.label.text().strip() == "Target: not connected"
    window.close()
