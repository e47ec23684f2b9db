"""Microsoft Entra authentication on the sandbox's redis-servers: who may AUTH with which token.

Azure's caches take `AUTH <object id> <access token>` and check the token
themselves. A sandbox redis-server cannot verify a JWT, so the sandbox tells it
instead: every principal with an access-policy assignment on a cache is a Redis
ACL user named by its object id, and that user's passwords are exactly the
tokens the sandbox's authority has signed for that object id and the Redis
audience that have not expired yet. Any other token (another principal's, another
audience's, an expired one, one the sandbox never signed) matches no password, so
redis-server itself answers WRONGPASS, as Azure's caches do.

`RedisTokenBook` learns of tokens through `TokenIssuer.add_listener`, keeps only
their SHA-256 hashes (what the ACL stores) until they expire, and tells its owner
which principal's passwords changed, when a token is signed and when one expires.
Tokens signed before an assignment exists count once it does, as on Azure.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from app.sandbox.entra_tokens import TokenIssuer

log = logging.getLogger("mlcache.sandbox.redis")

# The audiences a Redis token carries: `https://redis.azure.com` when asked for the
# scope `https://redis.azure.com/.default` (a v1 token names the resource as asked,
# with or without the slash), or Azure Cache for Redis's application id when asked
# for `acca5fbb-b7e4-4009-81f1-37e38fd66d78/.default` (Microsoft Learn, "Use
# Microsoft Entra ID for cache authentication").
REDIS_AUDIENCES = (
    "https://redis.azure.com",
    "https://redis.azure.com/",
    "acca5fbb-b7e4-4009-81f1-37e38fd66d78",
)

# A Microsoft Entra object id (what assignments name and Redis users are called).
OBJECT_ID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

# Azure Cache for Redis's built-in access policies and their Redis ACL permissions,
# as `az redis access-policy list` shows them.
CACHE_ACCESS_POLICIES: dict[str, str] = {
    "Data Owner": "+@all allkeys",
    "Data Contributor": "+@all -@dangerous +cluster|info +cluster|nodes +cluster|slots allkeys",
    "Data Reader": "+@read +@connection +cluster|info +cluster|nodes +cluster|slots allkeys",
}
# Azure Managed Redis has one policy, `default`: the same rights as an access key.
MANAGED_REDIS_POLICY = "default"
MANAGED_REDIS_PERMISSIONS = "+@all allkeys"


def acl_rules(permissions: str) -> tuple[str, ...]:
    """An access policy's permission string as the ACL rules redis-server takes."""
    return tuple(permissions.split())


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_redis_token(claims: dict[str, Any]) -> bool:
    return claims.get("aud") in REDIS_AUDIENCES and isinstance(claims.get("oid"), str)


class RedisTokenBook:
    """The unexpired Redis tokens the sandbox has signed, per object id (hashes only).

    `on_change(object_id)` runs after a principal's set of valid tokens changed: in
    the signing thread for a new token (so the ACL is updated before the client
    can use it), in the book's own thread for an expiry.
    """

    def __init__(self, issuer: TokenIssuer, on_change: Callable[[str], None]) -> None:
        self._issuer = issuer
        self._on_change = on_change
        self._tokens: dict[str, dict[str, float]] = {}  # oid -> {hash: exp}
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._expire, name="redis-tokens", daemon=True)
        self._thread.start()
        issuer.add_listener(self._heard)

    def hashes(self, object_id: str) -> list[str]:
        """SHA-256 hashes of the principal's tokens that are still valid."""
        now = time.time()
        with self._cond:
            held = self._tokens.get(object_id.lower(), {})
            return sorted(h for h, exp in held.items() if exp > now)

    def stop(self) -> None:
        self._issuer.remove_listener(self._heard)
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(5)

    def _heard(self, token: str, claims: dict[str, Any]) -> None:
        if not is_redis_token(claims):
            return
        try:
            expires = float(claims["exp"])
        except (KeyError, TypeError, ValueError):
            return
        if expires <= time.time():
            return
        object_id = str(claims["oid"]).lower()
        with self._cond:
            self._tokens.setdefault(object_id, {})[token_hash(token)] = expires
            self._cond.notify_all()
        self._on_change(object_id)

    def _expire(self) -> None:
        """Drop each token when it expires and report whose passwords changed."""
        while True:
            with self._cond:
                if self._stopped:
                    return
                now = time.time()
                changed = []
                for object_id, held in list(self._tokens.items()):
                    expired = [h for h, exp in held.items() if exp <= now]
                    for digest in expired:
                        del held[digest]
                    if expired:
                        changed.append(object_id)
                    if not held:
                        del self._tokens[object_id]
                soonest = min(
                    (exp for held in self._tokens.values() for exp in held.values()),
                    default=None,
                )
                if not changed:
                    self._cond.wait(None if soonest is None else max(0.01, soonest - now))
                    continue
            for object_id in changed:
                try:
                    self._on_change(object_id)
                except Exception:
                    log.exception("removing expired Redis tokens of %s failed", object_id)
