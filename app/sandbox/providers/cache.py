"""Microsoft.Cache/redis: Azure Cache for Redis, backed by real redis-server processes.

Wire behaviour follows the Redis RP as the azure-mgmt-redis client expects it:
create answers 201 with provisioningState Creating and an Azure-AsyncOperation
URL under `providers/Microsoft.Cache/locations/{location}/asyncOperations/{id}`;
CheckNameAvailability answers 200 when free and 409 NameNotAvailable when not
(the RP's documented contract); names are global across the sandbox.

`hostName` is "127.0.0.1": there is no DNS in the sandbox and the server
certificate names 127.0.0.1, so clients verify against the sandbox CA with no
special casing. `sslPort`/`port` are the real listening ports.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from azure.mgmt.redis import models as redis_models
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
from app.sandbox.ports import free_port, port_free
from app.sandbox.providers.cache_access import CacheAccessPolicies
from app.sandbox.providers.cache_rules import (
    CACHE_NAME,
    check_scaling,
    invalid_request_body,
    memory_limits,
    name_taken,
    parse_create,
    validate_sku,
    validated_properties,
)
from app.sandbox.providers.redis_base import (
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

log = logging.getLogger("mlcache.sandbox.redis")

RTYPE = "Microsoft.Cache/Redis"


class CacheProvider(CacheAccessPolicies):
    namespace = "Microsoft.Cache"
    resource_types = (RTYPE,)
    # Sandbox shutdown snapshots each cache (dump.rdb in its directory), loaded
    # when the server comes back, so a restarted sandbox keeps cache contents.
    snapshot_on_stop = True

    def routes(self) -> list[BaseRoute]:
        one, crud = self.resource_routes(
            "Microsoft.Cache/redis",
            "name",
            put=self.put,
            patch=self.patch,
            delete=self.delete,
        )
        return [
            arm_route(
                "/subscriptions/{subscriptionId}/providers/Microsoft.Cache/CheckNameAvailability",
                self.check_name,
                ["POST"],
            ),
            *crud,
            arm_route(one + "/listKeys", self.list_keys, ["POST"]),
            arm_route(one + "/regenerateKey", self.regenerate_key, ["POST"]),
            *self.access_routes(one),
        ]

    def operation_kinds(self) -> dict[str, OperationKind]:
        return {
            "redis.create": OperationKind("redis.create", self._create_work, self._create_failed),
            "redis.delete": OperationKind(
                "redis.delete", self.remove_after_teardown, self.mark_failed
            ),
            **self.access_operation_kinds(),
        }

    # lifecycle

    def start(self) -> None:
        for record in self.ctx.store.resources(RTYPE):
            if record["body"]["properties"]["provisioningState"] in ("Succeeded", "Updating"):
                try:
                    self._run_server(record, reuse_ports=True)
                except (RedisStartError, ArmError) as exc:
                    log.error("cache %s did not come back: %s", record["body"]["name"], exc)

    def teardown(self, record: Record) -> None:
        """The cache is going away: stop its server and drop its files and data."""
        self._stop_server(record)
        shutil.rmtree(self._cache_dir(record), ignore_errors=True)

    def _stop_server(self, record: Record) -> None:
        self._stop_instance(record["body"]["id"])

    def _cache_dir(self, record: Record) -> Path:
        return self.ctx.provider_dir(self.namespace) / "redis" / record["body"]["name"].lower()

    # helpers

    def _lookup(self, request: Request) -> tuple[str, Record]:
        return self.lookup(request, RTYPE, "name")

    def _spec(self, record: Record) -> RedisSpec:
        props = record["body"]["properties"]
        private = record["private"]
        maxmemory, maxclients = memory_limits(props["sku"])
        config = props.get("redisConfiguration") or {}
        directory = self._cache_dir(record)
        directory.mkdir(parents=True, exist_ok=True)
        return RedisSpec(
            directory=directory,
            tls_port=private["sslPort"],
            plain_port=private["port"] if props["enableNonSslPort"] else None,
            key_hashes=_open_hashes(props, private),
            maxmemory_bytes=maxmemory,
            maxmemory_policy=config.get("maxmemory-policy", "volatile-lru"),
            maxclients=maxclients,
            tls_protocols=tls_protocols(props.get("minimumTlsVersion") or "1.2"),
            cert=self.ctx.ca.issue_leaf(directory, "server"),
            ca_file=self.ctx.ca.cert_file,
            notify_keyspace_events=config.get("notify-keyspace-events", ""),
            entra_users=self.entra_users(record["body"]["id"]),
        )

    def _run_server(self, record: Record, reuse_ports: bool) -> RedisInstance:
        private = record["private"]

        def new_ports() -> None:
            private["sslPort"], private["port"] = _two_free_ports()
            self._publish_ports(record)

        instance = self._start_instance(
            record["body"]["id"],
            spec=lambda: self._spec(record),
            ports=lambda: [private["sslPort"], private["port"]],
            new_ports=new_ports,
            reuse_ports=reuse_ports,
            what="cache",
        )
        with self.ctx.store.transaction():
            private["pid"] = instance.pid
        return instance

    @staticmethod
    def _publish_ports(record: Record) -> None:
        props = record["body"]["properties"]
        private = record["private"]
        props["port"] = private["port"]
        props["sslPort"] = private["sslPort"]
        instance: dict[str, Any] = {
            "sslPort": private["sslPort"],
            "isMaster": True,
            "isPrimary": True,
        }
        if props.get("enableNonSslPort"):
            instance["nonSslPort"] = private["port"]
        props["instances"] = [instance]

    # routes

    async def check_name(self, request: Request) -> Response:
        body = await read_json(request)
        name = body.get("name")
        rtype = body.get("type")
        if not isinstance(name, str) or not isinstance(rtype, str):
            raise ArmError(400, "InvalidRequestContent", "Both 'name' and 'type' are required.")
        if rtype.lower() != "microsoft.cache/redis":
            raise ArmError(
                400, "InvalidRequestBody", f"The resource type '{rtype}' is not supported."
            )
        if not CACHE_NAME.match(name):
            raise invalid_request_body(
                f"The name '{name}' is invalid. Cache names are 1-63 characters of letters, "
                "numbers and hyphens; they start and end with a letter or number and have no "
                "consecutive hyphens.",
                "name",
            )
        if self.ctx.store.find_by_name(RTYPE, name) is not None:
            raise name_taken(name)
        return empty_response(200)

    async def put(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = await read_json(request)
        group_record, rid = self.write_target(request, RTYPE, "name")
        existing = self.ctx.store.resource(rid)
        params = parse_create(body)
        sku = validate_sku(dict(params.sku.serialize()))
        if existing is not None:
            return await self._update(request, rid, existing, params, sku, body)
        if not CACHE_NAME.match(name):
            raise invalid_request_body(f"The cache name '{name}' is invalid.", "name")
        if normalize_location(params.location) is None:
            raise location_not_available(params.location, RTYPE)
        if params.zones and sku["name"] == "Basic":
            raise invalid_request_body(
                "Availability zones are not available for Basic caches.", "zones"
            )
        props = validated_properties(params, sku, None)
        ssl_port, port = _two_free_ports()
        private = {
            **new_keys(),
            "sslPort": ssl_port,
            "port": port,
        }
        resource_body: dict[str, Any] = {
            "id": rid,
            "name": name,
            "type": RTYPE,
            "location": params.location,
            "tags": tags_of(body),
            "properties": {
                "provisioningState": "Creating",
                "redisVersion": self.redis_version,
                **props,
                "hostName": "127.0.0.1",
                "accessKeys": None,
                "linkedServers": [],
                "disableAccessKeyAuthentication": props.get(
                    "disableAccessKeyAuthentication", False
                ),
                "tenantSettings": params.tenant_settings or {},
            },
        }
        if params.zones:
            resource_body["zones"] = list(params.zones)
        record = {"body": resource_body, "private": private, "group": group_record["body"]["name"]}
        self._publish_ports(record)
        self.put_new(rid, record, name_taken(name))
        op = self.ctx.operations.start(
            request,
            "redis.create",
            namespace=self.namespace,
            location=params.location,
            resource_id=rid,
        )
        return json_response(resource_body, 201, self._create_headers(request, op))

    async def _update(
        self,
        request: Request,
        rid: str,
        record: Record,
        params: Any,
        sku: dict[str, Any],
        body: dict[str, Any],
    ) -> Response:
        props = record["body"]["properties"]
        state = props["provisioningState"]
        if state in ("Creating", "Deleting", "Updating", "Scaling"):
            raise busy("cache", record["body"]["name"], state)
        if state == "Failed":
            return self._reprovision(request, rid, record, params, sku, body)
        check_scaling(props["sku"], sku)
        new_props = validated_properties(params, sku, props)
        await self._apply(rid, record, new_props, tags_of(body) if "tags" in body else None)
        return json_response(record["body"], 200)

    def _reprovision(
        self,
        request: Request,
        rid: str,
        record: Record,
        params: Any,
        sku: dict[str, Any],
        body: dict[str, Any],
    ) -> Response:
        """A PUT on a cache whose provisioning failed provisions it again, as ARM retries do."""
        new_props = validated_properties(params, sku, None)
        with self.ctx.store.transaction():
            props = record["body"]["properties"]
            props.update(new_props)
            props["provisioningState"] = "Creating"
            record["body"]["tags"] = tags_of(body)
            self._publish_ports(record)
        op = self.ctx.operations.start(
            request,
            "redis.create",
            namespace=self.namespace,
            location=record["body"]["location"],
            resource_id=rid,
        )
        return json_response(record["body"], 201, self._create_headers(request, op))

    def _create_headers(self, request: Request, op: OpRecord) -> dict[str, str]:
        """The Redis RP answers a create with both `Azure-AsyncOperation` (the status
        document) and `Location`, which names the cache itself, the PUT's own URL
        (azure-cli's `az redis create` recordings); pollers follow the former."""
        headers = self.ctx.operations.headers(op, async_operation=True, location=False)
        version = request.query_params.get("api-version", "")
        headers["Location"] = f"{self.ctx.endpoint}{request.url.path}?api-version={version}"
        return headers

    async def patch(self, request: Request) -> Response:
        rid, record = self._lookup(request)
        body = await read_json(request)
        params = parse_model(redis_models.RedisUpdateParameters.deserialize, body)
        props = record["body"]["properties"]
        if props["provisioningState"] in ("Creating", "Deleting"):
            raise ArmError(
                409,
                "Conflict",
                f"The cache '{record['body']['name']}' is busy ({props['provisioningState']}).",
            )
        sku = validate_sku(dict(params.sku.serialize())) if params.sku else dict(props["sku"])
        check_scaling(props["sku"], sku)
        new_props = validated_properties(params, sku, props)
        await self._apply(rid, record, new_props, tags_of(body) if "tags" in body else None)
        return json_response(record["body"], 200)

    async def _apply(
        self, rid: str, record: Record, new_props: dict[str, Any], tags: dict[str, str] | None
    ) -> None:
        """Change the live server first, then the record (so the record never lies)."""
        from starlette.concurrency import run_in_threadpool

        props = record["body"]["properties"]
        instance = self.instance(rid)
        if instance is not None and props["provisioningState"] == "Succeeded":
            private = record["private"]

            def reconfigure() -> None:
                maxmemory, maxclients = memory_limits(new_props["sku"])
                config = new_props["redisConfiguration"]
                instance.set_memory(
                    maxmemory, config.get("maxmemory-policy", "volatile-lru"), maxclients
                )
                instance.set_tls_protocols(tls_protocols(new_props["minimumTlsVersion"]))
                if new_props["enableNonSslPort"] != props["enableNonSslPort"]:
                    port = private["port"]
                    if new_props["enableNonSslPort"] and not port_free(port, reuse_address=True):
                        port = free_port()
                        private["port"] = port
                    instance.set_plain_port(port if new_props["enableNonSslPort"] else None)
                if new_props["disableAccessKeyAuthentication"] != props.get(
                    "disableAccessKeyAuthentication", False
                ):
                    # Azure closes every connection when access keys go on or off.
                    instance.set_key_hashes(_open_hashes(new_props, private))
                    instance.disconnect_clients()

            await run_in_threadpool(reconfigure)
        with self.ctx.store.transaction():
            props.update(new_props)
            if tags is not None:
                record["body"]["tags"] = tags
            self._publish_ports(record)
        if instance is not None:
            await run_in_threadpool(self.sync_entra, rid)

    async def delete(self, request: Request) -> Response:
        rid, record = self.locate(request, RTYPE, "name")
        if record is None:
            return empty_response(204)
        with self.ctx.store.transaction():
            record["body"]["properties"]["provisioningState"] = "Deleting"
        op = self.delete_operation(
            request,
            record["private"],
            "redis.delete",
            location=record["body"]["location"],
            resource_id=rid,
        )
        return empty_response(
            202, self.ctx.operations.headers(op, async_operation=True, location=True)
        )

    async def list_keys(self, request: Request) -> Response:
        _, record = self._lookup(request)
        return json_response(access_keys(record["private"]))

    async def regenerate_key(self, request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        rid, record = self._lookup(request)
        body = await read_json(request)
        params = parse_model(redis_models.RedisRegenerateKeyParameters.deserialize, body, "request")
        field = key_field(params.key_type, invalid_request_body)
        private = record["private"]
        keys = regenerated(private, field)
        instance = self.instance(rid)
        if instance is not None:
            props = record["body"]["properties"]
            await run_in_threadpool(instance.set_key_hashes, _open_hashes(props, keys))
        with self.ctx.store.transaction():
            private.update(keys)
        return json_response(keys)

    # long-running work

    def _create_work(self, op: OpRecord) -> None:
        record = self.ctx.store.resource(op["resourceId"])
        if record is None:
            raise ArmError(404, "ResourceNotFound", "The cache was deleted while being created.")
        self._run_server(record, reuse_ports=True)
        with self.ctx.store.transaction() as store:
            if store.resource(op["resourceId"]) is not record:
                # Deleted (e.g. with its group) while the server was starting.
                self.teardown(record)
                raise ArmError(
                    404, "ResourceNotFound", "The cache was deleted while being created."
                )
            record["body"]["properties"]["provisioningState"] = "Succeeded"

    def _create_failed(self, op: OpRecord, error: ArmError) -> None:
        record = self.ctx.store.resource(op["resourceId"])
        if record is None:
            return
        self._stop_server(record)
        self.mark_failed(op, error)



def _open_hashes(props: dict[str, Any], keys: dict[str, Any]) -> list[str]:
    """The key hashes that open the `default` user: none once access keys are disabled."""
    return [] if props.get("disableAccessKeyAuthentication") else key_hashes(keys)


def _two_free_ports() -> tuple[int, int]:
    first = free_port()
    return first, free_port_besides(first)
