"""Fault rules on the hosts the sandbox serves beside ARM: registry loginServers and Kudu.

On Azure a registry's data plane and a site's SCM host fail like any service: a
503 with Retry-After while the front end is busy, a 429 when throttled, a
connection reset. The faults file's rules (`app.sandbox.faults`) therefore apply
to them too, matched on the request's method and path (`/v2/...`, `/oauth2/token`,
`/api/vfs/LogFiles/`) exactly as on ARM. A `status` rule answers in the host's own
error shape (`error_body`), or with its replayed `body`; `drop` closes the
connection; `fail_provisioning` has nothing to provision here and lets the request
through.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.sandbox.faults import FaultPlan, FaultRule
from app.sandbox.requestlog import RequestLog

log = logging.getLogger("mlcache.sandbox.faults")

# (status, code, message) -> (body, content type)
ErrorBody = Callable[[int, str, str], tuple[bytes, str]]


class DropUnsupported(RuntimeError):
    """The server under the app does not expose its transport (not uvicorn)."""


async def drop_connection(send: Send) -> None:
    """Close the TCP connection without an answer, as a broken network would.

    uvicorn exposes the transport only through its response cycle object, which
    is what `send` is bound to at the outermost layer of the app.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise DropUnsupported("connection drop is not supported here")
    transport.abort()
    # Let uvicorn see the connection is gone, so it does not try to answer 500.
    await asyncio.sleep(0)
    if cycle is not None and hasattr(cycle, "disconnected"):
        cycle.disconnected = True


def rule_headers(rule: FaultRule) -> dict[str, str]:
    """A `status` rule's response headers: Retry-After (when it has one), then its own."""
    headers = {}
    if rule.retry_after is not None:
        headers["Retry-After"] = f"{rule.retry_after:g}"
    headers.update(rule.headers)
    return headers


# Docker Registry HTTP API v2 error codes (distribution's errcode registry).
_REGISTRY_CODES = {429: "TOOMANYREQUESTS", 503: "UNAVAILABLE"}


def registry_error(status: int, code: str, message: str) -> tuple[bytes, str]:
    """The registry data plane's error shape: `{"errors": [{"code", "message", "detail"}]}`."""
    body = {"errors": [{"code": _REGISTRY_CODES.get(status, "UNKNOWN"), "message": message,
                        "detail": None}]}
    return json.dumps(body).encode(), "application/json; charset=utf-8"


def plain_error(status: int, code: str, message: str) -> tuple[bytes, str]:
    """A front end's plain-text error page (what Kudu's gateway sends when busy)."""
    return f"{message}\n".encode(), "text/plain; charset=utf-8"


class FaultGate:
    """ASGI middleware applying a `FaultPlan` before `app`; the outermost layer of a host.

    It writes its own answers and drops to `request_log` (when given), since a
    request log middleware inside it never sees them.
    """

    def __init__(self, app: ASGIApp, faults: FaultPlan, error_body: ErrorBody,
                 request_log: RequestLog | None = None) -> None:
        self.app = app
        self.faults = faults
        self.error_body = error_body
        self.request_log = request_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        rule = self.faults.match(method, path)
        if rule is None or rule.fail_provisioning:
            await self.app(scope, receive, send)
            return
        log.info("fault rule %d matches %s %s", rule.index + 1, method, path)
        if rule.drop:
            await drop_connection(send)
            self._log(scope, None)
            return
        status = rule.status or 500
        if rule.has_body:
            body, content_type = json.dumps(rule.body).encode(), "application/json"
        else:
            body, content_type = self.error_body(status, rule.error_code(), rule.error_message())
        headers = {"Content-Type": content_type, **rule_headers(rule)}
        start: Message = {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
            + [(b"content-length", str(len(body)).encode())],
        }
        await send(start)
        await send({"type": "http.response.body",
                    "body": b"" if method == "HEAD" else body})
        self._log(scope, status)

    def _log(self, scope: Scope, status: int | None) -> None:
        if self.request_log is None:
            return
        host = next((v.decode("latin-1") for k, v in scope.get("headers", [])
                     if k.lower() == b"host"), "")
        self.request_log.write(scope["method"], host, scope["path"], status)
