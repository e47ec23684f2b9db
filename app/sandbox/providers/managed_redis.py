"""Microsoft.Cache/redisEnterprise: Azure Managed Redis, backed by real redis-server processes.

Azure Managed Redis is a *cluster* resource (SKU such as Balanced_B0, host name,
TLS version) holding one *database* named `default` (port, client protocol,
clustering and eviction policy, persistence, access keys). Only the database
serves data, so the redis-server starts when the database is created and stops
when the database or its cluster goes.

Wire behaviour follows the RP as azure-mgmt-redisenterprise 3.1 (api-version
2025-07-01) calls it:
- cluster and database PUT answer 201 with provisioningState/resourceState
  Creating and an `Azure-AsyncOperation` URL under
  `providers/Microsoft.Cache/locations/{location}/operationsStatus/{id}` (the
  RP's own status route, also served here); the SDK then GETs the resource
  (final-state-via original-uri) and sees Succeeded/Running;
- DELETE and regenerateKey answer 202 and finish through the same status URL;
- `publicNetworkAccess` is required on cluster create (2025-07-01 contract);
  `accessKeysAuthentication` defaults to Disabled, so keys open the database
  only when a client enables them;
- Enterprise_* / EnterpriseFlash_* SKUs are refused as Azure now refuses them.

Sandbox differences (documented in docs/sandbox.md): `hostName` is 127.0.0.1,
not `<name>.<region>.redis.azure.net` (no DNS here; the server certificate
names 127.0.0.1), and the database `port` is a free local port rather than
10000, so several databases can run side by side; a client reads both from the
resources, as it must on Azure too. The database is one plain redis-server
whatever the clustering policy; modules and persistence are recorded, not run.
The databases live inside their cluster's store record, because ARM does not
list them as resources of the group either.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from typing import Any

from azure.mgmt.redisenterprise import models as re_models
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.sandbox.arm import (
    ArmError,
    arm_route,
    empty_response,
    json_response,
    location_not_available,
    location_required,
    not_found,
    parse_model,
    read_json,
)
from app.sandbox.operations import OperationKind, OpRecord
from app.sandbox.ports import free_port, port_free
from app.sandbox.providers.redis_base import (
    RedisBackedProvider,
    access_keys,
    busy,
    free_port_besides,
    key_field,
    key_hashes,
    new_keys,
    regenerated,
    tls_protocols,
)
from app.sandbox.providers.resources import normalize_location, tags_of
from app.sandbox.redishost import RedisInstance, RedisSpec, RedisStartError
from app.sandbox.store import Record

log = logging.getLogger("mlcache.sandbox.redisenterprise")

RTYPE = "Microsoft.Cache/redisEnterprise"
DB_TYPE = "Microsoft.Cache/redisEnterprise/databases"
NAMESPACE = "Microsoft.Cache"
DEFAULT_API_VERSION = "2025-07-01"
AZURE_PORT = 10000
# Azure Managed Redis serves exactly one database per cluster, named `default`.
DATABASE_NAME = "default"

# Memory (GB) per size, as Microsoft's tier tables list it. The sandbox divides
# by MEMORY_SCALE and caps the result, like the classic cache provider.
_SIZE_GB: dict[str, float] = {
    "B0": 0.5, "B1": 1, "B3": 3, "B5": 6, "B10": 12, "B20": 24, "B50": 60, "B100": 120,
    "B150": 180, "B250": 240, "B350": 360, "B500": 480, "B700": 720, "B1000": 960,
    "M10": 12, "M20": 24, "M50": 60, "M100": 120, "M150": 180, "M250": 240, "M350": 360,
    "M500": 480, "M700": 720, "M1000": 960, "M1500": 1440, "M2000": 1920,
    "X3": 3, "X5": 6, "X10": 12, "X20": 24, "X50": 60, "X100": 120, "X150": 180,
    "X250": 240, "X350": 360, "X500": 480, "X700": 720,
    "A250": 256, "A500": 512, "A700": 720, "A1000": 1024, "A1500": 1536, "A2000": 2048,
    "A4500": 4608,
}
MEMORY_SCALE = 32
_MAX_SANDBOX_BYTES = 4 * 1024**3
_MAX_CLIENTS = 1000

# Cluster and database names: the API's own pattern.
_NAME = re.compile(r"^(?=.{1,60}$)[A-Za-z0-9]+(-[A-Za-z0-9]+)*$")
_SKUS = {s.value.lower(): s.value for s in re_models.SkuName}
_EVICTION = {
    "AllKeysLFU": "allkeys-lfu",
    "AllKeysLRU": "allkeys-lru",
    "AllKeysRandom": "allkeys-random",
    "VolatileLRU": "volatile-lru",
    "VolatileLFU": "volatile-lfu",
    "VolatileTTL": "volatile-ttl",
    "VolatileRandom": "volatile-random",
    "NoEviction": "noeviction",
}
_CLUSTERING = ("EnterpriseCluster", "OSSCluster", "NoCluster")
_BUSY = ("Creating", "Updating", "Deleting")


def _bad(message: str, target: str | None = None) -> ArmError:
    return ArmError(400, "BadRequest", message, target=target)


def _canonical(value: Any, allowed: tuple[str, ...] | list[str], what: str) -> str:
    """Azure's enums are case-insensitive on input and canonical on output."""
    for option in allowed:
        if str(value).lower() == option.lower():
            return option
    raise _bad(f"The value '{value}' of '{what}' is invalid; valid values are "
               f"{', '.join(allowed)}.", what)


def validate_sku(name: str) -> str:
    """The canonical SKU name, or Azure's refusal."""
    canonical = _SKUS.get(name.lower())
    if canonical is None:
        raise _bad(f"The SKU '{name}' is not a valid Azure Managed Redis SKU.", "sku.name")
    if canonical.startswith("Enterprise"):
        raise _bad(
            "Creation of new Azure Cache for Redis Enterprise resources is no longer "
            "supported. Create an Azure Managed Redis instance (e.g. Balanced_B0) instead.",
            "sku.name",
        )
    return canonical


def memory_bytes(sku: str) -> int:
    size = sku.split("_", 1)[-1]
    gigabytes = _SIZE_GB.get(size, 1.0)
    return min(int(gigabytes * 1024**3 / MEMORY_SCALE), _MAX_SANDBOX_BYTES)


class ManagedRedisProvider(RedisBackedProvider):
    namespace = NAMESPACE
    resource_types = (RTYPE,)

    @staticmethod
    def reported_version(full: str) -> str:
        """major.minor of the redis-server that really runs (Azure reports e.g. '7.4')."""
        return ".".join(full.split(".")[:2]) if full != "unknown" else full

    def routes(self) -> list[BaseRoute]:
        sub = "/subscriptions/{subscriptionId}"
        one, clusters = self.resource_routes(
            RTYPE, "clusterName",
            put=self.put_cluster, patch=self.patch_cluster, delete=self.delete_cluster,
        )
        dbs = one + "/databases"
        db = dbs + "/{databaseName}"
        return [
            arm_route(
                sub + "/providers/Microsoft.Cache/locations/{location}/operationsStatus/"
                "{operationId}",
                self.operation_status,
                ["GET"],
            ),
            *clusters,
            arm_route(dbs, self.list_databases, ["GET"]),
            arm_route(db, self.get_database, ["GET"]),
            arm_route(db, self.put_database, ["PUT"]),
            arm_route(db, self.patch_database, ["PATCH"]),
            arm_route(db, self.delete_database, ["DELETE"]),
            arm_route(db + "/listKeys", self.list_keys, ["POST"]),
            arm_route(db + "/regenerateKey", self.regenerate_key, ["POST"]),
        ]

    def operation_kinds(self) -> dict[str, OperationKind]:
        # The latency table has no rows of its own for Managed Redis: creating
        # one takes about as long as a classic cache on Azure.
        return {
            "redisEnterprise.create": OperationKind(
                "redis.create", self._cluster_created, self._cluster_failed
            ),
            "redisEnterprise.delete": OperationKind(
                "redis.delete", self.remove_after_teardown, self._cluster_delete_failed
            ),
            "redisEnterprise.database.create": OperationKind(
                "redis.update", self._database_created, self._database_failed
            ),
            "redisEnterprise.database.delete": OperationKind(
                "redis.delete", self._database_deleted, self._database_failed
            ),
            "redisEnterprise.database.regenerateKey": OperationKind(
                "redis.update", self._key_regenerated, self._nothing_failed
            ),
        }

    # lifecycle

    def start(self) -> None:
        for record in self.ctx.store.resources(RTYPE):
            for name, database in record["private"].get("databases", {}).items():
                if database["body"]["properties"]["provisioningState"] in ("Succeeded", "Updating"):
                    try:
                        self._run_server(record, name, reuse_ports=True)
                    except (RedisStartError, ArmError) as exc:
                        log.error(
                            "database %s/%s did not come back: %s",
                            record["body"]["name"], name, exc,
                        )

    def teardown(self, record: Record) -> None:
        for name in list(record["private"].get("databases", {})):
            self._stop_database(record, name)
            shutil.rmtree(self._directory(record, name), ignore_errors=True)

    # helpers

    def _cluster(self, request: Request) -> tuple[str, Record]:
        return self.lookup(request, RTYPE, "clusterName")

    def _database(self, request: Request) -> tuple[Record, str, dict[str, Any]]:
        _, record = self._cluster(request)
        name = request.path_params["databaseName"]
        for key, database in record["private"].get("databases", {}).items():
            if key.lower() == name.lower():
                return record, key, database
        raise not_found(DB_TYPE, f"{record['body']['name']}/{name}",
                        request.path_params["resourceGroupName"])

    def _status_url(self, op: OpRecord) -> str:
        return (
            f"{self.ctx.endpoint}/subscriptions/{self.ctx.subscription_id}/providers/"
            f"{NAMESPACE}/locations/{op['location']}/operationsStatus/{op['id']}"
            f"?api-version={op.get('apiVersion') or DEFAULT_API_VERSION}"
        )

    def _headers(self, op: OpRecord, location: bool = True) -> dict[str, str]:
        headers = {"Azure-AsyncOperation": self._status_url(op)}
        if location:
            headers["Location"] = self.ctx.operations.location_url(op)
        if not self.ctx.latency.is_fast:
            headers["Retry-After"] = "1"
        return headers

    def _database_id(self, record: Record, name: str) -> str:
        return f"{record['body']['id']}/databases/{name}"

    def _directory(self, record: Record, name: str) -> Path:
        return (
            self.ctx.provider_dir("Microsoft.Cache.redisEnterprise")
            / f"{record['body']['name'].lower()}-{name.lower()}"
        )

    def _spec(self, record: Record, name: str) -> RedisSpec:
        database = record["private"]["databases"][name]
        props = database["body"]["properties"]
        cluster = record["body"]
        directory = self._directory(record, name)
        directory.mkdir(parents=True, exist_ok=True)
        keys_enabled = props.get("accessKeysAuthentication") == "Enabled"
        hashes = key_hashes(database) if keys_enabled else []
        encrypted = props.get("clientProtocol", "Encrypted") == "Encrypted"
        tls = cluster["properties"].get("minimumTlsVersion") or "1.2"
        return RedisSpec(
            directory=directory,
            # A Plaintext database still gets a TLS port: only the sandbox's own
            # admin connection uses it, clients see just the plaintext port.
            tls_port=database["port"] if encrypted else database["adminPort"],
            plain_port=None if encrypted else database["port"],
            key_hashes=hashes,
            maxmemory_bytes=memory_bytes(cluster["sku"]["name"]),
            maxmemory_policy=_EVICTION[props.get("evictionPolicy", "VolatileLRU")],
            maxclients=_MAX_CLIENTS,
            tls_protocols=tls_protocols(tls),
            cert=self.ctx.ca.issue_leaf(directory, "server"),
            ca_file=self.ctx.ca.cert_file,
        )

    def _run_server(self, record: Record, name: str, reuse_ports: bool) -> RedisInstance:
        database = record["private"]["databases"][name]

        def ports_free() -> bool:
            wanted = [database["port"], database.get("adminPort") or database["port"]]
            return all(port_free(p) for p in wanted)

        def new_ports() -> None:
            database["port"] = free_port()
            if database.get("adminPort"):
                database["adminPort"] = free_port_besides(database["port"])
            database["body"]["properties"]["port"] = database["port"]

        return self._start_instance(
            self._database_id(record, name),
            spec=lambda: self._spec(record, name),
            ports_free=ports_free,
            new_ports=new_ports,
            reuse_ports=reuse_ports,
            what="database",
        )

    def _stop_database(self, record: Record, name: str) -> None:
        self._stop_instance(self._database_id(record, name))

    # routes: operation status

    async def operation_status(self, request: Request) -> Response:
        op = self.ctx.operations.get(request.path_params["operationId"])
        body = self.ctx.operations.status_body(op)
        body["id"] = body["id"].replace("/asyncOperations/", "/operationsStatus/")
        return json_response(body)

    # routes: clusters

    def _parse_cluster(self, body: dict[str, Any]) -> re_models.Cluster:
        cluster = parse_model(re_models.Cluster.deserialize, body)
        if not cluster.location:
            raise location_required()
        if cluster.sku is None or not cluster.sku.name:
            raise _bad("The parameter 'sku' is required.", "sku")
        return cluster

    def _tls(self, value: Any, old: str | None) -> str:
        tls = str(value or old or "1.2")
        if tls not in ("1.0", "1.1", "1.2"):
            raise _bad(f"The value '{tls}' of 'minimumTlsVersion' is invalid.",
                       "properties.minimumTlsVersion")
        if tls != "1.2":
            raise _bad("TLS 1.0 and 1.1 are obsolete; 'minimumTlsVersion' must be 1.2.",
                       "properties.minimumTlsVersion")
        return tls

    async def put_cluster(self, request: Request) -> Response:
        name = request.path_params["clusterName"]
        body = await read_json(request)
        group_record, rid = self.write_target(request, RTYPE, "clusterName")
        cluster = self._parse_cluster(body)
        sku = validate_sku(str(cluster.sku.name))
        existing = self.ctx.store.resource(rid)
        if existing is not None:
            return await self._update_cluster(existing, cluster, sku, body)
        if not _NAME.match(name):
            raise ArmError(
                400, "InvalidResourceName",
                f"The cluster name '{name}' is invalid: 1-60 letters, digits and hyphens, "
                "with no leading, trailing or consecutive hyphens.",
            )
        if normalize_location(cluster.location) is None:
            raise location_not_available(cluster.location, RTYPE)
        access = (body.get("properties") or {}).get("publicNetworkAccess")
        if access is None:
            raise _bad("The property 'publicNetworkAccess' is required: set it to Enabled or "
                       "Disabled.", "properties.publicNetworkAccess")
        access = _canonical(access, ("Enabled", "Disabled"), "properties.publicNetworkAccess")
        high_availability = _canonical(
            cluster.high_availability or "Enabled", ("Enabled", "Disabled"),
            "properties.highAvailability",
        )
        resource_body: dict[str, Any] = {
            "id": rid,
            "name": name,
            "type": RTYPE,
            "location": cluster.location,
            "tags": tags_of(body),
            "kind": "v2",
            "sku": {"name": sku},
            "properties": {
                "provisioningState": "Creating",
                "resourceState": "Creating",
                "hostName": "127.0.0.1",
                "minimumTlsVersion": self._tls(cluster.minimum_tls_version, None),
                "highAvailability": high_availability,
                "redundancyMode": "ZR" if high_availability == "Enabled" else "None",
                "redisVersion": self.redis_version,
                "publicNetworkAccess": access,
                "privateEndpointConnections": [],
                "encryption": {},
            },
        }
        if cluster.zones:
            resource_body["zones"] = list(cluster.zones)
        record: Record = {
            "body": resource_body,
            "private": {"databases": {}},
            "group": group_record["body"]["name"],
        }
        self.put_new(rid, record, ArmError(
            409, "NameNotAvailable",
            f"The name '{name}' is not available: an Azure Managed Redis cluster with "
            "this name already exists.",
        ))
        op = self.ctx.operations.start(
            request, "redisEnterprise.create", namespace=NAMESPACE,
            location=cluster.location, resource_id=rid,
        )
        return json_response(resource_body, 201, self._headers(op, location=False))

    async def _update_cluster(
        self, record: Record, cluster: re_models.Cluster, sku: str, body: dict[str, Any]
    ) -> Response:
        props = record["body"]["properties"]
        if props["provisioningState"] in _BUSY:
            raise busy("cluster", record["body"]["name"], props["provisioningState"])
        if sku != record["body"]["sku"]["name"]:
            raise _bad("Scaling is not emulated by the sandbox: create a cluster with the new "
                       "SKU instead.", "sku.name")
        with self.ctx.store.transaction():
            props["minimumTlsVersion"] = self._tls(
                cluster.minimum_tls_version, props["minimumTlsVersion"]
            )
            if cluster.public_network_access:
                props["publicNetworkAccess"] = _canonical(
                    cluster.public_network_access, ("Enabled", "Disabled"),
                    "properties.publicNetworkAccess",
                )
            if "tags" in body:
                record["body"]["tags"] = tags_of(body)
        return json_response(record["body"], 200)

    async def patch_cluster(self, request: Request) -> Response:
        _, record = self._cluster(request)
        body = await read_json(request)
        update = parse_model(re_models.ClusterUpdate.deserialize, body)
        sku = validate_sku(str(update.sku.name)) if update.sku else record["body"]["sku"]["name"]
        merged = re_models.Cluster(
            location=record["body"]["location"],
            sku=re_models.Sku(name=sku),
            minimum_tls_version=update.minimum_tls_version,
            public_network_access=update.public_network_access,
        )
        return await self._update_cluster(record, merged, sku, body)

    async def delete_cluster(self, request: Request) -> Response:
        rid, record = self.locate(request, RTYPE, "clusterName")
        if record is None:
            return empty_response(204)
        op = self.delete_operation(
            request, record["private"], "redisEnterprise.delete",
            location=record["body"]["location"], resource_id=rid,
            on_start=lambda: _set_states(record["body"], "Deleting", "Deleting"),
        )
        return empty_response(202, self._headers(op))

    # routes: databases

    async def list_databases(self, request: Request) -> Response:
        _, record = self._cluster(request)
        bodies = [d["body"] for d in record["private"].get("databases", {}).values()]
        return json_response({"value": bodies})

    async def get_database(self, request: Request) -> Response:
        _, _, database = self._database(request)
        return json_response(database["body"])

    def _parse_database(self, body: dict[str, Any]) -> re_models.Database:
        return parse_model(re_models.Database.deserialize, body)

    @staticmethod
    def _persistence(value: re_models.Persistence | None, old: dict[str, Any]) -> dict[str, Any]:
        if value is None:
            return old or {"aofEnabled": False, "rdbEnabled": False}
        result: dict[str, Any] = {
            "aofEnabled": bool(value.aof_enabled),
            "rdbEnabled": bool(value.rdb_enabled),
        }
        if result["aofEnabled"] and result["rdbEnabled"]:
            raise _bad("Only one of AOF and RDB persistence can be enabled.",
                       "properties.persistence")
        if value.aof_frequency:
            result["aofFrequency"] = _canonical(value.aof_frequency, ("1s", "always"),
                                                "properties.persistence.aofFrequency")
        if value.rdb_frequency:
            result["rdbFrequency"] = _canonical(value.rdb_frequency, ("1h", "6h", "12h"),
                                                "properties.persistence.rdbFrequency")
        return result

    async def put_database(self, request: Request) -> Response:
        rid, record = self._cluster(request)
        name = request.path_params["databaseName"]
        body = await read_json(request)
        database = self._parse_database(body)
        cluster_state = record["body"]["properties"]["provisioningState"]
        if cluster_state != "Succeeded":
            raise ArmError(
                409, "Conflict",
                f"The cluster '{record['body']['name']}' is {cluster_state}; a database can be "
                "created once the cluster has been provisioned.",
            )
        existing = next(
            (k for k in record["private"]["databases"] if k.lower() == name.lower()), None
        )
        if existing is not None:
            return await self._update_database(record, existing, database, body)
        if name != DATABASE_NAME:
            raise _bad(
                f"The database name '{name}' is not supported: an Azure Managed Redis cluster "
                f"has one database, named '{DATABASE_NAME}'.",
                "name",
            )
        if database.port not in (None, AZURE_PORT):
            raise _bad(f"The port {database.port} is not supported; databases listen on "
                       f"{AZURE_PORT}.", "properties.port")
        protocol = _canonical(database.client_protocol or "Encrypted",
                              ("Encrypted", "Plaintext"), "properties.clientProtocol")
        props: dict[str, Any] = {
            "clientProtocol": protocol,
            "port": 0,
            "provisioningState": "Creating",
            "resourceState": "Creating",
            "clusteringPolicy": _canonical(database.clustering_policy or "OSSCluster",
                                           _CLUSTERING, "properties.clusteringPolicy"),
            "evictionPolicy": _canonical(database.eviction_policy or "VolatileLRU",
                                         tuple(_EVICTION), "properties.evictionPolicy"),
            "persistence": self._persistence(database.persistence, {}),
            "modules": [m.serialize() for m in database.modules or []],
            "redisVersion": self.redis_version,
            "deferUpgrade": _canonical(database.defer_upgrade or "NotDeferred",
                                       ("Deferred", "NotDeferred"), "properties.deferUpgrade"),
            "accessKeysAuthentication": _canonical(
                database.access_keys_authentication or "Disabled", ("Enabled", "Disabled"),
                "properties.accessKeysAuthentication",
            ),
        }
        port = free_port()
        private: dict[str, Any] = {
            "body": {
                "id": self._database_id(record, name),
                "name": name,
                "type": DB_TYPE,
                "properties": props,
            },
            **new_keys(),
            "port": port,
            "adminPort": free_port_besides(port) if protocol == "Plaintext" else None,
        }
        props["port"] = port
        with self.ctx.store.transaction():
            record["private"]["databases"][name] = private
        op = self.ctx.operations.start(
            request, "redisEnterprise.database.create", namespace=NAMESPACE,
            location=record["body"]["location"], resource_id=rid, final_body=False,
            args={"database": name},
        )
        return json_response(private["body"], 201, self._headers(op, location=False))

    async def _update_database(
        self, record: Record, name: str, update: Any, body: dict[str, Any]
    ) -> Response:
        database = record["private"]["databases"][name]
        props = database["body"]["properties"]
        if props["provisioningState"] in _BUSY:
            raise busy("database", name, props["provisioningState"])
        given = body.get("properties") or {}
        if update.port not in (None, AZURE_PORT, props["port"]):
            raise _bad("The port of a database cannot be changed.", "properties.port")
        if update.client_protocol and str(update.client_protocol).lower() != (
            props["clientProtocol"].lower()
        ):
            raise _bad("The client protocol of a database cannot be changed in the sandbox.",
                       "properties.clientProtocol")
        if update.clustering_policy:
            policy = _canonical(update.clustering_policy, _CLUSTERING,
                                "properties.clusteringPolicy")
            if policy != props["clusteringPolicy"] and props["clusteringPolicy"] != "NoCluster":
                raise _bad(
                    f"The clustering policy {props['clusteringPolicy']} cannot be changed "
                    "without deleting the database.",
                    "properties.clusteringPolicy",
                )
        new = dict(props)
        if update.clustering_policy:
            new["clusteringPolicy"] = _canonical(update.clustering_policy, _CLUSTERING,
                                                 "properties.clusteringPolicy")
        if update.eviction_policy:
            new["evictionPolicy"] = _canonical(update.eviction_policy, tuple(_EVICTION),
                                               "properties.evictionPolicy")
        if "persistence" in given:
            new["persistence"] = self._persistence(update.persistence, props["persistence"])
        if update.access_keys_authentication:
            new["accessKeysAuthentication"] = _canonical(
                update.access_keys_authentication, ("Enabled", "Disabled"),
                "properties.accessKeysAuthentication",
            )
        instance = self.instance(self._database_id(record, name))
        if instance is not None:

            def reconfigure() -> None:
                cluster_sku = record["body"]["sku"]["name"]
                instance.set_memory(memory_bytes(cluster_sku), _EVICTION[new["evictionPolicy"]],
                                    _MAX_CLIENTS)
                if new["accessKeysAuthentication"] != props["accessKeysAuthentication"]:
                    instance.set_key_hashes(self._hashes(database, new))

            await run_in_threadpool(reconfigure)
        with self.ctx.store.transaction():
            props.update(new)
        return json_response(database["body"], 200)

    @staticmethod
    def _hashes(database: dict[str, Any], props: dict[str, Any]) -> list[str]:
        if props.get("accessKeysAuthentication") != "Enabled":
            return []
        return key_hashes(database)

    async def patch_database(self, request: Request) -> Response:
        record, name, _ = self._database(request)
        body = await read_json(request)
        update = parse_model(re_models.DatabaseUpdate.deserialize, body)
        return await self._update_database(record, name, update, body)

    async def delete_database(self, request: Request) -> Response:
        group = request.path_params["resourceGroupName"]
        rid, record = self._cluster(request)
        name = request.path_params["databaseName"]
        key = next((k for k in record["private"]["databases"] if k.lower() == name.lower()), None)
        if key is None:
            self.ctx.require_group(group)
            return empty_response(204)
        database = record["private"]["databases"][key]
        op = self.delete_operation(
            request, database, "redisEnterprise.database.delete",
            location=record["body"]["location"], resource_id=rid, args={"database": key},
            on_start=lambda: _set_states(database["body"], "Deleting", "Deleting"),
        )
        return empty_response(202, self._headers(op))

    async def list_keys(self, request: Request) -> Response:
        _, _, database = self._database(request)
        # Keys exist whether or not accessKeysAuthentication lets them open the
        # database; the sandbox answers them either way.
        return json_response(access_keys(database))

    async def regenerate_key(self, request: Request) -> Response:
        record, name, _ = self._database(request)
        body = await read_json(request)
        params = parse_model(re_models.RegenerateKeyParameters.deserialize, body)
        field = key_field(params.key_type, _bad)
        op = self.ctx.operations.start(
            request, "redisEnterprise.database.regenerateKey", namespace=NAMESPACE,
            location=record["body"]["location"], resource_id=record["body"]["id"],
            final_body=False, args={"database": name, "field": field},
        )
        return empty_response(202, self._headers(op))

    # long-running work

    def _op_cluster(self, op: OpRecord) -> Record | None:
        return self.ctx.store.resource(op["resourceId"])

    def _cluster_created(self, op: OpRecord) -> None:
        record = self._op_cluster(op)
        if record is None:
            raise ArmError(404, "ResourceNotFound", "The cluster was deleted while being created.")
        with self.ctx.store.transaction():
            _set_states(record["body"], "Succeeded", "Running")

    def _cluster_failed(self, op: OpRecord, error: ArmError) -> None:
        record = self._op_cluster(op)
        if record is not None:
            with self.ctx.store.transaction():
                _set_states(record["body"], "Failed", "CreateFailed")

    def _cluster_delete_failed(self, op: OpRecord, error: ArmError) -> None:
        record = self._op_cluster(op)
        if record is not None:
            with self.ctx.store.transaction():
                _set_states(record["body"], "Failed", "DeleteFailed")

    def _op_database(self, op: OpRecord) -> tuple[Record, dict[str, Any]] | None:
        record = self._op_cluster(op)
        if record is None:
            return None
        database = record["private"]["databases"].get(op["args"]["database"])
        return (record, database) if database is not None else None

    def _database_created(self, op: OpRecord) -> None:
        found = self._op_database(op)
        if found is None:
            raise ArmError(404, "ResourceNotFound", "The database was deleted while being created.")
        record, database = found
        self._run_server(record, op["args"]["database"], reuse_ports=True)
        with self.ctx.store.transaction():
            _set_states(database["body"], "Succeeded", "Running")

    def _database_failed(self, op: OpRecord, error: ArmError) -> None:
        found = self._op_database(op)
        if found is None:
            return
        record, database = found
        self._stop_database(record, op["args"]["database"])
        deleting = op["kind"].endswith(".delete")
        with self.ctx.store.transaction():
            database["body"]["properties"]["provisioningState"] = "Failed"
            database["body"]["properties"]["resourceState"] = (
                "DeleteFailed" if deleting else "CreateFailed"
            )

    def _database_deleted(self, op: OpRecord) -> None:
        found = self._op_database(op)
        if found is None:
            return
        record, _ = found
        self._stop_database(record, op["args"]["database"])
        shutil.rmtree(self._directory(record, op["args"]["database"]), ignore_errors=True)
        with self.ctx.store.transaction():
            record["private"]["databases"].pop(op["args"]["database"], None)

    def _key_regenerated(self, op: OpRecord) -> None:
        found = self._op_database(op)
        if found is None:
            raise ArmError(404, "ResourceNotFound", "The database no longer exists.")
        record, database = found
        keys = regenerated(database, op["args"]["field"])
        instance = self.instance(self._database_id(record, op["args"]["database"]))
        if instance is not None:
            instance.set_key_hashes(self._hashes(keys, database["body"]["properties"]))
        with self.ctx.store.transaction():
            database.update(keys)

    def _nothing_failed(self, op: OpRecord, error: ArmError) -> None:
        """A failed key regeneration leaves the keys as they were."""


def _set_states(body: dict[str, Any], provisioning: str, resource: str) -> None:
    body["properties"]["provisioningState"] = provisioning
    body["properties"]["resourceState"] = resource
