"""The wizard's deployment process against a real sandbox: a run reports every event
back, asks the window's credential for each token, stops on cancel, and a process
that dies is said to have stopped and is replaced by the next deploy."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.errors import NotPermitted, ServiceFailure
from app.sandbox import Sandbox
from app.services.engine_process import EngineProcess
from app.services.events import Event, RunFinished, StepStarted
from app.services.plan import build_plan
from app.services.target import CloudTarget, StaticTokenCredential, sandbox_target_from_connection
from app.wizard.screenshots import demo_spec
from app.wizard.services_backend import ServicesBackend

pytestmark = [pytest.mark.sandbox, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]


class CountingCredential:
    """The sandbox's token, counting who asked for it (the process has none of its own)."""

    def __init__(self, token: str) -> None:
        self.inner = StaticTokenCredential(token)
        self.calls = 0
        self.threads: set[str] = set()

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        return self.inner.get_token(*scopes, **kwargs)


class RefusingCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise NotPermitted("the sign-in was refused", "Sign in with another account.")


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(ROOT)  # the demo spec's model folder is relative
    with Sandbox.start(tmp_path / "sandbox", latency="fast") as sb:
        yield sb


def _target(sb: Sandbox, credential: Any) -> CloudTarget:
    target = sandbox_target_from_connection({
        "endpoint": sb.endpoint, "ca_cert": str(sb.ca_cert),
        "subscription_id": sb.subscription_id, "token": sb.token,
    })
    return dataclasses.replace(target, credential=credential)


def test_a_run_reports_back_and_its_tokens_come_from_this_process(sandbox: Sandbox) -> None:
    credential = CountingCredential(sandbox.token)
    engine = EngineProcess(_target(sandbox, credential))
    events: list[Event] = []
    try:
        assert engine.pid != os.getpid()
        result = engine.deploy(demo_spec(), ROOT, [events.append],  # type: ignore[arg-type]
                               threading.Event())
    finally:
        engine.close()
    assert result.succeeded, [o for o in result.failures()]
    assert isinstance(events[0], StepStarted) and isinstance(events[-1], RunFinished)
    assert events[-1] == result.finished
    started = {e.step for e in events if isinstance(e, StepStarted)}
    assert started == {step.name for step in build_plan(demo_spec())}  # type: ignore[arg-type]
    assert credential.calls > 0 and credential.threads == {"engine-token"}
    assert Path(result.finished.log_path).is_file()
    assert not engine.alive


def test_cancel_stops_the_run_in_the_process(sandbox: Sandbox) -> None:
    engine = EngineProcess(_target(sandbox, StaticTokenCredential(sandbox.token)))
    cancel = threading.Event()

    def listen(event: Event) -> None:
        if isinstance(event, StepStarted):
            cancel.set()

    try:
        result = engine.deploy(demo_spec(), ROOT, [listen], cancel)  # type: ignore[arg-type]
    finally:
        engine.close()
    assert result.finished.cancelled and not result.succeeded


def test_a_process_that_dies_mid_run_is_said_to_have_stopped(sandbox: Sandbox) -> None:
    engine = EngineProcess(_target(sandbox, StaticTokenCredential(sandbox.token)))

    def listen(event: Event) -> None:
        if isinstance(event, StepStarted):
            os.kill(engine.pid, signal.SIGKILL)

    try:
        with pytest.raises(ServiceFailure, match="deployment process stopped") as caught:
            engine.deploy(demo_spec(), ROOT, [listen], threading.Event())  # type: ignore[arg-type]
        assert "Deploy again" in caught.value.recommendation
        assert not engine.alive
    finally:
        engine.close()


def test_a_refused_token_is_the_windows_error_and_a_dead_process_is_replaced(
        sandbox: Sandbox) -> None:
    backend = ServicesBackend(_target(sandbox, RefusingCredential()), "Local sandbox")
    try:
        with pytest.raises(NotPermitted, match="the sign-in was refused") as caught:
            backend.deploy(demo_spec(), lambda _e: None, threading.Event())  # type: ignore[arg-type]
        assert caught.value.recommendation == "Sign in with another account."
        first = backend._engine
        assert first is not None and first.alive
        os.kill(first.pid, signal.SIGKILL)
        first._reader.join(10)
        with pytest.raises(NotPermitted, match="the sign-in was refused"):
            backend.deploy(demo_spec(), lambda _e: None, threading.Event())  # type: ignore[arg-type]
        assert backend._engine is not first and backend._engine is not None
    finally:
        backend.close()
    assert backend._engine is None and not first.alive
