"""Azure Managed Redis: access-policy assignments on a cluster's `default` database.

Between the database routes (`managed_redis_databases`) and the cluster routes
(`managed_redis`). Assignments are served as azure-mgmt-redisenterprise 3.1 calls
them (api-version 2025-07-01): PUT answers 201 (200 on an update) with
`provisioningState` Updating and the RP's `operationsStatus` URL, and the SDK
then reads the assignment itself; DELETE answers 202 with both
`Azure-AsyncOperation` and `Location` (204 when there is nothing to delete).
The one policy is `default`, the rights an access key gives. Azure Managed Redis
always takes Microsoft Entra tokens, so an assignment opens the database to its
principal once its operation ends; a DELETE revokes it at once, which
disconnects the principal's clients.
"""

from __future__ import annotations

import re
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
from app.sandbox.providers.managed_redis_databases import DB_TYPE, ManagedRedisDatabases
from app.sandbox.providers.managed_redis_rules import bad_request
from app.sandbox.providers.redis_base import busy
from app.sandbox.redis_entra import (
    MANAGED_REDIS_PERMISSIONS,
    MANAGED_REDIS_POLICY,
    OBJECT_ID,
    acl_rules,
)
from app.sandbox.store import Record

ASSIGNMENT_TYPE = DB_TYPE + "/accessPolicyAssignments"
# The API's own pattern for an assignment's name.
ASSIGNMENT_NAME = re.compile(r"^[A-Za-z0-9]{1,60}$")


class ManagedRedisAccess(ManagedRedisDatabases):
    """`.../databases/{databaseName}/accessPolicyAssignments[/{name}]`."""

    def assignment_routes(self, cluster: str) -> list[BaseRoute]:
        assignments = cluster + "/databases/{databaseName}/accessPolicyAssignments"
        one = assignments + "/{accessPolicyAssignmentName}"
        return [
            arm_route(assignments, self.list_assignments, ["GET"]),
            arm_route(one, self.get_assignment, ["GET"]),
            arm_route(one, self.put_assignment, ["PUT"]),
            arm_route(one, self.delete_assignment, ["DELETE"]),
        ]

    def assignment_operation_kinds(self) -> dict[str, OperationKind]:
        return {
            "redisEnterprise.accessPolicyAssignment.put": OperationKind(
                "redis.update", self._assignment_done, self._assignment_failed
            ),
            "redisEnterprise.accessPolicyAssignment.delete": OperationKind(
                "redis.update", self._assignment_deleted, self._assignment_failed
            ),
        }

    # what the server grants

    def entra_grants(self, key: str) -> dict[str, tuple[str, ...]]:
        cluster_id, _, name = key.rpartition("/databases/")
        record = self.ctx.store.resource(cluster_id)
        if record is None:
            return {}
        database = _database_named(record, name)
        if database is None:
            return {}
        rules = acl_rules(MANAGED_REDIS_PERMISSIONS)
        return {
            held["body"]["properties"]["user"]["objectId"].lower(): rules
            for held in _assignments(database).values()
            if held["body"]["properties"]["provisioningState"] == "Succeeded"
        }

    # routes

    def _database_of(self, request: Request) -> tuple[str, Record, dict[str, Any]]:
        """The cluster's id and record and the database the path names, or ARM's 404."""
        rid, record = self.cluster_record(request)
        db_name = request.path_params["databaseName"]
        database = _database_named(record, db_name)
        if database is None:
            group = request.path_params["resourceGroupName"]
            raise not_found(DB_TYPE, f"{record['body']['name']}/{db_name}", group)
        return rid, record, database

    def _target(
        self, request: Request
    ) -> tuple[str, Record, str, dict[str, Any], str, dict[str, Any] | None]:
        rid, record, database = self._database_of(request)
        name = request.path_params["accessPolicyAssignmentName"]
        found = next((k for k in _assignments(database) if k.lower() == name.lower()), None)
        held = _assignments(database).get(found) if found else None
        return rid, record, database["body"]["name"], database, found or name, held

    async def list_assignments(self, request: Request) -> Response:
        _, _, database = self._database_of(request)
        return json_response({"value": [h["body"] for h in _assignments(database).values()]})

    async def get_assignment(self, request: Request) -> Response:
        _, record, db_name, _, name, held = self._target(request)
        if held is None:
            raise not_found(
                ASSIGNMENT_TYPE,
                f"{record['body']['name']}/{db_name}/{name}",
                request.path_params["resourceGroupName"],
            )
        return json_response(held["body"])

    async def put_assignment(self, request: Request) -> Response:
        rid, record, db_name, database, name, held = self._target(request)
        body = await read_json(request)
        given = parse_model(re_models.AccessPolicyAssignment.deserialize, body)
        if not ASSIGNMENT_NAME.match(name):
            raise bad_request(
                f"The access policy assignment name '{name}' is invalid: 1-60 letters and digits.",
                "name",
            )
        state = database["body"]["properties"]["provisioningState"]
        if state != "Succeeded":
            raise busy("database", db_name, state)
        if str(given.access_policy_name or "").lower() != MANAGED_REDIS_POLICY:
            raise bad_request(
                f"The access policy '{given.access_policy_name}' is not supported; Azure Managed "
                f"Redis has one access policy, '{MANAGED_REDIS_POLICY}'.",
                "properties.accessPolicyName",
            )
        object_id = str(given.user.object_id or "") if given.user else ""
        if not OBJECT_ID.match(object_id):
            raise bad_request(
                f"The value '{object_id}' of 'user.objectId' is invalid: it must be the object id "
                "(a GUID) of a Microsoft Entra user, service principal or managed identity.",
                "properties.user.objectId",
            )
        if held is not None:
            held_state = held["body"]["properties"]["provisioningState"]
            if held_state != "Succeeded":
                raise busy("access policy assignment", name, held_state)
        assignment = {
            "id": f"{database['body']['id']}/accessPolicyAssignments/{name}",
            "name": name,
            "type": ASSIGNMENT_TYPE,
            "properties": {
                "provisioningState": "Updating",
                "accessPolicyName": MANAGED_REDIS_POLICY,
                "user": {"objectId": object_id},
            },
        }
        with self.ctx.store.transaction():
            database.setdefault("accessPolicyAssignments", {})[name] = {"body": assignment}
        op = self.ctx.operations.start(
            request,
            "redisEnterprise.accessPolicyAssignment.put",
            namespace=self.namespace,
            location=record["body"]["location"],
            resource_id=rid,
            final_body=False,
            args={"database": db_name, "assignment": name},
        )
        return json_response(
            assignment, 200 if held is not None else 201, self.status_headers(op, location=False)
        )

    async def delete_assignment(self, request: Request) -> Response:
        rid, record, db_name, _, name, held = self._target(request)
        if held is None:
            return empty_response(204)

        def revoke() -> None:
            held["body"]["properties"]["provisioningState"] = "Deleting"

        op = self.delete_operation(
            request,
            held,
            "redisEnterprise.accessPolicyAssignment.delete",
            location=record["body"]["location"],
            resource_id=rid,
            args={"database": db_name, "assignment": name},
            on_start=revoke,
        )
        await run_in_threadpool(self.sync_entra, f"{rid}/databases/{db_name}")
        return empty_response(202, self.status_headers(op))

    # long-running work

    def _op_assignment(self, op: OpRecord) -> tuple[dict[str, Any], dict[str, Any]] | None:
        record = self.ctx.store.resource(op["resourceId"])
        database = _database_named(record, op["args"]["database"]) if record else None
        if database is None:
            return None
        held = _assignments(database).get(op["args"]["assignment"])
        return (database, held) if held is not None else None

    def _op_key(self, op: OpRecord) -> str:
        return f"{op['resourceId']}/databases/{op['args']['database']}"

    def _assignment_done(self, op: OpRecord) -> None:
        found = self._op_assignment(op)
        if found is None:
            raise ArmError(404, "NotFound", "The access policy assignment no longer exists.")
        with self.ctx.store.transaction():
            found[1]["body"]["properties"]["provisioningState"] = "Succeeded"
        self.sync_entra(self._op_key(op))

    def _assignment_deleted(self, op: OpRecord) -> None:
        found = self._op_assignment(op)
        if found is None:
            return
        with self.ctx.store.transaction():
            _assignments(found[0]).pop(op["args"]["assignment"], None)
        self.sync_entra(self._op_key(op))

    def _assignment_failed(self, op: OpRecord, error: ArmError) -> None:
        found = self._op_assignment(op)
        if found is not None:
            with self.ctx.store.transaction():
                found[1]["body"]["properties"]["provisioningState"] = "Failed"


def _database_named(record: Record, name: str) -> dict[str, Any] | None:
    databases: dict[str, dict[str, Any]] = record["private"].get("databases", {})
    return next((d for k, d in databases.items() if k.lower() == name.lower()), None)


def _assignments(database: dict[str, Any]) -> dict[str, dict[str, Any]]:
    held: dict[str, dict[str, Any]] = database.get("accessPolicyAssignments", {})
    return held
