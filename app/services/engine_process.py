"""A deployment run in a process of its own, reporting back over a pipe.

Why: a run is a dozen threads of Python (each step's SDK calls, their pollers, the
image build). In the wizard's process they share the interpreter lock with the UI
thread: while the first wave of steps opened its connections the window could not
react for up to ~100 ms. In a process of its own a run shares only the cores.

`EngineProcess` (the wizard's side) starts `python -m app.cli.engine_worker` once
per target, while the user is still filling in pages, and hands it one deploy at a
time; `serve` (the worker's side) runs each with the `run_deployment` the CLI runs.
The worker holds no credential: every token it needs is asked of the wizard's
credential over the pipe, so a browser or device-code sign-in made in the window
works unchanged and no token is written anywhere.

The messages are JSON lines, each `{"type": ...}`:
- to the worker: `start` (the target, the secrets to redact), `deploy` (the spec and
  the folder its paths are read from), `cancel`, `token` / `token_error`;
- from it: `ready`, `event` (`event_to_dict`, as `deploy --json` prints them), `log`
  (an `mlcache.*` record), `get_token`, `result`, `error`.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import gc
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from app import errors
from app.errors import MlcacheError, Recovery, ServiceFailure
from app.services.events import Event, RunFinished, event_from_dict, event_to_dict
from app.services.logs import EVENT_MARK, ROOT, get_logger
from app.services.redaction import SECRETS, redact, register_secret
from app.services.runner import RunResult, StepOutcome
from app.services.target import CloudTarget, RetrySettings
from app.spec import DeploymentSpec, spec_from_dict, spec_to_dict

log = get_logger("engine")

# How long the worker may take to load the SDKs before a deploy is refused.
READY_TIMEOUT_S = 120.0
# How long closing waits for the worker to end a run it is told to stop (the window
# has already waited for the run to stop before it closes).
CLOSE_WAIT_S = 3.0
# How long a token may take: an interactive sign-in waits for the person.
TOKEN_TIMEOUT_S = 900.0


# --- what crosses the pipe ---------------------------------------------------------


def target_to_dict(target: CloudTarget) -> dict[str, Any]:
    """Everything of a target but its credential (the worker asks for tokens instead)."""
    data: dict[str, Any] = {}
    for f in dataclasses.fields(target):
        if f.name in ("credential", "_closer"):
            continue
        value = getattr(target, f.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, RetrySettings):
            value = dataclasses.asdict(value)
        elif isinstance(value, tuple):
            value = list(value)
        data[f.name] = value
    return data


def target_from_dict(data: dict[str, Any], credential: Any) -> CloudTarget:
    values = dict(data)
    for name in ("ca_bundle", "state_dir"):
        if values.get(name):
            values[name] = Path(values[name])
    values["retry"] = RetrySettings(**values["retry"])
    values["credential_scopes"] = tuple(values["credential_scopes"])
    return CloudTarget(credential=credential, **values)


def error_to_dict(exc: BaseException) -> dict[str, Any]:
    """An error as the product's taxonomy says it (`explain.as_error` for anything else)."""
    from app.services.explain import as_error

    err = exc if isinstance(exc, MlcacheError) else as_error(exc)
    recovery = None
    if err.recovery is not None:
        recovery = {"action": err.recovery.action, "label": err.recovery.label,
                    "spec": spec_to_dict(err.recovery.spec, keep_null=True)}
    return {"error_class": type(err).__name__, "message": redact(err.message),
            "recommendation": redact(err.recommendation), "code": err.code,
            "recovery": recovery}


def error_from_dict(data: dict[str, Any]) -> MlcacheError:
    cls = getattr(errors, str(data.get("error_class")), None)
    if not (isinstance(cls, type) and issubclass(cls, MlcacheError)):
        cls = ServiceFailure
    recovery = data.get("recovery")
    made = None
    if recovery:
        made = Recovery(recovery["action"], recovery["label"], spec_from_dict(recovery["spec"]))
    return cls(str(data.get("message", "")), str(data.get("recommendation", "")),
               code=str(data.get("code", "")), recovery=made)


def result_to_dict(result: RunResult) -> dict[str, Any]:
    outcomes = []
    for outcome in result.outcomes.values():
        row = {f.name: getattr(outcome, f.name) for f in dataclasses.fields(outcome)
               if f.name != "error"}
        if outcome.error is not None:
            row["error"] = {"code": outcome.error.code, "message": outcome.error.message,
                            "hint": outcome.error.hint,
                            "error_class": outcome.error.error_class.__name__}
        outcomes.append(row)
    return {"outcomes": outcomes, "finished": event_to_dict(result.finished)}


def result_from_dict(data: dict[str, Any]) -> RunResult:
    from app.services.explain import Explained

    outcomes: dict[str, StepOutcome] = {}
    for row in data["outcomes"]:
        error = row.pop("error", None)
        outcome = StepOutcome(**row)
        if error is not None:
            cls = getattr(errors, error.pop("error_class"), ServiceFailure)
            outcome.error = Explained(error_class=cls, **error)
        outcomes[outcome.name] = outcome
    finished = event_from_dict(data["finished"])
    if not isinstance(finished, RunFinished):
        raise ValueError("a run's result must end with run_finished")
    return RunResult(outcomes, finished)


class _Channel:
    """One side's writing end: whole lines, one writer at a time."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self.open = True

    def send(self, message: dict[str, Any]) -> bool:
        line = json.dumps(message, default=str).encode("utf-8") + b"\n"
        with self._lock:
            if not self.open:
                return False
            try:
                self._stream.write(line)
                self._stream.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.open = False
                return False
        return True

    def close(self) -> None:
        with self._lock:
            self.open = False
            with contextlib.suppress(BrokenPipeError, OSError):
                self._stream.close()


# --- the wizard's side ---------------------------------------------------------------


class _Run:
    def __init__(self, listeners: list[Callable[[Event], None]]) -> None:
        self.listeners = listeners
        self.done = threading.Event()
        self.result: RunResult | None = None
        self.error: MlcacheError | None = None


class EngineProcess:
    """The worker process of one target; `deploy` blocks like `run_deployment` does."""

    def __init__(self, target: CloudTarget) -> None:
        self._target = target
        self._ready = threading.Event()
        self._run: _Run | None = None
        self._run_lock = threading.Lock()
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        root = Path(__file__).resolve().parents[2]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(root), env.get("PYTHONPATH", "")) if p)
        self._popen = subprocess.Popen(
            [sys.executable, "-m", "app.cli.engine_worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env,
            # A Ctrl-C meant for the window reaches the window, which cancels the run
            # through the pipe; the worker ends when the pipe closes.
            start_new_session=True,
        )
        assert self._popen.stdin is not None and self._popen.stdout is not None
        self._channel = _Channel(self._popen.stdin)
        self._channel.send({"type": "start", "target": target_to_dict(target),
                            "secrets": list(SECRETS.values())})
        self._reader = threading.Thread(target=self._read, name="engine-reader", daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_stderr, name="engine-stderr",
                                            daemon=True)
        self._err_reader.start()

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def alive(self) -> bool:
        return self._popen.poll() is None and self._channel.open

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> bool:
        return self._ready.wait(timeout)

    def deploy(self, spec: DeploymentSpec, spec_dir: Path,
               listeners: Iterable[Callable[[Event], None]],
               cancel: threading.Event) -> RunResult:
        with self._run_lock:
            if not self._ready.wait(READY_TIMEOUT_S) or not self.alive:
                raise self._gone("could not start")
            run = _Run(list(listeners))
            self._run = run
            try:
                if not self._channel.send({"type": "deploy",
                                           "spec": spec_to_dict(spec, keep_null=True),
                                           "spec_dir": str(spec_dir.resolve())}):
                    raise self._gone("could not start")
                cancel_sent = False
                while not run.done.wait(0.1):
                    if cancel.is_set() and not cancel_sent:
                        cancel_sent = self._channel.send({"type": "cancel"})
            finally:
                self._run = None
            if run.error is not None:
                raise run.error
            assert run.result is not None
            return run.result

    def close(self) -> None:
        """End the worker: closing its input cancels a run still going (what is being
        created goes on in the cloud) and it exits; a worker that does not is killed.
        An idle worker (loading the SDKs, or between runs) is told to end at once."""
        self._channel.close()
        if self._run is None and self._popen.poll() is None:
            self._popen.terminate()
        try:
            self._popen.wait(CLOSE_WAIT_S)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait()
        self._reader.join(CLOSE_WAIT_S)
        self._err_reader.join(CLOSE_WAIT_S)
        for stream in (self._popen.stdout, self._popen.stderr):
            if stream is not None:
                stream.close()

    # -- the reader thread ------------------------------------------
    def _read(self) -> None:
        assert self._popen.stdout is not None
        for line in self._popen.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                log.warning("the deployment process wrote a line that is not a message")
                continue
            try:
                self._handle(message)
            except Exception as exc:  # one bad report must not end the others
                log.warning("a report of the deployment process was not shown: %s",
                            redact(f"{type(exc).__name__}: {exc}"))
        self._channel.open = False
        run = self._run
        if run is not None and not run.done.is_set():
            run.error = self._gone("stopped")
            run.done.set()

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        run = self._run
        if kind == "ready":
            self._ready.set()
        elif kind == "event" and run is not None:
            event = event_from_dict(message["event"])
            for listener in run.listeners:
                listener(event)
        elif kind == "log":
            record = logging.makeLogRecord({
                "name": message["name"], "levelno": int(message["levelno"]),
                "levelname": logging.getLevelName(int(message["levelno"])),
                "msg": message["message"], "created": float(message["created"]),
                "_mlcache_redacted": True,
            })
            logging.getLogger(record.name).handle(record)
        elif kind == "get_token":
            threading.Thread(target=self._answer_token, args=(message,),
                             name="engine-token", daemon=True).start()
        elif kind == "result" and run is not None:
            run.result = result_from_dict(message["result"])
            run.done.set()
        elif kind == "error" and run is not None:
            run.error = error_from_dict(message["error"])
            run.done.set()

    def _answer_token(self, message: dict[str, Any]) -> None:
        kwargs = {k: message[k] for k in ("claims", "tenant_id", "enable_cae") if message.get(k)}
        try:
            token = self._target.credential.get_token(*message["scopes"], **kwargs)
        except Exception as exc:
            self._channel.send({"type": "token_error", "id": message["id"],
                                "error": error_to_dict(exc)})
            return
        register_secret(token.token)
        self._channel.send({"type": "token", "id": message["id"], "token": token.token,
                            "expires_on": int(token.expires_on)})

    def _read_stderr(self) -> None:
        assert self._popen.stderr is not None
        for raw in self._popen.stderr:
            text = redact(raw.decode("utf-8", "replace").rstrip())
            if text:
                self._stderr.append(text)

    def _gone(self, what: str) -> ServiceFailure:
        self._err_reader.join(1.0)
        code = self._popen.poll()
        last = next((line for line in reversed(self._stderr) if line.strip()), "")
        said = f" ({last})" if last else ""
        ended = f", exit code {code}" if code is not None else ""
        return ServiceFailure(
            f"the deployment process {what}{ended}{said}",
            "Deploy again: it starts a new one and picks the deployment up where it stopped.")


# --- the worker's side --------------------------------------------------------------


class PipeCredential:
    """An azure-core TokenCredential whose tokens come from the wizard's credential."""

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel
        self._lock = threading.Lock()
        self._next = 0
        self._waiting: dict[int, tuple[threading.Event, list[dict[str, Any]]]] = {}

    def get_token(self, *scopes: str, claims: str | None = None,
                  tenant_id: str | None = None, enable_cae: bool = False,
                  **_kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken
        from azure.core.exceptions import ClientAuthenticationError

        with self._lock:
            self._next += 1
            ident = self._next
            answer: list[dict[str, Any]] = []
            done = threading.Event()
            self._waiting[ident] = (done, answer)
        sent = self._channel.send({"type": "get_token", "id": ident, "scopes": list(scopes),
                                   "claims": claims, "tenant_id": tenant_id,
                                   "enable_cae": enable_cae})
        if not sent or not done.wait(TOKEN_TIMEOUT_S) or not answer:
            with self._lock:
                self._waiting.pop(ident, None)
            raise ClientAuthenticationError("the wizard that signed in has closed")
        message = answer[0]
        if message["type"] == "token_error":
            raise error_from_dict(message["error"])
        register_secret(message["token"])
        return AccessToken(message["token"], int(message["expires_on"]))

    def answer(self, message: dict[str, Any]) -> None:
        with self._lock:
            waiting = self._waiting.pop(int(message["id"]), None)
        if waiting is not None:
            waiting[1].append(message)
            waiting[0].set()

    def give_up(self) -> None:
        """The wizard is gone: every request waiting for a token fails now."""
        with self._lock:
            waiting, self._waiting = list(self._waiting.values()), {}
        for done, _answer in waiting:
            done.set()

    def close(self) -> None:
        return None


class _ForwardLogs(logging.Handler):
    """`mlcache.*` records to the wizard's log pane (those mirroring an event are
    drawn from the event there)."""

    def __init__(self, channel: _Channel) -> None:
        super().__init__(level=logging.INFO)
        self._channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, EVENT_MARK, False):
            return
        self._channel.send({"type": "log", "name": record.name, "levelno": record.levelno,
                            "message": redact(record.getMessage()), "created": record.created})


def serve(inp: IO[bytes], out: IO[bytes]) -> int:
    """The worker: read `start`, load everything a deploy needs, then run each `deploy`
    until the input closes. Returns the exit code."""
    from app.services.clients import ClientFactory
    from app.services.deploy import plan_deployment, preload, run_deployment

    channel = _Channel(out)
    first = inp.readline()
    if not first:
        return 0
    start = json.loads(first)
    for secret in start.get("secrets", ()):
        register_secret(secret)
    credential = PipeCredential(channel)
    target = target_from_dict(start["target"], credential)
    clients = ClientFactory(target)
    handler = _ForwardLogs(channel)
    logger = logging.getLogger(ROOT)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    preload(clients)
    gc.collect()
    gc.freeze()
    channel.send({"type": "ready"})

    cancel = threading.Event()
    running: list[threading.Thread] = []

    def report(event: Event) -> None:
        channel.send({"type": "event", "event": event_to_dict(event)})

    def run(message: dict[str, Any]) -> None:
        try:
            spec = spec_from_dict(message["spec"])
            spec_dir = Path(message["spec_dir"])
            steps = plan_deployment(spec, spec_dir)
            result = run_deployment(
                spec, target, clients, steps, spec_dir,
                [report], cancel)
            channel.send({"type": "result", "result": result_to_dict(result)})
        except BaseException as exc:
            channel.send({"type": "error", "error": error_to_dict(exc)})

    for line in inp:
        message = json.loads(line)
        kind = message.get("type")
        if kind == "deploy":
            running = [r for r in running if r.is_alive()]
            if running:
                channel.send({"type": "error", "error": error_to_dict(
                    ServiceFailure("a deployment is already running in this process"))})
                continue
            cancel.clear()
            thread = threading.Thread(target=run, args=(message,), name="deploy")
            running.append(thread)
            thread.start()
        elif kind == "cancel":
            cancel.set()
        elif kind in ("token", "token_error"):
            credential.answer(message)
    # The wizard closed its end: stop the run as Cancel does, and end.
    cancel.set()
    credential.give_up()
    for thread in running:
        thread.join()
    clients.close()
    logger.removeHandler(handler)
    return 0
