"""Run blocking calls off the UI thread and hand the answer back as a signal.

Every network call the wizard makes (availability checks, lists, deploy, test,
cleanup) goes through `run_task`, so the window never freezes. Results arrive
on the UI thread through a queued signal; a caller that may be superseded
(a debounced check) compares the task's `token` with its latest one.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

log = logging.getLogger("mlcache.wizard")

_POOL: QThreadPool | None = None
# Tasks whose signals object must outlive the call (Qt owns the runnable).
_live: set[Task] = set()
_live_lock = threading.Lock()


def pool() -> QThreadPool:
    """The wizard's own pool, so quick checks never queue behind Qt's global work."""
    global _POOL
    if _POOL is None:
        _POOL = QThreadPool()
        _POOL.setMaxThreadCount(6)
    return _POOL


class _TaskSignals(QObject):
    done = Signal(object, object)  # token, result
    failed = Signal(object, object)  # token, exception


class Task(QRunnable):
    """One blocking call; emits `signals.done(token, result)` or `signals.failed`."""

    def __init__(self, fn: Callable[[], Any], token: object = None) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self.fn = fn
        self.token = token
        self.signals = _TaskSignals()

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:  # every failure goes back to the UI, never lost
            log.debug("background task failed: %s", exc)
            self._emit(self.signals.failed, exc)
        else:
            self._emit(self.signals.done, result)
        finally:
            with _live_lock:
                _live.discard(self)

    def _emit(self, signal: Any, value: object) -> None:
        # RuntimeError: the receiver (and the signals object) went away with its window.
        with contextlib.suppress(RuntimeError):
            signal.emit(self.token, value)


def run_task(
    fn: Callable[[], Any],
    on_done: Callable[[Any], None] | None = None,
    on_failed: Callable[[BaseException], None] | None = None,
    token: object = None,
    on_done_token: Callable[[object, Any], None] | None = None,
    on_failed_token: Callable[[object, BaseException], None] | None = None,
) -> Task:
    """Start `fn` in the pool; the callbacks run on the UI thread."""
    task = Task(fn, token)
    if on_done is not None:
        task.signals.done.connect(lambda _t, r: on_done(r))
    if on_failed is not None:
        task.signals.failed.connect(lambda _t, e: on_failed(e))
    if on_done_token is not None:
        task.signals.done.connect(on_done_token)
    if on_failed_token is not None:
        task.signals.failed.connect(on_failed_token)
    with _live_lock:
        _live.add(task)
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
