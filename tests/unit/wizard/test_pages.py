"""Networking, Advanced, Tags, Model image and Function app pages: what the user
types reaches the spec, and rule problems show under the field and block Next."""

from __future__ import annotations

import pytest

from app.wizard.pages.function_app import suggest_names
from app.wizard.pages.image import SAMPLE_MODEL
from tests.unit.wizard.helpers import click, type_into

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    # The headless platform cannot size dialogs from their hints; harmless there.
    pytest.mark.qt_log_ignore("does not support propagateSizeHints"),
]


def test_private_endpoint_is_not_offered_and_says_why(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.go("networking")
    page = window.pages["networking"]
    # This release cannot create one: not a choice, and the page says so.
    assert not page.private.isEnabled()
    assert page.private_note.isVisible()
    assert "does not create" in page.private_note.text()
    click(qtbot, page.private)
    assert window.session.spec.cache.public_network_access is True
    assert window.next_button.isEnabled()


def test_tags_reserved_prefix_and_duplicates(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.go("tags")
    page = window.pages["tags"]
    page.set_row(0, "env", "demo")
    assert window.session.spec.tags == {"env": "demo"}
    assert window.next_button.isEnabled()
    page.set_row(1, "azure-owner", "me")
    assert "reserved by Azure" in page.message.text()
    assert not window.next_button.isEnabled()
    # The tag's name is quoted as typed, never capitalised as a sentence's start.
    page.set_row(1, "a<b", "x")
    assert "Tag 'a<b': name must not contain <" in page.message.text()
    page.set_row(1, "ENV", "again")
    assert "used twice" in page.message.text()
    assert not window.next_button.isEnabled()
    page.table.selectRow(1)
    click(qtbot, page.remove_button)
    assert window.session.spec.tags == {"env": "demo"}
    assert window.next_button.isEnabled()
    # The user's own created-by tag is not silently replaced: the page says why.
    page.set_row(1, "created-by", "alice")
    assert "'alice' would be replaced" in page.message.text()
    assert not window.next_button.isEnabled()


def test_image_build_from_sample_and_bad_reference(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.go("image")
    page = window.pages["image"]
    assert not window.next_button.isEnabled()
    page._on_sample()
    type_into(qtbot, page.registry.edit, "digitsacr")
    image = window.session.spec.image
    assert image.build_from == str(SAMPLE_MODEL)
    assert (image.repository, image.tag, image.registry) == ("digits-model", "v1", "digitsacr")
    qtbot.waitUntil(lambda: not page.busy, timeout=3000)
    assert window.next_button.isEnabled()

    type_into(qtbot, page.registry.edit, "acr")
    assert "at least 5 characters" in page.registry.message.text()
    assert not window.next_button.isEnabled()

    click(qtbot, page.use_existing)
    type_into(qtbot, page.reference, "not a reference")
    assert page.reference_message.isVisible()
    assert page.reference_message.text()
    assert not window.next_button.isEnabled()
    type_into(qtbot, page.reference, "myacr.azurecr.io/package:v1")
    assert not page.reference_message.isVisible()
    assert window.session.spec.image.build_from is None
    assert window.session.spec.image.reference == "myacr.azurecr.io/package:v1"


def test_missing_model_folder_is_a_problem(qtbot, window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    window.go("image")
    page = window.pages["image"]
    type_into(qtbot, page.folder, str(tmp_path / "nowhere"))
    assert "This folder does not exist" in page.folder_message.text()


def test_function_app_names_and_suggestions(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.go("function_app")
    page = window.pages["function_app"]
    type_into(qtbot, page.name.edit, "Digits-Scoring")
    app = window.session.spec.function_app
    assert (app.plan_name, app.storage_account) == suggest_names("Digits-Scoring")
    assert app.storage_account == "digitsscoringstor"
    type_into(qtbot, page.storage.edit, "Has_Upper")
    assert "lowercase letters and digits" in page.storage.message.text()
    assert not window.next_button.isEnabled()
    type_into(qtbot, page.name.edit, "-bad")
    assert "Must start with a letter or digit" in page.name.message.text()
    # The user typed their own storage name: the app name no longer overwrites it.
    assert window.session.spec.function_app.storage_account == "Has_Upper"


def test_monitoring_is_on_by_default_and_a_click_turns_it_off(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.go("function_app")
    page = window.pages["function_app"]
    assert page.monitoring.isChecked() and window.session.spec.monitoring.enabled
    click(qtbot, page.monitoring)
    assert window.session.spec.monitoring.enabled is False
    click(qtbot, page.monitoring)
    assert window.session.spec.monitoring.enabled is True


def test_advanced_sign_in_choices_and_managed_restrictions(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.go("advanced")
    page = window.pages["advanced"]
    click(qtbot, page.keys)
    assert window.session.spec.cache.auth == "access-keys"
    assert "access key in its app settings" in page.auth_note.text()
    click(qtbot, page.entra)
    assert window.session.spec.cache.auth == "entra"
    assert "managed identity" in page.auth_note.text()
    click(qtbot, page.app_keys)
    assert window.session.spec.function_app.auth == "keys"
    assert "admin password" in page.app_note.text()
    click(qtbot, page.identity)
    assert window.session.spec.function_app.auth == "managed-identity"
    assert "role assignments" in page.app_note.text()
    window.go("basics")
    basics = window.pages["basics"]
    basics.cache_type.setCurrentIndex(0)  # Azure Managed Redis, Balanced
    window.go("advanced")
    assert page.managed_note.isVisible()
    assert not page.non_tls.isEnabled()
    assert not page.zones_box.isVisible()
    assert window.session.spec.cache.redis_version is None


def test_image_builder_choice_in_plain_words(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.go("image")
    page = window.pages["image"]
    click(qtbot, page.use_build)
    assert page.layer_build.isChecked()
    assert "no Docker needed" in page.builder_note.text()
    click(qtbot, page.tasks_build)
    assert window.session.spec.image.builder == "acr-tasks"
    assert "free-trial" in page.builder_note.text()
    click(qtbot, page.layer_build)
    assert window.session.spec.image.builder == "layer"
    spec = window.session.spec
    spec.image.builder = "acr-tasks"
    page.do_load(spec)
    assert page.tasks_build.isChecked() and not page.layer_build.isChecked()
    assert "Docker build in the cloud" in page.builder_note.text()
