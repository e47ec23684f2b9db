"""The log pane filters by level and text and saves what it shows; settings keep
only known, non-secret keys; a spec saved from the window opens again unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from app.spec import load_spec
from app.wizard.logpane import LogPane
from app.wizard.mainwindow import MainWindow
from app.wizard.settings import Settings
from tests.unit.wizard.helpers import type_into

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("does not support propagateSizeHints"),
]


def test_log_pane_levels_filter_and_save(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pane = LogPane("Deployment log")
    qtbot.addWidget(pane)
    pane.add("DEBUG", "arm", "polling")
    pane.add("INFO", "cache", "Creating")
    pane.add("WARNING", "storage", "throttled, retrying")
    pane.add("ERROR", "plan", "Could not create plan")
    assert len(pane.visible_lines()) == 3  # Info and above by default
    pane.level.setCurrentIndex(3)
    assert [line.split()[-1] for line in pane.visible_lines()] == ["plan"]
    pane.level.setCurrentIndex(0)
    pane.search.setText("cache")
    assert len(pane.visible_lines()) == 1
    assert "Creating" in pane.view.toPlainText()
    out = tmp_path / "log.txt"
    pane.save_to(out)
    assert out.read_text().count("\n") == 1 and "cache: Creating" in out.read_text()


def test_settings_refuse_unknown_keys(tmp_path: Path) -> None:
    settings = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    settings.set("spec/location", "northeurope")
    assert settings.get("spec/location") == "northeurope"
    with pytest.raises(KeyError):
        settings.set("azure/client_secret", "x")


def test_choices_remembered_and_spec_round_trip(qtbot, window: MainWindow, settings: Settings,
                                                tmp_path: Path) -> None:
    basics = window.pages["basics"]
    type_into(qtbot, basics.group.edit, "rg-roundtrip")
    type_into(qtbot, basics.cache_name.edit, "roundtrip-cache")
    basics.select_region("northeurope")
    window.go("function_app")
    window.pages["function_app"].sku.setCurrentIndex(
        window.pages["function_app"].sku.findData("S1"))
    path = tmp_path / "spec.toml"
    assert window.spec_file.save(path)
    loaded = load_spec(path)
    assert loaded.resource_group.name == "rg-roundtrip"
    assert loaded.cache.name == "roundtrip-cache"
    assert loaded.function_app.plan_sku == "S1"
    window.close()
    # A new window starts with the remembered region and plan, and opens the file.
    again = MainWindow(backend_factory=None, settings=settings)
    qtbot.addWidget(again)
    assert again.session.spec.location == "northeurope"
    assert again.session.spec.function_app.plan_sku == "S1"
    assert settings.get("spec/last_path") == str(path)
    assert again.spec_file.open(path)
    assert again.pages["basics"].cache_name.text() == "roundtrip-cache"
    text = Path(settings.file_name).read_text()
    assert "rg-roundtrip" not in text  # names live in spec files, not in settings
    again.close()


def test_reopened_window_shows_the_last_deployment(qtbot, settings: Settings,
                                                   tmp_path: Path) -> None:
    from tests.unit.wizard.test_review import valid_spec

    working = tmp_path / "wizard" / "last-spec.json"
    first = MainWindow(backend_factory=None, settings=settings, working_spec=working)
    qtbot.addWidget(first)
    first.session.replace_spec(valid_spec())
    first.spec_file.keep_working_spec()  # what pressing Create does before the run starts
    first.close()
    assert "review-cache" in working.read_text()
    second = MainWindow(backend_factory=None, settings=settings, working_spec=working)
    qtbot.addWidget(second)
    assert second.session.spec.cache.name == "review-cache"
    assert second.pages["basics"].cache_name.text() == "review-cache"
    second.close()


@pytest.mark.parametrize(("target", "same_spec", "page"), [
    ("sandbox", True, "deploy"),   # the last deployment of this spec: show it
    ("sandbox", False, "basics"),  # a record about another spec does not count
    ("azure", True, "basics"),     # Azure needs a sign-in before anything can be shown
])
def test_reopened_window_opens_on_the_last_deployment_of_its_spec(  # type: ignore[no-untyped-def]
        qtbot, settings: Settings, tmp_path: Path, target: str, same_spec: bool,
        page: str) -> None:
    from app.wizard.last_run import LastRun, fingerprint
    from tests.unit.wizard.test_review import valid_spec

    working = tmp_path / "wizard" / "last-spec.json"
    first = MainWindow(backend_factory=None, settings=settings, working_spec=working)
    qtbot.addWidget(first)
    spec = valid_spec()
    first.session.replace_spec(spec)
    first.spec_file.keep_working_spec()
    recorded = valid_spec()
    if not same_spec:
        recorded.cache.name = "another-cache"
    first.spec_file.keep_run(LastRun("succeeded", target, spec.resource_group.name,
                                     fingerprint(recorded), "Deployment succeeded."))
    first.close()
    second = MainWindow(backend_factory=None, settings=settings, working_spec=working)
    qtbot.addWidget(second)
    assert second.current == page
    # Nothing is claimed before the target has answered: no result, Test not offered.
    assert second.deploy.result is None
    second.close()
