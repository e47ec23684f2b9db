"""One HTTPS listener per sandbox registry: the host its `loginServer` names.

On Azure a registry's data plane lives at its own host (`<name>.azurecr.io`),
which a client takes from ARM's answer. There is no DNS here, so each sandbox
registry gets its own port on 127.0.0.1 instead, with a certificate from the
sandbox CA, and reports `loginServer` as `127.0.0.1:<port>`, as redis-servers
and function hosts get their own ports. The listener is a uvicorn server on a
thread of its own, serving the registry's `RegistryDataPlane` app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from app.sandbox.certs import CertificateAuthority

log = logging.getLogger("mlcache.sandbox.registry")


class RegistryHost:
    """The HTTPS server of one registry on 127.0.0.1:<port>."""

    def __init__(self, app: ASGIApp, port: int, cert_file: Path, key_file: Path) -> None:
        self.port = port
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
            ssl_certfile=str(cert_file),
            ssl_keyfile=str(key_file),
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            timeout_keep_alive=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=asyncio.run,
            args=(self._serve(),),
            name=f"registry-{port}",
            daemon=True,
        )

    async def _serve(self) -> None:
        await self._server.serve(sockets=[self._sock])
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
                raise RuntimeError(f"the registry listener on port {self.port} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._server.force_exit = True
        if self._thread.is_alive():
            self._thread.join(10)
        with contextlib.suppress(OSError):
            self._sock.close()


class RegistryHosts:
    """Every running registry listener, by registry name (lower case)."""

    def __init__(self, root: Path, ca: CertificateAuthority) -> None:
        self._root = root
        self._ca = ca
        self._hosts: dict[str, RegistryHost] = {}
        self._lock = threading.Lock()

    def start(self, name: str, port: int, app: ASGIApp) -> None:
        """Listen on `port` for registry `name` (replacing a listener it had).

        Raises OSError when the port cannot be bound."""
        self.stop(name)
        cert = self._ca.issue_leaf(self._root / name.lower(), "tls")
        host = RegistryHost(app, port, cert.cert_file, cert.key_file)
        host.start()
        with self._lock:
            self._hosts[name.lower()] = host
        log.info("registry %s listens on 127.0.0.1:%d", name, port)

    def running(self, name: str) -> bool:
        with self._lock:
            return name.lower() in self._hosts

    def stop(self, name: str) -> None:
        with self._lock:
            host = self._hosts.pop(name.lower(), None)
        if host is not None:
            host.stop()

    def stop_all(self) -> None:
        with self._lock:
            names = list(self._hosts)
        for name in names:
            self.stop(name)
