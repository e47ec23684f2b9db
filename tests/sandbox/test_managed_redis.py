"""Microsoft.Cache/redisEnterprise via azure-mgmt-redisenterprise, real redis-server behind it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.redisenterprise import RedisEnterpriseManagementClient
from azure.mgmt.redisenterprise.models import (
    Cluster,
    ClusterUpdate,
    Database,
    DatabaseUpdate,
    Persistence,
    RegenerateKeyParameters,
    Sku,
)
from azure.mgmt.resource.resources import ResourceManagementClient

from app.sandbox import Sandbox
from app.sandbox.processes import pid_alive, processes_mentioning
from tests.sandbox.conftest import mgmt, tls_client, unique

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def amr(sandbox: Sandbox) -> RedisEnterpriseManagementClient:
    return mgmt(RedisEnterpriseManagementClient, sandbox)


def _cluster(sku: str = "Balanced_B0", **kwargs: Any) -> Cluster:
    values: dict[str, Any] = {"minimum_tls_version": "1.2", "public_network_access": "Enabled"}
    values.update(kwargs)
    return Cluster(location="westeurope", sku=Sku(name=sku), **values)


def _database(**kwargs: Any) -> Database:
    values: dict[str, Any] = {
        "client_protocol": "Encrypted", "port": 10000, "clustering_policy": "EnterpriseCluster",
        "eviction_policy": "VolatileLRU", "access_keys_authentication": "Enabled",
    }
    values.update(kwargs)
    return Database(**values)


def _files(sandbox: Sandbox, cluster: str) -> Path:
    """Where the database's redis-server keeps its config, certificate and log."""
    return sandbox.state_dir / "providers" / "microsoft.cache.redisenterprise" / (
        f"{cluster.lower()}-default"
    )


@pytest.fixture
def cluster(amr: RedisEnterpriseManagementClient, group: str) -> Iterator[str]:
    name = unique("amr-")
    amr.redis_enterprise.begin_create(group, name, _cluster(tags={"app": "mlcache"})).result()
    yield name


def test_cluster_create_is_an_lro_with_provisioning_and_resource_state(
    sandbox: Sandbox, amr: RedisEnterpriseManagementClient, group: str
) -> None:
    name = unique("amr-")
    poller = amr.redis_enterprise.begin_create(group, name, _cluster(tags={"app": "mlcache"}))
    initial = poller.polling_method()._initial_response.http_response  # type: ignore[attr-defined]
    assert initial.status_code == 201
    assert initial.json()["properties"]["provisioningState"] == "Creating"
    assert initial.json()["properties"]["resourceState"] == "Creating"
    status_url = initial.headers["Azure-AsyncOperation"]
    assert "/providers/Microsoft.Cache/locations/westeurope/operationsStatus/" in status_url
    created = poller.result()
    assert created.provisioning_state == "Succeeded" and created.resource_state == "Running"
    assert created.sku.name == "Balanced_B0" and created.minimum_tls_version == "1.2"
    assert created.host_name == "127.0.0.1" and created.tags == {"app": "mlcache"}
    assert created.public_network_access == "Enabled" and created.high_availability == "Enabled"
    # The RP's own status route, as the SDK's operations_status client reads it.
    operation_id = status_url.split("/operationsStatus/")[1].split("?")[0]
    status = amr.operations_status.get("westeurope", operation_id)
    assert status.status == "Succeeded"

    got = amr.redis_enterprise.get(group, name)
    assert got.id == created.id and got.type == "Microsoft.Cache/redisEnterprise"
    assert [c.name for c in amr.redis_enterprise.list_by_resource_group(group)] == [name]
    assert name in {c.name for c in amr.redis_enterprise.list()}


@pytest.mark.parametrize(
    ("cluster", "fragment"),
    [
        (Cluster(location="westeurope", sku=Sku(name="Balanced_B0")), "publicNetworkAccess"),
        (_cluster(sku="Enterprise_E10"), "no longer supported"),
        (_cluster(minimum_tls_version="1.0"), "must be 1.2"),
        (_cluster(sku="Balanced_B2"), "not a valid"),
    ],
)
def test_cluster_create_refusals(
    amr: RedisEnterpriseManagementClient, group: str, cluster: Cluster, fragment: str
) -> None:
    with pytest.raises(HttpResponseError) as info:
        amr.redis_enterprise.begin_create(group, unique("amr-"), cluster)
    assert info.value.status_code == 400
    assert fragment in str(info.value.error.message)


def test_database_default_with_both_keys_over_tls(
    sandbox: Sandbox, amr: RedisEnterpriseManagementClient, group: str, cluster: str
) -> None:
    poller = amr.databases.begin_create(group, cluster, "default", _database())
    initial = poller.polling_method()._initial_response.http_response  # type: ignore[attr-defined]
    assert initial.status_code == 201
    assert initial.json()["properties"]["provisioningState"] == "Creating"
    database = poller.result()
    assert database.provisioning_state == "Succeeded" and database.resource_state == "Running"
    assert database.client_protocol == "Encrypted"
    assert database.clustering_policy == "EnterpriseCluster"
    assert database.access_keys_authentication == "Enabled"
    # The port is the real local one, read from the resource, not Azure's 10000.
    port = database.port
    assert isinstance(port, int) and port != 10000
    host = amr.redis_enterprise.get(group, cluster).host_name
    keys = amr.databases.list_keys(group, cluster, "default")
    assert keys.primary_key and keys.secondary_key and keys.primary_key != keys.secondary_key
    for key in (keys.primary_key, keys.secondary_key):
        with tls_client(host, port, sandbox.ca_cert, key) as conn:
            assert conn.set("greeting", "hello")
            assert conn.get("greeting") == b"hello"
    with pytest.raises(redis.AuthenticationError), tls_client(
        host, port, sandbox.ca_cert, "not-the-key"
    ) as conn:
        conn.ping()
    assert [d.name for d in amr.databases.list_by_cluster(group, cluster)] == ["default"]
    assert amr.databases.get(group, cluster, "default").port == port

    # regenerateKey is itself a long-running operation; the old key stops working.
    amr.databases.begin_regenerate_key(
        group, cluster, "default", RegenerateKeyParameters(key_type="Primary")
    ).result()
    new = amr.databases.list_keys(group, cluster, "default")
    assert new.primary_key != keys.primary_key and new.secondary_key == keys.secondary_key
    with pytest.raises(redis.AuthenticationError), tls_client(
        host, port, sandbox.ca_cert, keys.primary_key
    ) as conn:
        conn.ping()
    with tls_client(host, port, sandbox.ca_cert, new.primary_key) as conn:
        assert conn.get("greeting") == b"hello"

    # Access keys can be switched off (Entra only) and on again, live.
    amr.databases.begin_update(
        group, cluster, "default", DatabaseUpdate(access_keys_authentication="Disabled")
    ).result()
    with pytest.raises(redis.AuthenticationError), tls_client(
        host, port, sandbox.ca_cert, new.secondary_key
    ) as conn:
        conn.ping()
    amr.databases.begin_update(
        group, cluster, "default", DatabaseUpdate(access_keys_authentication="Enabled")
    ).result()
    with tls_client(host, port, sandbox.ca_cert, new.secondary_key) as conn:
        assert conn.ping()

    files = _files(sandbox, cluster)
    assert (files / "redis.conf").exists()
    assert keys.primary_key not in (files / "redis.conf").read_text()
    amr.databases.begin_delete(group, cluster, "default").result()
    with pytest.raises(ResourceNotFoundError):
        amr.databases.get(group, cluster, "default")
    assert list(amr.databases.list_by_cluster(group, cluster)) == []
    assert not files.exists()


def test_database_defaults_and_refusals(
    sandbox: Sandbox, amr: RedisEnterpriseManagementClient, group: str, cluster: str
) -> None:
    with pytest.raises(HttpResponseError) as info:
        amr.databases.begin_create(group, cluster, "second", _database())
    assert info.value.status_code == 400 and "default" in str(info.value.error.message)
    with pytest.raises(HttpResponseError) as info:
        amr.databases.begin_create(
            group, cluster, "default",
            _database(persistence=Persistence(aof_enabled=True, rdb_enabled=True)),
        )
    assert info.value.status_code == 400
    # Without accessKeysAuthentication, Azure leaves access keys disabled.
    database = amr.databases.begin_create(
        group, cluster, "default", Database(persistence=Persistence(rdb_enabled=True,
                                                                     rdb_frequency="6h"))
    ).result()
    assert database.access_keys_authentication == "Disabled"
    assert database.clustering_policy == "OSSCluster" and database.client_protocol == "Encrypted"
    assert database.persistence.rdb_enabled and database.persistence.rdb_frequency == "6h"
    keys = amr.databases.list_keys(group, cluster, "default")
    with pytest.raises(redis.AuthenticationError), tls_client(
        "127.0.0.1", database.port, sandbox.ca_cert, keys.primary_key
    ) as conn:
        conn.ping()


def test_database_needs_a_provisioned_cluster(
    amr: RedisEnterpriseManagementClient, group: str
) -> None:
    with pytest.raises(ResourceNotFoundError):
        amr.databases.begin_create(group, unique("amr-"), "default", _database())


def test_cluster_delete_and_group_delete_stop_the_server(
    sandbox: Sandbox,
    amr: RedisEnterpriseManagementClient,
    resource_client: ResourceManagementClient,
    group: str,
) -> None:
    first, second = unique("amr-"), unique("amr-")
    for name in (first, second):
        amr.redis_enterprise.begin_create(group, name, _cluster()).result()
        amr.databases.begin_create(group, name, "default", _database()).result()
    provider = sandbox.context.provider_for("Microsoft.Cache/redisEnterprise")
    pids = {}
    for name in (first, second):
        rid = amr.databases.get(group, name, "default").id
        instance = provider.instance(rid)
        assert instance is not None and pid_alive(instance.pid)
        pids[name] = instance.pid
    # The group lists the clusters only: databases are child resources.
    listed = {r.type for r in resource_client.resources.list_by_resource_group(group)}
    assert listed == {"Microsoft.Cache/redisEnterprise"}

    amr.redis_enterprise.begin_delete(group, first).result()
    with pytest.raises(ResourceNotFoundError):
        amr.redis_enterprise.get(group, first)
    assert not pid_alive(pids[first]) and pid_alive(pids[second])

    assert not _files(sandbox, first).exists() and _files(sandbox, second).exists()
    resource_client.resource_groups.begin_delete(group).result()
    assert not pid_alive(pids[second]) and not _files(sandbox, second).exists()
    assert processes_mentioning(f"{first}-default") == []
    assert processes_mentioning(f"{second}-default") == []


def test_restart_brings_the_database_back(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Sandbox.start(state, latency="fast") as sb:
        amr = mgmt(RedisEnterpriseManagementClient, sb)
        rm = mgmt(ResourceManagementClient, sb)
        rm.resource_groups.create_or_update("rg-restart", {"location": "westeurope"})
        amr.redis_enterprise.begin_create("rg-restart", "amr-restart", _cluster()).result()
        amr.databases.begin_create("rg-restart", "amr-restart", "default", _database()).result()
        key = amr.databases.list_keys("rg-restart", "amr-restart", "default").primary_key
        amr.close()
        rm.close()
    assert processes_mentioning(str(state)) == []
    with Sandbox.start(state, latency="fast") as sb:
        amr = mgmt(RedisEnterpriseManagementClient, sb)
        database = amr.databases.get("rg-restart", "amr-restart", "default")
        assert database.provisioning_state == "Succeeded"
        with tls_client("127.0.0.1", database.port, sb.ca_cert, key) as conn:
            assert conn.ping()
        amr.close()
    assert processes_mentioning(str(state)) == []


def test_failed_provisioning_surfaces_the_arm_code(tmp_path: Path) -> None:
    faults = {"rules": [{
        "method": "PUT", "path": "/redisEnterprise/amr-broken$", "fail_provisioning": True,
        "code": "ProvisioningDisabled", "message": "The cluster could not be provisioned.",
    }]}
    with Sandbox.start(tmp_path / "state", latency="fast", faults=faults) as sb:
        amr = mgmt(RedisEnterpriseManagementClient, sb)
        rm = mgmt(ResourceManagementClient, sb)
        rm.resource_groups.create_or_update("rg-broken", {"location": "westeurope"})
        with pytest.raises(HttpResponseError) as info:
            amr.redis_enterprise.begin_create("rg-broken", "amr-broken", _cluster()).result()
        assert info.value.error.code == "ProvisioningDisabled"
        failed = amr.redis_enterprise.get("rg-broken", "amr-broken")
        assert failed.provisioning_state == "Failed" and failed.resource_state == "CreateFailed"
        # A failed cluster can be deleted, and the name is free again.
        amr.redis_enterprise.begin_delete("rg-broken", "amr-broken").result()
        assert list(amr.redis_enterprise.list_by_resource_group("rg-broken")) == []
        amr.close()
        rm.close()


def test_cluster_update_and_create_or_update(
    amr: RedisEnterpriseManagementClient, group: str, cluster: str
) -> None:
    updated = amr.redis_enterprise.begin_update(
        group, cluster, ClusterUpdate(tags={"app": "mlcache", "env": "test"})
    ).result()
    assert updated.tags == {"app": "mlcache", "env": "test"}
    # PUT on an existing cluster is an update in place (200), same host and SKU.
    again = amr.redis_enterprise.begin_create(group, cluster, _cluster(tags={"v": "2"})).result()
    assert again.tags == {"v": "2"} and again.sku.name == "Balanced_B0"
    with pytest.raises(HttpResponseError) as info:
        amr.redis_enterprise.begin_update(
            group, cluster, ClusterUpdate(sku=Sku(name="Balanced_B1"))
        ).result()
    assert info.value.status_code == 400
    assert amr.redis_enterprise.get(group, cluster).sku.name == "Balanced_B0"


def test_plaintext_database_and_live_eviction_policy(
    amr: RedisEnterpriseManagementClient, group: str, cluster: str
) -> None:
    database = amr.databases.begin_create(
        group, cluster, "default",
        _database(client_protocol="Plaintext", eviction_policy="NoEviction"),
    ).result()
    assert database.client_protocol == "Plaintext"
    key = amr.databases.list_keys(group, cluster, "default").secondary_key
    plain = redis.Redis(host="127.0.0.1", port=database.port, password=key, socket_timeout=5,
                        retry=None)
    with plain:
        assert plain.ping()
        assert plain.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        amr.databases.begin_update(
            group, cluster, "default", DatabaseUpdate(eviction_policy="AllKeysLRU")
        ).result()
        assert plain.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
    assert amr.databases.get(group, cluster, "default").eviction_policy == "AllKeysLRU"
