"""The portal's cache options on the sandbox through the real azure-mgmt-redis and
azure-mgmt-redisenterprise clients: what a cache is created with reads back, and what
Azure refuses is refused with the RP's error code."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.redis import RedisManagementClient
from azure.mgmt.redis.models import (
    RedisCommonPropertiesRedisConfiguration,
    RedisCreateParameters,
    RedisUpdateParameters,
    Sku,
)
from azure.mgmt.redisenterprise import RedisEnterpriseManagementClient
from azure.mgmt.redisenterprise.models import (
    Cluster,
    Database,
    DatabaseUpdate,
    Module,
    Persistence,
)
from azure.mgmt.redisenterprise.models import Sku as ManagedSku

from app.sandbox import Sandbox
from tests.sandbox.conftest import mgmt, unique

pytestmark = pytest.mark.sandbox

P1 = Sku(name="Premium", family="P", capacity=1)
C1 = Sku(name="Standard", family="C", capacity=1)
# A connection string of the shape Azure is given; the sandbox writes no blobs.
STORAGE = ("DefaultEndpointsProtocol=https;AccountName=mlcachestore;AccountKey=a2V5;"
           "EndpointSuffix=core.windows.net")


def _rdb(frequency: str = "30") -> RedisCommonPropertiesRedisConfiguration:
    return RedisCommonPropertiesRedisConfiguration(
        rdb_backup_enabled="true", rdb_backup_frequency=frequency,
        rdb_storage_connection_string=STORAGE)


def _create(client: RedisManagementClient, group: str, sku: Sku = P1, **props: object):  # type: ignore[no-untyped-def]
    params = RedisCreateParameters(location="westeurope", sku=sku, **props)
    return client.redis.begin_create(group, unique("opts-"), params)


def test_premium_with_rdb_every_30_minutes_and_two_replicas_reads_back(
    redis_mgmt: RedisManagementClient, group: str
) -> None:
    created = _create(redis_mgmt, group, redis_configuration=_rdb("30"), replicas_per_master=2,
                      update_channel="Preview").result()
    got = redis_mgmt.redis.get(group, created.name)
    assert got.provisioning_state == "Succeeded"
    assert got.replicas_per_master == 2 and got.replicas_per_primary == 2
    assert got.update_channel == "Preview"
    config = got.redis_configuration
    assert config.rdb_backup_enabled == "true" and config.rdb_backup_frequency == "30"
    # Azure fixes the replica count at creation.
    with pytest.raises(HttpResponseError) as info:
        redis_mgmt.redis.begin_update(group, created.name,
                                      RedisUpdateParameters(replicas_per_master=3)).result()
    assert info.value.error.code == "InvalidRequestBody"
    assert "cannot be changed after the cache is created" in info.value.error.message


def test_a_cache_without_a_channel_is_on_stable(
    redis_mgmt: RedisManagementClient, group: str
) -> None:
    created = _create(redis_mgmt, group, sku=Sku(name="Basic", family="C", capacity=0)).result()
    assert redis_mgmt.redis.get(group, created.name).update_channel == "Stable"


@pytest.mark.parametrize(
    ("sku", "props", "fragment"),
    [
        (C1, {"redis_configuration": _rdb()}, "only available for Premium"),
        (P1, {"redis_configuration": _rdb("45")}, "'rdb-backup-frequency' is invalid"),
        (C1, {"replicas_per_master": 2}, "only available for Premium"),
        (P1, {"replicas_per_master": 4}, "1 to 3 replicas"),
        (P1, {"replicas_per_master": 2, "redis_configuration":
              RedisCommonPropertiesRedisConfiguration(
                  aof_backup_enabled="true", aof_storage_connection_string0=STORAGE)},
         "AOF persistence cannot be used with more than one replica"),
        (P1, {"redis_configuration": RedisCommonPropertiesRedisConfiguration(
            rdb_backup_enabled="true")}, "needs 'rdb-storage-connection-string'"),
        (P1, {"update_channel": "Nightly"}, "'updateChannel' is invalid"),
    ],
)
def test_what_azure_refuses_is_refused(
    redis_mgmt: RedisManagementClient, group: str, sku: Sku, props: dict[str, object],
    fragment: str,
) -> None:
    with pytest.raises(HttpResponseError) as info:
        _create(redis_mgmt, group, sku=sku, **props)
    assert info.value.status_code == 400
    assert info.value.error.code == "InvalidRequestBody"
    assert fragment in info.value.error.message
    assert list(redis_mgmt.redis.list_by_resource_group(group)) == []


@pytest.fixture(scope="module")
def amr(sandbox: Sandbox) -> RedisEnterpriseManagementClient:
    return mgmt(RedisEnterpriseManagementClient, sandbox)  # type: ignore[no-any-return]


def _cluster(amr: RedisEnterpriseManagementClient, group: str) -> str:
    name = unique("amr-")
    amr.redis_enterprise.begin_create(group, name, Cluster(
        location="westeurope", sku=ManagedSku(name="Balanced_B0"), minimum_tls_version="1.2",
        public_network_access="Enabled")).result()
    return name


def test_redisearch_with_no_eviction_and_rdb_every_6h_reads_back(
    amr: RedisEnterpriseManagementClient, group: str
) -> None:
    name = _cluster(amr, group)
    amr.databases.begin_create(group, name, "default", Database(
        client_protocol="Encrypted", clustering_policy="EnterpriseCluster",
        eviction_policy="NoEviction", modules=[Module(name="redisearch"), Module(name="RedisJSON")],
        persistence=Persistence(rdb_enabled=True, rdb_frequency="6h"))).result()
    got = amr.databases.get(group, name, "default")
    assert [m.name for m in got.modules] == ["RediSearch", "RedisJSON"]
    assert got.eviction_policy == "NoEviction" and got.clustering_policy == "EnterpriseCluster"
    assert got.persistence.rdb_enabled and got.persistence.rdb_frequency == "6h"
    # RediSearch's needs hold after creation too.
    with pytest.raises(HttpResponseError) as info:
        amr.databases.begin_update(group, name, "default",
                                   DatabaseUpdate(eviction_policy="AllKeysLRU")).result()
    assert info.value.error.code == "BadRequest"
    assert "requires the NoEviction eviction policy" in info.value.error.message


@pytest.mark.parametrize(
    ("database", "fragment"),
    [
        (Database(clustering_policy="EnterpriseCluster", modules=[Module(name="RediSearch")]),
         "requires the NoEviction eviction policy"),
        (Database(clustering_policy="OSSCluster", eviction_policy="NoEviction",
                  modules=[Module(name="RediSearch")]),
         "requires the EnterpriseCluster clustering policy"),
        (Database(modules=[Module(name="RedisGraph")]), "'properties.modules[0].name' is invalid"),
        (Database(persistence=Persistence(rdb_enabled=True, rdb_frequency="2h")),
         "rdbFrequency' is invalid"),
    ],
)
def test_what_azure_managed_redis_refuses_is_refused(
    amr: RedisEnterpriseManagementClient, group: str, database: Database, fragment: str
) -> None:
    name = _cluster(amr, group)
    database.client_protocol = "Encrypted"
    with pytest.raises(HttpResponseError) as info:
        amr.databases.begin_create(group, name, "default", database)
    assert info.value.status_code == 400 and info.value.error.code == "BadRequest"
    assert fragment in info.value.error.message
