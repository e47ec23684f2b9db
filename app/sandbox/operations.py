"""Long-running operations the way ARM runs them.

A provider that takes time answers its PUT/DELETE at once (201/202 with
`Azure-AsyncOperation` and/or `Location` headers) and calls `Operations.start`
with a *kind*. After the latency profile's delay the kind's handler does the
real work (start a redis-server, tear a group down...) in a worker thread; the
status then reads Succeeded, or Failed with an ARM error if the handler raised
`ArmError` or a `fail_provisioning` fault matched the starting request.

Operations are persisted with the store, and handlers are registered by kind,
so an operation still running when the sandbox stopped resumes on restart.

Status URLs (all under the sandbox endpoint, bearer token required):
  GET /subscriptions/{s}/providers/{ns}/locations/{loc}/asyncOperations/{id}
      -> 200 {"id","name","status","startTime","endTime"?,"error"?}  (Azure-AsyncOperation)
  GET .../asyncOperations/{id}?monitor=true, .../operationResults/{id},
      /subscriptions/{s}/operationresults/{id}
      -> 202 while running; when done 200 with the resource body (or empty) /
         the ARM error with its status if it failed   (Location)
"""

from __future__ import annotations

import datetime
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import Request

from app.sandbox.arm import ArmError
from app.sandbox.latency import LatencyProfile
from app.sandbox.store import Store

log = logging.getLogger("mlcache.sandbox.operations")

OpRecord = dict[str, Any]


@dataclass(frozen=True)
class OperationKind:
    """What an operation does when its time is up.

    `work(op)` does the real work and may raise ArmError; `failed(op, error)`
    leaves the resource in its failed state (e.g. provisioningState Failed).
    `latency_step` names the row of the latency table that gives its duration.
    """

    latency_step: str
    work: Callable[[OpRecord], None]
    failed: Callable[[OpRecord, ArmError], None]


class OperationsHost(Protocol):
    """What operations need of the sandbox: where they persist, how long they take, and
    the address their status URLs start with (known only once the server listens).

    `app.sandbox.providers.SandboxContext` is one; naming only these keeps this module
    free of the provider framework, which itself builds on operations.
    """

    @property
    def store(self) -> Store: ...

    @property
    def latency(self) -> LatencyProfile: ...

    @property
    def endpoint(self) -> str: ...


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


class Operations:
    """Starts, runs, persists and reports long-running operations."""

    def __init__(self, ctx: OperationsHost) -> None:
        self._ctx = ctx
        self._kinds: dict[str, OperationKind] = {}
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def register(self, kind: str, handler: OperationKind) -> None:
        self._kinds[kind] = handler

    def start(
        self,
        request: Request | None,
        kind: str,
        *,
        namespace: str,
        location: str,
        resource_id: str | None = None,
        final_body: bool = True,
        args: dict[str, Any] | None = None,
    ) -> OpRecord:
        """Record and schedule an operation; `final_body` = Location polls end with the body."""
        if kind not in self._kinds:
            raise KeyError(f"no operation handler registered for {kind!r}")
        fault = getattr(request.state, "fail_provisioning", None) if request else None
        op_id = str(uuid.uuid4())
        op: OpRecord = {
            "id": op_id,
            "kind": kind,
            "namespace": namespace,
            "location": _location_segment(location),
            "status": "InProgress",
            "startTime": utc_now(),
            "resourceId": resource_id,
            "finalBody": final_body,
            "args": args or {},
            "apiVersion": request.query_params.get("api-version") if request else None,
            # Status URLs live under the subscription the request named.
            "subscription": request.path_params.get("subscriptionId") if request else None,
            "fault": fault,
            "duration": self._ctx.latency.seconds(self._kinds[kind].latency_step),
        }
        with self._ctx.store.transaction() as store:
            store.put_operation(op_id, op)
        self._launch(op, op["duration"])
        return op

    def resume_pending(self) -> None:
        """After a restart: run what was still in progress, with its full delay again.

        Finished operations older than a day are forgotten, as ARM's status URLs expire.
        """
        cutoff = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
        with self._ctx.store.transaction() as store:
            for op in store.operations():
                ended = op.get("endTime")
                if ended and _parse_time(ended) < cutoff:
                    store.data["operations"].pop(op["id"], None)
        for op in self._ctx.store.operations():
            if op["status"] == "InProgress":
                if op["kind"] in self._kinds:
                    self._launch(op, op.get("duration", 0.0))
                else:
                    self._finish(op, ArmError(500, "InternalServerError", "Operation lost."))

    def _launch(self, op: OpRecord, delay: float) -> None:
        thread = threading.Thread(
            target=self._run, args=(op["id"], delay), name=f"op-{op['kind']}", daemon=True
        )
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _run(self, op_id: str, delay: float) -> None:
        if self._stopping.wait(delay):
            return
        op = self._ctx.store.operation(op_id)
        if op is None:
            return
        handler = self._kinds[op["kind"]]
        error: ArmError | None = None
        if op.get("fault"):
            error = ArmError(400, op["fault"]["code"], op["fault"]["message"])
        else:
            try:
                handler.work(op)
            except ArmError as exc:
                error = exc
            except Exception as exc:
                log.exception("operation %s (%s) crashed", op_id, op["kind"])
                error = ArmError(500, "InternalServerError", f"The operation failed: {exc}")
        if self._stopping.is_set() and error is not None:
            return
        if error is not None:
            try:
                handler.failed(op, error)
            except Exception:
                log.exception("operation %s: failure handler crashed", op_id)
        self._finish(op, error)

    def _finish(self, op: OpRecord, error: ArmError | None) -> None:
        with self._ctx.store.transaction() as store:
            op["endTime"] = utc_now()
            if error is None:
                op["status"] = "Succeeded"
            else:
                op["status"] = "Failed"
                op["error"] = {"code": error.code, "message": error.message}
                op["errorStatus"] = error.status
            store.put_operation(op["id"], op)
        log.info("operation %s %s: %s", op["kind"], op["resourceId"] or "", op["status"])

    def wait_idle(self, timeout: float | None = None) -> None:
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)

    def stop(self) -> None:
        """Stop scheduling; running work finishes, pending work resumes next start."""
        self._stopping.set()
        self.wait_idle(10.0)

    # URLs and answers

    def _api_version(self, op: OpRecord) -> str:
        return op.get("apiVersion") or "2024-11-01"

    def subscription_of(self, op: OpRecord) -> str:
        """The subscription an operation runs in (the home one for records of older stores)."""
        return str(op.get("subscription") or self._ctx.store.subscription_id)

    def async_operation_url(self, op: OpRecord) -> str:
        sub = self.subscription_of(op)
        return (
            f"{self._ctx.endpoint}/subscriptions/{sub}/providers/{op['namespace']}/locations/"
            f"{op['location']}/asyncOperations/{op['id']}?api-version={self._api_version(op)}"
        )

    def location_url(self, op: OpRecord) -> str:
        sub = self.subscription_of(op)
        if op["namespace"] == "Microsoft.Resources":
            return (
                f"{self._ctx.endpoint}/subscriptions/{sub}/operationresults/{op['id']}"
                f"?api-version={self._api_version(op)}"
            )
        return (
            f"{self._ctx.endpoint}/subscriptions/{sub}/providers/{op['namespace']}/locations/"
            f"{op['location']}/operationResults/{op['id']}?api-version={self._api_version(op)}"
        )

    def headers(self, op: OpRecord, *, async_operation: bool, location: bool) -> dict[str, str]:
        """Headers for the 201/202 that starts `op`.

        Retry-After is only sent outside the fast profile: the SDK pollers obey it
        over their own polling interval, and tests want to poll quickly.
        """
        headers: dict[str, str] = {}
        if async_operation:
            headers["Azure-AsyncOperation"] = self.async_operation_url(op)
        if location:
            headers["Location"] = self.location_url(op)
        if not self._ctx.latency.is_fast:
            headers["Retry-After"] = "1"
        return headers

    def get(self, op_id: str) -> OpRecord:
        op = self._ctx.store.operation(op_id)
        if op is None:
            raise ArmError(404, "OperationNotFound", f"The operation '{op_id}' could not be found.")
        return op

    def status_body(self, op: OpRecord) -> dict[str, Any]:
        sub = self.subscription_of(op)
        body: dict[str, Any] = {
            "id": f"/subscriptions/{sub}/providers/{op['namespace']}/locations/"
            f"{op['location']}/asyncOperations/{op['id']}",
            "name": op["id"],
            "status": op["status"],
            "startTime": op["startTime"],
        }
        if "endTime" in op:
            body["endTime"] = op["endTime"]
        if op["status"] == "Failed":
            body["error"] = op["error"]
        return body


def _parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _location_segment(location: str) -> str:
    """ARM puts the normalised region in operation URLs: 'West Europe' -> 'westeurope'."""
    return location.replace(" ", "").lower() or "global"
