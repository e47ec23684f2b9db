"""A small HTTPS server on 127.0.0.1:<port>, on a thread of its own.

Sandbox resources that Azure serves at a host of their own (a registry's
loginServer, a site's Kudu) get a port each, with a certificate from the sandbox
CA: one listener class for all of them, so they bind, start and stop alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from app.sandbox.tls import uvicorn_tls


class TlsListener:
    """Serve `app` over TLS on 127.0.0.1:`port`; `start()` returns once it accepts."""

    def __init__(self, app: ASGIApp, port: int, cert_file: Path, key_file: Path,
                 what: str) -> None:
        self.port = port
        self.what = what
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self._sock.bind(("127.0.0.1", port))
        except OSError:
            self._sock.close()
            raise
        self._sock.listen(64)
        self._sock.set_inheritable(False)
        config = uvicorn.Config(
            app,
            **uvicorn_tls(cert_file, key_file),
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            timeout_keep_alive=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(),), name=f"{what}-{port}", daemon=True
        )

    async def _serve(self) -> None:
        await self._server.serve(sockets=[self._sock])
        # Streams (a log stream never ends by itself) would outlive a forced exit.
        for connection in list(self._server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()
        await asyncio.sleep(0)

    def start(self, timeout: float = 15.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the {self.what} listener on port {self.port} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._server.force_exit = True
        if self._thread.is_alive():
            self._thread.join(10)
        with contextlib.suppress(OSError):
            self._sock.close()
