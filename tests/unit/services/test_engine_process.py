"""What crosses the pipe to the deployment process comes back as it went: every event
kind, a recovery's spec, errors by class, a target without its credential, a run's
result."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from app.errors import BadInput, NotPermitted, Recovery, RuleProblems, ServiceFailure
from app.services.engine_process import (
    error_from_dict,
    error_to_dict,
    result_from_dict,
    result_to_dict,
    target_from_dict,
    target_to_dict,
)
from app.services.events import (
    RunFinished,
    StepFailed,
    StepLog,
    StepProgress,
    StepSkipped,
    StepStarted,
    StepSucceeded,
    event_from_dict,
    event_to_dict,
)
from app.services.explain import Explained
from app.services.runner import RunResult, StepOutcome
from app.services.target import StaticTokenCredential, sandbox_target_from_connection
from app.spec import load_spec

ROOT = Path(__file__).resolve().parents[3]


def _through_json(data: dict[str, object]) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(json.dumps(data))
    return loaded


def _spec():  # type: ignore[no-untyped-def]
    return load_spec(ROOT / "examples" / "digits-classic-sandbox.json")


def test_every_event_kind_comes_back_equal() -> None:
    spec = _spec()
    recovery = Recovery("switch-to-managed-redis", "Use Azure Managed Redis", spec)
    events = [
        StepStarted("cache", "Azure Cache for Redis"),
        StepProgress("cache", "Creating", 3.5, "about 15 minutes"),
        StepLog(None, "WARNING", "a note"),
        StepSucceeded("cache", "Created", 12.0, adopted=True, outputs={"host": "h"}),
        StepFailed("cache", "BlockedByPolicy", "refused", "use the other kind", 2.0,
                   error_class="QuotaOrRegion", recovery=recovery),
        StepSkipped("settings", "cache failed"),
        RunFinished(False, False, 20.0, done=("group",), failed=("cache",),
                    skipped=("settings",), still_creating=("plan",), log_path="/x.jsonl"),
    ]
    for event in events:
        assert event_from_dict(_through_json(event_to_dict(event))) == event


def test_an_unknown_kind_or_field_is_refused() -> None:
    with pytest.raises(ValueError, match="not an event"):
        event_from_dict({"event": "step_exploded"})
    with pytest.raises(ValueError, match="no field 'colour'"):
        event_from_dict({"event": "step_skipped", "step": "a", "reason": "b", "colour": 1})


def test_errors_keep_their_class_words_code_and_recovery() -> None:
    spec = _spec()
    sent = [
        BadInput("spec: no such file", "Check the path."),
        RuleProblems("cache.name: too long"),
        NotPermitted("refused", "Ask an owner.", code="AuthorizationFailed",
                     recovery=Recovery("a", "b", spec)),
    ]
    for err in sent:
        back = error_from_dict(_through_json(error_to_dict(err)))
        assert type(back) is type(err)
        assert (back.message, back.recommendation, back.code) == \
            (err.message, err.recommendation, err.code)
        assert back.recovery == err.recovery
        assert back.exit_code == err.exit_code


def test_an_error_outside_the_taxonomy_is_translated_before_it_leaves() -> None:
    back = error_from_dict(_through_json(error_to_dict(ConnectionResetError("reset by peer"))))
    assert isinstance(back, ServiceFailure)
    assert back.message


def test_an_unknown_class_name_is_a_service_failure() -> None:
    back = error_from_dict({"error_class": "SystemExit", "message": "m"})
    assert type(back) is ServiceFailure and back.message == "m"


def test_a_target_crosses_without_its_credential(tmp_path: Path) -> None:
    target = sandbox_target_from_connection(
        {"endpoint": "https://127.0.0.1:4443/", "ca_cert": str(tmp_path / "ca.pem"),
         "subscription_id": "sub", "token": "secret-token-value", "tenant_id": "t1",
         "user": {"username": "user@sandbox", "password": "pw-pw-pw-pw"}},
        state_dir=tmp_path)
    data = _through_json(target_to_dict(target))
    assert "secret-token-value" not in json.dumps(data)
    assert "pw-pw-pw-pw" not in json.dumps(data)
    other = StaticTokenCredential("other")
    back = target_from_dict(data, other)
    assert back.credential is other
    for f in dataclasses.fields(target):
        if f.name != "credential":
            assert getattr(back, f.name) == getattr(target, f.name), f.name


def test_a_run_result_comes_back_with_its_outcomes() -> None:
    outcomes = {
        "group": StepOutcome("group", "adopted", {"id": "/x"}, started=1.0, finished=2.0,
                             attempts=1),
        "cache": StepOutcome("cache", "failed", error=Explained(
            "QuotaExceeded", "no room", "another region", NotPermitted), reason="r"),
    }
    result = RunResult(outcomes, RunFinished(False, False, 3.0, done=("group",),
                                             failed=("cache",)))
    back = result_from_dict(_through_json(result_to_dict(result)))
    assert back.outcomes == result.outcomes
    assert back.finished == result.finished
    assert not back.succeeded and [o.name for o in back.failures()] == ["cache"]
