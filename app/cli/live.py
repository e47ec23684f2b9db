"""How the CLI shows a run: a live line per resource, plain lines, or JSON lines.

All three are event listeners; the runner has already redacted what they get.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from typing import TextIO

from app.services.events import (
    Event,
    RunFinished,
    StepFailed,
    StepLog,
    StepProgress,
    StepSkipped,
    StepStarted,
    StepSucceeded,
    event_to_dict,
)
from app.services.runner import Step

_SYMBOL = {
    "pending": "·",
    "running": "…",
    "succeeded": "✓",
    "adopted": "✓",
    "failed": "✗",
    "skipped": "-",
}


class JsonLines:
    """One JSON object per event on `stream` (stdout for `--json`)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        line = json.dumps(event_to_dict(event))
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


class PlainLines:
    """One readable line per meaningful event, for logs and pipes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()
        self._last_state: dict[str, str] = {}

    def _print(self, text: str) -> None:
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepStarted):
            self._print(f"{event.step:<15} started    {event.title}")
        elif isinstance(event, StepProgress):
            if self._last_state.get(event.step) != event.provisioning_state:
                self._last_state[event.step] = event.provisioning_state
                self._print(f"{event.step:<15} {event.provisioning_state:<10} "
                            f"{event.elapsed:6.1f} s")
        elif isinstance(event, StepLog):
            self._print(f"{event.step or '':<15} {event.level.lower():<10} {event.message}")
        elif isinstance(event, StepSucceeded):
            self._print(f"{event.step:<15} {'adopted' if event.adopted else 'done':<10} "
                        f"{event.elapsed:6.1f} s  {event.message}")
        elif isinstance(event, StepFailed):
            self._print(f"{event.step:<15} FAILED     {event.elapsed:6.1f} s  {event.message} "
                        f"({event.code})\n{'':<16}{event.hint}")
        elif isinstance(event, StepSkipped):
            self._print(f"{event.step:<15} skipped    {event.reason}")
        elif isinstance(event, RunFinished):
            self._print(summary(event))


def summary(event: RunFinished) -> str:
    if event.succeeded:
        text = f"Deployment succeeded in {event.elapsed:.1f} s."
    elif event.cancelled:
        text = f"Deployment cancelled after {event.elapsed:.1f} s."
        if event.still_creating:
            text += (
                " Still being created in Azure (a re-run adopts them): "
                + ", ".join(event.still_creating)
                + "."
            )
    else:
        text = (
            f"Deployment failed after {event.elapsed:.1f} s: "
            f"{', '.join(event.failed) or 'nothing'} failed"
        )
        if event.skipped:
            text += f", {', '.join(event.skipped)} skipped"
        text += ". Fix the cause and run deploy again; finished resources are kept."
    if event.log_path:
        text += f"\nLog: {event.log_path}"
    return text


class LiveLines:
    """On a terminal: one line per step (state + elapsed), redrawn in place."""

    def __init__(self, steps: list[Step], stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.order = [s.name for s in steps]
        self.titles = {s.name: s.title or s.name for s in steps}
        self.state = {s.name: "pending" for s in steps}
        self.detail = {s.name: "" for s in steps}
        self.started: dict[str, float] = {}
        self.elapsed: dict[str, float] = {}
        self.messages: list[str] = []
        self._lock = threading.Lock()
        self._drawn = 0
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True, name="mlcache-live")
        self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                self._draw()

    def _line(self, name: str) -> str:
        state = self.state[name]
        if name in self.elapsed:
            seconds = self.elapsed[name]
        elif name in self.started:
            seconds = time.monotonic() - self.started[name]
        else:
            seconds = None
        clock = f"{seconds:6.1f} s" if seconds is not None else " " * 8
        detail = self.detail[name] or state
        line = f" {_SYMBOL.get(state, '…')} {self.titles[name][:60]:<60} {clock}  {detail}"
        # A wrapped line would break the cursor-up redraw: never wider than the terminal.
        width = shutil.get_terminal_size((160, 24)).columns - 1
        return line[: max(20, width)]

    def _draw(self) -> None:
        out = []
        if self._drawn:
            out.append(f"\x1b[{self._drawn}F")
        for message in self.messages:
            # Messages scroll above the block, so they may wrap freely.
            out.append("\x1b[2K" + message + "\n")
        self.messages.clear()
        for name in self.order:
            out.append("\x1b[2K" + self._line(name) + "\n")
        self._drawn = len(self.order)
        self.stream.write("".join(out))
        self.stream.flush()

    def __call__(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, StepStarted):
                self.state[event.step] = "running"
                self.started[event.step] = time.monotonic()
            elif isinstance(event, StepProgress):
                self.detail[event.step] = event.provisioning_state
            elif isinstance(event, StepLog):
                if event.level in ("WARNING", "ERROR"):
                    self.messages.append(f"   {event.step}: {event.message}")
            elif isinstance(event, StepSucceeded):
                self.state[event.step] = "adopted" if event.adopted else "succeeded"
                self.detail[event.step] = "existing, adopted" if event.adopted else "done"
                self.elapsed[event.step] = event.elapsed
            elif isinstance(event, StepFailed):
                self.state[event.step] = "failed"
                self.detail[event.step] = f"failed ({event.code})"
                self.elapsed[event.step] = event.elapsed
                self.messages.append(f"   {event.message}\n     {event.hint}")
            elif isinstance(event, StepSkipped):
                self.state[event.step] = "skipped"
                self.detail[event.step] = f"skipped: {event.reason}"
            elif isinstance(event, RunFinished):
                self._stop.set()
                for name in event.still_creating:
                    self.detail[name] = "still being created"
                self._draw()
                self.stream.write(summary(event) + "\n")
                self.stream.flush()
                return
            self._draw()

    def close(self) -> None:
        self._stop.set()
