"""Every TLS server the sandbox runs refuses TLS 1.0 and 1.1 and accepts TLS 1.2.

The client is made as permissive as this machine's OpenSSL allows (security level
0, minimum TLS 1.0), so a refusal comes from the server: the client sees the
server's `protocol version` alert. Servers: ARM (and Entra), a registry's
loginServer and a site's Kudu (the shared TLS listener), a function host, a site's
503 front end, and a cache's redis-server.
"""

from __future__ import annotations

import socket
import ssl
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.mgmt.redis import RedisManagementClient

from app.sandbox import Sandbox
from app.sandbox.certs import CertificateAuthority
from app.sandbox.tls import uvicorn_tls, with_tls_floor
from tests.sandbox.conftest import unique
from tests.sandbox.test_web import Cloud, wait_for, write_package

pytestmark = pytest.mark.sandbox

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    OLD_VERSIONS = (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)


def handshake(port: int, ca: Path, maximum: ssl.TLSVersion) -> str:
    """The TLS version agreed with 127.0.0.1:`port`, the client offering at most
    `maximum`; raises ssl.SSLError when the server refuses."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(ca))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = maximum
    # Let the client offer old versions at all: the refusal must be the server's.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        return str(tls.version())


def assert_floor(port: int, ca: Path, what: str) -> None:
    for old in OLD_VERSIONS:
        with pytest.raises(ssl.SSLError) as refused:
            handshake(port, ca, old)
        # The server refused: its `protocol version` alert, or (asyncio servers, which
        # close without flushing the alert) the connection closed mid-handshake. Not
        # the client declining to offer the version (NO_PROTOCOLS_AVAILABLE): the
        # last test shows this client completes TLS 1.1 with a server that allows it.
        text = str(refused.value)
        assert "ALERT_PROTOCOL_VERSION" in text or "UNEXPECTED_EOF" in text or \
            isinstance(refused.value, ssl.SSLEOFError), (what, old, text)
        assert "NO_PROTOCOLS_AVAILABLE" not in text, (what, old, text)
    assert handshake(port, ca, ssl.TLSVersion.TLSv1_2) == "TLSv1.2", what
    assert handshake(port, ca, ssl.TLSVersion.MAXIMUM_SUPPORTED) in ("TLSv1.2", "TLSv1.3"), what


def _port(host: str) -> int:
    return int(urlsplit(f"https://{host}").port or 443)


@pytest.fixture(scope="module")
def floor_cloud(sandbox: Sandbox) -> Iterator[tuple[Cloud, str]]:
    cloud = Cloud(sandbox)
    group = unique("rg-tls-")
    yield cloud, group
    cloud.rm.resource_groups.begin_delete(group).result()


def test_arm_server_refuses_tls_below_1_2(sandbox: Sandbox) -> None:
    assert_floor(_port(urlsplit(sandbox.endpoint).netloc), sandbox.ca_cert, "ARM")


def test_registry_kudu_function_host_and_front_end_refuse_tls_below_1_2(
    floor_cloud: tuple[Cloud, str], tmp_path: Path
) -> None:
    cloud, group = floor_cloud
    sb = cloud.sb
    site, host, _ = cloud.running_app(group, write_package(tmp_path / "pkg"))
    registry = next(iter(cloud.acr.registries.list_by_resource_group(group)))
    assert_floor(_port(registry.login_server), sb.ca_cert, "registry loginServer")
    [scm] = [s.name for s in site.properties.host_name_ssl_states if s.host_type == "Repository"]
    assert_floor(_port(scm), sb.ca_cert, "Kudu")
    assert_floor(_port(host), sb.ca_cert, "function host")

    # A site whose image does not exist: its port is the 503 front end.
    plan_id = site.properties.server_farm_id
    waiting = cloud.site(group, plan_id, f"{registry.name}.azurecr.io/none:v9", {})
    port = _port(waiting.properties.default_host_name)
    wait_for(lambda: _accepts(port, sb.ca_cert), what="the site's front end")
    assert_floor(port, sb.ca_cert, "site front end")


def test_redis_server_refuses_tls_below_1_2(
    floor_cloud: tuple[Cloud, str], redis_mgmt: RedisManagementClient
) -> None:
    cloud, group = floor_cloud
    cloud.rm.resource_groups.create_or_update(group, {"location": "westeurope"})
    cache = redis_mgmt.redis.begin_create(
        group, unique("tls-"),
        {"location": "westeurope", "sku": {"name": "Basic", "family": "C", "capacity": 0}},
    ).result()
    assert_floor(int(cache.ssl_port), cloud.sb.ca_cert, "redis-server")


def _accepts(port: int, ca: Path) -> bool:
    try:
        handshake(port, ca, ssl.TLSVersion.TLSv1_2)
    except OSError:
        return False
    return True


def test_the_floor_holds_where_the_default_context_would_allow_older_versions(
    tmp_path: Path,
) -> None:
    """Python's own default floor is TLS 1.2 here; the sandbox sets it explicitly, so a
    server context that starts lower (another Python or OpenSSL build) still refuses."""
    ca = CertificateAuthority(tmp_path)
    leaf = ca.issue_leaf(tmp_path, "server")

    def lowered() -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.load_cert_chain(str(leaf.cert_file), str(leaf.key_file))
        return context

    factory: Any = uvicorn_tls(leaf.cert_file, leaf.key_file)["ssl_context_factory"]
    for context in (lowered(), factory(None, lowered), with_tls_floor(lowered())):
        port = _serve_once(context)
        if context.minimum_version < ssl.TLSVersion.TLSv1_2:
            # The control: without the floor this context takes TLS 1.1.
            assert handshake(port, ca.cert_file, ssl.TLSVersion.TLSv1_1) == "TLSv1.1"
            continue
        with pytest.raises(ssl.SSLError, match=r"(?i)protocol.version"):
            handshake(port, ca.cert_file, ssl.TLSVersion.TLSv1_1)


def _serve_once(context: ssl.SSLContext) -> int:
    """Accept one TLS connection on a free port in a thread; returns the port."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with listener:
            conn, _ = listener.accept()
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return int(listener.getsockname()[1])
