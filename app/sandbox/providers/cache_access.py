"""Azure Cache for Redis: Microsoft Entra access policies and their assignments.

A mixin of `CacheProvider`. The three built-in access policies are listed and
read (custom policies are not emulated); access-policy assignments are created,
read, listed and deleted as the Redis RP does it (azure-mgmt-redis 14.5,
api-version 2024-11-01): PUT answers 201 (200 on an update) with
`provisioningState` Updating and an `Azure-AsyncOperation` status URL; DELETE
answers 202 with `Location` (the SDK's final state) and `Azure-AsyncOperation`.

An assignment takes effect when its operation ends: its principal becomes an
ACL user of the cache's redis-server (see `redis_base`); a deletion revokes it
when the DELETE is accepted, which disconnects the principal's clients at once.
Assignments need Microsoft Entra authentication on (`aad-enabled` "true").
"""

from __future__ import annotations

from typing import Any

from azure.mgmt.redis import models as redis_models
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.sandbox.arm import (
    ArmError,
    arm_route,
    empty_response,
    json_response,
    parse_model,
    read_json,
)
from app.sandbox.operations import OperationKind, OpRecord
from app.sandbox.providers.cache_rules import aad_enabled, invalid_request_body
from app.sandbox.providers.redis_base import RedisBackedProvider, busy
from app.sandbox.redis_entra import CACHE_ACCESS_POLICIES, OBJECT_ID, acl_rules
from app.sandbox.store import Record

RTYPE = "Microsoft.Cache/Redis"
POLICY_TYPE = "Microsoft.Cache/Redis/accessPolicies"
ASSIGNMENT_TYPE = "Microsoft.Cache/Redis/accessPolicyAssignments"
# Owner first: a principal assigned twice gets the broader policy.
_RANK = list(CACHE_ACCESS_POLICIES)


def policy_body(cache_id: str, name: str) -> dict[str, Any]:
    return {
        "id": f"{cache_id}/accessPolicies/{name}",
        "name": name,
        "type": POLICY_TYPE,
        "properties": {
            "provisioningState": "Succeeded",
            "type": "BuiltIn",
            "permissions": CACHE_ACCESS_POLICIES[name],
        },
    }


def canonical_policy(name: str) -> str | None:
    return next((p for p in CACHE_ACCESS_POLICIES if p.lower() == name.lower()), None)


class CacheAccessPolicies(RedisBackedProvider):
    """Access policies and assignments under `.../Microsoft.Cache/redis/{name}`."""

    def access_routes(self, one: str) -> list[BaseRoute]:
        policies = one + "/accessPolicies"
        assignments = one + "/accessPolicyAssignments"
        assignment = assignments + "/{accessPolicyAssignmentName}"
        return [
            arm_route(policies, self.list_policies, ["GET"]),
            arm_route(policies + "/{accessPolicyName}", self.get_policy, ["GET"]),
            arm_route(assignments, self.list_assignments, ["GET"]),
            arm_route(assignment, self.get_assignment, ["GET"]),
            arm_route(assignment, self.put_assignment, ["PUT"]),
            arm_route(assignment, self.delete_assignment, ["DELETE"]),
        ]

    def access_operation_kinds(self) -> dict[str, OperationKind]:
        return {
            "redis.accessPolicyAssignment.put": OperationKind(
                "redis.update", self._assignment_done, self._assignment_failed
            ),
            "redis.accessPolicyAssignment.delete": OperationKind(
                "redis.update", self._assignment_deleted, self._assignment_failed
            ),
        }

    # what the server grants

    def entra_grants(self, key: str) -> dict[str, tuple[str, ...]]:
        record = self.ctx.store.resource(key)
        if record is None or not aad_enabled(record["body"]["properties"]):
            return {}
        best: dict[str, str] = {}
        for held in _assignments(record).values():
            props = held["body"]["properties"]
            if props["provisioningState"] != "Succeeded":
                continue
            object_id = props["objectId"].lower()
            policy = props["accessPolicyName"]
            if object_id not in best or _RANK.index(policy) < _RANK.index(best[object_id]):
                best[object_id] = policy
        return {oid: acl_rules(CACHE_ACCESS_POLICIES[p]) for oid, p in best.items()}

    # routes: access policies

    def _cache(self, request: Request) -> tuple[str, Record]:
        return self.lookup(request, RTYPE, "name")

    async def list_policies(self, request: Request) -> Response:
        _, record = self._cache(request)
        cache_id = record["body"]["id"]
        return json_response({"value": [policy_body(cache_id, n) for n in CACHE_ACCESS_POLICIES]})

    async def get_policy(self, request: Request) -> Response:
        _, record = self._cache(request)
        name = canonical_policy(request.path_params["accessPolicyName"])
        if name is None:
            raise ArmError(
                404,
                "NotFound",
                f"The access policy '{request.path_params['accessPolicyName']}' was not found "
                f"on the cache '{record['body']['name']}'.",
            )
        return json_response(policy_body(record["body"]["id"], name))

    # routes: assignments

    def _held(self, request: Request) -> tuple[str, Record, str, dict[str, Any] | None]:
        rid, record = self._cache(request)
        name = request.path_params["accessPolicyAssignmentName"]
        found = next((k for k in _assignments(record) if k.lower() == name.lower()), None)
        return rid, record, found or name, _assignments(record).get(found) if found else None

    async def list_assignments(self, request: Request) -> Response:
        _, record = self._cache(request)
        return json_response({"value": [h["body"] for h in _assignments(record).values()]})

    async def get_assignment(self, request: Request) -> Response:
        _, record, name, held = self._held(request)
        if held is None:
            raise _assignment_not_found(record, name)
        return json_response(held["body"])

    async def put_assignment(self, request: Request) -> Response:
        rid, record, name, held = self._held(request)
        body = await read_json(request)
        given = parse_model(redis_models.RedisCacheAccessPolicyAssignment.deserialize, body)
        props = record["body"]["properties"]
        if props["provisioningState"] != "Succeeded":
            raise busy("cache", record["body"]["name"], props["provisioningState"])
        if not aad_enabled(props):
            raise invalid_request_body(
                "Microsoft Entra authentication is not enabled for the cache "
                f"'{record['body']['name']}': set redisConfiguration 'aad-enabled' to 'true' "
                "before assigning access policies.",
                "properties.redisConfiguration.aad-enabled",
            )
        object_id = str(given.object_id or "")
        if not OBJECT_ID.match(object_id):
            raise invalid_request_body(
                f"The value '{object_id}' of 'objectId' is invalid: it must be the object id "
                "(a GUID) of a Microsoft Entra user, service principal or managed identity.",
                "properties.objectId",
            )
        if not given.object_id_alias:
            raise invalid_request_body(
                "The parameter 'objectIdAlias' is required.", "properties.objectIdAlias"
            )
        policy = canonical_policy(str(given.access_policy_name or ""))
        if policy is None:
            raise invalid_request_body(
                f"The access policy '{given.access_policy_name}' does not exist on the cache "
                f"'{record['body']['name']}'; built-in policies are "
                + ", ".join(CACHE_ACCESS_POLICIES)
                + ".",
                "properties.accessPolicyName",
            )
        if held is not None:
            state = held["body"]["properties"]["provisioningState"]
            if state != "Succeeded":
                raise busy("access policy assignment", name, state)
        assignment = {
            "id": f"{record['body']['id']}/accessPolicyAssignments/{name}",
            "name": name,
            "type": ASSIGNMENT_TYPE,
            "properties": {
                "provisioningState": "Updating",
                "objectId": object_id,
                "objectIdAlias": given.object_id_alias,
                "accessPolicyName": policy,
            },
        }
        with self.ctx.store.transaction():
            record["private"].setdefault("accessPolicyAssignments", {})[name] = {
                "body": assignment
            }
        op = self.ctx.operations.start(
            request,
            "redis.accessPolicyAssignment.put",
            namespace=self.namespace,
            location=record["body"]["location"],
            resource_id=rid,
            final_body=False,
            args={"assignment": name},
        )
        headers = self.ctx.operations.headers(op, async_operation=True, location=False)
        return json_response(assignment, 200 if held is not None else 201, headers)

    async def delete_assignment(self, request: Request) -> Response:
        rid, record, name, held = self._held(request)
        if held is None:
            return empty_response(204)

        def revoke() -> None:
            held["body"]["properties"]["provisioningState"] = "Deleting"

        op = self.delete_operation(
            request,
            held,
            "redis.accessPolicyAssignment.delete",
            location=record["body"]["location"],
            resource_id=rid,
            args={"assignment": name},
            on_start=revoke,
        )
        # Revoked now: the principal's user goes, and with it its connections.
        await run_in_threadpool(self.sync_entra, rid)
        return empty_response(
            202, self.ctx.operations.headers(op, async_operation=True, location=True)
        )

    # long-running work

    def _op_assignment(self, op: OpRecord) -> tuple[Record, dict[str, Any]] | None:
        record = self.ctx.store.resource(op["resourceId"])
        if record is None:
            return None
        held = _assignments(record).get(op["args"]["assignment"])
        return (record, held) if held is not None else None

    def _assignment_done(self, op: OpRecord) -> None:
        found = self._op_assignment(op)
        if found is None:
            raise ArmError(404, "NotFound", "The access policy assignment no longer exists.")
        _, held = found
        with self.ctx.store.transaction():
            held["body"]["properties"]["provisioningState"] = "Succeeded"
        self.sync_entra(op["resourceId"])

    def _assignment_deleted(self, op: OpRecord) -> None:
        found = self._op_assignment(op)
        if found is None:
            return
        record, _ = found
        with self.ctx.store.transaction():
            _assignments(record).pop(op["args"]["assignment"], None)
        self.sync_entra(op["resourceId"])

    def _assignment_failed(self, op: OpRecord, error: ArmError) -> None:
        found = self._op_assignment(op)
        if found is not None:
            with self.ctx.store.transaction():
                found[1]["body"]["properties"]["provisioningState"] = "Failed"


def _assignments(record: Record) -> dict[str, dict[str, Any]]:
    held: dict[str, dict[str, Any]] = record["private"].get("accessPolicyAssignments", {})
    return held


def _assignment_not_found(record: Record, name: str) -> ArmError:
    return ArmError(
        404,
        "NotFound",
        f"The access policy assignment '{name}' was not found on the cache "
        f"'{record['body']['name']}'.",
    )
