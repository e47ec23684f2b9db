"""Work-arounds for defects of the Qt binding, kept in one place.

PySide6 6.12.0 on Python 3.11 hands back the bool of `SignalInstance.emit()`
without a reference of its own, so each emit from Python lowers the refcount
of True (or False) by one; after some thousands of emits the interpreter
aborts with "bool_dealloc: deallocating True or False". Every emit in the
wizard goes through `emit()`, which keeps the returned object, balancing the
count. Kept objects are the two bool singletons, a pointer each.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

_kept: list[object] = []
_lock = threading.Lock()
_defect: bool | None = None


def _probe() -> bool:
    """True when emitting from Python drops a reference (the 6.12.0 defect)."""
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        ping = Signal()

    probe = _Probe()
    before = (sys.getrefcount(True), sys.getrefcount(False))
    for _ in range(8):
        probe.ping.emit()
    lost_true = before[0] - sys.getrefcount(True)
    lost_false = before[1] - sys.getrefcount(False)
    # Put back what the probe itself took.
    _kept.extend([True] * max(0, lost_true) + [False] * max(0, lost_false))
    return lost_true > 0 or lost_false > 0


def emit(signal: Any, *args: object) -> None:
    """`signal.emit(*args)`, safe on the affected binding; callable from any thread."""
    global _defect
    if _defect is None:
        with _lock:
            if _defect is None:
                _defect = _probe()
    result = signal.emit(*args)
    if _defect:
        with _lock:
            _kept.append(result)
