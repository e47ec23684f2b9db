"""Microsoft.Authorization: role assignments and the built-in role definitions.

Served as azure-mgmt-authorization 4.0 calls it (api-version 2022-04-01): PUT, GET
and DELETE `{scope}/providers/Microsoft.Authorization/roleAssignments/{name}` at a
subscription, group or resource scope, and the lists (`list_for_scope`,
`list_for_subscription`, `list_for_resource_group`, `list_for_resource`) with
ARM's `$filter`: none (at, above and below the scope), `atScope()` (at or above),
`principalId eq '<id>'` (that principal's, at, above and below), `assignedTo('<id>')`.

Errors are ARM's, as live answers quote them: `InvalidRoleAssignmentId` for a name
that is not a GUID, `RoleDefinitionDoesNotExist`, `PrincipalNotFound` (with Azure's
hint about replication delay), `RoleAssignmentExists` (409) for the same principal,
role and scope under any name, `RoleAssignmentNotFound`. Assignments are extension
resources: not in a group's resource list, and gone with their scope
(`Store.remove_resource` / `remove_group`). A new one takes effect after the latency
profile's `rbac.propagation`; then every provider hears of it (`on_role_assignment`).
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.sandbox.arm import (
    ArmError,
    arm_route,
    empty_response,
    group_not_found,
    json_response,
    read_json,
)
from app.sandbox.operations import utc_now
from app.sandbox.providers import Provider
from app.sandbox.rbac import (
    BUILT_IN_ROLES,
    ROLE_ASSIGNMENT_TYPE,
    role,
    role_definition_body,
    role_definition_id,
    role_of_definition_id,
    scope_covers,
)
from app.sandbox.store import Record

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_SCOPE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)(?:/resourceGroups/(?P<group>[^/]+)"
    r"(?:/providers/(?P<ns>[^/]+)/(?P<type>[^/]+)/(?P<name>[^/]+)(?P<rest>/.*)?)?)?$",
    re.IGNORECASE,
)
_PRINCIPAL_FILTER = re.compile(r"^\s*principalId\s+eq\s+'(?P<id>[^']*)'\s*$", re.IGNORECASE)
_ASSIGNED_FILTER = re.compile(r"^\s*assignedTo\('(?P<id>[^']*)'\)\s*$", re.IGNORECASE)
_ROLE_NAME_FILTER = re.compile(r"^\s*roleName\s+eq\s+'(?P<name>[^']*)'\s*$", re.IGNORECASE)
_AUTH = "/providers/Microsoft.Authorization"
PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal", "ForeignGroup", "Device")


class AuthorizationProvider(Provider):
    namespace = "Microsoft.Authorization"

    def routes(self) -> list[BaseRoute]:
        assignments = "/{scope:path}" + _AUTH + "/roleAssignments"
        definitions = "/{scope:path}" + _AUTH + "/roleDefinitions"
        return [
            arm_route(assignments, self.list_assignments, ["GET"]),
            arm_route(assignments + "/{name}", self.get_assignment, ["GET"]),
            arm_route(assignments + "/{name}", self.put_assignment, ["PUT"]),
            arm_route(assignments + "/{name}", self.delete_assignment, ["DELETE"]),
            arm_route(definitions, self.list_definitions, ["GET"]),
            arm_route(definitions + "/{name}", self.get_definition, ["GET"]),
            arm_route(_AUTH + "/roleDefinitions/{name}", self.get_definition, ["GET"]),
        ]

    # -- scopes ------------------------------------------------------------------------

    def _scope(self, request: Request) -> tuple[str, str]:
        """The scope the path names, spelled as the sandbox stores it, and its
        subscription; ARM's 404 when the subscription, group or resource is missing."""
        scope = "/" + str(request.path_params.get("scope", "")).strip("/")
        match = _SCOPE.match(scope)
        if match is None:
            raise ArmError(
                400, "InvalidScope", f"The scope '{scope}' is not a subscription, resource group "
                "or resource the sandbox serves."
            )
        found = self.ctx.directory.subscription(match["sub"])
        if found is None:
            raise ArmError(
                404, "SubscriptionNotFound",
                f"The subscription '{match['sub']}' could not be found.",
            )
        sub = found.subscription_id
        if match["group"] is None:
            return f"/subscriptions/{sub}", sub
        group = self.ctx.store.group(sub, match["group"])
        if group is None:
            raise group_not_found(match["group"])
        spelled = f"/subscriptions/{sub}/resourceGroups/{group['body']['name']}"
        if match["ns"] is None:
            return spelled, sub
        top = f"{spelled}/providers/{match['ns']}/{match['type']}/{match['name']}"
        record = self.ctx.store.resource(top)
        if record is None:
            raise ArmError(
                404, "ResourceNotFound",
                f"The Resource '{match['ns']}/{match['type']}/{match['name']}' under resource "
                f"group '{group['body']['name']}' was not found. For more details please go to "
                "https://aka.ms/ARMResourceNotFoundFix",
            )
        return record["body"]["id"] + (match["rest"] or ""), sub

    # -- principals --------------------------------------------------------------------

    def _principal_known(self, principal_id: str, tenant_id: str) -> bool:
        """A service principal of the sandbox (a site's identity) or the sandbox user,
        in the tenant of the scope's subscription."""
        sp = self.ctx.store.service_principal(principal_id)
        if sp is not None:
            return str(sp["tenantId"]).lower() == tenant_id.lower()
        tenant = self.ctx.directory.tenant(tenant_id)
        return tenant is not None and tenant.user_object_id.lower() == principal_id.lower()

    # -- role assignments --------------------------------------------------------------

    async def put_assignment(self, request: Request) -> Response:
        scope, sub = self._scope(request)
        name = request.path_params["name"]
        if not _GUID.match(name):
            raise ArmError(
                400, "InvalidRoleAssignmentId",
                f"The role assignment ID '{name}' is not valid. The role assignment ID must be "
                "a GUID.",
            )
        body = await read_json(request)
        props = body.get("properties")
        if not isinstance(props, dict):
            raise ArmError(400, "InvalidRequestContent", "The request content was invalid: "
                           "'properties' is required.")
        definition = props.get("roleDefinitionId")
        principal = props.get("principalId")
        if not isinstance(definition, str) or not definition:
            raise ArmError(400, "InvalidRoleDefinitionId",
                           "The role definition ID '' is not valid.")
        if not isinstance(principal, str) or not _GUID.match(principal):
            raise ArmError(400, "InvalidPrincipalId",
                           "A valid principal ID must be provided for role assignment.")
        found = role_of_definition_id(definition)
        if found is None:
            guid = definition.rstrip("/").rsplit("/", 1)[-1]
            raise ArmError(400, "RoleDefinitionDoesNotExist",
                           f"The specified role definition with ID '{guid}' does not exist.")
        principal_type = props.get("principalType")
        if principal_type is not None and principal_type not in PRINCIPAL_TYPES:
            raise ArmError(400, "InvalidPrincipalType",
                           f"The principal type '{principal_type}' is not valid.")
        tenant = self.ctx.directory.subscription(sub)
        assert tenant is not None
        if not self._principal_known(principal, tenant.tenant_id):
            raise ArmError(
                400, "PrincipalNotFound",
                f"Principal {principal.replace('-', '')} does not exist in the directory "
                f"{tenant.tenant_id}. Check that you have the correct principal ID. If you are "
                "creating this principal and then immediately assigning a role, this error "
                "might be related to a replication delay. In this case, set the role "
                "assignment principalType property to a value, such as ServicePrincipal, "
                "User, or Group.  See https://aka.ms/docs-principaltype",
            )
        rid = f"{scope}{_AUTH}/roleAssignments/{name}"
        now = utc_now()
        delay = self.ctx.latency.seconds("rbac.propagation")
        with self.ctx.store.transaction() as store:
            for other in store.role_assignments():
                p = other["body"]["properties"]
                if (
                    p["scope"].lower() == scope.lower()
                    and p["principalId"].lower() == principal.lower()
                    and role_of_definition_id(p["roleDefinitionId"]) == found
                ):
                    raise ArmError(
                        409, "RoleAssignmentExists", "The role assignment already exists."
                    )
            if store.role_assignment(rid) is not None:
                raise ArmError(
                    400, "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed to be "
                    "updated.",
                )
            record: Record = {
                "body": {
                    "properties": {
                        "roleDefinitionId": role_definition_id(sub, found.guid),
                        "principalId": principal,
                        "principalType": principal_type or self._principal_type(principal),
                        "scope": scope,
                        "condition": props.get("condition"),
                        "conditionVersion": props.get("conditionVersion"),
                        "createdOn": now,
                        "updatedOn": now,
                        "createdBy": None,
                        "updatedBy": self._caller(request),
                        "delegatedManagedIdentityResourceId": props.get(
                            "delegatedManagedIdentityResourceId"
                        ),
                        "description": props.get("description"),
                    },
                    "id": rid,
                    "type": ROLE_ASSIGNMENT_TYPE,
                    "name": name,
                },
                "private": {"effectiveAt": time.time() + delay},
            }
            store.put_role_assignment(rid, record)
        self._announce(principal, delay)
        return json_response(record["body"], 201)

    def _principal_type(self, principal_id: str) -> str:
        return "ServicePrincipal" if self.ctx.store.service_principal(principal_id) else "User"

    def _caller(self, request: Request) -> str:
        """`updatedBy`: the object id of who made the change (the sandbox user)."""
        tenant_id = getattr(request.state, "tenant_id", self.ctx.store.tenant_id)
        tenant = self.ctx.directory.tenant(tenant_id)
        return tenant.user_object_id if tenant is not None else ""

    def _announce(self, principal_id: str, delay: float) -> None:
        """Once the assignment has taken effect, tell every provider (a site refused a
        pull or its storage starts again, as App Service retries a failed container)."""

        def notify() -> None:
            for provider in self.ctx.providers:
                provider.on_role_assignment(principal_id)

        loop = asyncio.get_running_loop()
        loop.call_later(delay, lambda: loop.run_in_executor(None, notify))

    def _assignment(self, request: Request) -> tuple[str, Record | None]:
        scope, _ = self._scope(request)
        rid = f"{scope}{_AUTH}/roleAssignments/{request.path_params['name']}"
        return rid, self.ctx.store.role_assignment(rid)

    async def get_assignment(self, request: Request) -> Response:
        _, record = self._assignment(request)
        if record is None:
            raise ArmError(404, "RoleAssignmentNotFound",
                           f"The role assignment '{request.path_params['name']}' is not found.")
        return json_response(record["body"])

    async def delete_assignment(self, request: Request) -> Response:
        rid, record = self._assignment(request)
        if record is None:
            return empty_response(204)
        with self.ctx.store.transaction() as store:
            store.remove_role_assignment(rid)
        return json_response(record["body"])

    async def list_assignments(self, request: Request) -> Response:
        scope, _ = self._scope(request)
        text = request.query_params.get("$filter", "").strip()
        at_scope = False
        principal: str | None = None
        if text:
            if text.lower().replace(" ", "") == "atscope()":
                at_scope = True
            elif (match := _PRINCIPAL_FILTER.match(text) or _ASSIGNED_FILTER.match(text)):
                principal = match["id"].lower()
            else:
                raise ArmError(400, "UnsupportedQuery",
                               f"The filter '{text}' is not supported.")
        found: list[dict[str, Any]] = []
        for record in self.ctx.store.role_assignments():
            props = record["body"]["properties"]
            at = str(props["scope"])
            related = scope_covers(at, scope) or (not at_scope and scope_covers(scope, at))
            if related and (principal is None or props["principalId"].lower() == principal):
                found.append(record["body"])
        found.sort(key=lambda b: str(b["id"]).lower())
        return json_response({"value": found})

    # -- role definitions --------------------------------------------------------------

    def _definition_subscription(self, request: Request) -> str:
        if request.path_params.get("scope"):
            return self._scope(request)[1]
        return self.ctx.subscription_id

    async def get_definition(self, request: Request) -> Response:
        sub = self._definition_subscription(request)
        found = role(request.path_params["name"])
        if found is None or not _GUID.match(request.path_params["name"]):
            raise ArmError(404, "RoleDefinitionDoesNotExist",
                           f"The specified role definition with ID "
                           f"'{request.path_params['name']}' does not exist.")
        return json_response(role_definition_body(sub, found))

    async def list_definitions(self, request: Request) -> Response:
        sub = self._definition_subscription(request)
        text = request.query_params.get("$filter", "").strip()
        roles = list(BUILT_IN_ROLES)
        if text:
            match = _ROLE_NAME_FILTER.match(text)
            if match is None:
                raise ArmError(400, "UnsupportedQuery", f"The filter '{text}' is not supported.")
            roles = [r for r in roles if r.name.lower() == match["name"].lower()]
        return json_response({"value": [role_definition_body(sub, r) for r in roles]})
