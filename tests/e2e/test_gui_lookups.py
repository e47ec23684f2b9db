"""Pick lists in the wizard against a sandbox that already holds things: Basics offers
the subscription's resource groups, Model image offers registry / repository / tag
and fills the reference; and a deploy started from the wizard checks the model
folder of an opened spec (relative to the spec's folder) before creating anything."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.connect import sandbox_target
from app.errors import BadInput
from app.sandbox import Sandbox
from app.sandbox.registry import push_package
from app.services.clients import ClientFactory
from app.wizard.launch import sandbox_factory
from app.wizard.mainwindow import MainWindow
from tests.unit.wizard.helpers import click, type_into

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.sandbox,
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("does not support propagateSizeHints"),
]

TAG = uuid.uuid4().hex[:6]
GROUP = f"rg-existing-{TAG}"
REGISTRY = f"pickacr{TAG}"


@pytest.fixture(scope="module")
def sandbox_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A sandbox holding one resource group and one registry with two images."""
    from azure.mgmt.containerregistry import models

    state = tmp_path_factory.mktemp("lookups-gui") / "sandbox"
    with Sandbox.start(state, latency="fast") as sandbox:
        target = sandbox_target(state, start=False)
        clients = ClientFactory(target)
        clients.resources().resource_groups.create_or_update(GROUP, {"location": "westeurope"})
        clients.registry().registries.begin_create(
            GROUP, REGISTRY,
            models.Registry(location="westeurope", sku=models.Sku(name="Basic"),
                            properties=models.RegistryProperties(admin_user_enabled=True)),
        ).result()
        clients.close()
        package = state.parent / "pkg"
        package.mkdir()
        (package / "score.py").write_text("print('hi')\n")
        for tag in ("v2", "v1"):
            push_package(package, f"{REGISTRY}.azurecr.io/digits:{tag}",
                         endpoint=sandbox.endpoint, ca_cert=sandbox.ca_cert, token=sandbox.token)
        yield state


@pytest.fixture
def gui(open_wizard, sandbox_dir: Path) -> MainWindow:  # type: ignore[no-untyped-def]
    return open_wizard(sandbox_factory(sandbox_dir))


def test_basics_offers_existing_resource_groups(qtbot, gui: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window = gui
    basics = window.pages["basics"]
    window.go("basics")
    # Regions come from the subscription (switzerlandnorth is not in the built-in list),
    # shown as the portal names them, closed to that list.
    qtbot.waitUntil(lambda: basics.location.findData("switzerlandnorth") >= 0, timeout=10_000)
    assert basics.location.itemText(basics.location.findData("switzerlandnorth")) == \
        "Switzerland North (switzerlandnorth)"
    assert basics.location.currentText() == "West Europe (westeurope)"
    assert not basics.location.isEditable()
    assert basics.location.findData("europe") < 0  # a geography, not a region
    # The host name follows the name as it is typed; the sandbox says what it gives.
    type_into(qtbot, basics.cache_name.edit, "digits-cache")
    assert "127.0.0.1" in basics.host_suffix.text()
    assert "digits-cache." in basics.host_suffix.text()
    combo = basics.existing_groups
    qtbot.waitUntil(lambda: combo.findText(GROUP) >= 0, timeout=10_000)
    assert combo.isVisible()

    # Choose the group from the list with the keyboard, as a user would.
    combo.setFocus()
    while combo.currentText() != GROUP:
        before = combo.currentIndex()
        qtbot.keyClick(combo, Qt.Key.Key_Down)
        assert combo.currentIndex() != before, "the group is not reachable in the list"
    assert basics.group.text() == GROUP
    window.pages["basics"].store(window.session.spec)
    assert window.session.spec.resource_group.name == GROUP
    assert window.session.spec.resource_group.create is False
    qtbot.waitUntil(lambda: basics.group.availability is not None
                    and basics.group.availability.state == "yours", timeout=10_000)

    # A name that is not in the list is a new group.
    type_into(qtbot, basics.group.edit, f"rg-brand-new-{TAG}")
    qtbot.waitUntil(lambda: basics.group.availability is not None
                    and basics.group.availability.state == "available", timeout=10_000)
    assert window.session.spec.resource_group.create is True


def test_image_page_picks_registry_repository_and_tag(qtbot, gui: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window = gui
    image = window.pages["image"]
    window.go("image")
    click(qtbot, image.use_existing)
    assert image.use_existing.isChecked()
    qtbot.waitUntil(lambda: image.pick_registry.findText(REGISTRY) >= 0, timeout=10_000)
    assert image._pick_row.isVisible()
    image.pick_registry.setCurrentIndex(image.pick_registry.findText(REGISTRY))
    image.pick_registry.activated.emit(image.pick_registry.currentIndex())
    qtbot.waitUntil(lambda: image.pick_tag.count() == 2, timeout=10_000)
    assert image.pick_repository.currentText() == "digits"
    assert [image.pick_tag.itemText(i) for i in range(2)] == ["v1", "v2"]
    image.pick_tag.setCurrentIndex(1)
    click(qtbot, image.use_pick)
    expected = f"{REGISTRY}.azurecr.io/digits:v2"
    assert image.reference.text() == expected
    image.store(window.session.spec)
    assert window.session.spec.image.reference == expected
    assert image.reference_message.text() == ""


def test_wizard_deploy_checks_the_opened_specs_model_folder(qtbot, gui: MainWindow,  # type: ignore[no-untyped-def]
                                                            tmp_path: Path) -> None:
    window = gui
    folder = tmp_path / "project"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "score.py").write_text("def init():\n    pass\n\n"
                                               "def run(data):\n    return data\n")
    group = f"rg-preflight-{TAG}"
    spec = {
        "version": 1, "target": "sandbox", "location": "westeurope",
        "resource_group": {"name": group},
        "cache": {"kind": "azure-cache-for-redis", "name": f"preflight-cache-{TAG}",
                  "tier": "Basic", "size": "C0"},
        "image": {"build_from": "model", "registry": f"preflightacr{TAG}",
                  "repository": "digits", "tag": "v1"},
        "function_app": {"name": f"preflight-app-{TAG}", "plan_name": f"preflight-plan-{TAG}",
                         "storage_account": f"preflightst{TAG}"},
    }
    path = folder / "spec.json"
    path.write_text(json.dumps(spec))
    assert window.spec_file.open(path)
    backend = window.session.backend
    assert backend is not None and backend.spec_dir == folder.resolve()
    # The folder lacks requirements.txt and a model file: refused before anything exists.
    with pytest.raises(BadInput, match=r"image\.build_from") as refused:
        backend.deploy(window.session.spec, lambda _event: None, threading.Event())
    assert "nothing was created" in refused.value.message
    assert str(folder.resolve() / "model") in refused.value.message
    assert not backend.group_exists(window.session.spec)


def test_cleanup_of_a_group_we_did_not_create_needs_delete_anyway(qtbot, gui: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window = gui
    backend = window.session.backend
    assert backend is not None
    foreign = f"rg-foreign-{TAG}"
    backend.clients.resources().resource_groups.create_or_update(  # type: ignore[attr-defined]
        foreign, {"location": "westeurope"})
    type_into(qtbot, window.pages["basics"].group.edit, foreign)
    dialog = window.open_cleanup()
    qtbot.waitUntil(lambda: dialog.info is not None, timeout=10_000)
    assert dialog.info is not None and dialog.info.created_by_us is False
    assert dialog.force.isVisible()
    assert "not tagged created-by: mlcache-deploy" in dialog.summary.text()
    dialog.confirm.setText(foreign)
    assert not dialog.delete_button.isEnabled()
    dialog.force.setChecked(True)
    assert dialog.delete_button.isEnabled()
    dialog.delete()
    qtbot.waitUntil(lambda: dialog.gone, timeout=30_000)
    assert foreign not in backend.resource_groups()
    dialog.close()
