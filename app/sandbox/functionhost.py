"""A local HTTPS host for one function app: the sandbox's stand-in for the Functions runtime.

The sandbox's Microsoft.Web provider runs each site's package in a `FunctionHost`:
a child process (`python -m app.sandbox.functionhost`) that imports the
package's `function_app.py` (Azure Functions Python v2 programming model), finds
its HTTP-triggered functions through `FunctionApp.get_functions()`, and serves
them under `/api/<route>` with Starlette on uvicorn over TLS. Auth levels are
enforced as Azure does: `function` needs a function key or the master key
(`?code=` or `x-functions-key`), `admin` the master key, `anonymous` nothing.

Secrets stay out of argv and files: application settings reach the child as
its environment (as on Azure), and the keys through its stdin. Logs (startup,
one line per request, exceptions, whatever the app prints) go to `log_file`,
which the sandbox tails as the site's log stream. A package that fails to
import keeps the host up answering 503, with the reason in the log, like a
Functions host in an error state.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import inspect
import json
import logging
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from app.sandbox.functionhost_path import app_sys_path, preload_host
from app.sandbox.ports import free_port
from app.sandbox.tls import uvicorn_tls

log = logging.getLogger("mlcache.functionhost")

READY_LINE = b"READY\n"
# What Azure accepts on an HTTP trigger that names no methods.
ALL_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
STOP_GRACE_SECONDS = 5.0
# Settings the function template reads; never inherited from the sandbox's own
# environment, only taken from the site's application settings.
_CONTRACT_SETTINGS = ("MODEL_VERSION", "AZUREML_MODEL_DIR")
_CONTRACT_PREFIXES = ("REDIS_",)


class FunctionHostError(RuntimeError):
    """The host process did not come up; the message carries the end of its log."""


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class FunctionHost:
    """Parent-side handle on one function app's host process."""

    def __init__(
        self,
        *,
        package_dir: Path,
        app_settings: Mapping[str, str],
        function_keys: Mapping[str, str],
        master_key: str,
        cert_file: Path,
        key_file: Path,
        log_file: Path,
        port: int = 0,
        host: str = "127.0.0.1",
        python_path: Sequence[Path] = (),
    ) -> None:
        self.package_dir = Path(package_dir)
        # Where the app's packages are (an image's PYTHONPATH, or the environment made
        # for a package that carries none): its sys.path holds these, not the sandbox's.
        self.python_path = tuple(Path(p) for p in python_path)
        self.app_settings = dict(app_settings)
        self.function_keys = dict(function_keys)
        self.master_key = master_key
        self.cert_file = Path(cert_file)
        self.key_file = Path(key_file)
        self.log_file = Path(log_file)
        self.host = host
        # Chosen once, so a restart (new settings, new image) keeps the address.
        self._port = port or free_port(host)
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        return self._port

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self._port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _environment(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in _CONTRACT_SETTINGS and not k.startswith(_CONTRACT_PREFIXES)
        }
        env.update(self.app_settings)
        project_root = str(Path(__file__).resolve().parents[2])
        existing = env.get("PYTHONPATH", "")
        env["PYTHONPATH"] = project_root + (os.pathsep + existing if existing else "")
        # Keep stored packages byte-identical: no __pycache__ written into them.
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env

    def start(self, timeout: float = 30.0) -> None:
        """Start the host and return once it accepts HTTPS connections."""
        with self._lock:
            if self.running:
                return
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            argv = [
                sys.executable,
                "-m",
                "app.sandbox.functionhost",
                "--package-dir",
                str(self.package_dir),
                "--host",
                self.host,
                "--port",
                str(self._port),
                "--cert-file",
                str(self.cert_file),
                "--key-file",
                str(self.key_file),
                "--log-file",
                str(self.log_file),
                "--parent-pid",
                str(os.getpid()),
            ]
            for entry in self.python_path:
                argv += ["--python-path", str(entry)]
            with open(self.log_file, "ab") as early_log:
                proc = subprocess.Popen(
                    argv,
                    cwd=self.package_dir if self.package_dir.is_dir() else None,
                    env=self._environment(),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=early_log,
                    close_fds=True,
                )
            self._proc = proc
            assert proc.stdin is not None and proc.stdout is not None
            secrets = {"function_keys": self.function_keys, "master_key": self.master_key}
            try:
                proc.stdin.write(json.dumps(secrets).encode("utf-8"))
                proc.stdin.close()
            except BrokenPipeError:
                pass
            ready = self._wait_ready(proc.stdout, timeout)
            proc.stdout.close()
        if not ready:
            exited = proc.poll() is not None
            self.stop()
            what = "exited" if exited else f"did not accept connections within {timeout:g} s"
            raise FunctionHostError(
                f"function host for {self.package_dir.name} {what}; end of its log:\n"
                + _log_tail(self.log_file)
            )

    def _wait_ready(self, stream: IO[bytes], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        received = b""
        with selectors.DefaultSelector() as selector:
            selector.register(stream, selectors.EVENT_READ)
            while READY_LINE not in received:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    return False
                chunk = os.read(stream.fileno(), 64)
                if not chunk:
                    return False
                received += chunk
        return True

    def abort(self) -> None:
        """Kill a host that is still starting, so that `start()` (which holds the lock
        while it waits) fails at once; `stop()` then reaps it."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def stop(self) -> None:
        """Terminate the host, kill it after a grace period, reap it. Idempotent."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None and not stream.closed:
                stream.close()


# ====================================================================== child


@dataclass(frozen=True)
class HttpFunction:
    """One HTTP-triggered function as indexed from the app."""

    name: str
    route: str
    methods: tuple[str, ...] | None
    auth_level: str  # anonymous | function | admin
    trigger_arg: str
    handler: Callable[..., Any]


@dataclass(frozen=True)
class LoadedApp:
    functions: tuple[HttpFunction, ...]
    route_prefix: str
    error: str = ""


def _route_prefix(package_dir: Path) -> str:
    try:
        host_json = json.loads((package_dir / "host.json").read_text(encoding="utf-8"))
        prefix = host_json.get("extensions", {}).get("http", {}).get("routePrefix", "api")
    except (OSError, ValueError, AttributeError):
        prefix = "api"
    return str(prefix).strip("/")


def _enum_value(value: Any) -> str:
    return str(getattr(value, "value", value))


def load_function_app(package_dir: Path, python_path: Sequence[Path] = ()) -> LoadedApp:
    """Import function_app.py and index its HTTP functions; never raises.

    sys.path becomes the app's (`app_sys_path`): its packages are the image's own
    (`python_path`), as in a container; only the host's serving stack, imported
    before, stays the host's (`azure.functions` among it, as the worker's is)."""
    prefix = _route_prefix(package_dir)
    script = package_dir / "function_app.py"
    if not script.is_file():
        return LoadedApp((), prefix, f"{script.name} not found in the package")
    try:
        import importlib.util

        import azure.functions as func

        sys.path[:] = app_sys_path(package_dir, python_path, sys.path)
        spec = importlib.util.spec_from_file_location("function_app", script)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["function_app"] = module
        spec.loader.exec_module(module)
        apps = [v for v in vars(module).values() if isinstance(v, func.FunctionApp)]
        if len(apps) != 1:
            found = f"{len(apps)} found"
            return LoadedApp((), prefix, f"function_app.py must define one FunctionApp ({found})")
        functions: list[HttpFunction] = []
        for function in apps[0].get_functions():
            trigger = function.get_trigger()
            if trigger is None or _enum_value(trigger.get_binding_name()) != "httpTrigger":
                log.warning(
                    "function %s has a non-HTTP trigger; the sandbox host serves HTTP only",
                    function.get_function_name(),
                )
                continue
            methods = getattr(trigger, "methods", None)
            functions.append(
                HttpFunction(
                    name=str(function.get_function_name()),
                    route=str(getattr(trigger, "route", None) or function.get_function_name()),
                    methods=tuple(_enum_value(m).upper() for m in methods) if methods else None,
                    auth_level=_enum_value(getattr(trigger, "auth_level", None) or "function"),
                    trigger_arg=str(trigger.name),
                    handler=function.get_user_function(),
                )
            )
        return LoadedApp(tuple(functions), prefix)
    except BaseException as exc:
        log.error("loading function_app.py failed:\n%s", traceback.format_exc().rstrip())
        return LoadedApp((), prefix, f"{type(exc).__name__}: {exc}")


_AZURE_PARAM = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([a-zA-Z]+)[^}]*)?\??\}")


def starlette_path(prefix: str, route: str) -> str:
    """Azure route template → Starlette path: {id:int} stays, {*rest} becomes {rest:path}."""

    def convert(match: re.Match[str]) -> str:
        catch_all, name, constraint = match.groups()
        if catch_all:
            return "{" + name + ":path}"
        if constraint in ("int", "float"):
            return "{" + name + ":" + constraint + "}"
        return "{" + name + "}"

    path = _AZURE_PARAM.sub(convert, route.strip("/"))
    return "/" + "/".join(part for part in (prefix, path) if part)


def build_asgi_app(loaded: LoadedApp, function_keys: Mapping[str, str], master_key: str) -> Any:
    """The Starlette app serving `loaded` with Azure's key checks."""
    import azure.functions as func
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    all_keys = [k for k in (*function_keys.values(), master_key) if k]

    def presented_key(request: Request) -> str:
        return request.query_params.get("code") or request.headers.get("x-functions-key", "")

    def authorised(level: str, key: str) -> bool:
        if level == "anonymous":
            return True
        allowed = [master_key] if level == "admin" else all_keys
        return bool(key) and any(hmac.compare_digest(key, k) for k in allowed if k)

    def endpoint(function: HttpFunction) -> Callable[[Request], Awaitable[Response]]:
        is_async = inspect.iscoroutinefunction(function.handler)

        async def handle(request: Request) -> Response:
            if not authorised(function.auth_level, presented_key(request)):
                return Response(status_code=401)
            body = await request.body()
            az_request = func.HttpRequest(
                method=request.method,
                url=str(request.url),
                headers=dict(request.headers),
                params=dict(request.query_params),
                route_params={k: str(v) for k, v in request.path_params.items()},
                body=body,
            )
            kwargs = {function.trigger_arg: az_request}
            try:
                if is_async:
                    result = await function.handler(**kwargs)
                else:
                    result = await run_in_threadpool(function.handler, **kwargs)
            except Exception:
                log.error(
                    "Executed 'Functions.%s' (Failed)\n%s",
                    function.name,
                    traceback.format_exc().rstrip(),
                )
                return PlainTextResponse(
                    f"Exception while executing function: Functions.{function.name}",
                    status_code=500,
                )
            return to_response(result)

        return handle

    def to_response(result: Any) -> Response:
        if isinstance(result, func.HttpResponse):
            headers = {k: v for k, v in result.headers.items() if k.lower() != "content-length"}
            media_type = None
            if not any(k.lower() == "content-type" for k in headers) and result.mimetype:
                media_type = result.mimetype
                if result.charset and (
                    media_type.startswith("text/") or media_type.endswith("json")
                ):
                    media_type += f"; charset={result.charset}"
            return Response(
                result.get_body(),
                status_code=result.status_code,
                headers=headers,
                media_type=media_type,
            )
        if result is None:
            return Response(status_code=204)
        if isinstance(result, bytes | str):
            return PlainTextResponse(result)
        return PlainTextResponse(str(result))

    async def host_down(request: Request) -> Response:
        return PlainTextResponse(
            "Function host is not running: the function app failed to load "
            f"({loaded.error}). See the site's log stream.",
            status_code=503,
        )

    async def landing(request: Request) -> Response:
        if loaded.error:
            return PlainTextResponse("Function host error.", status_code=503)
        return PlainTextResponse("Your Functions app is up and running.")

    async def host_status(request: Request) -> Response:
        if not authorised("admin", presented_key(request)):
            return Response(status_code=401)
        state = "Error" if loaded.error else "Running"
        errors = [loaded.error] if loaded.error else []
        return JSONResponse({"state": state, "errors": errors})

    routes: list[Route] = [
        Route("/", landing, methods=["GET"]),
        Route("/admin/host/status", host_status, methods=["GET"]),
    ]
    if loaded.error:
        prefix = "/" + loaded.route_prefix if loaded.route_prefix else ""
        routes.append(Route(prefix + "/{rest:path}", host_down, methods=list(ALL_METHODS)))
    for function in loaded.functions:
        routes.append(
            Route(
                starlette_path(loaded.route_prefix, function.route),
                endpoint(function),
                methods=list(function.methods or ALL_METHODS),
                name=function.name,
            )
        )
    return RequestLog(Starlette(routes=routes))


class RequestLog:
    """ASGI middleware: one log line per request with status and duration, never the query."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            # The query string can hold `code=<function key>`: log the path only.
            log.info(
                "%s %s %d %.1fms",
                scope["method"],
                scope["path"],
                status[0],
                (time.perf_counter() - started) * 1000,
            )


def _watch_parent(parent_pid: int) -> None:
    """Exit when the parent goes away. A watchdog rather than PR_SET_PDEATHSIG, which
    fires when the *thread* that spawned us exits, and the sandbox spawns from
    worker threads."""
    while True:
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(STOP_GRACE_SECONDS)
            os._exit(1)
        time.sleep(0.5)


def _redirect_output(log_file: Path) -> int:
    """Point fds 1 and 2 at the log (so prints and C-level output land there);
    return a duplicate of the original stdout for the readiness line."""
    ready_fd = os.dup(1)
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
    return ready_fd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.sandbox.functionhost")
    parser.add_argument("--package-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert-file", type=Path, required=True)
    parser.add_argument("--key-file", type=Path, required=True)
    parser.add_argument("--log-file", type=Path, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--python-path", type=Path, action="append", default=[])
    args = parser.parse_args(argv)

    secrets = json.loads(sys.stdin.read() or "{}")
    ready_fd = _redirect_output(args.log_file)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    threading.Thread(target=_watch_parent, args=(args.parent_pid,), daemon=True).start()

    package_dir = args.package_dir.resolve()
    log.info("Starting function host for %s (pid %d)", package_dir, os.getpid())
    with contextlib.suppress(OSError):
        os.chdir(package_dir)
    # The host's own web stack is imported before sys.path becomes the app's.
    preload_host()
    import uvicorn

    loaded = load_function_app(package_dir, args.python_path)
    if loaded.error:
        log.error("Function host is in an error state: %s", loaded.error)
    for function in loaded.functions:
        log.info(
            "Found function %s: %s %s (auth level %s)",
            function.name,
            ",".join(function.methods or ("any method",)),
            starlette_path(loaded.route_prefix, function.route),
            function.auth_level,
        )
    app = build_asgi_app(
        loaded, dict(secrets.get("function_keys", {})), str(secrets.get("master_key", ""))
    )

    class ReadyServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                log.info("Host listening on https://%s:%d", args.host, args.port)
                os.write(ready_fd, READY_LINE)
                os.close(ready_fd)

    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        **uvicorn_tls(args.cert_file, args.key_file),
        log_config=None,
        access_log=False,
        # Named, not "auto": the choice is imported while serving, from the host's
        # stack preloaded above, never probed on the app's sys.path.
        http="h11",
        ws="none",
        loop="asyncio",
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    ReadyServer(config).run()
    log.info("Function host stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
