"""One HTTPS listener per sandbox registry: the host its `loginServer` names.

On Azure a registry's data plane lives at its own host (`<name>.azurecr.io`),
which a client takes from ARM's answer. There is no DNS here, so each sandbox
registry gets its own port on 127.0.0.1 instead, with a certificate from the
sandbox CA, and reports `loginServer` as `127.0.0.1:<port>`, as redis-servers
and function hosts get their own ports. The listener is a uvicorn server on a
thread of its own, serving the registry's `RegistryDataPlane` app.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from starlette.types import ASGIApp

from app.sandbox.certs import CertificateAuthority
from app.sandbox.fault_gate import FaultGate, registry_error
from app.sandbox.faults import FaultPlan
from app.sandbox.requestlog import RequestLog, RequestLogMiddleware
from app.sandbox.tls_listener import TlsListener

log = logging.getLogger("mlcache.sandbox.registry")


class RegistryHost(TlsListener):
    """The HTTPS server of one registry on 127.0.0.1:<port>, behind the request log and
    the faults file's rules (`fault_gate`), as ARM is."""

    def __init__(self, app: ASGIApp, port: int, cert_file: Path, key_file: Path,
                 faults: FaultPlan, request_log: RequestLog) -> None:
        gated = FaultGate(RequestLogMiddleware(app, request_log), faults, registry_error,
                          request_log)
        super().__init__(gated, port, cert_file, key_file, "registry")


class RegistryHosts:
    """Every running registry listener, by registry name (lower case)."""

    def __init__(self, root: Path, ca: CertificateAuthority, faults: FaultPlan,
                 request_log: RequestLog) -> None:
        self._root = root
        self._ca = ca
        self._faults = faults
        self._request_log = request_log
        self._hosts: dict[str, RegistryHost] = {}
        self._lock = threading.Lock()

    def start(self, name: str, port: int, app: ASGIApp) -> None:
        """Listen on `port` for registry `name` (replacing a listener it had).

        Raises OSError when the port cannot be bound."""
        self.stop(name)
        cert = self._ca.issue_leaf(self._root / name.lower(), "tls")
        host = RegistryHost(app, port, cert.cert_file, cert.key_file, self._faults,
                            self._request_log)
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
