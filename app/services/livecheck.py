"""Asking a resource itself, not ARM, whether it works: `status`'s live checks.

ARM's record says what was provisioned; it cannot tell that a cache's server died
or that a function holds a port its cache no longer listens on. A live check
reaches the resource's data plane (a Redis PING over TLS, the function's health
route), so `status` can say which rows it saw working and which it only read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LiveAnswer:
    """What a live check saw: whether the resource works, in plain words."""

    ok: bool
    text: str


def ping_redis(host: str, port: int, password: str, ca_bundle: Path | None) -> LiveAnswer:
    """One PING over TLS with an access key, within a few seconds (never retried)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from app.services.redaction import register_secret

    register_secret(password)
    client = redis.Redis(
        host=host, port=port, ssl=True, password=password,
        ssl_ca_certs=str(ca_bundle) if ca_bundle is not None else None,
        socket_timeout=5, socket_connect_timeout=5,
        retry=Retry(NoBackoff(), 0),  # one answer: redis-py would otherwise back off and retry
    )
    try:
        with client:
            client.ping()
    except (redis.RedisError, OSError) as exc:
        return LiveAnswer(False, f"{host}:{port} did not answer PING ({type(exc).__name__}: "
                                 f"{str(exc) or 'no detail'})")
    return LiveAnswer(True, f"{host}:{port} answered PING over TLS")
