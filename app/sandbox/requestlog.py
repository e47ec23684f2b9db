"""The request log: one JSON line per request the sandbox serves, in `DIR/requests.log`.

It is how a user sees what a client (the product, the SDK) actually sent: method,
host, path and the status answered, for ARM and for every data plane the sandbox
process serves itself (registry, prices, Kudu, the front end that answers while a
site's host is down). It never holds a secret: no query string (SAS tokens, `code=`
function keys), no header (tokens), no body.

Lines come from several threads (the ARM server's loop, one thread per Kudu host,
the front-end placeholders); each line is written with one `write` on a file opened
for appending, under a lock, so lines never interleave.
"""

from __future__ import annotations

import datetime
import json
import os
import threading
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_LOG_NAME = "requests.log"


class RequestLog:
    """Appends request lines to one file; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = None

    def write(self, method: str, host: str, path: str, status: int | None) -> None:
        """One line: `time`, `method`, `host`, `path` (never a query string), `status`
        (null when the connection was dropped without an answer)."""
        stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
        line = json.dumps(
            {
                "time": stamp.replace("+00:00", "Z"),
                "method": method,
                "host": host,
                "path": path.split("?", 1)[0],
                "status": status,
            },
            separators=(",", ":"),
        )
        data = (line + "\n").encode("utf-8")
        with self._lock:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.write(self._fd, data)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _host_of(scope: Scope) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == b"host":
            return str(value.decode("latin-1"))
    server = scope.get("server")
    return f"{server[0]}:{server[1]}" if server else ""


class RequestLogMiddleware:
    """ASGI middleware writing one line per HTTP request to a `RequestLog`.

    The line is written when the answer starts (a never-ending stream is logged at
    once), or when the request ends without one (status null).
    """

    def __init__(self, app: ASGIApp, log: RequestLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        written = False
        method, host, path = scope["method"], _host_of(scope), scope["path"]

        async def logging_send(message: Message) -> None:
            nonlocal written
            if message["type"] == "http.response.start" and not written:
                written = True
                self.log.write(method, host, path, int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, logging_send)
        finally:
            if not written:
                self.log.write(method, host, path, None)
