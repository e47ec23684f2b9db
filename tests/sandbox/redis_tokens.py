"""Helpers for Redis Entra tests: tokens the sandbox signs, clients that AUTH with them."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import redis
from azure.core.credentials import AccessToken

from app.sandbox import Sandbox

REDIS_AUDIENCE = "https://redis.azure.com"


def mint(
    sb: Sandbox, object_id: str, *, audience: str = REDIS_AUDIENCE, lifetime: float = 3600
) -> str:
    """A managed-identity-style access token the sandbox's authority signs for `object_id`
    (what App Service's identity endpoint hands a function for `https://redis.azure.com`)."""
    issuer = sb.context.tokens
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": audience,
        "iss": issuer.v1_issuer(sb.tenant_id),
        "iat": now,
        "nbf": now,
        "exp": int(now + lifetime),
        "idtyp": "app",
        "oid": object_id,
        "sub": object_id,
        "tid": sb.tenant_id,
        "appid": str(uuid.uuid4()),
        "ver": "1.0",
    }
    token: str = issuer.sign(claims)
    return token


def new_principal() -> str:
    return str(uuid.uuid4())


def entra_client(host: str, port: int, ca: Path, username: str, token: str) -> redis.Redis:
    """A TLS client that authenticates as `username` with `token` (AUTH on construction),
    failing fast. It holds one connection and never silently replaces it: a pooled client
    would reconnect (and re-AUTH) when the server closed its connection, hiding the drop."""
    return redis.Redis(
        host=host,
        port=port,
        ssl=True,
        ssl_ca_certs=str(ca),
        username=username,
        password=token,
        socket_timeout=5,
        socket_connect_timeout=5,
        retry=None,
        single_connection_client=True,
    )


class SandboxTokens:
    """A TokenCredential whose tokens the sandbox signs for one principal (the scoring
    template's `RedisCache` asks it for `https://redis.azure.com/.default`)."""

    def __init__(self, sb: Sandbox, object_id: str) -> None:
        self.sb = sb
        self.object_id = object_id
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        token = mint(self.sb, self.object_id)
        return AccessToken(token, int(time.time()) + 3600)


def wait_until(predicate: Any, timeout: float = 15.0) -> bool:
    """Poll `predicate` until it holds or `timeout` passes; whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())
