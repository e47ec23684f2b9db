"""How the CLI shows a run: a live table on a terminal, plain lines, or JSON lines.

All three are event listeners; the runner has already redacted what they get.
`--json` and the plain lines (what a pipe or a log reads) keep their exact form;
the live table is `rich`'s, imported only when a terminal shows it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

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

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

_SYMBOL = {
    "pending": "·",
    "running": "…",
    "succeeded": "✓",
    "adopted": "✓",
    "failed": "✗",
    "skipped": "-",
}
_STYLE = {
    "running": "cyan",
    "succeeded": "green",
    "adopted": "green",
    "failed": "bold red",
    "skipped": "dim",
    "pending": "dim",
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


class LiveTable:
    """On a terminal: rich's live table, a row per step (state, elapsed time, detail),
    warnings and failures scrolling above it, and at the end a table of what exists.

    rich handles the width, colour and Windows consoles; the table is redrawn from
    the state below four times a second, so a running step's clock moves between
    events. `portal` turns a resource id into its portal link (None: show the id).
    """

    def __init__(self, steps: list[Step], stream: TextIO | None = None,
                 portal: Callable[[str], str] | None = None,
                 console: Console | None = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = console or Console(file=stream or sys.stdout)
        self.portal = portal
        self.order = [s.name for s in steps]
        self.titles = {s.name: s.title or s.name for s in steps}
        self.state = {s.name: "pending" for s in steps}
        self.detail = {s.name: "" for s in steps}
        self.ids: dict[str, str] = {}
        self.started: dict[str, float] = {}
        self.elapsed: dict[str, float] = {}
        self._lock = threading.Lock()
        self._live = Live(console=self.console, get_renderable=self._locked_table,
                          refresh_per_second=4, transient=False)
        self._live.start()

    def _seconds(self, name: str) -> float | None:
        if name in self.elapsed:
            return self.elapsed[name]
        if name in self.started:
            return time.monotonic() - self.started[name]
        return None

    def _locked_table(self) -> Table:
        with self._lock:
            return self.table()

    def table(self) -> Table:
        """The rows as they stand (the caller holds the lock or owns the view)."""
        from rich.table import Table
        from rich.text import Text

        # Widths fixed from the console's: rich would otherwise narrow every column of
        # a table wider than the terminal, the symbol and the clock down to nothing.
        width = self.console.width
        title = min(60, max(16, width // 2))
        detail = max(8, width - title - 1 - 8 - 6)  # symbol, clock, cell padding
        table = Table(box=None, show_header=False, pad_edge=False, expand=False)
        table.add_column(width=1, no_wrap=True)
        table.add_column(overflow="ellipsis", no_wrap=True, max_width=title)
        table.add_column(justify="right", no_wrap=True, width=8)
        table.add_column(overflow="ellipsis", no_wrap=True, max_width=detail)
        for name in self.order:
            state = self.state[name]
            seconds = self._seconds(name)
            table.add_row(
                Text(_SYMBOL.get(state, "…"), style=_STYLE.get(state, "")),
                self.titles[name],
                f"{seconds:.1f} s" if seconds is not None else "",
                Text(self.detail[name] or state, style=_STYLE.get(state, "")),
            )
        return table

    def exists_table(self) -> Table:
        """What the run left in place: each finished resource with its link or id."""
        from rich.table import Table
        from rich.text import Text

        table = Table(title="What exists", title_justify="left", show_edge=False)
        table.add_column("Resource", overflow="fold")
        table.add_column("State", no_wrap=True)
        table.add_column("Portal" if self.portal else "Resource id", overflow="fold")
        for name in self.order:
            if self.state[name] not in ("succeeded", "adopted"):
                continue
            resource_id = self.ids.get(name, "")
            if self.portal and resource_id:
                url = self.portal(resource_id)
                # A terminal hyperlink: clickable even where the cell folds the text.
                where = Text(url, style=f"link {url}")
            else:
                where = Text(resource_id)
            table.add_row(self.titles[name], self.detail[name], where)
        return table

    def __call__(self, event: Event) -> None:
        # State changes under the view's lock; printing outside it, since rich's own
        # lock is held while it asks for the table (which takes the view's lock).
        with self._lock:
            said = self._apply(event)
        for text, style in said:
            self._say(text, style)
        if isinstance(event, RunFinished):
            self._live.stop()
            with self._lock:
                finished = any(self.state[n] in ("succeeded", "adopted") for n in self.order)
                exists = self.exists_table() if finished else None
            if exists is not None:
                self.console.print()
                self.console.print(exists)
            self.console.print(summary(event), markup=False, highlight=False)

    def _say(self, text: str, style: str) -> None:
        from rich.text import Text

        # Printed through the live display: it scrolls above the table.
        self._live.console.print(Text(text, style=style))

    def _apply(self, event: Event) -> list[tuple[str, str]]:
        """Update the rows for `event`; what to print above the table."""
        said: list[tuple[str, str]] = []
        if isinstance(event, StepStarted):
            self.state[event.step] = "running"
            self.started[event.step] = time.monotonic()
        elif isinstance(event, StepProgress):
            self.detail[event.step] = event.provisioning_state
        elif isinstance(event, StepLog):
            if event.level in ("WARNING", "ERROR"):
                said.append((f"   {event.step}: {event.message}",
                             "yellow" if event.level == "WARNING" else "red"))
        elif isinstance(event, StepSucceeded):
            self.state[event.step] = "adopted" if event.adopted else "succeeded"
            self.detail[event.step] = "existing, adopted" if event.adopted else "done"
            self.elapsed[event.step] = event.elapsed
            if event.outputs.get("id"):
                self.ids[event.step] = event.outputs["id"]
        elif isinstance(event, StepFailed):
            self.state[event.step] = "failed"
            self.detail[event.step] = f"failed ({event.code})"
            self.elapsed[event.step] = event.elapsed
            said.append((f"   {event.message}\n     {event.hint}", "red"))
        elif isinstance(event, StepSkipped):
            self.state[event.step] = "skipped"
            self.detail[event.step] = f"skipped: {event.reason}"
        elif isinstance(event, RunFinished):
            for name in event.still_creating:
                self.detail[name] = "still being created"
        return said

    def close(self) -> None:
        self._live.stop()
