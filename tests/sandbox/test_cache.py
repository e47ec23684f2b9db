"""Microsoft.Cache/redis through azure-mgmt-redis, with the real redis-server behind it."""

from __future__ import annotations

import socket

import pytest
import redis
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.redis import RedisManagementClient
from azure.mgmt.redis.models import (
    RedisCreateParameters,
    RedisRegenerateKeyParameters,
    RedisUpdateParameters,
    Sku,
)

from app.sandbox import Sandbox
from app.sandbox.processes import pid_alive
from tests.sandbox.conftest import tls_client, unique

pytestmark = pytest.mark.sandbox

BASIC_C0 = Sku(name="Basic", family="C", capacity=0)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _create(client: RedisManagementClient, group: str, name: str, **props: object):  # type: ignore[no-untyped-def]
    params = RedisCreateParameters(location="westeurope", sku=props.pop("sku", BASIC_C0), **props)
    return client.redis.begin_create(group, name, params)


def test_check_name_availability_is_global(
    redis_mgmt: RedisManagementClient,
    resource_client,
    group: str,  # type: ignore[no-untyped-def]
) -> None:
    name = unique("cache-")
    assert (
        redis_mgmt.redis.check_name_availability({"name": name, "type": "Microsoft.Cache/redis"})
        is None
    )
    _create(redis_mgmt, group, name).result()
    with pytest.raises(ResourceExistsError) as info:
        redis_mgmt.redis.check_name_availability({"name": name, "type": "Microsoft.Cache/redis"})
    assert info.value.error.code == "NameNotAvailable"
    other = unique("rg-other-")
    resource_client.resource_groups.create_or_update(other, {"location": "westeurope"})
    try:
        with pytest.raises(ResourceExistsError):
            _create(redis_mgmt, other, name)
    finally:
        resource_client.resource_groups.begin_delete(other).result()


def test_create_is_an_async_operation_lro(
    sandbox: Sandbox, redis_mgmt: RedisManagementClient, group: str
) -> None:
    name = unique("cache-")
    poller = _create(redis_mgmt, group, name, tags={"app": "mlcache"})
    initial = poller.polling_method()._initial_response.http_response  # type: ignore[attr-defined]
    assert initial.status_code == 201
    assert initial.json()["properties"]["provisioningState"] == "Creating"
    op_url = initial.headers["Azure-AsyncOperation"]
    assert "/providers/Microsoft.Cache/locations/westeurope/asyncOperations/" in op_url
    cache = poller.result()
    assert poller.status() == "Succeeded"
    assert cache.provisioning_state == "Succeeded"
    assert cache.host_name == "127.0.0.1"
    assert cache.enable_non_ssl_port is False
    assert cache.minimum_tls_version == "1.2"
    assert cache.public_network_access == "Enabled"
    assert cache.sku.name == "Basic" and cache.sku.family == "C" and cache.sku.capacity == 0
    assert cache.redis_version and cache.redis_version[0].isdigit()
    assert cache.redis_configuration.maxmemory_policy == "volatile-lru"
    assert cache.tags == {"app": "mlcache"}
    assert cache.type == "Microsoft.Cache/Redis"
    got = redis_mgmt.redis.get(group, name)
    assert (got.ssl_port, got.port) == (cache.ssl_port, cache.port)
    assert [c.name for c in redis_mgmt.redis.list_by_resource_group(group)] == [name]
    assert name in [c.name for c in redis_mgmt.redis.list_by_subscription()]


def test_tls_with_both_keys_and_no_plain_port(
    sandbox: Sandbox, redis_mgmt: RedisManagementClient, group: str
) -> None:
    name = unique("cache-")
    cache = _create(redis_mgmt, group, name).result()
    keys = redis_mgmt.redis.list_keys(group, name)
    assert keys.primary_key != keys.secondary_key
    for key in (keys.primary_key, keys.secondary_key):
        with tls_client(cache.host_name, cache.ssl_port, sandbox.ca_cert, key) as conn:
            assert conn.set("k", key[:5]) is True
            assert conn.get("k") == key[:5].encode()
    with pytest.raises(redis.AuthenticationError):
        tls_client(cache.host_name, cache.ssl_port, sandbox.ca_cert, "wrong-key").ping()
    # enableNonSslPort is false: nothing listens on the non-TLS port.
    assert not _port_open(cache.port)
    # Memory follows the size (C0 = 250 MB, scaled down 1/32).
    with tls_client(cache.host_name, cache.ssl_port, sandbox.ca_cert, keys.primary_key) as conn:
        assert int(conn.config_get("maxmemory")["maxmemory"]) == int(0.25 * 1024**3 / 32)


def test_regenerate_key_takes_effect_live(
    sandbox: Sandbox, redis_mgmt: RedisManagementClient, group: str
) -> None:
    name = unique("cache-")
    cache = _create(redis_mgmt, group, name).result()
    old = redis_mgmt.redis.list_keys(group, name)
    new = redis_mgmt.redis.regenerate_key(
        group, name, RedisRegenerateKeyParameters(key_type="Primary")
    )
    assert new.primary_key != old.primary_key
    assert new.secondary_key == old.secondary_key
    assert redis_mgmt.redis.list_keys(group, name).primary_key == new.primary_key
    with pytest.raises(redis.AuthenticationError):
        tls_client(cache.host_name, cache.ssl_port, sandbox.ca_cert, old.primary_key).ping()
    assert tls_client(cache.host_name, cache.ssl_port, sandbox.ca_cert, new.primary_key).ping()
    assert tls_client(cache.host_name, cache.ssl_port, sandbox.ca_cert, new.secondary_key).ping()


def test_non_tls_port_follows_enable_non_ssl_port(
    sandbox: Sandbox, redis_mgmt: RedisManagementClient, group: str
) -> None:
    name = unique("cache-")
    cache = _create(redis_mgmt, group, name, enable_non_ssl_port=True).result()
    key = redis_mgmt.redis.list_keys(group, name).primary_key
    assert cache.enable_non_ssl_port is True
    assert redis.Redis(host="127.0.0.1", port=cache.port, password=key, socket_timeout=5).ping()
    updated = redis_mgmt.redis.begin_update(
        group, name, RedisUpdateParameters(enable_non_ssl_port=False, tags={"t": "1"})
    ).result()
    assert updated.enable_non_ssl_port is False
    assert updated.tags == {"t": "1"}
    assert not _port_open(cache.port)
    assert tls_client(cache.host_name, updated.ssl_port, sandbox.ca_cert, key).ping()


def test_invalid_sku_combinations_are_refused(
    redis_mgmt: RedisManagementClient, group: str
) -> None:
    cases = [
        Sku(name="Basic", family="P", capacity=1),
        Sku(name="Premium", family="C", capacity=1),
        Sku(name="Standard", family="C", capacity=7),
    ]
    for sku in cases:
        with pytest.raises(HttpResponseError) as info:
            _create(redis_mgmt, group, unique("cache-"), sku=sku)
        assert info.value.status_code == 400
        assert info.value.error.code == "InvalidRequestBody"
    with pytest.raises(HttpResponseError) as info:
        _create(redis_mgmt, group, unique("cache-"), shard_count=2)
    assert info.value.error.code == "InvalidRequestBody"
    assert list(redis_mgmt.redis.list_by_resource_group(group)) == []


def test_create_in_missing_group(redis_mgmt: RedisManagementClient) -> None:
    with pytest.raises(ResourceNotFoundError) as info:
        _create(redis_mgmt, unique("rg-missing-"), unique("cache-"))
    assert info.value.error.code == "ResourceGroupNotFound"


def test_delete_stops_the_server(
    sandbox: Sandbox, redis_mgmt: RedisManagementClient, group: str
) -> None:
    name = unique("cache-")
    cache = _create(redis_mgmt, group, name).result()
    pid = sandbox.context.store.resource(cache.id)["private"]["pid"]
    assert pid_alive(pid)
    poller = redis_mgmt.redis.begin_delete(group, name)
    poller.result()
    assert poller.status() == "Succeeded"
    assert not pid_alive(pid)
    assert not _port_open(cache.ssl_port)
    with pytest.raises(ResourceNotFoundError) as info:
        redis_mgmt.redis.get(group, name)
    assert info.value.error.code == "ResourceNotFound"
    assert (
        redis_mgmt.redis.check_name_availability({"name": name, "type": "Microsoft.Cache/redis"})
        is None
    )


def test_put_again_updates_in_place_and_scales_live(
    sandbox: Sandbox, redis_mgmt: RedisManagementClient, group: str
) -> None:
    name = unique("cache-")
    cache = _create(redis_mgmt, group, name).result()
    keys = redis_mgmt.redis.list_keys(group, name)
    statuses: list[int] = []
    again = redis_mgmt.redis.begin_create(
        group,
        name,
        RedisCreateParameters(
            location="westeurope",
            sku=Sku(name="Basic", family="C", capacity=1),
            redis_configuration={"maxmemory_policy": "allkeys-lru"},
        ),
        raw_response_hook=lambda r: statuses.append(r.http_response.status_code),
    ).result()
    assert statuses[0] == 200
    assert again.sku.capacity == 1
    assert (again.ssl_port, again.port) == (cache.ssl_port, cache.port)
    assert redis_mgmt.redis.list_keys(group, name).primary_key == keys.primary_key
    assert again.redis_configuration.maxmemory_policy == "allkeys-lru"
    with tls_client(cache.host_name, cache.ssl_port, sandbox.ca_cert, keys.primary_key) as conn:
        assert int(conn.config_get("maxmemory")["maxmemory"]) == int(1 * 1024**3 / 32)
        assert conn.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru"
    with pytest.raises(HttpResponseError) as info:
        redis_mgmt.redis.begin_update(
            group, name, RedisUpdateParameters(sku=Sku(name="Premium", family="P", capacity=1))
        )
    assert info.value.status_code == 400


def test_parallel_creates_in_one_group(
    sandbox: Sandbox,
    redis_mgmt: RedisManagementClient,
    storage_mgmt,
    group: str,  # type: ignore[no-untyped-def]
) -> None:
    """The deploy engine creates independent resources at once; none may trip over another."""
    from concurrent.futures import ThreadPoolExecutor

    names = [unique("par-") for _ in range(3)]
    accounts = [unique("stpar") for _ in range(2)]
    with ThreadPoolExecutor(max_workers=5) as pool:
        caches = [pool.submit(lambda n=n: _create(redis_mgmt, group, n).result()) for n in names]
        stores = [
            pool.submit(
                lambda a=a: storage_mgmt.storage_accounts.begin_create(
                    group,
                    a,
                    {
                        "sku": {"name": "Standard_LRS"},
                        "kind": "StorageV2",
                        "location": "westeurope",
                    },
                ).result()
            )
            for a in accounts
        ]
        created = [f.result() for f in caches]
        assert [s.result().provisioning_state for s in stores] == ["Succeeded", "Succeeded"]
    ports = {c.ssl_port for c in created} | {c.port for c in created}
    assert len(ports) == 2 * len(created)
    for cache in created:
        key = redis_mgmt.redis.list_keys(group, cache.name).primary_key
        assert tls_client(cache.host_name, cache.ssl_port, sandbox.ca_cert, key).ping()
