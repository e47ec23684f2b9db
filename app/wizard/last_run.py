"""What the last deployment of the working spec came to, kept between runs.

The window keeps the spec it deploys (`SpecFile.keep_working_spec`); next to it
this record says how that deployment ended: still running when the window
closed, succeeded, failed or cancelled, and the state each row showed. A
reopened window uses it to open on the Deploy page: a run the window closed
on is resumed (the engine adopts what exists and creates the rest), a finished
one is shown as it ended. Names and states only, never a secret.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.spec import DeploymentSpec, spec_to_dict

# running: the window closed (or the program ended) while it ran.
STATES = ("running", "succeeded", "failed", "cancelled")


def fingerprint(spec: DeploymentSpec) -> str:
    """Tells whether a record is about this very spec (any field changed: another one)."""
    text = json.dumps(spec_to_dict(spec), sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class LastRun:
    """One deployment's outcome as the Deploy page showed it."""

    state: str
    target: str  # sandbox | azure
    group: str
    spec: str  # fingerprint() of the deployed spec
    status: str = ""  # the page's status line when it ended
    steps: dict[str, str] = field(default_factory=dict)  # row -> final state
    log_path: str = ""
    time: float = field(default_factory=time.time)

    @property
    def succeeded(self) -> bool:
        """Read like a RunResult's: the Deploy page lets Test follow a success."""
        return self.state == "succeeded"

    @property
    def when(self) -> str:
        return time.strftime("%d %b %H:%M", time.localtime(self.time))

    def is_for(self, spec: DeploymentSpec) -> bool:
        return self.spec == fingerprint(spec)


def read_last_run(path: Path) -> LastRun | None:
    """The record at `path`, or None when there is none or it cannot be used."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        record = LastRun(
            state=str(data["state"]), target=str(data["target"]), group=str(data["group"]),
            spec=str(data["spec"]), status=str(data.get("status", "")),
            steps={str(k): str(v) for k, v in dict(data.get("steps") or {}).items()},
            log_path=str(data.get("log_path", "")), time=float(data.get("time", 0.0)))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return record if record.state in STATES else None


def write_last_run(path: Path, record: LastRun) -> None:
    """Replace the record in one step, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(record), indent=1), encoding="utf-8")
    os.replace(tmp, path)
