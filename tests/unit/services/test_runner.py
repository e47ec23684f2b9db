"""The runner with tiny real steps: order, parallelism, failure isolation, cancel, retries."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from app.errors import BadInput
from app.services.events import (
    Event,
    RunFinished,
    StepFailed,
    StepProgress,
    StepSkipped,
    StepStarted,
    StepSucceeded,
)
from app.services.runner import RunContext, Runner, Step, StepReport, critical_path


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


class Tiny(Step):
    """Waits on a barrier-free event or sleeps, then records when it ran."""

    def __init__(
        self,
        name: str,
        depends_on: tuple[str, ...] = (),
        duration: float = 0.0,
        fail: Exception | None = None,
        exists: bool = False,
    ) -> None:
        self.name = name
        self.title = f"thing {name}"
        self.depends_on = depends_on
        self.duration = duration
        self.fail = fail
        self.exists = exists
        self.created = 0
        self.window: tuple[float, float] | None = None

    def find_existing(self, ctx: Any) -> dict[str, str] | None:
        return {"id": self.name} if self.exists else None

    def create(self, ctx: RunContext, report: StepReport) -> dict[str, str]:
        start = time.monotonic()
        report.progress("Creating")
        report.sleep(self.duration)
        self.window = (start, time.monotonic())
        if self.fail is not None:
            raise self.fail
        self.created += 1
        seen = ",".join(sorted(ctx.outputs))
        return {"id": self.name, "saw": seen}


def run(steps: list[Step], **kwargs: Any) -> tuple[Recorder, Any, Runner]:
    recorder = Recorder()
    runner = Runner(steps, RunContext(), [recorder], **kwargs)
    return recorder, runner.run(), runner


def test_dependencies_run_before_dependents_and_see_their_outputs() -> None:
    a, b, c = Tiny("a"), Tiny("b", ("a",)), Tiny("c", ("a", "b"))
    recorder, result, _ = run([c, b, a])
    assert result.succeeded
    assert a.window and b.window and c.window
    assert a.window[1] <= b.window[0] and b.window[1] <= c.window[0]
    assert result.outcomes["c"].outputs["saw"] == "a,b"
    kinds = [type(e) for e in recorder.events]
    assert kinds[-1] is RunFinished
    assert [e.step for e in recorder.of(StepSucceeded)] == ["a", "b", "c"]


def test_independent_steps_overlap_so_wall_time_follows_the_critical_path() -> None:
    steps: list[Step] = [Tiny("slow", duration=1.0), Tiny("x", duration=0.2),
                         Tiny("y", ("x",), duration=0.2), Tiny("z", duration=0.2)]
    _, result, _ = run(steps)
    assert result.succeeded
    windows = {s.name: s.window for s in steps if isinstance(s, Tiny)}
    assert all(windows.values())
    slow, x, y, z = (windows[n] for n in ("slow", "x", "y", "z"))
    assert slow and x and y and z
    # "slow", "x" and "z" all started before any of them finished ...
    first_end = min(slow[1], x[1], z[1])
    assert max(slow[0], x[0], z[0]) < first_end
    # ... and "y" ran after "x" while "slow" was still running: the chain x→y hid
    # behind the slow step, so the run took the critical path, not the sum.
    assert x[1] <= y[0] and y[0] < slow[1]
    assert critical_path(steps, lambda s: s.duration) == pytest.approx(1.0)  # type: ignore[attr-defined]


def test_a_failure_skips_only_its_dependents() -> None:
    boom = BadInput("the thing is broken", "fix it")
    steps: list[Step] = [Tiny("a", fail=boom), Tiny("b", ("a",)), Tiny("c", ("b",)), Tiny("d")]
    recorder, result, _ = run(steps)
    assert not result.succeeded
    assert [o.name for o in result.failures()] == ["a"]
    assert result.outcomes["d"].status == "succeeded"
    skipped = {e.step: e.reason for e in recorder.of(StepSkipped)}
    assert set(skipped) == {"b", "c"}
    assert "thing a, which failed" in skipped["b"]
    assert "thing b, which was skipped" in skipped["c"]
    failed = recorder.of(StepFailed)[0]
    assert failed.code == "BadInput" and "the thing is broken" in failed.message
    assert failed.hint == "fix it"
    finished = recorder.of(RunFinished)[0]
    assert finished.failed == ("a",) and set(finished.skipped) == {"b", "c"}


def test_existing_resources_are_adopted_without_creating() -> None:
    a, b = Tiny("a", exists=True), Tiny("b", ("a",))
    recorder, result, _ = run([a, b])
    assert result.succeeded and a.created == 0 and b.created == 1
    adopted = [e for e in recorder.of(StepSucceeded) if e.adopted]
    assert [e.step for e in adopted] == ["a"]
    assert "Found existing thing a; using it" in adopted[0].message


def test_cancel_stops_waiting_and_names_what_is_still_being_created() -> None:
    slow, after = Tiny("slow", duration=30), Tiny("after", ("slow",))
    recorder = Recorder()
    runner = Runner([slow, after], RunContext(), [recorder])
    threading.Timer(0.3, runner.cancel).start()
    result = runner.run()
    finished = result.finished
    assert finished.cancelled and not finished.succeeded
    assert finished.still_creating == ("slow",)
    assert result.outcomes["after"].status == "skipped"
    assert slow.created == 0


def _http_error(status: int, code: str) -> HttpResponseError:
    error = HttpResponseError(message=f"{code} happened")
    error.status_code = status
    error.error = None
    return error


class Flaky(Tiny):
    def __init__(self, name: str, failures: int, status: int) -> None:
        super().__init__(name)
        self.failures = failures
        self.status = status
        self.calls = 0

    def create(self, ctx: RunContext, report: StepReport) -> dict[str, str]:
        self.calls += 1
        if self.calls <= self.failures:
            raise _http_error(self.status, "ServiceUnavailable")
        return {"calls": str(self.calls)}


def test_transient_errors_run_the_step_again() -> None:
    flaky = Flaky("flaky", failures=2, status=503)
    _, result, _ = run([flaky], retry_delay=0.01)
    assert result.succeeded and flaky.calls == 3
    assert result.outcomes["flaky"].attempts == 3


def test_non_transient_errors_are_not_retried() -> None:
    flaky = Flaky("flaky", failures=5, status=400)
    recorder, result, _ = run([flaky], retry_delay=0.01)
    assert not result.succeeded and flaky.calls == 1
    assert recorder.of(StepFailed)[0].code == "BadRequest"


def test_progress_events_carry_state_and_elapsed() -> None:
    recorder, _, _ = run([Tiny("a", duration=0.05)])
    progress = recorder.of(StepProgress)
    assert progress and progress[0].provisioning_state == "Creating"
    assert all(p.elapsed >= 0 for p in progress)
    assert isinstance(recorder.events[0], StepStarted)


def test_plan_errors_are_bad_input() -> None:
    with pytest.raises(BadInput, match="unknown step"):
        Runner([Tiny("a", ("nope",))], RunContext())
    with pytest.raises(BadInput, match="cycle"):
        Runner([Tiny("a", ("b",)), Tiny("b", ("a",))], RunContext())
    with pytest.raises(BadInput, match="duplicate"):
        Runner([Tiny("a"), Tiny("a")], RunContext())


def test_a_broken_listener_does_not_break_the_run() -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("display fell over")

    recorder = Recorder()
    result = Runner([Tiny("a")], RunContext(), [broken, recorder]).run()
    assert result.succeeded and recorder.of(RunFinished)


def test_notes_inside_a_step_become_its_log_events() -> None:
    from app.services.events import StepLog
    from app.services.runner import note

    class Noting(Tiny):
        def find_existing(self, ctx: Any) -> dict[str, str] | None:
            note("plan p1 runs on S1; the spec asks for B1 (left as is)")
            return {"id": self.name}

    recorder, result, _ = run([Noting("n")])
    logs = recorder.of(StepLog)
    assert result.succeeded
    assert [(e.step, e.level, e.message) for e in logs] == [
        ("n", "WARNING", "plan p1 runs on S1; the spec asks for B1 (left as is)")
    ]


def test_a_step_that_stops_on_its_own_leaves_its_dependents_skipped_not_hanging() -> None:
    from app.errors import Cancelled

    a, b = Tiny("a", fail=Cancelled("the user declined")), Tiny("b", ("a",))
    recorder, result, _ = run([a, b])
    assert not result.succeeded
    assert result.outcomes["b"].status == "skipped"
    assert "thing a, which did not finish" in recorder.of(StepSkipped)[0].reason
