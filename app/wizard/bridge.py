"""The one place where engine events become Qt signals.

The engine (app.services) emits plain event dataclasses from its worker
threads and knows nothing of Qt. An `EngineBridge` is handed to the runner as a
listener; calling it re-emits the event as a typed signal, and Qt queues the
signal to the UI thread, so pages never touch widgets from another thread.
It also carries the `mlcache.*` log records for the log pane.
"""

from __future__ import annotations

import contextlib
import logging
from typing import ClassVar

from PySide6.QtCore import QObject, Signal

from app.services.events import (
    Event,
    RunFinished,
    StepFailed,
    StepLog,
    StepProgress,
    StepSkipped,
    StepStarted,
    StepSucceeded,
)


class EngineBridge(QObject):
    """Listener for engine events and log records; re-emits them as signals."""

    step_started = Signal(StepStarted)
    step_progress = Signal(StepProgress)
    step_log = Signal(StepLog)
    step_succeeded = Signal(StepSucceeded)
    step_failed = Signal(StepFailed)
    step_skipped = Signal(StepSkipped)
    run_finished = Signal(RunFinished)
    # level name, logger name, message, created (epoch seconds)
    log_record = Signal(str, str, str, float)

    _BY_NAME: ClassVar[dict[str, str]] = {
        "StepStarted": "step_started",
        "StepProgress": "step_progress",
        "StepLog": "step_log",
        "StepSucceeded": "step_succeeded",
        "StepFailed": "step_failed",
        "StepSkipped": "step_skipped",
        "RunFinished": "run_finished",
    }

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._handler: _BridgeLogHandler | None = None

    def __call__(self, event: Event) -> None:
        """The runner's listener: runs on an engine thread, so it only emits."""
        name = self._BY_NAME.get(type(event).__name__)
        if name is None:
            return
        # RuntimeError: the window closed while the engine was still reporting.
        with contextlib.suppress(RuntimeError):
            getattr(self, name).emit(event)

    def attach_logging(self, logger_name: str = "mlcache") -> None:
        """Forward `mlcache.*` records (already redacted at the source) as signals."""
        if self._handler is not None:
            return
        self._handler = _BridgeLogHandler(self)
        try:
            from app.services.logs import RedactFilter
        except ImportError:  # pragma: no cover - the engine ships with the wizard
            pass
        else:
            # Redaction already happens at the source; this guards stray loggers.
            self._handler.addFilter(RedactFilter())
        logger = logging.getLogger(logger_name)
        logger.addHandler(self._handler)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)

    def detach_logging(self, logger_name: str = "mlcache") -> None:
        if self._handler is not None:
            logging.getLogger(logger_name).removeHandler(self._handler)
            self._handler = None


class _BridgeLogHandler(logging.Handler):
    # Records that mirror an engine event are shown from the event itself.
    _EVENT_MARK = "mlcache_event"

    def __init__(self, bridge: EngineBridge) -> None:
        super().__init__(level=logging.INFO)
        self._bridge = bridge

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, self._EVENT_MARK, False):
            return
        # The wizard's own records, and the embedded sandbox's request log (it plays
        # the cloud; Azure's servers do not write into the user's log either).
        if record.name.startswith(("mlcache.wizard", "mlcache.sandbox")):
            return
        with contextlib.suppress(RuntimeError):
            self._bridge.log_record.emit(
                record.levelname, record.name, record.getMessage(), record.created
            )
