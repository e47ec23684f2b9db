"""One redaction mechanism: registry, log records at the source, events, the JSON-lines file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from app.services.events import StepFailed, StepLog, StepSucceeded
from app.services.logs import DeploymentLog, get_logger
from app.services.redaction import MASK, SECRETS, redact, redact_event, register_secret
from app.services.runner import RunContext, Runner, Step, StepReport

KEY = "Zm9vYmFyYmF6cXV4K3Nv/bWU9c2VjcmV0a2V5PT0="


@pytest.fixture(autouse=True)
def clean_registry() -> None:
    SECRETS.clear()


def test_registered_values_and_their_url_encoded_forms_are_masked() -> None:
    register_secret(KEY)
    text = f"key={KEY} url=https://x/?code={__import__('urllib.parse').parse.quote(KEY, safe='')}"
    out = redact(text)
    assert KEY not in out and "%2F" not in out and out.count(MASK) == 2


def test_short_values_are_not_registered() -> None:
    register_secret("abc")
    register_secret("")
    register_secret(None)
    assert redact("abc") == "abc"


def test_events_are_redacted_in_every_string_field() -> None:
    register_secret(KEY)
    event = StepSucceeded("s", f"done {KEY}", 1.0, outputs={"k": f"AccountKey={KEY};"})
    clean = redact_event(event)
    assert KEY not in json.dumps(clean.__dict__)
    assert clean.outputs["k"] == f"AccountKey={MASK};"


class Kept(logging.Handler):
    """Every formatted record a handler of ours would see."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


def test_logger_records_are_redacted_before_any_handler(caplog: pytest.LogCaptureFixture) -> None:
    register_secret(KEY)
    buffer = Kept()
    logger = get_logger("test")
    logger.addHandler(buffer)
    try:
        with caplog.at_level(logging.INFO, logger="mlcache"):
            logger.info("connecting with %s", KEY)
            try:
                raise ValueError(f"bad key {KEY}")
            except ValueError:
                logger.exception("failed")
    finally:
        logger.removeHandler(buffer)
    assert KEY not in caplog.text and MASK in caplog.text
    assert all(KEY not in line for line in buffer.records) and len(buffer.records) == 2


class Leaky(Step):
    name = "leaky"
    title = "leaky thing"

    def create(self, ctx: RunContext, report: StepReport) -> dict[str, str]:
        ctx.secrets["key"] = KEY
        register_secret(KEY)
        report.log(f"read key {KEY}")
        get_logger("arm").warning("key was %s", KEY)
        raise RuntimeError(f"refused key {KEY}")


def test_deployment_log_holds_events_and_records_without_the_secret(tmp_path: Path) -> None:
    with DeploymentLog("rg-one", tmp_path) as deployment_log:
        events: list[object] = []
        runner = Runner([Leaky()], RunContext(), [deployment_log, events.append])
        result = runner.run()
    text = deployment_log.path.read_text()
    assert deployment_log.path.parent == tmp_path and deployment_log.path.name.startswith("rg-one-")
    assert KEY not in text
    lines = [json.loads(line) for line in text.splitlines()]
    kinds = [line["event"] for line in lines]
    assert "step_failed" in kinds and "step_log" in kinds and "log" in kinds
    assert kinds[-1] == "run_finished"
    failed = next(e for e in events if isinstance(e, StepFailed))
    assert MASK in failed.message and KEY not in failed.message
    logged = next(e for e in events if isinstance(e, StepLog))
    assert logged.message == f"read key {MASK}"
    assert not result.succeeded
