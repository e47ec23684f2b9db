"""A site's log the way Kudu serves it: the log stream and the LogFiles folder.

These are data-plane routes under `/dataplane/sites/<name>/api/...`: the server
checks no bearer token there, so they check the sandbox token themselves, as
Kudu checks its own credentials.
"""

from __future__ import annotations

import asyncio
import datetime
import hmac
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from app.sandbox.arm import json_response
from app.sandbox.operations import utc_now
from app.sandbox.providers import DATA_PLANE_ROOT
from app.sandbox.providers.web_base import SITE_TYPE, WebProviderBase

_LOGSTREAM_POLL_SECONDS = 0.25
_LOGSTREAM_BACKLOG_BYTES = 64 * 1024
_LOGSTREAM_HEARTBEAT_SECONDS = 60.0


class LogsMixin(WebProviderBase):
    """GET .../api/logstream, .../api/vfs/LogFiles/ and .../api/vfs/LogFiles/{fileName}."""

    def log_routes(self) -> list[BaseRoute]:
        return [
            Route(
                DATA_PLANE_ROOT + "sites/{siteName}/api/logstream",
                self.logstream,
                methods=["GET"],
            ),
            Route(
                DATA_PLANE_ROOT + "sites/{siteName}/api/vfs/LogFiles/",
                self.list_log_files,
                methods=["GET"],
            ),
            Route(
                DATA_PLANE_ROOT + "sites/{siteName}/api/vfs/LogFiles/{fileName}",
                self.get_log_file,
                methods=["GET", "HEAD"],
            ),
        ]

    def _kudu_site(self, request: Request) -> str | Response:
        """The site a Kudu-style request is for, or the 401/404 to answer."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self.ctx.token.encode()
        ):
            return PlainTextResponse(
                "401 Unauthorized: send the sandbox token as a Bearer token.",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        name = request.path_params["siteName"]
        record = self.ctx.store.find_by_name(SITE_TYPE, name)
        if record is None:
            return PlainTextResponse(f"404 Not Found: no site named {name}.", status_code=404)
        return str(record["body"]["name"])

    async def list_log_files(self, request: Request) -> Response:
        site = self._kudu_site(request)
        if isinstance(site, Response):
            return site
        path = self.runtime.log_file(site)
        entries = []
        if path.exists():
            stat = path.stat()
            mtime = datetime.datetime.fromtimestamp(stat.st_mtime, datetime.UTC)
            entries.append(
                {
                    "name": path.name,
                    "size": stat.st_size,
                    "mtime": mtime.isoformat().replace("+00:00", "Z"),
                    "mime": "text/plain",
                    "href": str(request.url).rstrip("/") + "/" + path.name,
                    "path": f"/home/LogFiles/{path.name}",
                }
            )
        return json_response(entries)

    async def get_log_file(self, request: Request) -> Response:
        """One log file; honours `Range: bytes=N-` so a reader can fetch only what is new."""
        site = self._kudu_site(request)
        if isinstance(site, Response):
            return site
        path = self.runtime.log_file(site)
        if request.path_params["fileName"] != path.name or not path.exists():
            return PlainTextResponse("404 Not Found: no such log file.", status_code=404)
        return FileResponse(path, media_type="text/plain; charset=utf-8")

    async def logstream(self, request: Request) -> Response:
        site_name = self._kudu_site(request)
        if isinstance(site_name, Response):
            return site_name
        return StreamingResponse(
            self._follow_log(request, site_name),
            media_type="text/plain; charset=utf-8",
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    async def _follow_log(self, request: Request, name: str) -> AsyncIterator[bytes]:
        path = self.runtime.log_file(name)
        stamp = utc_now()
        yield f"{stamp}  Welcome, you are now connected to log-streaming service.\n".encode()
        position = 0
        if path.exists():
            size = path.stat().st_size
            position = max(0, size - _LOGSTREAM_BACKLOG_BYTES)
        idle = 0.0
        loop = asyncio.get_running_loop()
        while True:
            if await request.is_disconnected():
                return
            if self.ctx.store.find_by_name(SITE_TYPE, name) is None:
                yield f"{utc_now()}  The site {name} was deleted; closing the stream.\n".encode()
                return
            chunk, position = await loop.run_in_executor(None, _read_from, path, position)
            if chunk:
                idle = 0.0
                yield chunk
                continue
            await asyncio.sleep(_LOGSTREAM_POLL_SECONDS)
            idle += _LOGSTREAM_POLL_SECONDS
            if idle >= _LOGSTREAM_HEARTBEAT_SECONDS:
                idle = 0.0
                yield f"{utc_now()}  No new trace in the past 1 min(s).\n".encode()


def _read_from(path: Path, position: int) -> tuple[bytes, int]:
    """New bytes of the log after `position`, and the position after them."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, 2)
            if size < position:
                position = 0  # the log was recreated (site deleted and created again)
            handle.seek(position)
            data = handle.read(1 << 16)
    except OSError:
        return b"", position
    return data, position + len(data)
