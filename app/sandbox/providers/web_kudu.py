"""Kudu, a site's SCM host: its own HTTPS port, as `<site>.scm.azurewebsites.net` is on Azure.

App Service reports the SCM host in the site's `hostNameSslStates` (the entry with
`hostType: Repository`) and `enabledHostNames`; clients reach Kudu there. The
sandbox gives every site a second local port for it and reports `127.0.0.1:<port>`
the same way it reports the site's own host, so a client that reads the host from
the site (rather than guessing `<name>.scm.azurewebsites.net`) works unchanged.

Served (all with `Authorization: Bearer <ARM token>`, which Kudu accepts from
Microsoft Entra; here the sandbox token):
  GET /api/vfs/LogFiles/          Kudu's VFS listing: name, size, mtime, crtime, mime,
                                  href, path (/home/LogFiles/...)
  GET /api/vfs/LogFiles/<file>    the file; `Range: bytes=N-` gives 206 (416 past its end)
  GET /api/logs/docker            Kudu's docker log index: machineName, lastUpdated, size,
                                  href, path
  GET /api/logstream              the container logs as Kudu streams them on Linux:
                                  welcome line, the tail of each file, then new lines

The files are the container logs of `web_container_logs`: present only while
container logging is on, as on Azure. Each host is a uvicorn server on its own
thread, behind the sandbox's request log.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from app.sandbox.certs import LeafCertificate
from app.sandbox.fault_gate import FaultGate, plain_error
from app.sandbox.faults import FaultPlan
from app.sandbox.operations import utc_now
from app.sandbox.providers.web_container_logs import ContainerLogFile, kudu_time
from app.sandbox.requestlog import RequestLog, RequestLogMiddleware
from app.sandbox.tls_listener import TlsListener

log = logging.getLogger("mlcache.sandbox.web")

_POLL_SECONDS = 0.25
_HEARTBEAT_SECONDS = 60.0
_TAIL_LINES = 10
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass(frozen=True)
class KuduSource:
    """What one site's Kudu serves: who may call it, whether the site is still there,
    and its container log files (read afresh at each request)."""

    site: str
    host: str
    token: Callable[[], str]
    exists: Callable[[], bool]
    files: Callable[[], list[ContainerLogFile]]


def _unauthorised() -> Response:
    return PlainTextResponse(
        "401 Unauthorized: send an ARM token as Authorization: Bearer <token>.",
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def build_kudu_app(source: KuduSource) -> Starlette:
    """The Kudu endpoints of one site (see the module docstring)."""
    base = f"https://{source.host}/api/vfs/LogFiles/"

    def refused(request: Request) -> Response | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), source.token().encode()
        ):
            return _unauthorised()
        if not source.exists():
            return PlainTextResponse(f"404 Not Found: no site named {source.site}.", 404)
        return None

    async def listing(request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        return JSONResponse(
            [
                {
                    "name": f.name,
                    "size": f.size,
                    "mtime": kudu_time(f.mtime),
                    "crtime": kudu_time(f.crtime),
                    "mime": "text/plain",
                    "href": base + f.name,
                    "path": f"/home/LogFiles/{f.name}",
                }
                for f in source.files()
            ]
        )

    async def docker_logs(request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        return JSONResponse(
            [
                {
                    "machineName": f.name.split("_", 3)[3].rsplit("_docker.log", 1)[0],
                    "lastUpdated": kudu_time(f.mtime),
                    "size": f.size,
                    "href": base + f.name,
                    "path": f"/home/LogFiles/{f.name}",
                }
                for f in source.files()
            ]
        )

    async def one_file(request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        wanted = request.path_params["fileName"]
        found = next((f for f in source.files() if f.name == wanted), None)
        if found is None:
            return PlainTextResponse("404 Not Found: no such file.", 404)
        return _ranged(found.data, request.headers.get("range"), request.method == "HEAD")

    async def logstream(request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        return StreamingResponse(
            _follow(request, source, base),
            media_type="text/plain; charset=utf-8",
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    return Starlette(
        routes=[
            Route("/api/vfs/LogFiles/", listing, methods=["GET"]),
            Route("/api/vfs/LogFiles/{fileName}", one_file, methods=["GET", "HEAD"]),
            Route("/api/logs/docker", docker_logs, methods=["GET"]),
            Route("/api/logstream", logstream, methods=["GET"]),
        ]
    )


def _ranged(data: bytes, header: str | None, head: bool) -> Response:
    """The file, or the part a `Range: bytes=N-[M]` header asks for."""
    headers = {"Accept-Ranges": "bytes"}
    match = _RANGE.match(header.strip()) if header else None
    if match is None:
        return Response(b"" if head else data, 200, headers, "text/plain; charset=utf-8")
    start = int(match.group(1))
    end = min(int(match.group(2)), len(data) - 1) if match.group(2) else len(data) - 1
    if start >= len(data) or end < start:
        return Response(b"", 416, {**headers, "Content-Range": f"bytes */{len(data)}"})
    headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
    part = data[start : end + 1]
    return Response(b"" if head else part, 206, headers, "text/plain; charset=utf-8")


async def _follow(request: Request, source: KuduSource, base: str) -> AsyncIterator[bytes]:
    """Kudu's Linux log stream: the existing tail of each file, then what is new."""
    yield f"{utc_now()}  Welcome, you are now connected to log-streaming service.\n".encode()
    loop = asyncio.get_running_loop()
    files = await loop.run_in_executor(None, source.files)
    sent = {f.name: f.size for f in files}
    yield b"Starting Log Tail -n 10 of existing logs ----\n"
    for f in files:
        yield f"/home/LogFiles/{f.name}  ({base}{f.name})\n".encode()
        yield b"".join(f.data.splitlines(keepends=True)[-_TAIL_LINES:])
    yield b"Ending Log Tail of existing logs ---\nStarting Live Log Stream ---\n"
    idle = 0.0
    while True:
        if await request.is_disconnected():
            return
        if not source.exists():
            yield f"{utc_now()}  The site {source.site} was deleted; closing the stream.\n".encode()
            return
        new = b""
        for f in await loop.run_in_executor(None, source.files):
            new += f.data[sent.get(f.name, 0) :]
            sent[f.name] = f.size
        if new:
            idle = 0.0
            yield new
            continue
        await asyncio.sleep(_POLL_SECONDS)
        idle += _POLL_SECONDS
        if idle >= _HEARTBEAT_SECONDS:
            idle = 0.0
            yield f"{utc_now()}  No new trace in the past 1 min(s).\n".encode()


class KuduServer(TlsListener):
    """One site's Kudu on 127.0.0.1:<port> over TLS, served on its own thread, behind the
    request log and the faults file's rules (`fault_gate`)."""

    def __init__(
        self, app: ASGIApp, port: int, cert: LeafCertificate, request_log: RequestLog,
        faults: FaultPlan,
    ) -> None:
        gated = FaultGate(RequestLogMiddleware(app, request_log), faults, plain_error,
                          request_log)
        super().__init__(gated, port, cert.cert_file, cert.key_file, "kudu")


class KuduHosts:
    """Every site's Kudu, by site name; starting one that runs is a no-op."""

    def __init__(self, request_log: RequestLog, faults: FaultPlan) -> None:
        self._request_log = request_log
        self._faults = faults
        self._servers: dict[str, KuduServer] = {}
        self._lock = threading.Lock()

    def ensure(self, source: KuduSource, port: int, cert: LeafCertificate) -> None:
        key = source.site.lower()
        with self._lock:
            current = self._servers.get(key)
            if current is not None and current.port == port:
                return
            self._servers.pop(key, None)
        if current is not None:
            current.stop()
        try:
            server = KuduServer(build_kudu_app(source), port, cert, self._request_log,
                                self._faults)
            server.start()
        except (OSError, RuntimeError) as exc:
            log.error("Kudu of %s cannot listen on port %d: %s", source.site, port, exc)
            return
        with self._lock:
            self._servers[key] = server

    def stop(self, site: str) -> None:
        with self._lock:
            server = self._servers.pop(site.lower(), None)
        if server is not None:
            server.stop()

    def shutdown(self) -> None:
        with self._lock:
            servers = list(self._servers.values())
            self._servers.clear()
        for server in servers:
            server.stop()
