"""Fixtures the end-to-end CLI tests share: a sandbox per test and the CLI runner."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.sandbox import Sandbox
from tests.e2e.test_cli import Cli


@pytest.fixture
def sandbox_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[Sandbox] = []

    def start(faults: dict[str, Any] | None = None, offer: str | None = None) -> Sandbox:
        sandbox = Sandbox.start(tmp_path / "sandbox", latency="fast", faults=faults, offer=offer)
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "sandbox", tmp_path / "data")


@pytest.fixture
def open_wizard(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """Open the real main window on a sandbox backend; close everything afterwards.

    `open_wizard(backend_factory, group=None, working_spec=None)` returns the
    window once its backend is up; at teardown the group (if named) is deleted,
    the window and its session closed, the worker pool drained, and the sandbox
    process a factory started (it outlives windows on purpose) stopped.
    """
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.wizard.launch import configure_app
    from app.wizard.mainwindow import MainWindow
    from app.wizard.settings import Settings
    from app.wizard.workers import wait_for_tasks

    # Deployment logs go to the user's data dir: keep them in the test's folder.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    configure_app(QApplication.instance())  # type: ignore[arg-type]
    opened: list[tuple[MainWindow, str | None]] = []
    factories: list[Any] = []

    def open_window(backend_factory: Any, group: str | None = None,
                    working_spec: Path | None = None) -> MainWindow:
        settings = Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
        window = MainWindow(backend_factory=backend_factory, settings=settings,
                            working_spec=working_spec)
        qtbot.addWidget(window)
        opened.append((window, group))
        factories.append(backend_factory)
        window.show_when_ready()
        qtbot.waitUntil(lambda: window.session.backend is not None, timeout=60_000)
        return window

    yield open_window
    for window, group in opened:
        backend = window.session.backend
        if group is not None and backend is not None:
            backend.delete_group(group, lambda _text: None)
        if window.isVisible():
            window.close()
        window.session.close()
        wait_for_tasks(10_000)
    from app.errors import BadInput

    for factory in factories:
        stop = getattr(factory, "stop", None)
        if stop is not None:
            # BadInput: the test's own in-process sandbox served it; the test stops that.
            with contextlib.suppress(BadInput):
                stop()


@pytest.fixture(scope="session", autouse=True)
def warm_packages_layer() -> None:
    """Resolve the sample model's packages layer once, before any deploy, as a user's
    cache holds it after the first build: deploys in tests then take the time a
    second deploy takes, and tests that interrupt one mid-way land where they aim."""
    import sys

    from app.paths import resources_dir, user_cache_dir
    from app.sandbox.base_images import oci_architecture
    from app.services.image_layers import Platform, packages_layer
    from app.services.packaging import (
        merge_requirements,
        parse_requirements,
        template_constraints,
        template_dir,
    )

    template = parse_requirements((template_dir() / "requirements.txt").read_text("utf-8"))
    model = parse_requirements(
        (resources_dir() / "sample-model" / "requirements.txt").read_text("utf-8"))
    # What the sandbox's stand-in base image reports: this machine's platform and Python.
    site = Platform("linux", oci_architecture(),
                    f"{sys.version_info.major}.{sys.version_info.minor}")
    packages_layer(merge_requirements(template, model), site, user_cache_dir(),
                   lambda _line: None, lambda: None, template_constraints(model))
