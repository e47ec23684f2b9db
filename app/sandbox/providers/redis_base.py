"""What the two Redis-backed providers share: live redis-server instances and their keys.

Azure Cache for Redis (`cache`) and Azure Managed Redis (`managed_redis`) answer
in different wire formats, but both keep one real redis-server per cache or
database, start it on local ports (retrying when a port was taken meanwhile),
stop it with its resource or the sandbox, and hold a primary and a secondary
access key whose SHA-256 hashes open the server. That part lives here once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, ClassVar

import redis

from app.sandbox.arm import ArmError
from app.sandbox.certs import REDIS_TLS_PROTOCOLS
from app.sandbox.ports import free_port, port_free
from app.sandbox.providers import Provider, SandboxContext, new_access_key
from app.sandbox.redis_entra import RedisTokenBook
from app.sandbox.redishost import (
    EntraUser,
    RedisInstance,
    RedisSpec,
    RedisStartError,
    key_hash,
    redis_server_version,
    start_redis,
    stop_stale_server,
)

log = logging.getLogger("mlcache.sandbox.redis")

KEY_FIELDS = ("primaryKey", "secondaryKey")


def tls_protocols(minimum: str) -> str:
    """redis-server's `tls-protocols` for an ARM `minimumTlsVersion`."""
    return REDIS_TLS_PROTOCOLS if minimum == "1.2" else "TLSv1.3"


def free_port_besides(taken: int) -> int:
    """A free local port other than `taken` (two ports of one server must differ)."""
    port = free_port()
    while port == taken:
        port = free_port()
    return port


def new_keys() -> dict[str, str]:
    return {field: new_access_key() for field in KEY_FIELDS}


def access_keys(holder: dict[str, Any]) -> dict[str, str]:
    """The `{"primaryKey", "secondaryKey"}` of a record part that holds them (listKeys)."""
    return {field: holder[field] for field in KEY_FIELDS}


def regenerated(holder: dict[str, Any], field: str) -> dict[str, str]:
    """Both keys of `holder`, with `field` replaced by a fresh key."""
    return {**access_keys(holder), field: new_access_key()}


def key_hashes(keys: dict[str, Any]) -> list[str]:
    return [key_hash(keys[field]) for field in KEY_FIELDS]


def key_field(key_type: Any, bad: Callable[[str, str], ArmError]) -> str:
    """`primaryKey`/`secondaryKey` for a regenerateKey `keyType`, or `bad`'s 400."""
    text = str(key_type or "")
    field = {"primary": "primaryKey", "secondary": "secondaryKey"}.get(text.lower())
    if field is None:
        raise bad(
            f"The value '{text}' of 'keyType' is invalid; use Primary or Secondary.", "keyType"
        )
    return field


def busy(what: str, name: str, state: str) -> ArmError:
    """The RP's 409 for a change while an operation on the resource still runs."""
    return ArmError(
        409,
        "Conflict",
        f"The {what} '{name}' is busy ({state}); retry when the operation has finished.",
    )


class RedisBackedProvider(Provider):
    """A provider whose resources each run one redis-server, keyed by a resource id."""

    # Write each server's data to disk before the sandbox stops it.
    snapshot_on_stop: ClassVar[bool] = False

    def __init__(self, ctx: SandboxContext) -> None:
        super().__init__(ctx)
        self._instances: dict[str, RedisInstance] = {}
        self._lock = threading.Lock()
        self._version: str | None = None
        # One sync of ACL users at a time (token signing and assignment changes race).
        self._entra_lock = threading.RLock()
        self._tokens = RedisTokenBook(ctx.tokens, self._principal_changed) if ctx.tokens else None

    @property
    def redis_version(self) -> str:
        """The version of the redis-server that really runs, as the RP reports it."""
        if self._version is None:
            self._version = self.reported_version(redis_server_version())
        return self._version

    @staticmethod
    def reported_version(full: str) -> str:
        return full

    def instance(self, key: str) -> RedisInstance | None:
        with self._lock:
            return self._instances.get(key.lower())

    # Microsoft Entra users

    def entra_grants(self, key: str) -> dict[str, tuple[str, ...]]:
        """The principals (object id -> ACL rules) instance `key` lets in with a token."""
        return {}

    def entra_users(self, key: str) -> dict[str, EntraUser]:
        """The ACL users instance `key`'s server should have now."""
        return {
            object_id: EntraUser(rules, self._tokens.hashes(object_id) if self._tokens else [])
            for object_id, rules in self.entra_grants(key).items()
        }

    def sync_entra(self, key: str) -> None:
        """Bring the live server's Entra users in line with its grants and valid tokens:
        a user whose grant went is deleted (its clients are disconnected)."""
        instance = self.instance(key)
        if instance is None:
            return
        with self._entra_lock:
            wanted = self.entra_users(key)
            for name in set(instance.spec.entra_users) - set(wanted):
                instance.delete_entra_user(name)
            for name, user in wanted.items():
                if instance.spec.entra_users.get(name) != user:
                    instance.set_entra_user(name, user)

    def _principal_changed(self, object_id: str) -> None:
        """A principal's valid tokens changed: update it on every server that knows it."""
        with self._lock:
            keys = [k for k, inst in self._instances.items() if inst.alive()]
        for key in keys:
            instance = self.instance(key)
            if instance is None:
                continue
            if object_id in instance.spec.entra_users or object_id in self.entra_grants(key):
                try:
                    self.sync_entra(key)
                except (redis.RedisError, OSError) as exc:
                    log.warning("Entra users of %s not updated: %s", key, exc)

    def stop(self) -> None:
        if self._tokens is not None:
            self._tokens.stop()
        with self._lock:
            instances = list(self._instances.values())
            self._instances.clear()
        for instance in instances:
            if self.snapshot_on_stop:
                instance.save_snapshot()
            instance.stop()

    def _stop_instance(self, key: str) -> None:
        with self._lock:
            instance = self._instances.pop(key.lower(), None)
        if instance is not None:
            instance.stop()

    def _start_instance(
        self,
        key: str,
        *,
        spec: Callable[[], RedisSpec],
        ports: Callable[[], list[int]],
        new_ports: Callable[[], None],
        reuse_ports: bool,
        what: str,
    ) -> RedisInstance:
        """(Re)start the server for `key`: on its recorded `ports` when free and
        `reuse_ports`, else on new ones (`new_ports` runs in a store transaction and
        puts them in the ARM answer, so clients and app settings can follow);
        a port taken meanwhile is retried twice. Failures are ARM 500s.

        A port counts as free when redis-server could bind it: it binds with
        SO_REUSEADDR, so the TIME_WAIT/FIN_WAIT sockets a killed server leaves behind
        must not cost the resource its port (clients keep the old one in settings).
        """
        self._stop_instance(key)
        stop_stale_server(spec().config_file)
        for attempt in range(3):
            free = all(port_free(p, reuse_address=True) for p in ports())
            if attempt or not reuse_ports or not free:
                with self.ctx.store.transaction():
                    new_ports()
            try:
                instance = start_redis(spec(), self.ctx.processes)
            except RedisStartError as exc:
                if exc.port_in_use and attempt < 2:
                    continue
                raise ArmError(
                    500, "InternalServerError", f"The {what} failed to start: {exc}"
                ) from None
            with self._lock:
                self._instances[key.lower()] = instance
            return instance
        raise ArmError(500, "InternalServerError", f"The {what} failed to start.")
