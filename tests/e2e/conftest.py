"""Fixtures the end-to-end CLI tests share: a sandbox per test and the CLI runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.sandbox import Sandbox
from tests.e2e.test_cli import Cli


@pytest.fixture
def sandbox_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[Sandbox] = []

    def start(faults: dict[str, Any] | None = None) -> Sandbox:
        sandbox = Sandbox.start(tmp_path / "sandbox", latency="fast", faults=faults)
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "sandbox", tmp_path / "data")
