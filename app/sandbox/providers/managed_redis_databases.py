"""The databases of an Azure Managed Redis cluster, each served by one redis-server.

The databases live inside their cluster's store record (`private.databases`),
because ARM does not list them as resources of the group either. This is the
base of `ManagedRedisProvider`: besides the database routes and operations it
holds what the cluster routes use too (the cluster lookup, status headers, and
starting or stopping a database's server).
"""

from __future__ import annotations

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
    not_found,
    parse_model,
    read_json,
)
from app.sandbox.operations import OperationKind, OpRecord
from app.sandbox.ports import free_port
from app.sandbox.providers.managed_redis_rules import (
    AZURE_PORT,
    BUSY_STATES,
    CLUSTERING_POLICIES,
    DATABASE_NAME,
    EVICTION_POLICIES,
    MAX_CLIENTS,
    bad_request,
    canonical,
    memory_bytes,
    modules,
    persistence,
)
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
from app.sandbox.redishost import RedisInstance, RedisSpec
from app.sandbox.store import Record

RTYPE = "Microsoft.Cache/redisEnterprise"
DB_TYPE = "Microsoft.Cache/redisEnterprise/databases"
NAMESPACE = "Microsoft.Cache"
DEFAULT_API_VERSION = "2025-07-01"


# From this api-version on, a database created without `accessKeysAuthentication`
# has access keys off (before it, on): hashicorp/terraform#37842 lists it among the
# 2025-07-01 breaking changes; the 2024-09-01-preview spec says "default is enabled".
KEYS_OFF_SINCE = "2025-07-01"


def default_access_keys(api_version: str) -> str:
    return "Disabled" if api_version[:10] >= KEYS_OFF_SINCE else "Enabled"


def set_states(body: dict[str, Any], provisioning: str, resource: str) -> None:
    """A cluster's or database's provisioningState and resourceState, which move together."""
    body["properties"]["provisioningState"] = provisioning
    body["properties"]["resourceState"] = resource


class ManagedRedisDatabases(RedisBackedProvider):
    """Database routes and operations, and the lookups the cluster routes share."""

    def database_routes(self, cluster: str) -> list[BaseRoute]:
        """Routes under the one-cluster path `cluster`."""
        dbs = cluster + "/databases"
        db = dbs + "/{databaseName}"
        return [
            arm_route(dbs, self.list_databases, ["GET"]),
            arm_route(db, self.get_database, ["GET"]),
            arm_route(db, self.put_database, ["PUT"]),
            arm_route(db, self.patch_database, ["PATCH"]),
            arm_route(db, self.delete_database, ["DELETE"]),
            arm_route(db + "/listKeys", self.list_keys, ["POST"]),
            arm_route(db + "/regenerateKey", self.regenerate_key, ["POST"]),
        ]

    def database_operation_kinds(self) -> dict[str, OperationKind]:
        return {
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

    # lookups, status headers and database servers

    def cluster_record(self, request: Request) -> tuple[str, Record]:
        """The id and record of the cluster the request's path names, or ARM's 404."""
        return self.lookup(request, RTYPE, "clusterName")

    def _database(self, request: Request) -> tuple[Record, str, dict[str, Any]]:
        _, record = self.cluster_record(request)
        name = request.path_params["databaseName"]
        for key, database in record["private"].get("databases", {}).items():
            if key.lower() == name.lower():
                return record, key, database
        raise not_found(
            DB_TYPE, f"{record['body']['name']}/{name}", request.path_params["resourceGroupName"]
        )

    def _status_url(self, op: OpRecord) -> str:
        sub = self.ctx.operations.subscription_of(op)
        return (
            f"{self.ctx.endpoint}/subscriptions/{sub}/providers/"
            f"{NAMESPACE}/locations/{op['location']}/operationsStatus/{op['id']}"
            f"?api-version={op.get('apiVersion') or DEFAULT_API_VERSION}"
        )

    def status_headers(self, op: OpRecord, location: bool = True) -> dict[str, str]:
        """The RP's own `operationsStatus` URL (and Location) for a 201/202 starting `op`."""
        headers = {"Azure-AsyncOperation": self._status_url(op)}
        if location:
            headers["Location"] = self.ctx.operations.location_url(op)
        if not self.ctx.latency.is_fast:
            headers["Retry-After"] = "1"
        return headers

    def _database_id(self, record: Record, name: str) -> str:
        return f"{record['body']['id']}/databases/{name}"

    def database_directory(self, record: Record, name: str) -> Path:
        """Where a database's redis-server keeps its config, certificate and data."""
        return (
            self.ctx.provider_dir("Microsoft.Cache.redisEnterprise")
            / f"{record['body']['name'].lower()}-{name.lower()}"
        )

    def _spec(self, record: Record, name: str) -> RedisSpec:
        database = record["private"]["databases"][name]
        props = database["body"]["properties"]
        cluster = record["body"]
        directory = self.database_directory(record, name)
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
            maxmemory_policy=EVICTION_POLICIES[props.get("evictionPolicy", "VolatileLRU")],
            maxclients=MAX_CLIENTS,
            tls_protocols=tls_protocols(tls),
            cert=self.ctx.ca.issue_leaf(directory, "server"),
            ca_file=self.ctx.ca.cert_file,
            entra_users=self.entra_users(self._database_id(record, name)),
        )

    def run_database_server(self, record: Record, name: str, reuse_ports: bool) -> RedisInstance:
        """Start the database's redis-server (on its own ports again when `reuse_ports`)."""
        database = record["private"]["databases"][name]

        def ports() -> list[int]:
            return [database["port"], database.get("adminPort") or database["port"]]

        def new_ports() -> None:
            database["port"] = free_port()
            if database.get("adminPort"):
                database["adminPort"] = free_port_besides(database["port"])
            database["body"]["properties"]["port"] = database["port"]

        return self._start_instance(
            self._database_id(record, name),
            spec=lambda: self._spec(record, name),
            ports=ports,
            new_ports=new_ports,
            reuse_ports=reuse_ports,
            what="database",
        )

    def stop_database(self, record: Record, name: str) -> None:
        self._stop_instance(self._database_id(record, name))

    # routes

    async def list_databases(self, request: Request) -> Response:
        _, record = self.cluster_record(request)
        bodies = [d["body"] for d in record["private"].get("databases", {}).values()]
        return json_response({"value": bodies})

    async def get_database(self, request: Request) -> Response:
        _, _, database = self._database(request)
        return json_response(database["body"])

    def _parse_database(self, body: dict[str, Any]) -> re_models.Database:
        return parse_model(re_models.Database.deserialize, body)

    async def put_database(self, request: Request) -> Response:
        rid, record = self.cluster_record(request)
        name = request.path_params["databaseName"]
        body = await read_json(request)
        database = self._parse_database(body)
        cluster_state = record["body"]["properties"]["provisioningState"]
        if cluster_state != "Succeeded":
            raise ArmError(
                409,
                "Conflict",
                f"The cluster '{record['body']['name']}' is {cluster_state}; a database can be "
                "created once the cluster has been provisioned.",
            )
        existing = next(
            (k for k in record["private"]["databases"] if k.lower() == name.lower()), None
        )
        if existing is not None:
            return await self._update_database(record, existing, database, body)
        if name != DATABASE_NAME:
            raise bad_request(
                f"The database name '{name}' is not supported: an Azure Managed Redis cluster "
                f"has one database, named '{DATABASE_NAME}'.",
                "name",
            )
        if database.port not in (None, AZURE_PORT):
            raise bad_request(
                f"The port {database.port} is not supported; databases listen on {AZURE_PORT}.",
                "properties.port",
            )
        protocol = canonical(
            database.client_protocol or "Encrypted",
            ("Encrypted", "Plaintext"),
            "properties.clientProtocol",
        )
        props: dict[str, Any] = {
            "clientProtocol": protocol,
            "port": 0,
            "provisioningState": "Creating",
            "resourceState": "Creating",
            "clusteringPolicy": canonical(
                database.clustering_policy or "OSSCluster",
                CLUSTERING_POLICIES,
                "properties.clusteringPolicy",
            ),
            "evictionPolicy": canonical(
                database.eviction_policy or "VolatileLRU",
                tuple(EVICTION_POLICIES),
                "properties.evictionPolicy",
            ),
            "persistence": persistence(database.persistence, {}),
            "modules": [],
            "redisVersion": self.redis_version,
            "deferUpgrade": canonical(
                database.defer_upgrade or "NotDeferred",
                ("Deferred", "NotDeferred"),
                "properties.deferUpgrade",
            ),
            "accessKeysAuthentication": canonical(
                database.access_keys_authentication
                or default_access_keys(request.query_params.get("api-version", "")),
                ("Enabled", "Disabled"),
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
        props["modules"] = modules(
            database.modules, props["clusteringPolicy"], props["evictionPolicy"]
        )
        with self.ctx.store.transaction():
            record["private"]["databases"][name] = private
        op = self.ctx.operations.start(
            request,
            "redisEnterprise.database.create",
            namespace=NAMESPACE,
            location=record["body"]["location"],
            resource_id=rid,
            final_body=False,
            args={"database": name},
        )
        return json_response(private["body"], 201, self.status_headers(op, location=False))

    async def _update_database(
        self, record: Record, name: str, update: Any, body: dict[str, Any]
    ) -> Response:
        database = record["private"]["databases"][name]
        props = database["body"]["properties"]
        if props["provisioningState"] in BUSY_STATES:
            raise busy("database", name, props["provisioningState"])
        given = body.get("properties") or {}
        if update.port not in (None, AZURE_PORT, props["port"]):
            raise bad_request("The port of a database cannot be changed.", "properties.port")
        if update.client_protocol and str(update.client_protocol).lower() != (
            props["clientProtocol"].lower()
        ):
            raise bad_request(
                "The client protocol of a database cannot be changed in the sandbox.",
                "properties.clientProtocol",
            )
        if update.clustering_policy:
            policy = canonical(
                update.clustering_policy, CLUSTERING_POLICIES, "properties.clusteringPolicy"
            )
            if policy != props["clusteringPolicy"] and props["clusteringPolicy"] != "NoCluster":
                raise bad_request(
                    f"The clustering policy {props['clusteringPolicy']} cannot be changed "
                    "without deleting the database.",
                    "properties.clusteringPolicy",
                )
        new = dict(props)
        if update.clustering_policy:
            new["clusteringPolicy"] = canonical(
                update.clustering_policy, CLUSTERING_POLICIES, "properties.clusteringPolicy"
            )
        if update.eviction_policy:
            new["evictionPolicy"] = canonical(
                update.eviction_policy, tuple(EVICTION_POLICIES), "properties.evictionPolicy"
            )
        if "persistence" in given:
            new["persistence"] = persistence(update.persistence, props["persistence"])
        if "modules" in given and [m.name.lower() for m in update.modules or []] != [
            m["name"].lower() for m in props.get("modules") or []
        ]:
            raise bad_request(
                "Modules can only be added when the database is created.", "properties.modules"
            )
        # RediSearch's needs hold for the policies the update leaves.
        modules(
            [re_models.Module(name=m["name"]) for m in props.get("modules") or []],
            new["clusteringPolicy"],
            new["evictionPolicy"],
        )
        if update.access_keys_authentication:
            new["accessKeysAuthentication"] = canonical(
                update.access_keys_authentication,
                ("Enabled", "Disabled"),
                "properties.accessKeysAuthentication",
            )
        instance = self.instance(self._database_id(record, name))
        if instance is not None:

            def reconfigure() -> None:
                cluster_sku = record["body"]["sku"]["name"]
                instance.set_memory(
                    memory_bytes(cluster_sku), EVICTION_POLICIES[new["evictionPolicy"]], MAX_CLIENTS
                )
                if new["accessKeysAuthentication"] != props["accessKeysAuthentication"]:
                    instance.set_key_hashes(self._hashes(database, new))
                    # Azure ends every connection, key or Entra, when keys go on or off.
                    instance.disconnect_clients()

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
        rid, record = self.cluster_record(request)
        name = request.path_params["databaseName"]
        key = next((k for k in record["private"]["databases"] if k.lower() == name.lower()), None)
        if key is None:
            self.ctx.require_group(self.subscription_matches(request), group)
            return empty_response(204)
        database = record["private"]["databases"][key]
        op = self.delete_operation(
            request,
            database,
            "redisEnterprise.database.delete",
            location=record["body"]["location"],
            resource_id=rid,
            args={"database": key},
            on_start=lambda: set_states(database["body"], "Deleting", "Deleting"),
        )
        return empty_response(202, self.status_headers(op))

    async def list_keys(self, request: Request) -> Response:
        _, _, database = self._database(request)
        # Keys exist whether or not accessKeysAuthentication lets them open the
        # database; the sandbox answers them either way.
        return json_response(access_keys(database))

    async def regenerate_key(self, request: Request) -> Response:
        record, name, _ = self._database(request)
        body = await read_json(request)
        params = parse_model(re_models.RegenerateKeyParameters.deserialize, body)
        field = key_field(params.key_type, bad_request)
        op = self.ctx.operations.start(
            request,
            "redisEnterprise.database.regenerateKey",
            namespace=NAMESPACE,
            location=record["body"]["location"],
            resource_id=record["body"]["id"],
            final_body=False,
            args={"database": name, "field": field},
        )
        return empty_response(202, self.status_headers(op))

    # long-running work

    def operation_cluster(self, op: OpRecord) -> Record | None:
        """The cluster an operation is about, if it still exists."""
        return self.ctx.store.resource(op["resourceId"])

    def _op_database(self, op: OpRecord) -> tuple[Record, dict[str, Any]] | None:
        record = self.operation_cluster(op)
        if record is None:
            return None
        database = record["private"]["databases"].get(op["args"]["database"])
        return (record, database) if database is not None else None

    def _database_created(self, op: OpRecord) -> None:
        found = self._op_database(op)
        if found is None:
            raise ArmError(404, "ResourceNotFound", "The database was deleted while being created.")
        record, database = found
        self.run_database_server(record, op["args"]["database"], reuse_ports=True)
        with self.ctx.store.transaction():
            set_states(database["body"], "Succeeded", "Running")

    def _database_failed(self, op: OpRecord, error: ArmError) -> None:
        found = self._op_database(op)
        if found is None:
            return
        record, database = found
        self.stop_database(record, op["args"]["database"])
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
        self.stop_database(record, op["args"]["database"])
        shutil.rmtree(self.database_directory(record, op["args"]["database"]), ignore_errors=True)
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
