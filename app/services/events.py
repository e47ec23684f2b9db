"""What a run reports, as plain dataclasses any listener can consume.

The runner emits these; the CLI prints them, the wizard's bridge turns them into
Qt signals, and the per-deployment log stores them as JSON lines. They carry
no secrets: the runner redacts every event before handing it out.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.errors import Recovery


@dataclass(frozen=True)
class StepStarted:
    step: str
    title: str
    time: float = field(default_factory=time.time)


@dataclass(frozen=True)
class StepProgress:
    step: str
    provisioning_state: str
    elapsed: float
    message: str = ""
    time: float = field(default_factory=time.time)


@dataclass(frozen=True)
class StepLog:
    step: str | None
    level: str
    message: str
    time: float = field(default_factory=time.time)


@dataclass(frozen=True)
class StepSucceeded:
    step: str
    message: str
    elapsed: float
    adopted: bool = False
    outputs: dict[str, str] = field(default_factory=dict)
    time: float = field(default_factory=time.time)


@dataclass(frozen=True)
class StepFailed:
    """A step that ended in an error: Azure's code, the words, and what to do next.

    `error_class` names the `app.errors` class (who is at fault); `recovery`, when
    there is one, is a fix the product can make itself (e.g. the spec switched to
    Azure Managed Redis), so a face offers it without reading the message.
    """

    step: str
    code: str
    message: str
    hint: str
    elapsed: float
    error_class: str = "ServiceFailure"
    recovery: Recovery | None = None
    time: float = field(default_factory=time.time)


@dataclass(frozen=True)
class StepSkipped:
    """A step that did not run because something it depends on failed or the run stopped."""

    step: str
    reason: str
    time: float = field(default_factory=time.time)


@dataclass(frozen=True)
class RunFinished:
    succeeded: bool
    cancelled: bool
    elapsed: float
    done: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    still_creating: tuple[str, ...] = ()
    log_path: str = ""
    time: float = field(default_factory=time.time)


Event = (
    StepStarted | StepProgress | StepLog | StepSucceeded | StepFailed | StepSkipped | RunFinished
)
Listener = Callable[[Event], None]

EVENT_KINDS: dict[type, str] = {
    StepStarted: "step_started",
    StepProgress: "step_progress",
    StepLog: "step_log",
    StepSucceeded: "step_succeeded",
    StepFailed: "step_failed",
    StepSkipped: "step_skipped",
    RunFinished: "run_finished",
}


def event_to_dict(event: Event) -> dict[str, Any]:
    """The JSON form: `{"event": kind, ...fields}`; tuples become lists."""
    data: dict[str, Any] = {"event": EVENT_KINDS[type(event)]}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
        data[f.name] = list(value) if isinstance(value, tuple) else value
    return data


_KIND_TYPES: dict[str, type] = {kind: cls for cls, kind in EVENT_KINDS.items()}


def event_from_dict(data: dict[str, Any]) -> Event:
    """The event `event_to_dict` wrote: how a run in another process reaches a listener
    here. Raises ValueError for a kind or field this version does not know."""
    kind = data.get("event")
    cls = _KIND_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"not an event: {kind!r}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name == "event":
            continue
        if name not in known:
            raise ValueError(f"{kind} has no field {name!r}")
        if name == "recovery" and value is not None:
            from app.spec import spec_from_dict

            value = Recovery(value["action"], value["label"], spec_from_dict(value["spec"]))
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    event: Event = cls(**values)
    return event
