"""The sandbox's ARM endpoint: a Starlette app served by uvicorn over TLS.

`build_app(ctx, authority)` assembles every provider's routes behind the ARM
gates (bearer token, api-version, subscription and its tenant, fault injection),
and puts the Entra authority's paths (`app.sandbox.entra.AUTHORITY_PATH`) beside
them on the same endpoint, as its own app without the ARM gates; the gate also
writes each request to the request log (`app.sandbox.requestlog`). `SandboxServer`
owns one running sandbox: state, providers, their processes and the uvicorn
server thread; `start()` returns once requests are accepted, `stop()` stops
everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import BadInput
from app.sandbox.arm import (
    ArmError,
    arm_route,
    check_api_version,
    empty_response,
    json_response,
)
from app.sandbox.arm_auth import authenticate, check_subscription
from app.sandbox.certs import CertificateAuthority
from app.sandbox.directory import Directory
from app.sandbox.entra import AUTHORITY_PATH, EntraAuthority
from app.sandbox.entra_tokens import TokenIssuer
from app.sandbox.fault_gate import DropUnsupported, drop_connection, rule_headers
from app.sandbox.faults import FaultPlan, FaultRule
from app.sandbox.latency import LatencyProfile
from app.sandbox.offers import read_offer, write_offer
from app.sandbox.processes import ProcessSupervisor
from app.sandbox.providers import DATA_PLANE_ROOT, SandboxContext, load_providers
from app.sandbox.store import Store
from app.sandbox.tls import uvicorn_tls

log = logging.getLogger("mlcache.sandbox")
http_log = logging.getLogger("mlcache.sandbox.http")

_UNKNOWN_TYPE_PATH = re.compile(r"/providers/(?P<ns>[^/]+)/(?P<type>[^/]+)", re.IGNORECASE)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def _send_json(send: Send, status: int, body: bytes, extra: dict[str, str]) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    lowered = {k.lower() for k in extra}
    if "content-type" in lowered:
        headers = headers[1:]
    headers += [(k.lower().encode(), v.encode("latin-1")) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_arm_error(send: Send, error: ArmError) -> None:
    await _send_json(send, error.status, json.dumps(error.body()).encode(), error.headers)


class ArmGate:
    """ASGI middleware: token, api-version, subscription, then faults, then the router."""

    def __init__(self, app: ASGIApp, ctx: SandboxContext, tokens: TokenIssuer) -> None:
        self.app = app
        self.ctx = ctx
        self.tokens = tokens
        prefixes = [DATA_PLANE_ROOT]
        for provider in ctx.providers:
            prefixes.extend(provider.data_plane_prefixes)
        self._data_plane = tuple(prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status_holder: dict[str, int] = {}

        path: str = scope["path"]
        method: str = scope["method"]
        request_id = str(uuid.uuid4())
        correlation = _header(scope, b"x-ms-correlation-request-id") or request_id
        host = _header(scope, b"host") or ""

        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                if "logged" not in status_holder:
                    status_holder["logged"] = 1
                    self.ctx.request_log.write(method, host, path, int(message["status"]))
                # ARM's tracing headers, which clients log and show with errors.
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-ms-request-id", request_id.encode()),
                    (b"x-ms-correlation-request-id", correlation.encode()),
                ]
            await send(message)

        request = Request(scope)
        data_plane = path.startswith(self._data_plane)
        out: Send = logging_send
        if scope["method"] == "HEAD" and not data_plane:
            # ARM answers HEAD on any group or resource with 204 when it exists and
            # 404 when not (what check_existence / check_existence_by_id expect):
            # serve it as the GET of the same path, without the body.
            scope = {**scope, "method": "GET"}
            out = _head_answer(logging_send)
        try:
            if not data_plane:
                tenant_id = authenticate(self.ctx, self.tokens, request)
                check_api_version(request)
                check_subscription(self.ctx, self.tokens, path, tenant_id)
                # Providers answer per tenant where ARM does (`GET /subscriptions`).
                scope.setdefault("state", {})["tenant_id"] = tenant_id
            rule = self.ctx.faults.match(method, path)
            if rule is not None:
                log.info("fault rule %d matches %s %s", rule.index + 1, method, path)
                if rule.drop:
                    try:
                        await drop_connection(send)
                    except DropUnsupported:
                        raise ArmError(500, "InternalServerError",
                                       "Connection drop is not supported here.") from None
                    status_holder["status"] = 0
                    return
                if rule.fail_provisioning:
                    scope.setdefault("state", {})["fail_provisioning"] = {
                        "code": rule.error_code(),
                        "message": rule.error_message(),
                    }
                else:
                    await self._answer_fault(rule, path, out)
                    return
            await self.app(scope, receive, out)
        except ArmError as error:
            await _send_arm_error(out, error)
        finally:
            if "logged" not in status_holder:
                # No answer went out (a dropped connection): logged with status null.
                self.ctx.request_log.write(method, host, path, None)
            # DEBUG: an embedding program's log pane should not list every request;
            # `sandbox serve` turns this logger up to INFO on stderr.
            http_log.debug(
                "%s %s -> %s (%.0f ms)",
                method,
                path,
                status_holder.get("status", "-"),
                (time.monotonic() - started) * 1000,
            )

    async def _answer_fault(self, rule: FaultRule, path: str, send: Send) -> None:
        """A `status` rule's answer: its replayed `body` verbatim, or an error in the
        shape of the provider the path names (App Service's for Microsoft.Web)."""
        headers = rule_headers(rule)
        status = rule.status or 500
        if rule.has_body:
            await _send_json(send, status, json.dumps(rule.body).encode(), headers)
            return
        provider = self.ctx.provider_for_path(path)
        code, message = rule.error_code(), rule.error_message()
        error = (
            provider.fault_error(status, code, message, headers)
            if provider is not None
            else ArmError(status, code, message, headers)
        )
        await _send_arm_error(send, error)


def _head_answer(send: Send) -> Send:
    """Wrap `send` so a GET's answer goes out as ARM's answer to HEAD (no body, 2xx -> 204)."""

    async def head_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            status = 204 if 200 <= message["status"] < 300 else message["status"]
            headers = [
                (k, v)
                for k, v in message.get("headers", [])
                if k.lower() not in (b"content-length", b"content-type")
            ]
            if status != 204:
                headers.append((b"content-length", b"0"))
            await send({**message, "status": status, "headers": headers})
        elif message["type"] == "http.response.body":
            if not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b""})
        else:
            await send(message)

    return head_send


def _operation_routes(ctx: SandboxContext) -> list[BaseRoute]:
    ops = ctx.operations

    async def async_operation(request: Request) -> Response:
        op = ops.get(request.path_params["operationId"])
        if request.query_params.get("monitor", "").lower() == "true":
            return _location_answer(ctx, op)
        headers = {}
        if op["status"] == "InProgress" and not ctx.latency.is_fast:
            # Pollers wait for Retry-After when present, else their own (30 s) interval.
            headers["Retry-After"] = "1"
        return json_response(ops.status_body(op), headers=headers)

    async def operation_result(request: Request) -> Response:
        return _location_answer(ctx, ops.get(request.path_params["operationId"]))

    prefix = "/subscriptions/{subscriptionId}"
    return [
        arm_route(
            prefix + "/providers/{namespace}/locations/{location}/asyncOperations/{operationId}",
            async_operation,
            ["GET"],
        ),
        arm_route(
            prefix + "/providers/{namespace}/locations/{location}/operationResults/{operationId}",
            operation_result,
            ["GET"],
        ),
        arm_route(prefix + "/operationresults/{operationId}", operation_result, ["GET"]),
    ]


def _location_answer(ctx: SandboxContext, op: dict[str, Any]) -> Response:
    if op["status"] == "InProgress":
        return empty_response(202, ctx.operations.headers(op, async_operation=False, location=True))
    if op["status"] == "Failed":
        raise ArmError(op.get("errorStatus", 400), op["error"]["code"], op["error"]["message"])
    if op["finalBody"] and op["resourceId"]:
        record = ctx.store.resource(op["resourceId"])
        if record is not None:
            return json_response(record["body"])
    return empty_response(200)


async def _not_found(request: Request, exc: Exception) -> Response:
    path = request.url.path
    match = _UNKNOWN_TYPE_PATH.search(path)
    if match:
        return ArmError(
            400,
            "InvalidResourceType",
            f"The resource type '{match.group('type')}' could not be found in the namespace "
            f"'{match.group('ns')}' for api version "
            f"'{request.query_params.get('api-version', '')}'.",
        ).response()
    return ArmError(404, "NotFound", f"The path '{path}' is not part of the sandbox.").response()


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    return ArmError(
        405,
        "HttpMethodNotAllowed",
        f"The http method '{request.method}' is not allowed for the path '{request.url.path}'.",
    ).response()


async def _http_exception(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return await _not_found(request, exc)
    if status == 405:
        return await _method_not_allowed(request, exc)
    return ArmError(status, "BadRequest", str(getattr(exc, "detail", exc))).response()


async def _arm_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ArmError)
    return exc.response()


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {"error": {"code": "InternalServerError", "message": "The sandbox failed: " + str(exc)}},
        status_code=500,
    )


class SandboxRouter:
    """ASGI: the authority's paths go to the Entra app, everything else through ArmGate."""

    def __init__(self, arm: ASGIApp, authority: EntraAuthority) -> None:
        self.arm = arm
        self.authority = authority

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not AUTHORITY_PATH.match(scope["path"]):
            await self.arm(scope, receive, send)
            return
        started = time.monotonic()
        status: dict[str, int] = {}

        async def tracing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["status"] = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-ms-request-id", str(uuid.uuid4()).encode()),
                ]
            await send(message)

        try:
            await self.authority.app(scope, receive, tracing_send)
        finally:
            # The path only: queries and bodies here carry codes and tokens.
            http_log.debug(
                "%s %s -> %s (%.0f ms)",
                scope["method"],
                scope["path"],
                status.get("status", "-"),
                (time.monotonic() - started) * 1000,
            )


def build_app(ctx: SandboxContext, authority: EntraAuthority) -> ASGIApp:
    routes: list[BaseRoute] = _operation_routes(ctx)
    for provider in ctx.providers:
        routes.extend(provider.routes())
    app = Starlette(
        routes=routes,
        exception_handlers={
            ArmError: _arm_error,
            HTTPException: _http_exception,
            Exception: _internal_error,
        },
    )
    return SandboxRouter(ArmGate(app, ctx, authority.tokens), authority)


class SandboxServer:
    """One running sandbox on a state directory (used by `Sandbox` and `serve`)."""

    def __init__(
        self,
        state_dir: Path,
        latency: LatencyProfile,
        faults: FaultPlan,
        host: str = "127.0.0.1",
        port: int = 0,
        offer: str | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.host = host
        self.port = port
        state_dir.mkdir(parents=True, exist_ok=True)
        self.ca = CertificateAuthority(state_dir)
        store = Store(state_dir)
        # The user's password, like the static token, is new at every start.
        directory = Directory(store.tenants, password=secrets.token_urlsafe(18))
        self.tokens = TokenIssuer(directory)
        self.ctx = SandboxContext(
            state_dir=state_dir,
            store=store,
            latency=latency,
            faults=faults,
            ca=self.ca,
            processes=ProcessSupervisor(),
            directory=directory,
            tokens=self.tokens,
            token=secrets.token_urlsafe(32),
            offer=write_offer(state_dir, offer) if offer else read_offer(state_dir),
        )
        self.authority: EntraAuthority | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._stopped = False

    @property
    def endpoint(self) -> str:
        return self.ctx.endpoint

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this: without it, a response written as headers
        # then body waits for the client's delayed ACK (~40 ms per request).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise BadInput(
                f"the sandbox cannot listen on {self.host}:{self.port}: {exc.strerror}",
                "Choose another --port (0 picks a free one).",
            ) from None
        sock.listen(128)
        sock.set_inheritable(False)
        self._socket = sock
        port = sock.getsockname()[1]
        self.ctx.endpoint = f"https://{self.host}:{port}"
        # Hosts started by the providers below may ask for managed identity tokens
        # before the authority is built; their issuer is this endpoint.
        self.tokens.authority = self.ctx.endpoint
        leaf = self.ca.issue_leaf(self.state_dir / "tls", "arm")

        self.ctx.providers = load_providers(self.ctx)
        for provider in self.ctx.providers:
            for kind, handler in provider.operation_kinds().items():
                self.ctx.operations.register(kind, handler)
        try:
            for provider in self.ctx.providers:
                provider.start()
            self.ctx.operations.resume_pending()

            self.authority = EntraAuthority(
                self.ctx.directory,
                self.tokens,
                endpoint=self.ctx.endpoint,
                fast=self.ctx.latency.is_fast,
            )
            config = uvicorn.Config(
                build_app(self.ctx, self.authority),
                **uvicorn_tls(leaf.cert_file, leaf.key_file),
                log_config=None,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=2,
                timeout_keep_alive=5,
            )
            self._server = uvicorn.Server(config)
            self._thread = threading.Thread(
                target=asyncio.run,
                args=(self._serve(self._server, sock),),
                name="sandbox-arm",
                daemon=True,
            )
            self._thread.start()
            deadline = time.monotonic() + 15
            while not self._server.started:
                if not self._thread.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError("the sandbox's HTTPS server did not start")
                time.sleep(0.01)
        except BaseException:
            self.stop()
            raise
        log.info("sandbox listening on %s (state %s)", self.ctx.endpoint, self.state_dir)

    @staticmethod
    async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
        await server.serve(sockets=[sock])
        # A forced exit leaves idle keep-alive connections in their TLS shutdown,
        # waiting for the peer; abort them so no transport outlives the loop.
        for connection in list(server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()
        await asyncio.sleep(0)

    def stop(self) -> None:
        """Stop serving, then every provider's processes; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if self._server is not None:
            # Idle keep-alive TLS connections would hold a graceful shutdown for its
            # whole timeout; the clients retry on a fresh connection anyway.
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(10)
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
        self.ctx.operations.stop()
        for provider in reversed(self.ctx.providers):
            try:
                provider.stop()
            except Exception:
                log.exception("provider %s failed to stop", provider.namespace)
        self.ctx.processes.close()
        self.ctx.request_log.close()
        log.info("sandbox stopped")
