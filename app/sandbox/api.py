"""Public API of the sandbox: start one, or connect to one that runs.

    from app.sandbox import Sandbox, connect

    with Sandbox.start(state_dir, latency="fast", faults=None) as sb:
        client = ResourceManagementClient(
            sb.credential(), sb.subscription_id, base_url=sb.endpoint,
            credential_scopes=[sb.credential_scope], connection_verify=str(sb.ca_cert))

    conn = connect(state_dir)   # a sandbox served by `mlcache-deploy sandbox serve`

    with SandboxProcess.start(state_dir) as proc:   # `sandbox serve` as a child process
        proc.connection.endpoint

    stop_serving(state_dir)   # `sandbox stop`; SandboxProcess.start(detach=True) outlives us

Both objects carry `endpoint`, `ca_cert` (Path), `token`, `subscription_id`,
`state_dir` and `credential()`, and for signing in with azure-identity
`authority`, `tenant_id`, `tenants`, `username`, `password` and
`identity_kwargs()`. `Sandbox.start` runs the server in a thread of the calling
process and stops it (and every process it started) on exit. A running sandbox
writes `connection.json` (endpoint, CA, subscription, token, authority, tenants,
user) and `sandbox.pid` into its state directory and holds `sandbox.lock`, so two
sandboxes never share a directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from app.errors import BadInput, ServiceFailure
from app.sandbox.credential import SandboxCredential
from app.sandbox.faults import FaultFileError, FaultPlan, load_faults, parse_rules
from app.sandbox.latency import LatencyProfile, resolve_latency
from app.sandbox.offers import resolve_offer, write_offer
from app.sandbox.processes import pid_alive

log = logging.getLogger("mlcache.sandbox")

CONNECTION_FILE = "connection.json"
PID_FILE = "sandbox.pid"
LOCK_FILE = "sandbox.lock"
CREDENTIAL_SCOPE = "https://management.azure.com/.default"


@dataclass(frozen=True)
class SandboxTenant:
    """A tenant of the sandbox's directory and the subscriptions it holds."""

    tenant_id: str
    name: str
    default_domain: str
    home: bool
    subscriptions: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "name": self.name,
            "default_domain": self.default_domain,
            "home": self.home,
            "subscriptions": list(self.subscriptions),
        }


@dataclass(frozen=True)
class SandboxConnection:
    """How to reach a running sandbox (what `connection.json` holds)."""

    endpoint: str
    ca_cert: Path
    token: str
    subscription_id: str
    state_dir: Path
    credential_scope: str = CREDENTIAL_SCOPE
    # The Entra authority host (the endpoint itself) and who signs in there.
    authority: str = ""
    tenants: tuple[SandboxTenant, ...] = ()
    username: str = ""
    password: str = ""
    # `127.0.0.1:<port>` of the anonymous base-image registry (Microsoft Container
    # Registry's stand-in); "" in a connection.json written before it existed.
    base_registry: str = ""

    def credential(self) -> SandboxCredential:
        return SandboxCredential(self.token)

    @property
    def tenant_id(self) -> str:
        """The home tenant (the one holding `subscription_id`)."""
        return next((t.tenant_id for t in self.tenants if t.home), "")

    @property
    def guest_tenant(self) -> SandboxTenant | None:
        """The tenant where the sandbox user is a guest, with the second subscription."""
        return next((t for t in self.tenants if not t.home), None)

    def identity_kwargs(self) -> dict[str, Any]:
        """What an azure-identity credential needs to sign in here instead of at Entra:
        the authority, no instance discovery (it would ask login.microsoftonline.com),
        and the sandbox CA for its HTTP pipeline (MSAL's requests go through it)."""
        return {
            "authority": self.authority,
            "disable_instance_discovery": True,
            "connection_verify": str(self.ca_cert),
        }

    def approve_device_code(self, user_code: str) -> None:
        """Approve a device code on the sandbox's device login page as its user."""
        from app.sandbox.signin_browser import approve_device_code

        approve_device_code(
            self.authority,
            user_code,
            ca_cert=self.ca_cert,
            username=self.username,
            password=self.password,
        )

    def complete_browser_sign_in(self, authorize_url: str) -> None:
        """Do what a person does in a browser with an authorize URL: sign in as the sandbox
        user, which delivers the code to the application's redirect URI."""
        from app.sandbox.signin_browser import complete_browser_sign_in

        complete_browser_sign_in(
            authorize_url, ca_cert=self.ca_cert, username=self.username, password=self.password
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "ca_cert": str(self.ca_cert),
            "subscription_id": self.subscription_id,
            "token": self.token,
            "authority": self.authority,
            "tenant_id": self.tenant_id,
            "tenants": [t.as_json() for t in self.tenants],
            "user": {"username": self.username, "password": self.password},
            "base_registry": self.base_registry,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], state_dir: Path) -> SandboxConnection:
        """Read `connection.json` (or the line `serve` prints); KeyError/TypeError if torn."""
        user = data.get("user") or {}
        return cls(
            endpoint=str(data["endpoint"]),
            ca_cert=Path(data["ca_cert"]),
            token=str(data["token"]),
            subscription_id=str(data["subscription_id"]),
            state_dir=state_dir,
            authority=str(data.get("authority", data["endpoint"])),
            tenants=tuple(
                SandboxTenant(
                    tenant_id=str(t["tenant_id"]),
                    name=str(t["name"]),
                    default_domain=str(t["default_domain"]),
                    home=bool(t["home"]),
                    subscriptions=tuple(str(s) for s in t["subscriptions"]),
                )
                for t in data.get("tenants", [])
            ),
            username=str(user.get("username", "")),
            password=str(user.get("password", "")),
            base_registry=str(data.get("base_registry", "")),
        )


def _resolve_faults(faults: FaultPlan | Path | str | dict[str, Any] | None) -> FaultPlan:
    if faults is None:
        return FaultPlan()
    if isinstance(faults, FaultPlan):
        return faults
    try:
        if isinstance(faults, dict):
            return parse_rules(faults)
        return load_faults(Path(faults))
    except FaultFileError as exc:
        raise BadInput(str(exc), "Fix the faults file; see docs/sandbox.md.") from None


def read_pid_file(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir / PID_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def running_pid(state_dir: Path) -> int | None:
    """The pid of the process serving `state_dir`, if one is alive."""
    info = read_pid_file(state_dir)
    if not info or not isinstance(info.get("pid"), int):
        return None
    pid = int(info["pid"])
    if not pid_alive(pid):
        return None
    # A live pid is only ours if that process still holds the lock.
    try:
        with open(state_dir / LOCK_FILE, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None
    except BlockingIOError:
        return pid
    except OSError:
        return None


def connect(state_dir: Path | str) -> SandboxConnection:
    """Attach to the sandbox serving `state_dir`; BadInput if none runs there."""
    state = Path(state_dir).expanduser().resolve()
    path = state / CONNECTION_FILE
    if running_pid(state) is None or not path.exists():
        raise BadInput(
            f"no sandbox is running in {state}",
            f"Start one with: mlcache-deploy sandbox serve --state-dir {state}",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return SandboxConnection.from_json(data, state)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadInput(
            f"the sandbox connection file {path} is unreadable ({exc})",
            "Restart the sandbox to rewrite it.",
        ) from None


class Sandbox:
    """A sandbox running in this process. Use `Sandbox.start(...)` as a context manager."""

    def __init__(
        self,
        state_dir: Path,
        latency: LatencyProfile,
        faults: FaultPlan,
        host: str = "127.0.0.1",
        port: int = 0,
        owner: str = "embedded",
        offer: str | None = None,
    ) -> None:
        from app.sandbox.providers.registry import base_registry_host
        from app.sandbox.server import SandboxServer

        self.state_dir = state_dir
        self._owner = owner
        self._lock_handle: IO[str] | None = None
        self._acquire_lock()
        try:
            self._server = SandboxServer(
                state_dir, latency, faults, host=host, port=port, offer=offer
            )
            self._server.start()
        except BaseException:
            self._release_lock()
            raise
        directory = self._server.ctx.directory
        self.connection = SandboxConnection(
            endpoint=self._server.endpoint,
            ca_cert=self._server.ca.cert_file,
            token=self._server.ctx.token,
            subscription_id=self._server.ctx.subscription_id,
            state_dir=state_dir,
            authority=self._server.endpoint,
            tenants=tuple(
                SandboxTenant(
                    tenant_id=t.tenant_id,
                    name=t.display_name,
                    default_domain=t.default_domain,
                    home=not t.guest,
                    subscriptions=tuple(s.subscription_id for s in t.subscriptions),
                )
                for t in directory.tenants
            ),
            username=directory.user.username,
            password=directory.user.password,
            base_registry=base_registry_host(self._server.ctx),
        )
        self._write_files()

    @classmethod
    def start(
        cls,
        state_dir: Path | str,
        latency: str | float | LatencyProfile = "fast",
        faults: FaultPlan | Path | str | dict[str, Any] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        owner: str = "embedded",
        offer: str | None = None,
    ) -> Sandbox:
        """Start serving `state_dir`; returns once requests are accepted.

        `offer` ("pay-as-you-go" or "free-trial") makes the subscription that kind and
        is kept in the state directory; None keeps the offer it has (pay-as-you-go
        at first). Raises BadInput for an unusable latency, offer or faults file, or
        when another sandbox already runs on the same directory. `owner="serve"`
        marks the process as one `mlcache-deploy sandbox stop` may signal.
        """
        try:
            profile = resolve_latency(latency)
            if offer is not None:
                resolve_offer(offer)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        if host != "localhost" and not _is_loopback(host):
            raise BadInput(
                f"the sandbox listens on loopback only, not on {host}",
                "Use --host 127.0.0.1 (the default).",
            )
        plan = _resolve_faults(faults)
        state = Path(state_dir).expanduser().resolve()
        return cls(state, profile, plan, host=host, port=port, owner=owner, offer=offer)

    # the connection's attributes, for convenience

    @property
    def endpoint(self) -> str:
        return self.connection.endpoint

    @property
    def ca_cert(self) -> Path:
        return self.connection.ca_cert

    @property
    def token(self) -> str:
        return self.connection.token

    @property
    def subscription_id(self) -> str:
        return self.connection.subscription_id

    @property
    def credential_scope(self) -> str:
        return CREDENTIAL_SCOPE

    def credential(self) -> SandboxCredential:
        return self.connection.credential()

    @property
    def authority(self) -> str:
        return self.connection.authority

    @property
    def base_registry(self) -> str:
        return self.connection.base_registry

    @property
    def tenant_id(self) -> str:
        return self.connection.tenant_id

    @property
    def tenants(self) -> tuple[SandboxTenant, ...]:
        return self.connection.tenants

    @property
    def guest_tenant(self) -> SandboxTenant | None:
        return self.connection.guest_tenant

    @property
    def username(self) -> str:
        return self.connection.username

    def identity_kwargs(self) -> dict[str, Any]:
        return self.connection.identity_kwargs()

    def approve_device_code(self, user_code: str) -> None:
        self.connection.approve_device_code(user_code)

    def complete_browser_sign_in(self, authorize_url: str) -> None:
        self.connection.complete_browser_sign_in(authorize_url)

    @property
    def context(self) -> Any:
        """The server's SandboxContext (for in-process tests and tools)."""
        return self._server.ctx

    def wait_idle(self, timeout: float | None = None) -> None:
        """Wait until no long-running operation is still working."""
        self._server.ctx.operations.wait_idle(timeout)

    def stop(self) -> None:
        """Stop the server and every process it started."""
        try:
            self._server.stop()
        finally:
            for name in (CONNECTION_FILE, PID_FILE):
                with contextlib.suppress(FileNotFoundError):
                    (self.state_dir / name).unlink()
            self._release_lock()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _acquire_lock(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.state_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held while running
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            info = read_pid_file(self.state_dir) or {}
            raise BadInput(
                f"a sandbox already runs in {self.state_dir} (pid {info.get('pid', '?')})",
                "Use it (it is what `connect` attaches to), or stop it first: "
                f"mlcache-deploy sandbox stop --state-dir {self.state_dir}",
            ) from None
        self._lock_handle = handle

    def _release_lock(self) -> None:
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    def _write_files(self) -> None:
        _write_json_private(self.state_dir / CONNECTION_FILE, self.connection.as_json())
        _write_json_private(self.state_dir / PID_FILE, {"pid": os.getpid(), "owner": self._owner})


class SandboxProcess:
    """`mlcache-deploy sandbox serve` running as a separate process (for tests and tools).

        with SandboxProcess.start(state_dir, latency="fast") as proc:
            proc.connection.endpoint, proc.pid ...

    Its stderr goes to `DIR/sandbox.log`. `stop()` sends SIGTERM and waits, as
    `mlcache-deploy sandbox stop` does; `kill()` is SIGKILL (children still die
    through their parent-death signal).
    """

    def __init__(
        self, popen: subprocess.Popen[str], connection: SandboxConnection, ready_line: str
    ) -> None:
        self.popen = popen
        self.connection = connection
        self.ready_line = ready_line  # the JSON line `serve` printed, verbatim

    @property
    def pid(self) -> int:
        return self.popen.pid

    @classmethod
    def start(
        cls,
        state_dir: Path | str,
        latency: str | float = "fast",
        faults: Path | str | None = None,
        *,
        timeout: float = 60.0,
        offer: str | None = None,
        detach: bool = False,
    ) -> SandboxProcess:
        """Run `sandbox serve` on `state_dir`; `offer` is written to the state directory
        first (where `serve` reads it), as `Sandbox.start(offer=...)` keeps it.

        `detach=True`: its own session and process group, so a Ctrl-C, hang-up or
        signal meant for this program's group misses it and it outlives this program
        (`serve` writes nothing after the ready line, so the pipe closing is harmless)."""
        state = Path(state_dir).expanduser().resolve()
        state.mkdir(parents=True, exist_ok=True)
        if offer is not None:
            try:
                write_offer(state, offer)
            except ValueError as exc:
                raise BadInput(str(exc)) from None
        argv = [sys.executable, "-m", "app", "sandbox", "serve", "--state-dir", str(state)]
        argv += ["--latency", str(latency)]
        if faults is not None:
            argv += ["--faults", str(faults)]
        log_path = state / "sandbox.log"
        with open(log_path, "ab") as log_file:
            popen = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=log_file,
                stdin=subprocess.DEVNULL,
                text=True,
                cwd=Path(__file__).resolve().parents[2],
                start_new_session=detach,
            )
        assert popen.stdout is not None
        ready: list[str] = []
        reader = threading.Thread(
            target=lambda: ready.append(popen.stdout.readline() if popen.stdout else ""),
            daemon=True,
        )
        reader.start()
        reader.join(timeout)
        line = ready[0] if ready else ""
        if not line:
            popen.kill()
            popen.wait()
            tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise ServiceFailure(f"the sandbox process did not start: {tail.strip()}")
        connection = SandboxConnection.from_json(json.loads(line), state)
        return cls(popen, connection, line)

    def stop(self, timeout: float = 30.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return int(self.popen.returncode)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait()
        if self.popen.stdout is not None:
            self.popen.stdout.close()

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self.popen.stdout is not None:
            self.popen.stdout.close()


def stop_serving(state_dir: Path | str, timeout: float = 30.0) -> int | None:
    """SIGTERM the `sandbox serve` process of `state_dir` and wait until it is gone.

    Returns its pid, or None when no sandbox runs there. BadInput when the sandbox
    runs inside another program (only that program may stop it); ServiceFailure
    when it is still there after `timeout` seconds.
    """
    state = Path(state_dir).expanduser().resolve()
    pid = running_pid(state)
    if pid is None:
        return None
    if (read_pid_file(state) or {}).get("owner") != "serve":
        raise BadInput(f"the sandbox in {state} runs inside another program (pid {pid})",
                       "Close that program to stop it.")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while running_pid(state) is not None:
        if time.monotonic() > deadline:
            raise ServiceFailure(f"the sandbox (pid {pid}) did not stop within {timeout:g} s")
        time.sleep(0.1)
    return pid


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _write_json_private(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1)
    os.replace(tmp, path)
