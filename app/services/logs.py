"""Logging by area (`mlcache.arm`, `mlcache.deploy`, ...) with redaction at the source.

Every logger handed out by `get_logger` carries the redacting filter, so a
record is clean before any handler (console, GUI pane buffer, deployment file)
sees it. `DeploymentLog` is the per-deployment JSON-lines file: the run's events
plus the `mlcache.*` log records, both already redacted.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any

from app import paths
from app.services.events import Event, event_to_dict
from app.services.redaction import redact, redact_value

ROOT = "mlcache"
# Set on records that mirror a runner event, so the JSON-lines file keeps one copy.
EVENT_MARK = "mlcache_event"


class RedactFilter(logging.Filter):
    """Replaces the record's message (and traceback text) by its redacted form."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_mlcache_redacted", False):
            return True
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info:
            text = "".join(traceback.format_exception(*record.exc_info))
            record.exc_text = redact(text)
            record.exc_info = None
        record._mlcache_redacted = True
        return True


_FILTER = RedactFilter()


def _from_sandbox(record: logging.LogRecord) -> bool:
    """A sandbox started in this process logs as `mlcache.sandbox.*`: that is the
    cloud's own diary, not the deployment's."""
    return record.name.startswith(f"{ROOT}.sandbox")
_lock = threading.Lock()


def get_logger(area: str) -> logging.Logger:
    """The logger for one area of the engine, e.g. `get_logger("arm")` → `mlcache.arm`."""
    name = area if area.startswith(ROOT) else f"{ROOT}.{area}"
    logger = logging.getLogger(name)
    with _lock:
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    return logger


class OneLineFormatter(logging.Formatter):
    """`level: message`, first line only: no traceback ever reaches a person's terminal."""

    def format(self, record: logging.LogRecord) -> str:
        lines = record.getMessage().strip().splitlines() or [""]
        return f"{record.levelname.lower()}: {redact(lines[0])}"


_console_lock = threading.Lock()
_console_handlers: list[logging.Handler] = []


def configure_cli_logging(stream: Any) -> None:
    """Warnings of ours to stderr as one line; the Azure SDK's own logging kept quiet.

    The SDK logs recoverable oddities (e.g. a failsafe deserialization of an empty
    error body) with tracebacks; those belong in a debug log, not on a terminal.
    """
    with _console_lock:
        if _console_handlers:
            return
        handler = logging.StreamHandler(stream)
        handler.setLevel(logging.WARNING)
        handler.addFilter(_FILTER)
        # Events are shown by the command's own display; only plain records go here.
        handler.addFilter(
            lambda record: not getattr(record, EVENT_MARK, False) and not _from_sandbox(record)
        )
        handler.setFormatter(OneLineFormatter())
        logging.getLogger(ROOT).addHandler(handler)
        quiet = logging.NullHandler()
        azure = logging.getLogger("azure")
        azure.addHandler(quiet)
        azure.propagate = False
        _console_handlers.extend([handler, quiet])


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "deployment"


class DeploymentLog(logging.Handler):
    """A redacted JSON-lines record of one deployment: events and `mlcache.*` logs.

    Use as a context manager; while open it is attached to the `mlcache` logger
    and, passed to the runner as a listener, records every event.
    """

    def __init__(self, name: str, directory: Path | None = None) -> None:
        super().__init__(level=logging.DEBUG)
        self.addFilter(_FILTER)
        folder = directory or paths.deployment_logs_dir()
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        self.path = folder / f"{_slug(name)}-{stamp}-{int(time.time() * 1000) % 1000:03d}.jsonl"
        self._file = self.path.open("a", encoding="utf-8")
        self._write_lock = threading.Lock()
        self._root = logging.getLogger(ROOT)
        self._saved_level = self._root.level

    def __enter__(self) -> DeploymentLog:
        self._root.addHandler(self)
        if self._root.level == logging.NOTSET or self._root.level > logging.INFO:
            self._root.setLevel(logging.INFO)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._root.removeHandler(self)
        self._root.setLevel(self._saved_level)
        with self._write_lock:
            self._file.close()

    def _write(self, data: dict[str, Any]) -> None:
        line = json.dumps(redact_value(data), default=str)
        with self._write_lock:
            if not self._file.closed:
                self._file.write(line + "\n")
                self._file.flush()

    def __call__(self, event: Event) -> None:
        self._write(event_to_dict(event))

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, EVENT_MARK, False) or _from_sandbox(record):
            return
        data: dict[str, Any] = {
            "event": "log",
            "time": record.created,
            "logger": record.name,
            "level": record.levelname,
            "message": record.getMessage(),
        }
        if record.exc_text:
            data["traceback"] = record.exc_text
        self._write(data)
