"""What answers on a site's port while its host does not run: App Service's front end.

On Azure a client of a site that cannot start (or was stopped) still reaches the
front end, which answers 503 or 403; it never sees a refused connection. The
runtime keeps one of these listening on the site's port for as long as no
function host does. Its answers go to the sandbox's request log, since it is an
HTTP server of the sandbox process.
"""

from __future__ import annotations

import http.server
import logging
import socket
import ssl
import threading
from typing import Any

from app.sandbox.certs import LeafCertificate
from app.sandbox.requestlog import RequestLog
from app.sandbox.tls import server_ssl_context

log = logging.getLogger("mlcache.sandbox.web")

_UNAVAILABLE_PAGE = (
    b"<html><head><title>Service Unavailable</title></head><body>"
    b"<h1>:( Application Error</h1><p>The function app is not running. "
    b"Its log stream says why.</p></body></html>"
)
# What App Service shows for a site that was stopped on purpose.
_STOPPED_PAGE = (
    b"<html><head><title>Site Disabled</title></head><body>"
    b"<h1>Error 403 - This web app is stopped.</h1></body></html>"
)


class _UnavailableHandler(http.server.BaseHTTPRequestHandler):
    server_version = "Sandbox-Frontend"
    server: _TlsServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        stopped = self.server.stopped
        body = _STOPPED_PAGE if stopped else _UNAVAILABLE_PAGE
        status = 403 if stopped else 503
        if self.server.request_log is not None:
            self.server.request_log.write(
                self.command, self.headers.get("Host", ""), self.path, status
            )
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        if not stopped:
            self.send_header("Retry-After", "10")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _answer

    def log_message(self, format: str, *args: Any) -> None:
        return


class _TlsServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        context: ssl.SSLContext,
        stopped: bool,
        request_log: RequestLog | None,
    ) -> None:
        self._context = context
        self.stopped = stopped
        self.request_log = request_log
        super().__init__(address, _UnavailableHandler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        # Handshake in the handler thread, so one slow client cannot stall accept().
        wrapped = self._context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return wrapped, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("placeholder request from %s failed", client_address, exc_info=True)


class UnavailableServer:
    """An HTTPS listener on a site's port while its host does not run.

    It answers 503 (the host cannot start; the log says why), or 403 "This web
    app is stopped" for a site stopped on purpose, as App Service's front end does.
    """

    def __init__(
        self,
        port: int,
        cert: LeafCertificate,
        host: str = "127.0.0.1",
        stopped: bool = False,
        request_log: RequestLog | None = None,
    ) -> None:
        context = server_ssl_context(cert.cert_file, cert.key_file)
        self.stopped = stopped
        self._server = _TlsServer((host, port), context, stopped, request_log)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"site-503-{port}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

