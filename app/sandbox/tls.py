"""The sandbox's TLS floor and server contexts, with the standard library alone.

Apart from certs.py (which needs cryptography to sign certificates) so that a
function host process, which only serves with a certificate already issued,
imports nothing of the sandbox's environment that its app could mistake for its own.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Azure's endpoints refuse TLS 1.0/1.1; so does every sandbox server, explicitly,
# rather than trusting whatever floor the local OpenSSL configuration happens to set.
TLS_FLOOR = ssl.TLSVersion.TLSv1_2


def with_tls_floor(context: ssl.SSLContext) -> ssl.SSLContext:
    """`context` refusing anything older than TLS 1.2 (the one place the floor is set)."""
    if context.minimum_version < TLS_FLOOR:
        context.minimum_version = TLS_FLOOR
    return context


def server_ssl_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server-side context with the sandbox's TLS floor, for servers that wrap
    sockets themselves (the sites' 503/403 front end)."""
    context = with_tls_floor(ssl.create_default_context(ssl.Purpose.CLIENT_AUTH))
    context.load_cert_chain(str(cert_file), str(key_file))
    return context


def uvicorn_tls(cert_file: Path, key_file: Path) -> dict[str, Any]:
    """`uvicorn.Config` keyword arguments serving TLS with the sandbox's floor.

    uvicorn's own context (its ALPN settings included) with the floor applied, so
    the ARM server, the registry/Kudu listeners and the function hosts agree.
    """

    def factory(config: Any, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return with_tls_floor(default())

    return {"ssl_certfile": str(cert_file), "ssl_keyfile": str(key_file),
            "ssl_context_factory": factory}
