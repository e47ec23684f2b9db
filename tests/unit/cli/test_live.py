"""The CLI's event displays: JSON lines, plain lines and the live terminal block."""

from __future__ import annotations

import io
import json
import re
from typing import Any

from rich.console import Console

from app.cli.live import JsonLines, LiveTable, PlainLines
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


class Named(Step):
    def __init__(self, name: str, title: str) -> None:
        self.name, self.title = name, title


STEPS = [Named("cache", "Azure Cache for Redis c1"), Named("app", "function app f1"),
         Named("endpoint", "health of f1")]
CACHE_ID = ("/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Cache/Redis/c1")


def _terminal(out: io.StringIO) -> Console:
    """A console that behaves as a colour terminal 100 columns wide, writing to `out`."""
    return Console(file=out, force_terminal=True, width=100, color_system="standard")


def _run(portal: Any = None) -> tuple[LiveTable, str]:
    out = io.StringIO()
    live = LiveTable(STEPS, portal=portal, console=_terminal(out))
    events = list(RUN)
    events[3] = StepSucceeded("cache", "Azure Cache for Redis c1 is running", 20.1,
                              outputs={"id": CACHE_ID, "host_name": "c1.redis.cache.windows.net"})
    try:
        for event in events:
            live(event)
    finally:
        live.close()
    return live, out.getvalue()


def _plain(console_text: str) -> str:
    text = re.sub(r"\x1b\]8;[^\x1b]*\x1b\\", "", console_text)  # hyperlinks
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def test_live_table_has_a_row_per_step_with_state_and_elapsed_time() -> None:
    _, text = _run()
    final = _plain(text)
    assert "\x1b[" in text  # drawn as on a terminal: colour and cursor moves
    lines = final.splitlines()
    cache_row = next(line for line in lines if re.search(r"✓\s+Azure Cache for Redis c1", line))
    assert "20.1 s" in cache_row and "done" in cache_row
    app_row = next(line for line in lines if re.search(r"✗\s+function app f1", line))
    assert "1.0 s" in app_row and "failed (ScopeLocked)" in app_row
    assert any(re.search(r"-\s+health of f1", line) and "skipped: needs function app f1" in line
               for line in lines)
    # The failure's words and what to do scroll above the table.
    assert "Could not create function app f1: locked" in final and "Remove the lock" in final
    assert "Deployment failed after 21.5 s: app failed, endpoint skipped" in final
    assert "Log: /tmp/x.jsonl" in final


def test_a_running_step_shows_its_clock_between_events() -> None:
    out = io.StringIO()
    live = LiveTable(STEPS, console=_terminal(out))
    try:
        live(StepStarted("cache", "Azure Cache for Redis c1"))
        live.started["cache"] -= 3.0  # as if it started three seconds ago
        render = io.StringIO()
        _terminal(render).print(live.table())
    finally:
        live.close()
    row = next(line for line in _plain(render.getvalue()).splitlines() if "c1" in line)
    seconds = float(re.search(r"(\d+\.\d) s", row)[1])  # type: ignore[index]
    assert 3.0 <= seconds < 60 and "running" in row


def test_what_exists_lists_finished_resources_with_portal_links_on_azure() -> None:
    from app.services.portal import portal_url

    _, text = _run(portal=lambda rid: portal_url("t1", rid))
    final = _plain(text)
    assert "What exists" in final
    url = f"https://portal.azure.com/#@t1/resource{CACHE_ID}"
    assert url in _joined(final)
    assert "\x1b]8;" in text and url in text  # a terminal hyperlink, whole even when folded
    exists = final[final.index("What exists"):]
    assert "function app f1" not in exists  # it failed: nothing of it exists
    _, sandbox = _run(portal=None)
    exists = _plain(sandbox)[_plain(sandbox).index("What exists"):]
    assert "Resource id" in exists and "portal.azure.com" not in exists
    assert CACHE_ID in _joined(exists)


def _joined(text: str) -> str:
    """A folded table cell read back whole: no spaces, line ends or cell borders."""
    return re.sub(r"[\s│┃]", "", text)


def test_a_narrow_terminal_keeps_the_symbol_and_the_clock() -> None:
    out = io.StringIO()
    narrow = Console(file=out, force_terminal=True, width=60, color_system="standard")
    live = LiveTable(STEPS, console=narrow)
    try:
        live(StepSucceeded("cache", "ok", 20.1))
        live(StepSkipped("endpoint", "needs function app f1, which failed " * 4))
        render = io.StringIO()
        Console(file=render, force_terminal=True, width=60).print(live.table())
    finally:
        live.close()
    lines = _plain(render.getvalue()).splitlines()
    assert all(len(line) <= 60 for line in lines)
    assert re.search(r"✓\s+Azure Cache for Redis c1\s+20\.1 s\s+done", lines[0])
    assert lines[2].startswith("-") and lines[2].rstrip().endswith("…")
