"""The CLI's event displays: JSON lines, plain lines and the live terminal block."""

from __future__ import annotations

import io
import json

from app.cli.live import JsonLines, LiveLines, PlainLines, summary
from app.services.events import (
    RunFinished,
    StepFailed,
    StepProgress,
    StepSkipped,
    StepStarted,
    StepSucceeded,
)
from app.services.runner import Step

RUN = [
    StepStarted("cache", "Azure Cache for Redis c1"),
    StepProgress("cache", "Creating", 0.5),
    StepProgress("cache", "Creating", 2.5),
    StepSucceeded("cache", "Azure Cache for Redis c1 is running", 20.1),
    StepStarted("app", "function app f1"),
    StepFailed(
        "app", "ScopeLocked", "Could not create function app f1: locked", "Remove the lock", 1.0
    ),
    StepSkipped("endpoint", "needs function app f1, which failed"),
    RunFinished(False, False, 21.5, done=("cache",), failed=("app",), skipped=("endpoint",),
                log_path="/tmp/x.jsonl"),
]


def test_json_lines_are_one_object_per_event() -> None:
    out = io.StringIO()
    listener = JsonLines(out)
    for event in RUN:
        listener(event)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["event"] for line in lines] == [
        "step_started", "step_progress", "step_progress", "step_succeeded",
        "step_started", "step_failed", "step_skipped", "run_finished",
    ]
    assert lines[1]["provisioning_state"] == "Creating" and lines[1]["elapsed"] == 0.5
    assert lines[-1]["failed"] == ["app"]


def test_plain_lines_print_state_changes_failures_and_a_summary() -> None:
    out = io.StringIO()
    listener = PlainLines(out)
    for event in RUN:
        listener(event)
    text = out.getvalue()
    assert text.count("Creating") == 1  # repeated progress of the same state is not reprinted
    assert "FAILED" in text and "(ScopeLocked)" in text and "Remove the lock" in text
    assert "skipped    needs function app f1" in text
    assert "Deployment failed after 21.5 s: app failed, endpoint skipped" in text
    assert "Log: /tmp/x.jsonl" in text


def test_live_lines_redraw_one_line_per_step() -> None:
    class Named(Step):
        def __init__(self, name: str, title: str) -> None:
            self.name, self.title = name, title

    out = io.StringIO()
    live = LiveLines([Named("cache", "Azure Cache for Redis c1"), Named("app", "function app f1"),
                      Named("endpoint", "health of f1")], out)
    try:
        for event in RUN:
            live(event)
    finally:
        live.close()
    text = out.getvalue()
    last_block = text.split("\x1b[3F")[-1]
    assert "✓ Azure Cache for Redis c1" in last_block and "20.1 s" in last_block
    assert "✗ function app f1" in last_block and "failed (ScopeLocked)" in last_block
    assert "- health of f1" in last_block
    assert "Deployment failed" in last_block


def test_summary_of_a_cancelled_run_names_what_is_still_being_created() -> None:
    text = summary(RunFinished(False, True, 3.0, still_creating=("cache",)))
    assert "cancelled" in text and "Still being created in Azure" in text and "cache" in text
