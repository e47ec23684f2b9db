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

This module serves the clusters; `managed_redis_databases` (the provider's base)
serves the databases and runs their servers, and `managed_redis_rules` holds
what a request may set.
"""

from __future__ import annotations

import logging
import shutil
from typing import Any

from azure.mgmt.redisenterprise import models as re_models
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.sandbox.arm import (
    ArmError,
    arm_route,
    empty_response,
    json_response,
    location_not_available,
    parse_model,
    read_json,
)
from app.sandbox.operations import OperationKind, OpRecord
from app.sandbox.providers.managed_redis_access import ManagedRedisAccess
from app.sandbox.providers.managed_redis_databases import (
    NAMESPACE,
    RTYPE,
    set_states,
)
from app.sandbox.providers.managed_redis_rules import (
    BUSY_STATES,
    NAME_PATTERN,
    bad_request,
    canonical,
    minimum_tls,
    parse_cluster,
    validate_sku,
)
from app.sandbox.providers.redis_base import busy
from app.sandbox.providers.resources import normalize_location, tags_of
from app.sandbox.redishost import RedisStartError
from app.sandbox.store import Record

log = logging.getLogger("mlcache.sandbox.redisenterprise")


class ManagedRedisProvider(ManagedRedisAccess):
    """Azure Managed Redis clusters, with the databases of `ManagedRedisDatabases` and
    their access-policy assignments (`ManagedRedisAccess`)."""

    namespace = NAMESPACE
    resource_types = (RTYPE,)

    @staticmethod
    def reported_version(full: str) -> str:
        """major.minor of the redis-server that really runs (Azure reports e.g. '7.4')."""
        return ".".join(full.split(".")[:2]) if full != "unknown" else full

    def routes(self) -> list[BaseRoute]:
        sub = "/subscriptions/{subscriptionId}"
        one, clusters = self.resource_routes(
            RTYPE,
            "clusterName",
            put=self.put_cluster,
            patch=self.patch_cluster,
            delete=self.delete_cluster,
        )
        return [
            arm_route(
                sub + "/providers/Microsoft.Cache/locations/{location}/operationsStatus/"
                "{operationId}",
                self.operation_status,
                ["GET"],
            ),
            *clusters,
            *self.database_routes(one),
            *self.assignment_routes(one),
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
            **self.database_operation_kinds(),
            **self.assignment_operation_kinds(),
        }

    # lifecycle

    def start(self) -> None:
        for record in self.ctx.store.resources(RTYPE):
            for name, database in record["private"].get("databases", {}).items():
                if database["body"]["properties"]["provisioningState"] in ("Succeeded", "Updating"):
                    try:
                        self.run_database_server(record, name, reuse_ports=True)
                    except (RedisStartError, ArmError) as exc:
                        log.error(
                            "database %s/%s did not come back: %s",
                            record["body"]["name"],
                            name,
                            exc,
                        )

    def teardown(self, record: Record) -> None:
        for name in list(record["private"].get("databases", {})):
            self.stop_database(record, name)
            shutil.rmtree(self.database_directory(record, name), ignore_errors=True)

    # routes: operation status

    async def operation_status(self, request: Request) -> Response:
        op = self.ctx.operations.get(request.path_params["operationId"])
        body = self.ctx.operations.status_body(op)
        body["id"] = body["id"].replace("/asyncOperations/", "/operationsStatus/")
        return json_response(body)

    # routes: clusters

    async def put_cluster(self, request: Request) -> Response:
        name = request.path_params["clusterName"]
        body = await read_json(request)
        group_record, rid = self.write_target(request, RTYPE, "clusterName")
        cluster = parse_cluster(body)
        sku = validate_sku(str(cluster.sku.name))
        existing = self.ctx.store.resource(rid)
        if existing is not None:
            return await self._update_cluster(existing, cluster, sku, body)
        if not NAME_PATTERN.match(name):
            raise ArmError(
                400,
                "InvalidResourceName",
                f"The cluster name '{name}' is invalid: 1-60 letters, digits and hyphens, "
                "with no leading, trailing or consecutive hyphens.",
            )
        if normalize_location(cluster.location) is None:
            raise location_not_available(cluster.location, RTYPE)
        access = (body.get("properties") or {}).get("publicNetworkAccess")
        if access is None:
            raise bad_request(
                "The property 'publicNetworkAccess' is required: set it to Enabled or Disabled.",
                "properties.publicNetworkAccess",
            )
        access = canonical(access, ("Enabled", "Disabled"), "properties.publicNetworkAccess")
        high_availability = canonical(
            cluster.high_availability or "Enabled",
            ("Enabled", "Disabled"),
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
                "minimumTlsVersion": minimum_tls(cluster.minimum_tls_version, None),
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
        self.put_new(
            rid,
            record,
            ArmError(
                409,
                "NameNotAvailable",
                f"The name '{name}' is not available: an Azure Managed Redis cluster with "
                "this name already exists.",
            ),
        )
        op = self.ctx.operations.start(
            request,
            "redisEnterprise.create",
            namespace=NAMESPACE,
            location=cluster.location,
            resource_id=rid,
        )
        return json_response(resource_body, 201, self.status_headers(op, location=False))

    async def _update_cluster(
        self, record: Record, cluster: re_models.Cluster, sku: str, body: dict[str, Any]
    ) -> Response:
        props = record["body"]["properties"]
        if props["provisioningState"] in BUSY_STATES:
            raise busy("cluster", record["body"]["name"], props["provisioningState"])
        if sku != record["body"]["sku"]["name"]:
            raise bad_request(
                "Scaling is not emulated by the sandbox: create a cluster with the new "
                "SKU instead.",
                "sku.name",
            )
        with self.ctx.store.transaction():
            props["minimumTlsVersion"] = minimum_tls(
                cluster.minimum_tls_version, props["minimumTlsVersion"]
            )
            if cluster.public_network_access:
                props["publicNetworkAccess"] = canonical(
                    cluster.public_network_access,
                    ("Enabled", "Disabled"),
                    "properties.publicNetworkAccess",
                )
            if "tags" in body:
                record["body"]["tags"] = tags_of(body)
        return json_response(record["body"], 200)

    async def patch_cluster(self, request: Request) -> Response:
        _, record = self.cluster_record(request)
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
            request,
            record["private"],
            "redisEnterprise.delete",
            location=record["body"]["location"],
            resource_id=rid,
            on_start=lambda: set_states(record["body"], "Deleting", "Deleting"),
        )
        return empty_response(202, self.status_headers(op))

    # long-running work

    def _cluster_created(self, op: OpRecord) -> None:
        record = self.operation_cluster(op)
        if record is None:
            raise ArmError(404, "ResourceNotFound", "The cluster was deleted while being created.")
        with self.ctx.store.transaction():
            set_states(record["body"], "Succeeded", "Running")

    def _cluster_failed(self, op: OpRecord, error: ArmError) -> None:
        record = self.operation_cluster(op)
        if record is not None:
            with self.ctx.store.transaction():
                set_states(record["body"], "Failed", "CreateFailed")

    def _cluster_delete_failed(self, op: OpRecord, error: ArmError) -> None:
        record = self.operation_cluster(op)
        if record is not None:
            with self.ctx.store.transaction():
                set_states(record["body"], "Failed", "DeleteFailed")
