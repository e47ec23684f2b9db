"""Runs a plan's steps: dependencies first, independent ones in parallel.

The runner owns ordering, parallelism, transient retries, cancellation and
events; steps stay small and stateless (see `Step`). A failed step ends with
the ARM error and a hint, its dependents are skipped with a reason, and every
independent step still finishes. Running the same plan again resumes, because
each step adopts what already exists before it creates anything.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from app.errors import BadInput, Cancelled, MlcacheError
from app.services.events import (
    Event,
    Listener,
    RunFinished,
    StepFailed,
    StepLog,
    StepProgress,
    StepSkipped,
    StepStarted,
    StepSucceeded,
    event_to_dict,
)
from app.services.explain import Explained, describe
from app.services.logs import EVENT_MARK, get_logger
from app.services.redaction import redact, redact_event

log = get_logger("deploy")

# Progress events are sent on a state change, and otherwise at most this often.
_PROGRESS_EVERY_S = 2.0
# Status codes and exception names worth running a step again for, once the
# SDK's own retry policy (which already honours Retry-After) has given up.
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_TRANSIENT_CODES = frozenset(
    {"ConnectionFailed", "TooManyRequests", "InternalServerError", "ServiceUnavailable",
     "GatewayTimeout", "RetryableError"}
)


_current = threading.local()


def current_report() -> StepReport | None:
    """The report of the step running on this thread (None outside a step)."""
    return getattr(_current, "report", None)


def note(message: str, level: str = "warning") -> None:
    """Tell the person watching: a StepLog event inside a step, else a log record."""
    report = current_report()
    if report is not None:
        report.log(message, level)
    else:
        log.log(logging.getLevelName(level.upper()), "%s", message)


class RunContext:
    """What steps share during one run: outputs of finished steps and secrets.

    `outputs` hold plain, shareable values (names, host names, ports); values in
    `secrets` are registered for redaction and never appear in an event.
    """

    def __init__(self) -> None:
        self.outputs: dict[str, dict[str, str]] = {}
        self.secrets: dict[str, str] = {}
        self.cancel_event = threading.Event()

    def output(self, step: str, key: str) -> str:
        try:
            return self.outputs[step][key]
        except KeyError:
            raise RuntimeError(f"step output {step}.{key} is not available") from None


C = TypeVar("C", bound=RunContext)


class Step(Generic[C]):
    """One resource: how to find it, how to create it, and what to say about it.

    Subclasses set `name`, `title`, `depends_on` and the sentences, and implement
    `find_existing` (return outputs to adopt, None to create, raise BadInput when
    an existing resource is incompatible) and `create` (return outputs).
    """

    name: str = ""
    title: str = ""
    depends_on: tuple[str, ...] = ()
    progress_text: str = "Creating {title}"
    success_text: str = "Created {title}"
    adopted_text: str = "Found existing {title}; using it"
    failure_text: str = "Could not create {title}"
    # Steps whose create is a pure create-or-update may be run again after a
    # transient failure; a step that must not repeat sets this to 1.
    attempts: int = 3
    # The nominal duration on the sandbox's realistic profile (for the benchmark).
    nominal_s: float = 0.0

    def find_existing(self, ctx: C) -> dict[str, str] | None:
        return None

    def create(self, ctx: C, report: StepReport) -> dict[str, str]:
        raise NotImplementedError

    def describe_text(self, template: str) -> str:
        return template.format(title=self.title or self.name)


class StepReport:
    """Handed to `Step.create`: report progress and log lines, wait cancellably."""

    def __init__(self, runner: Runner, step: Step, started: float) -> None:
        self._runner = runner
        self.step = step
        self.started = started
        self._last_state = ""
        self._last_sent = 0.0

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def cancelled(self) -> bool:
        return self._runner.cancel_event.is_set()

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise Cancelled(f"{self.step.title or self.step.name}: stopped waiting (cancelled)")

    def progress(self, provisioning_state: str, message: str = "", force: bool = False) -> None:
        now = time.monotonic()
        if (
            force
            or provisioning_state != self._last_state
            or now - self._last_sent >= _PROGRESS_EVERY_S
        ):
            self._last_state = provisioning_state
            self._last_sent = now
            self._runner.emit(
                StepProgress(self.step.name, provisioning_state, round(self.elapsed, 3), message)
            )

    def log(self, message: str, level: str = "info") -> None:
        self._runner.emit(StepLog(self.step.name, level.upper(), message))

    def sleep(self, seconds: float) -> None:
        """Wait, but wake up (and raise Cancelled) as soon as the run is cancelled."""
        if self._runner.cancel_event.wait(max(0.0, seconds)):
            self.check_cancelled()


@dataclass
class StepOutcome:
    name: str
    status: str = "pending"  # pending|running|succeeded|adopted|failed|skipped|cancelled
    outputs: dict[str, str] = field(default_factory=dict)
    error: Explained | None = None
    reason: str = ""
    started: float | None = None
    finished: float | None = None
    attempts: int = 0

    @property
    def duration(self) -> float:
        if self.started is None or self.finished is None:
            return 0.0
        return self.finished - self.started

    @property
    def ok(self) -> bool:
        return self.status in ("succeeded", "adopted")


@dataclass
class RunResult:
    outcomes: dict[str, StepOutcome]
    finished: RunFinished

    @property
    def succeeded(self) -> bool:
        return self.finished.succeeded

    def failures(self) -> list[StepOutcome]:
        return [o for o in self.outcomes.values() if o.status == "failed"]


def check_plan(steps: Sequence[Step]) -> None:
    """Unique names, known dependencies, no cycles; raises BadInput otherwise."""
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise BadInput(f"plan has duplicate step names: {sorted(names)}")
    known = set(names)
    for step in steps:
        missing = [d for d in step.depends_on if d not in known]
        if missing:
            raise BadInput(f"step {step.name} depends on unknown step(s) {missing}")
    order = topological_order(steps)
    if len(order) != len(steps):
        raise BadInput("plan has a dependency cycle")


def topological_order(steps: Sequence[Step]) -> list[str]:
    remaining = {s.name: set(s.depends_on) for s in steps}
    order: list[str] = []
    while remaining:
        ready = sorted(n for n, deps in remaining.items() if deps <= set(order))
        if not ready:
            break
        order.extend(ready)
        for n in ready:
            del remaining[n]
    return order


def critical_path(steps: Sequence[Step], duration: Callable[[Step], float]) -> float:
    """The longest chain of `duration` along the dependencies."""
    by_name = {s.name: s for s in steps}
    finish: dict[str, float] = {}
    for name in topological_order(steps):
        step = by_name[name]
        start = max((finish[d] for d in step.depends_on), default=0.0)
        finish[name] = start + duration(step)
    return max(finish.values(), default=0.0)


class Runner:
    """Run `steps` against `ctx`, sending every event (redacted) to the listeners."""

    def __init__(
        self,
        steps: Sequence[Step],
        ctx: RunContext,
        listeners: Iterable[Listener] = (),
        retry_delay: float = 1.0,
    ) -> None:
        check_plan(steps)
        self.steps = list(steps)
        self.ctx = ctx
        self.listeners: list[Listener] = list(listeners)
        self.retry_delay = retry_delay
        self.cancel_event = ctx.cancel_event
        self.outcomes = {s.name: StepOutcome(s.name) for s in steps}
        self._emit_lock = threading.Lock()
        self._closed = False
        self._done: queue.Queue[str] = queue.Queue()
        self.log_path = ""

    # -- events -------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def emit(self, event: Event) -> None:
        clean = redact_event(event)
        with self._emit_lock:
            if self._closed:
                return
            log.log(
                logging.WARNING if isinstance(clean, StepFailed) else logging.INFO,
                "%s",
                _event_line(clean),
                extra={EVENT_MARK: True},
            )
            for listener in self.listeners:
                try:
                    listener(clean)
                except Exception:
                    # A broken display must not break the deployment.
                    log.exception("event listener failed")

    # -- control ------------------------------------------------------------
    def cancel(self) -> None:
        """Stop starting steps and stop waiting for the running ones."""
        self.cancel_event.set()

    def run(self) -> RunResult:
        begin = time.monotonic()
        by_name = {s.name: s for s in self.steps}
        running: set[str] = set()
        while True:
            if not self.cancel_event.is_set():
                for step in self.steps:
                    outcome = self.outcomes[step.name]
                    if outcome.status != "pending":
                        continue
                    if all(self.outcomes[d].ok for d in step.depends_on):
                        outcome.status = "running"
                        running.add(step.name)
                        threading.Thread(
                            target=self._run_step,
                            args=(step,),
                            name=f"mlcache-step-{step.name}",
                            daemon=True,
                        ).start()
            if not running:
                break
            try:
                name = self._done.get(timeout=0.05)
            except queue.Empty:
                if self.cancel_event.is_set():
                    break
                continue
            running.discard(name)
            if self.outcomes[name].status == "failed":
                self._skip_dependents(name, by_name)

        cancelled = self.cancel_event.is_set()
        if cancelled:
            # Give steps that are between two polls a moment to notice, so the
            # list of what is still being created is honest but short.
            deadline = time.monotonic() + 0.5
            while running and time.monotonic() < deadline:
                with contextlib.suppress(queue.Empty):
                    running.discard(self._done.get(timeout=0.05))
            for outcome in self.outcomes.values():
                if outcome.status == "pending":
                    outcome.status = "skipped"
                    outcome.reason = "the run was cancelled"
                    self.emit(StepSkipped(outcome.name, outcome.reason))
        # Anything still pending waits on a step that stopped without failing
        # (e.g. it raised Cancelled on its own): say so rather than hang or hide it.
        for step in self.steps:
            outcome = self.outcomes[step.name]
            if outcome.status == "pending":
                blocker = next(d for d in step.depends_on if not self.outcomes[d].ok)
                outcome.status = "skipped"
                outcome.reason = f"needs {by_name[blocker].title or blocker}, which did not finish"
                self.emit(StepSkipped(step.name, outcome.reason))
        # A step stopped while waiting has not stopped Azure: the resource is
        # still being created there, and a re-run will adopt it.
        still = tuple(
            sorted(n for n, o in self.outcomes.items() if o.status in ("running", "cancelled"))
        )
        for name in still:
            self.outcomes[name].status = "cancelled"
        finished = RunFinished(
            succeeded=all(o.ok for o in self.outcomes.values()),
            cancelled=cancelled,
            elapsed=round(time.monotonic() - begin, 3),
            done=tuple(n for n, o in self.outcomes.items() if o.ok),
            failed=tuple(n for n, o in self.outcomes.items() if o.status == "failed"),
            skipped=tuple(n for n, o in self.outcomes.items() if o.status == "skipped"),
            still_creating=still,
            log_path=self.log_path,
        )
        self.emit(finished)
        with self._emit_lock:
            self._closed = True
        return RunResult(dict(self.outcomes), finished)

    # -- internals ----------------------------------------------------------
    def _skip_dependents(self, failed: str, by_name: dict[str, Step]) -> None:
        changed = True
        while changed:
            changed = False
            for step in self.steps:
                outcome = self.outcomes[step.name]
                if outcome.status != "pending":
                    continue
                blockers = [
                    d for d in step.depends_on if self.outcomes[d].status in ("failed", "skipped")
                ]
                if blockers:
                    blocker = by_name[blockers[0]]
                    outcome.status = "skipped"
                    blocker_failed = self.outcomes[blocker.name].status == "failed"
                    what = "failed" if blocker_failed else "was skipped"
                    outcome.reason = f"needs {blocker.title or blocker.name}, which {what}"
                    self.emit(StepSkipped(step.name, outcome.reason))
                    changed = True

    def _run_step(self, step: Step) -> None:
        outcome = self.outcomes[step.name]
        outcome.started = time.monotonic()
        report = StepReport(self, step, outcome.started)
        _current.report = report
        self.emit(StepStarted(step.name, step.title or step.name))
        try:
            while True:
                outcome.attempts += 1
                try:
                    report.check_cancelled()
                    existing = step.find_existing(self.ctx)
                    if existing is not None:
                        outcome.status = "adopted"
                        outcome.outputs = dict(existing)
                        message = step.describe_text(step.adopted_text)
                    else:
                        report.progress("Creating", step.describe_text(step.progress_text))
                        outcome.outputs = dict(step.create(self.ctx, report))
                        outcome.status = "succeeded"
                        message = step.describe_text(step.success_text)
                    break
                except Cancelled:
                    raise
                except Exception as exc:
                    explained = describe(exc)
                    if outcome.attempts < step.attempts and _is_transient(exc, explained):
                        delay = _retry_after(exc) or self.retry_delay * outcome.attempts
                        report.log(
                            f"{explained.code}: {explained.message}; trying again in {delay:.1f} s",
                            level="warning",
                        )
                        report.sleep(delay)
                        continue
                    raise
        except Cancelled:
            outcome.status = "cancelled"
            outcome.finished = time.monotonic()
            self._done.put(step.name)
            return
        except Exception as exc:
            explained = describe(exc)
            outcome.error = explained
            outcome.finished = time.monotonic()
            log.debug("step %s failed", step.name, exc_info=True)
            outcome.status = "failed"
            self.emit(
                StepFailed(
                    step.name,
                    explained.code,
                    f"{step.describe_text(step.failure_text)}: {explained.message}",
                    explained.hint,
                    round(outcome.duration, 3),
                    error_class=explained.error_class.__name__,
                    recovery=exc.recovery if isinstance(exc, MlcacheError) else None,
                )
            )
            self._done.put(step.name)
            return
        outcome.finished = time.monotonic()
        self.ctx.outputs[step.name] = outcome.outputs
        self.emit(
            StepSucceeded(
                step.name,
                message,
                round(outcome.duration, 3),
                adopted=outcome.status == "adopted",
                outputs=dict(outcome.outputs),
            )
        )
        self._done.put(step.name)


def _is_transient(exc: BaseException, explained: Explained) -> bool:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status in _TRANSIENT_STATUS:
        return True
    return explained.code in _TRANSIENT_CODES


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    try:
        value = headers.get("Retry-After")
        return min(float(value), 60.0) if value is not None else None
    except (TypeError, ValueError):
        return None


def _event_line(event: Event) -> str:
    """A one-line human form of an event, for the log pane."""
    if isinstance(event, StepStarted):
        return f"[{event.step}] started: {event.title}"
    if isinstance(event, StepProgress):
        extra = f" {event.message}" if event.message else ""
        return f"[{event.step}] {event.provisioning_state} ({event.elapsed:.1f} s){extra}"
    if isinstance(event, StepLog):
        return f"[{event.step or '-'}] {event.message}"
    if isinstance(event, StepSucceeded):
        return f"[{event.step}] {event.message} ({event.elapsed:.1f} s)"
    if isinstance(event, StepFailed):
        return f"[{event.step}] {event.message} ({event.code}) - {event.hint}"
    if isinstance(event, StepSkipped):
        return f"[{event.step}] skipped: {event.reason}"
    data = event_to_dict(event)
    return redact(" ".join(f"{k}={v}" for k, v in data.items() if k != "time"))
