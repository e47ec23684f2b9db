"""One real redis-server per sandbox cache, configured the way the cache resource says.

The server listens on 127.0.0.1 only: a TLS port with a certificate from the
sandbox CA (TLS 1.2+), and the non-TLS port only while enableNonSslPort is true.
Both access keys open the `default` user; the config file holds only their
SHA-256 hashes (Redis ACL `#<hash>` rules), never the keys. Principals with a
Microsoft Entra access-policy assignment are ACL users of their own (named by
object id, passwords the hashes of their valid tokens; see `redis_entra`).
Changes (a regenerated key, the non-TLS port, memory policy, Entra users) are
applied to the live server through an admin user whose password exists only in
this process, and written to the config file, so a restarted server has them too.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from app.sandbox.certs import REDIS_TLS_PROTOCOLS, CertificateAuthority, LeafCertificate
from app.sandbox.ports import free_port
from app.sandbox.processes import ProcessSupervisor, processes_mentioning, terminate_pid

log = logging.getLogger("mlcache.sandbox.redis")

ADMIN_USER = "sandbox-admin"
REDIS_SERVER = "redis-server"
_START_TIMEOUT = 15.0


class RedisStartError(RuntimeError):
    """redis-server did not come up; the message carries the end of its log."""

    def __init__(self, message: str, port_in_use: bool = False) -> None:
        super().__init__(message)
        self.port_in_use = port_in_use


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def redis_server_version() -> str:
    """The version of the installed redis-server, e.g. '7.0.15'."""
    binary = shutil.which(REDIS_SERVER)
    if binary is None:
        return "unknown"
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    for part in out.stdout.split():
        if part.startswith("v="):
            return part[2:]
    return "unknown"


@dataclass
class EntraUser:
    """A principal's ACL user: its access policy's rules and its valid tokens' hashes."""

    rules: tuple[str, ...]
    hashes: list[str]

    def acl(self) -> list[str]:
        """`ACL SETUSER` arguments after the name: on, these passwords, these rights."""
        return ["on", *[f"#{h}" for h in self.hashes], *self.rules]


@dataclass
class RedisSpec:
    """How one cache's server runs."""

    directory: Path
    tls_port: int
    plain_port: int | None
    key_hashes: list[str]
    maxmemory_bytes: int
    maxmemory_policy: str
    maxclients: int
    tls_protocols: str
    cert: LeafCertificate
    ca_file: Path
    notify_keyspace_events: str = ""
    entra_users: dict[str, EntraUser] = field(default_factory=dict)

    @property
    def config_file(self) -> Path:
        return self.directory / "redis.conf"


class RedisInstance:
    """A running redis-server and the admin connection that reconfigures it."""

    def __init__(
        self,
        spec: RedisSpec,
        proc: subprocess.Popen[bytes],
        admin_password: str,
        supervisor: ProcessSupervisor,
    ) -> None:
        self.spec = spec
        self.proc = proc
        self._admin_password = admin_password
        self._supervisor = supervisor

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def admin(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=self.spec.tls_port,
            ssl=True,
            ssl_ca_certs=str(self.spec.ca_file),
            username=ADMIN_USER,
            password=self._admin_password,
            socket_timeout=5,
            socket_connect_timeout=5,
        )

    def set_key_hashes(self, hashes: list[str]) -> None:
        self.spec.key_hashes = list(hashes)
        with self.admin() as conn:
            conn.execute_command(
                "ACL", "SETUSER", "default", "resetpass", *[f"#{h}" for h in hashes]
            )
        _write_config(self.spec, self._admin_password)

    def set_entra_user(self, name: str, user: EntraUser) -> None:
        """Create or change a principal's user; its connections stay (Azure re-checks a
        connection's rights per command, and so does Redis)."""
        self.spec.entra_users[name] = user
        with self.admin() as conn:
            conn.execute_command(
                "ACL", "SETUSER", name, "resetpass", "resetkeys", "resetchannels", "-@all",
                *user.acl(),
            )
        _write_config(self.spec, self._admin_password)

    def delete_entra_user(self, name: str) -> None:
        """Remove a principal's user: Redis disconnects every client authenticated as it."""
        self.spec.entra_users.pop(name, None)
        with self.admin() as conn:
            conn.execute_command("ACL", "DELUSER", name)
        _write_config(self.spec, self._admin_password)

    def disconnect_clients(self) -> None:
        """Close every client connection but the admin's own (Azure does this when access
        key authentication is switched on or off)."""
        with self.admin() as conn:
            conn.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")

    def set_plain_port(self, port: int | None) -> None:
        self.spec.plain_port = port
        with self.admin() as conn:
            conn.config_set("port", port or 0)
        _write_config(self.spec, self._admin_password)

    def set_memory(self, maxmemory_bytes: int, policy: str, maxclients: int) -> None:
        self.spec.maxmemory_bytes = maxmemory_bytes
        self.spec.maxmemory_policy = policy
        self.spec.maxclients = maxclients
        with self.admin() as conn:
            conn.config_set("maxmemory", maxmemory_bytes)
            conn.config_set("maxmemory-policy", policy)
            conn.config_set("maxclients", maxclients)
        _write_config(self.spec, self._admin_password)

    def set_tls_protocols(self, protocols: str) -> None:
        self.spec.tls_protocols = protocols
        with self.admin() as conn:
            conn.config_set("tls-protocols", protocols)
        _write_config(self.spec, self._admin_password)

    def save_snapshot(self) -> None:
        """Best effort: write dump.rdb so the data survives a sandbox restart."""
        try:
            with self.admin() as conn:
                conn.save()
        except (redis.RedisError, OSError) as exc:
            log.warning("redis-server pid %d: snapshot failed: %s", self.pid, exc)

    def stop(self) -> None:
        self._supervisor.stop(self.proc)


def _write_config(spec: RedisSpec, admin_password: str) -> None:
    spec.directory.mkdir(parents=True, exist_ok=True)
    passwords = " ".join(f"#{h}" for h in spec.key_hashes)
    lines = [
        "bind 127.0.0.1",
        "protected-mode yes",
        f"port {spec.plain_port or 0}",
        f"tls-port {spec.tls_port}",
        f'tls-cert-file "{spec.cert.cert_file}"',
        f'tls-key-file "{spec.cert.key_file}"',
        f'tls-ca-cert-file "{spec.ca_file}"',
        "tls-auth-clients no",
        f'tls-protocols "{spec.tls_protocols}"',
        "daemonize no",
        'save ""',  # no automatic snapshots; the sandbox saves when it stops
        'dbfilename "dump.rdb"',
        "appendonly no",
        f'dir "{spec.directory}"',
        'logfile "redis.log"',
        "loglevel notice",
        f"maxmemory {spec.maxmemory_bytes}",
        f"maxmemory-policy {spec.maxmemory_policy}",
        f"maxclients {spec.maxclients}",
        f'notify-keyspace-events "{spec.notify_keyspace_events}"',
        'proc-title-template "{title} {listen-addr} {config-file}"',
        f"user default reset on {passwords} ~* &* +@all",
        f"user {ADMIN_USER} reset on #{key_hash(admin_password)} ~* &* +@all",
        *(f"user {name} reset {' '.join(user.acl())}" for name, user in spec.entra_users.items()),
    ]
    path = spec.config_file
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def _log_tail(directory: Path, lines: int = 8) -> str:
    try:
        text = (directory / "redis.log").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def start_keyed_redis(
    directory: Path, ca: CertificateAuthority, password: str, supervisor: ProcessSupervisor
) -> RedisInstance:
    """A TLS redis-server on a free port whose default user takes `password`, with no
    memory limit: a cache for a function host run outside ARM (its tests, benchmarks)."""
    directory.mkdir(parents=True, exist_ok=True)
    spec = RedisSpec(
        directory=directory,
        tls_port=free_port(),
        plain_port=None,
        key_hashes=[key_hash(password)],
        maxmemory_bytes=0,
        maxmemory_policy="noeviction",
        maxclients=10000,
        tls_protocols=REDIS_TLS_PROTOCOLS,
        cert=ca.issue_leaf(directory, "server"),
        ca_file=ca.cert_file,
    )
    return start_redis(spec, supervisor)


def stop_stale_server(config_file: Path) -> None:
    """Stop a server from an earlier sandbox on this directory that somehow survived
    (it would hold the ports the resource is about to take again)."""
    for pid in processes_mentioning(str(config_file)):
        log.warning("stopping stale redis-server pid %d", pid)
        terminate_pid(pid)


def start_redis(spec: RedisSpec, supervisor: ProcessSupervisor) -> RedisInstance:
    """Write the config, start redis-server, and return once it answers PING over TLS."""
    binary = shutil.which(REDIS_SERVER)
    if binary is None:
        raise RedisStartError("redis-server is not installed (the Makefile installs it)")
    stop_stale_server(spec.config_file)
    admin_password = secrets.token_urlsafe(32)
    _write_config(spec, admin_password)
    log_file = spec.directory / "redis.log"
    log_file.unlink(missing_ok=True)
    proc = supervisor.spawn([binary, str(spec.config_file)], cwd=spec.directory)
    instance = RedisInstance(spec, proc, admin_password, supervisor)
    deadline = time.monotonic() + _START_TIMEOUT
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = _log_tail(spec.directory)
            supervisor.stop(proc)
            raise RedisStartError(
                f"redis-server exited with status {proc.returncode}: {tail}",
                port_in_use="Address already in use" in tail,
            )
        try:
            with instance.admin() as conn:
                if conn.ping():
                    log.info("redis-server pid %d ready on TLS port %d", proc.pid, spec.tls_port)
                    return instance
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            last_error = exc
        time.sleep(0.05)
    supervisor.stop(proc)
    raise RedisStartError(
        f"redis-server did not answer within {_START_TIMEOUT:.0f} s: {last_error}"
    )
