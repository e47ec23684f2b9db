"""Review + create as a real preflight, against a local sandbox: the engine's own
checks run from the window, each blocker links to its page, Create waits for none
to be left; the shipped example gets through every page to a passing Review."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

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

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "digits-sandbox.json"
# A generous bound for a name check or the preflight on a busy machine.
ANSWER_MS = 30_000


@pytest.fixture
def gui(open_wizard, tmp_path: Path) -> MainWindow:  # type: ignore[no-untyped-def]
    return open_wizard(sandbox_factory(tmp_path / "sandbox"))


def next_page(qtbot, window: MainWindow, expected: str) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(window.next_button.isEnabled, timeout=ANSWER_MS)
    click(qtbot, window.next_button)
    assert window.current == expected


def checked(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """Wait until Review has the preflight's answer for the spec it shows."""
    qtbot.waitUntil(lambda: not window.review.busy, timeout=ANSWER_MS)


def test_the_shipped_example_reaches_review_without_errors(qtbot, gui: MainWindow,  # type: ignore[no-untyped-def]
                                                           tmp_path: Path) -> None:
    window = gui
    # Opened where it ships: its "build_from": "resources/sample-model" is found above
    # examples/, as the engine finds it.
    assert window.spec_file.open(EXAMPLE)
    image = window.pages["image"]
    assert image.extra_problems() == []
    for page in ("networking", "advanced", "tags", "image", "function_app", "review"):
        next_page(qtbot, window, page)
        if page == "image":
            assert "does not exist" not in image.folder_message.text()
    checked(qtbot, window)
    review = window.review
    assert "Validation passed" in review.banner.text(), review.problem_list.text()
    assert window.next_button.isEnabled()
    assert window.next_button.text().replace("&", "") == "Create"


def test_review_blocks_a_private_endpoint_with_a_link_to_networking(  # type: ignore[no-untyped-def]
        qtbot, gui: MainWindow, tmp_path: Path) -> None:
    window = gui
    data = json.loads(EXAMPLE.read_text())
    data["cache"]["public_network_access"] = False
    project = tmp_path / "project"
    shutil.copytree(ROOT / "resources" / "sample-model", project / "model")
    data["image"]["build_from"] = "model"
    path = project / "private.json"
    path.write_text(json.dumps(data))
    assert window.spec_file.open(path)

    networking = window.pages["networking"]
    window.go("networking")
    # Shown as the spec asks, but not offered: this release cannot create it.
    assert networking.private.isChecked() and not networking.private.isEnabled()
    assert networking.private_note.isVisible()
    # The page's own rules accept it; only the engine's preflight refuses it.
    assert window.next_button.isEnabled()

    window.go("review")
    checked(qtbot, window)
    review = window.review
    assert "Validation failed: 1 problem" in review.banner.text()
    listing = review.problem_list.text()
    assert 'href="field:cache.public_network_access"' in listing
    assert "Go to Networking" in listing
    assert "private endpoint" in listing
    assert not window.next_button.isEnabled()
    # The step list marks Networking as having a problem, not with a green tick.
    assert window.steps.item(1).toolTip() == "Has problems"

    review.problem_list.linkActivated.emit("field:cache.public_network_access")
    assert window.current == "networking"
    qtbot.waitUntil(networking.public.hasFocus, timeout=2000)
    click(qtbot, networking.public)
    assert window.session.spec.cache.public_network_access is True

    window.go("review")
    checked(qtbot, window)
    assert "Validation passed" in review.banner.text(), review.problem_list.text()
    assert window.next_button.isEnabled()
    assert window.steps.item(1).toolTip() == ""


def test_review_lists_what_the_engine_finds_in_the_model_folder(  # type: ignore[no-untyped-def]
        qtbot, gui: MainWindow, tmp_path: Path) -> None:
    window = gui
    data = json.loads(EXAMPLE.read_text())
    project = tmp_path / "project"
    (project / "model").mkdir(parents=True)
    # An entry script but no requirements.txt and no model file: the engine refuses it.
    (project / "model" / "score.py").write_text("def init():\n    pass\n\n"
                                                "def run(data):\n    return data\n")
    data["image"]["build_from"] = "model"
    path = project / "spec.json"
    path.write_text(json.dumps(data))
    assert window.spec_file.open(path)
    window.go("review")
    checked(qtbot, window)
    listing = window.review.problem_list.text()
    assert 'href="field:image.build_from"' in listing
    assert "requirements.txt" in listing
    assert not window.next_button.isEnabled()
    # Fixed on disk: Review asks again when shown.
    shutil.copytree(ROOT / "resources" / "sample-model", project / "model", dirs_exist_ok=True)
    window.go("function_app")
    window.go("review")
    checked(qtbot, window)
    assert "Validation passed" in window.review.banner.text(), window.review.problem_list.text()


def test_a_spec_saved_from_the_window_deploys_the_same_from_the_cli(  # type: ignore[no-untyped-def]
        qtbot, gui: MainWindow, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Open the shipped example, Save as elsewhere on a window that never saved, then
    `validate` and `deploy` the file from the CLI (in another folder, so a relative
    model folder must still mean the same); after Clean up in the window, the group
    is a new one again in the file too."""
    from PySide6.QtWidgets import QFileDialog

    window = gui
    assert window.spec_file.open(EXAMPLE)
    tag = uuid.uuid4().hex[:6]
    spec = window.session.spec
    group = f"rg-saved-{tag}"
    spec.resource_group.name = group
    spec.cache.name = f"saved-cache-{tag}"
    spec.image.registry = f"savedacr{tag}"
    spec.function_app.name = f"saved-app-{tag}"
    spec.function_app.plan_name = f"saved-plan-{tag}"
    spec.function_app.storage_account = f"savedst{tag}"
    for page in window.pages.values():
        page.do_load(spec)
    window.go("review")
    checked(qtbot, window)
    assert "Validation passed" in window.review.banner.text(), window.review.problem_list.text()

    saved = tmp_path / "elsewhere" / "saved.json"
    saved.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *_args: (str(saved), "JSON (*.json)"))
    assert window.spec_file.ask_save_as()
    data = json.loads(saved.read_text())
    assert Path(data["image"]["build_from"]).resolve() == (ROOT / "resources" /
                                                           "sample-model").resolve()
    assert data["resource_group"] == {"name": group, "create": True}
    # The window edits the saved file now: its Model image page shows the path written.
    assert window.pages["image"].folder.text() == data["image"]["build_from"]

    def validate() -> subprocess.CompletedProcess[str]:
        # From the file's own folder: the current folder lends it nothing.
        return subprocess.run([sys.executable, "-m", "app", "validate", str(saved)],
                              cwd=saved.parent, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})

    result = validate()
    assert (result.returncode, result.stdout) == (0, "Validation passed\n"), result.stderr
    deployed = cli("deploy", str(saved), "--json")
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]

    # The window sees the group the CLI made as an existing one of ours...
    basics = window.basics
    window.go("basics")
    qtbot.waitUntil(lambda: basics.group.availability is not None, timeout=ANSWER_MS)
    assert basics.group.availability.state == "yours"
    assert spec.resource_group.create is False

    # ...and once Clean up deleted it, as a new one, in the window and in the file.
    dialog = window.open_cleanup()
    qtbot.waitUntil(lambda: dialog.info is not None, timeout=ANSWER_MS)
    type_into(qtbot, dialog.confirm, group)
    with qtbot.waitSignal(dialog.deleted, timeout=60_000):
        click(qtbot, dialog.delete_button)
    dialog.close()
    qtbot.waitUntil(lambda: basics.group.availability is not None, timeout=ANSWER_MS)
    assert basics.group.availability.state == "available"
    assert spec.resource_group.create is True
    assert window.spec_file.ask_save()
    assert json.loads(saved.read_text())["resource_group"] == {"name": group, "create": True}
    result = validate()
    assert (result.returncode, result.stdout) == (0, "Validation passed\n"), result.stderr
