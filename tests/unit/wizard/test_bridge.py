"""The bridge turns engine events, sent from engine threads, into signals that
arrive on the UI thread in the order they were sent."""

from __future__ import annotations

import logging
import threading

import pytest
from PySide6.QtCore import QThread

from app.services.events import RunFinished, StepLog, StepProgress, StepStarted, StepSucceeded
from app.wizard.bridge import EngineBridge

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("does not support propagateSizeHints"),
]

def test_events_from_a_thread_arrive_on_the_ui_thread_in_order(qtbot) -> None:  # type: ignore[no-untyped-def]
    bridge = EngineBridge()
    seen: list[tuple[str, object, bool]] = []
    ui_thread = QThread.currentThread()

    def recorder(kind: str):  # type: ignore[no-untyped-def]
        return lambda event: seen.append((kind, event, QThread.currentThread() is ui_thread))

    bridge.step_started.connect(recorder("started"))
    bridge.step_progress.connect(recorder("progress"))
    bridge.step_log.connect(recorder("log"))
    bridge.step_succeeded.connect(recorder("succeeded"))
    bridge.run_finished.connect(recorder("finished"))
    events = [
        StepStarted("cache", "cache c1"),
        StepProgress("cache", "Creating", 0.1),
        StepLog("cache", "INFO", "still creating"),
        StepSucceeded("cache", "Created cache c1", 0.2),
        RunFinished(True, False, 0.3, done=("cache",)),
    ]

    def engine() -> None:
        for event in events:
            bridge(event)

    with qtbot.waitSignal(bridge.run_finished, timeout=5000):
        worker = threading.Thread(target=engine)
        worker.start()
        worker.join()
    assert [kind for kind, _e, _t in seen] == ["started", "progress", "log", "succeeded",
                                               "finished"]
    assert [e for _k, e, _t in seen] == events
    assert all(on_ui for _k, _e, on_ui in seen)


def test_log_records_are_forwarded_redacted_and_detached(qtbot) -> None:  # type: ignore[no-untyped-def]
    from app.services.logs import get_logger
    from app.services.redaction import register_secret

    bridge = EngineBridge()
    bridge.attach_logging()
    lines: list[tuple[str, str, str]] = []
    bridge.log_record.connect(lambda level, name, message, _t: lines.append((level, name, message)))
    secret = "s3cr3t-key-value-0123456789"
    register_secret(secret)
    try:
        with qtbot.waitSignal(bridge.log_record, timeout=2000):
            get_logger("arm").warning("answered with key %s", secret)
    finally:
        bridge.detach_logging()
    assert lines and lines[-1][0] == "WARNING" and lines[-1][1] == "mlcache.arm"
    assert secret not in lines[-1][2]
    count = len(lines)
    logging.getLogger("mlcache.arm").warning("after detaching")
    assert len(lines) == count
