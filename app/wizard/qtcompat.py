"""Work-around for a defect of the Qt binding, kept in one place.

PySide6 6.12.0 on Python 3.11 returns None from every void call (and the bool of
`SignalInstance.emit()`) without taking a reference, as if None, True and False
were immortal — which they are only from Python 3.12 on. Each call lowers their
reference count by one, and after a few thousand calls the interpreter aborts
with "none_dealloc: deallocating None". `keep_singletons_alive()` gives the
three singletons the huge reference count Python 3.12 gives them, once, when
the defect is detected; nothing else changes. Checked by
tests/unit/wizard/test_qtcompat.py.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

# What Python 3.12 gives immortal objects is of this order; no session comes near.
_BOOST = 1 << 40
_done = False


def _defect_present() -> bool:
    from PySide6.QtCore import QObject

    probe = QObject()
    # A void call returns None; Python then drops the reference it was handed.
    set_name: Any = probe.setObjectName
    before = sys.getrefcount(None)
    results = [set_name("probe") for _ in range(16)]
    lost = before + len(results) - sys.getrefcount(None)
    del results
    return lost > 0


def keep_singletons_alive() -> bool:
    """Make None, True and False effectively immortal when the binding needs it.

    Returns True when the defect was found and compensated. Safe to call often.
    """
    global _done
    if _done:
        return True
    if sys.version_info >= (3, 12) or not _defect_present():
        return False
    for singleton in (None, True, False):
        # ob_refcnt is the first field of every PyObject; id() is its address.
        ctypes.c_ssize_t.from_address(id(singleton)).value += _BOOST
    _done = True
    return True


def emit(signal: Any, *args: object) -> None:
    """`signal.emit(*args)`; kept as the one place emits go through."""
    keep_singletons_alive()
    signal.emit(*args)
