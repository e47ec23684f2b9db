"""Emitting through app.wizard.qtcompat.emit keeps the bool singletons' refcounts
balanced, so a long session cannot abort the interpreter (PySide6 6.12.0 defect)."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal

from app.wizard.qtcompat import emit


class _Source(QObject):
    ping = Signal(object)


def test_many_emits_leave_true_and_false_balanced(qtbot) -> None:  # type: ignore[no-untyped-def]
    source = _Source()
    received: list[object] = []
    source.ping.connect(received.append)
    emit(source.ping, 0)  # first call probes the binding
    before = (sys.getrefcount(True), sys.getrefcount(False))
    for i in range(20_000):
        emit(source.ping, i)
    after = (sys.getrefcount(True), sys.getrefcount(False))
    assert len(received) == 20_001
    # Compensated: every emit's returned bool is kept, so the net change per emit
    # is +1 (kept) - 1 (binding) or +1 (kept) on a binding without the defect.
    assert after[0] - before[0] in (0, 20_000)
    assert after[1] - before[1] in (0, 20_000)
