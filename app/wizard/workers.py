"""Run blocking calls off the UI thread and hand the answer back as a signal.

Every network call the wizard makes (availability checks, lists, deploy, test,
cleanup) goes through `run_task`, so the window never freezes. Results arrive
on the UI thread through one long-lived dispatcher object and a queued signal.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, QTimer, Signal, Slot

log = logging.getLogger("mlcache.wizard")

_POOL: QThreadPool | None = None
_DISPATCHER: _Dispatcher | None = None


def pool() -> QThreadPool:
    """The wizard's own pool, so quick checks never queue behind Qt's global work."""
    global _POOL
    if _POOL is None:
        _POOL = QThreadPool()
        _POOL.setMaxThreadCount(6)
    return _POOL


class _Dispatcher(QObject):
    """Lives on the UI thread for the whole run; a worker emits `deliver` and Qt
    queues the call to the UI thread. (A per-task QObject could be collected
    before its queued signal arrives, silently dropping the answer.)"""

    deliver = Signal(object, object)

    def __init__(self) -> None:
        super().__init__()
        self.deliver.connect(self._on_deliver, Qt.ConnectionType.QueuedConnection)

    @Slot(object, object)
    def _on_deliver(self, callback: Callable[[Any], None], value: object) -> None:
        try:
            callback(value)
        except RuntimeError as exc:
            # The widget the answer was meant for has been deleted.
            log.debug("dropped a late answer: %s", exc)


def dispatcher() -> _Dispatcher:
    """Create (on the UI thread, at the first request) the object answers go through."""
    global _DISPATCHER
    if _DISPATCHER is None:
        _DISPATCHER = _Dispatcher()
    return _DISPATCHER


def call_on_ui(callback: Callable[[Any], None], value: object = None) -> None:
    """From any thread: run `callback(value)` on the UI thread, soon."""
    with contextlib.suppress(RuntimeError):
        dispatcher().deliver.emit(callback, value)


class Task(QRunnable):
    """One blocking call; its callbacks run on the UI thread."""

    def __init__(
        self,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None] | None,
        on_failed: Callable[[BaseException], None] | None,
    ) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self.fn = fn
        self.on_done = on_done
        self.on_failed = on_failed

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:  # every failure goes back to the UI, never lost
            log.debug("background task failed: %s", exc)
            if self.on_failed is not None:
                call_on_ui(self.on_failed, exc)
            else:
                log.warning("background task failed: %s", exc)
        else:
            if self.on_done is not None:
                call_on_ui(self.on_done, result)


def run_task(
    fn: Callable[[], Any],
    on_done: Callable[[Any], None] | None = None,
    on_failed: Callable[[BaseException], None] | None = None,
) -> Task:
    """Start `fn` in the pool; the callbacks run on the UI thread."""
    dispatcher()
    task = Task(fn, on_done, on_failed)
    pool().start(task)
    return task


def wait_for_tasks(msecs: int = 3000) -> bool:
    """At exit: let running calls finish (they hold no UI references)."""
    if _POOL is None:
        return True
    return bool(_POOL.waitForDone(msecs))


class Debouncer(QObject):
    """Calls `callback` once the input has been quiet for `delay_ms`."""

    def __init__(self, callback: Callable[[], None], delay_ms: int = 400,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(callback)

    def poke(self) -> None:
        self._timer.start()

    def cancel(self) -> None:
        self._timer.stop()

    @property
    def pending(self) -> bool:
        return self._timer.isActive()
