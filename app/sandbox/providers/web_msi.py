"""App Service's managed identity endpoint: the local token service of each function host.

A site with a managed identity runs with `IDENTITY_ENDPOINT` (the token service's
URL) and `IDENTITY_HEADER` (a secret the caller echoes in `X-IDENTITY-HEADER`, which
App Service rotates), plus the older `MSI_ENDPOINT`/`MSI_SECRET` pair, and
`azure.identity.ManagedIdentityCredential()` asks it:

    GET {IDENTITY_ENDPOINT}?resource=<uri>&api-version=2019-08-01
    X-IDENTITY-HEADER: <IDENTITY_HEADER>

    200 {"access_token", "expires_on": "<epoch seconds>", "resource", "token_type": "Bearer",
         "client_id": "<the identity's application id>"}

(api-version 2017-09-01 with a `secret` header, what MSI_ENDPOINT clients send, answers
the same with `expires_on` as a date.) Like App Service's, the endpoint is plain HTTP on
the loopback interface; one listener of the sandbox process serves every host, and the
header's value (new at every host start) decides whose token it is: a site's secret
gives only that site's identity. The tokens are signed by the sandbox's Entra
authority (`TokenIssuer.managed_identity_token`).
"""

from __future__ import annotations

import datetime
import http.server
import json
import logging
import secrets
import threading
import urllib.parse
from dataclasses import dataclass

from app.sandbox.entra_tokens import TokenIssuer, managed_identity_app_id
from app.sandbox.requestlog import RequestLog

log = logging.getLogger("mlcache.sandbox.web")

TOKEN_PATH = "/msi/token"
API_VERSIONS = ("2019-08-01", "2017-09-01")


@dataclass(frozen=True)
class HostIdentity:
    """The identity one running host may ask tokens for."""

    site: str
    principal_id: str
    tenant_id: str
    resource_id: str


class IdentityEndpoint:
    """The loopback token service every host with an identity is pointed at."""

    def __init__(self, tokens: TokenIssuer, request_log: RequestLog | None = None) -> None:
        self._tokens = tokens
        self._request_log = request_log
        self._secrets: dict[str, HostIdentity] = {}
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        server = self._ensure_server()
        return f"http://127.0.0.1:{server.server_address[1]}{TOKEN_PATH}"

    def register(self, identity: HostIdentity) -> dict[str, str]:
        """A fresh secret for a host about to start (the site's older ones stop working)
        and the environment App Service gives such a host."""
        secret = secrets.token_hex(16)
        with self._lock:
            for key in [k for k, v in self._secrets.items() if v.site == identity.site]:
                del self._secrets[key]
            self._secrets[secret] = identity
        url = self.url
        return {
            "IDENTITY_ENDPOINT": url,
            "IDENTITY_HEADER": secret,
            "MSI_ENDPOINT": url,
            "MSI_SECRET": secret,
        }

    def forget(self, site: str) -> None:
        """The site's identity is gone (removed, or the site deleted): refuse its secret."""
        with self._lock:
            for key in [k for k, v in self._secrets.items() if v.site.lower() == site.lower()]:
                del self._secrets[key]

    def identity_for(self, secret: str) -> HostIdentity | None:
        with self._lock:
            return self._secrets.get(secret) if secret else None

    def answer(self, query: str, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
        """The token service's answer to one GET: status and JSON body."""
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        version = params.get("api-version", "")
        if version not in API_VERSIONS:
            return 400, {"statusCode": 400, "message": f"The api-version '{version}' is not "
                         f"supported; use {API_VERSIONS[0]}."}
        header = "x-identity-header" if version == "2019-08-01" else "secret"
        identity = self.identity_for(headers.get(header, ""))
        if identity is None:
            # App Service refuses a missing or wrong header with 401 (Azure/azure-sdk-for-js#11595).
            return 401, {"statusCode": 401, "message": "Unauthorized"}
        resource = params.get("resource", "")
        if not resource:
            return 400, {"statusCode": 400, "message": "The 'resource' parameter is required."}
        wanted = [params[k] for k in ("client_id", "principal_id", "object_id", "mi_res_id")
                  if params.get(k)]
        app_id = managed_identity_app_id(identity.principal_id)
        own = {app_id.lower(), identity.principal_id.lower(), identity.resource_id.lower()}
        if any(w.lower() not in own for w in wanted):
            # User-assigned identities are not emulated: only the site's own is known.
            return 400, {"statusCode": 400,
                         "message": "No managed identity matches the given identifier."}
        token, expires_on = self._tokens.managed_identity_token(
            identity.principal_id, identity.tenant_id, resource,
            resource_id=identity.resource_id,
        )
        if version == "2019-08-01":
            expires: str = str(expires_on)
        else:
            when = datetime.datetime.fromtimestamp(expires_on, datetime.UTC)
            expires = when.strftime("%m/%d/%Y %I:%M:%S %p +00:00")
        return 200, {
            "access_token": token,
            "expires_on": expires,
            "resource": resource,
            "token_type": "Bearer",
            "client_id": app_id,
        }

    def _ensure_server(self) -> http.server.ThreadingHTTPServer:
        with self._lock:
            if self._server is None:
                endpoint = self

                class Handler(http.server.BaseHTTPRequestHandler):
                    server_version = "Sandbox-MSI"

                    def do_GET(self) -> None:
                        path, _, query = self.path.partition("?")
                        if path != TOKEN_PATH:
                            status, body = 404, {"statusCode": 404, "message": "Not found"}
                        else:
                            heads = {k.lower(): v for k, v in self.headers.items()}
                            status, body = endpoint.answer(query, heads)
                        data = json.dumps(body).encode()
                        self.send_response(status)
                        self.send_header("Content-Type", "application/json; charset=utf-8")
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                        if endpoint._request_log is not None:
                            endpoint._request_log.write(
                                "GET", self.headers.get("Host", ""), path, status
                            )

                    def log_message(self, format: str, *args: object) -> None:
                        log.debug("msi endpoint: " + format, *args)

                server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
                server.daemon_threads = True
                threading.Thread(
                    target=server.serve_forever, name="sandbox-msi", daemon=True
                ).start()
                self._server = server
            return self._server

    def shutdown(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            self._secrets.clear()
        if server is not None:
            server.shutdown()
            server.server_close()
