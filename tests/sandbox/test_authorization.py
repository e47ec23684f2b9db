"""Microsoft.Authorization role assignments and sites' managed identities in the sandbox,
driven by the real azure-mgmt-authorization 4.0 and azure-mgmt-web clients.

Shapes, codes and messages are Azure's (docs/sandbox.md, Fidelity): 201 on create, the
`$filter` semantics of the list operations, RoleAssignmentExists, PrincipalNotFound,
RoleDefinitionDoesNotExist, InvalidRoleAssignmentId, assignments gone with their scope.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
from azure.mgmt.containerregistry import ContainerRegistryManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.web import WebSiteManagementClient

from app.sandbox import Sandbox
from app.sandbox.rbac import holds_role, role_definition_id

from .conftest import mgmt, unique

ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
BLOB_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"


class Clouds:
    def __init__(self, sb: Any) -> None:
        self.sb = sb
        self.auth = mgmt(AuthorizationManagementClient, sb)
        self.web = mgmt(WebSiteManagementClient, sb)
        self.acr = mgmt(ContainerRegistryManagementClient, sb)
        self.rm = mgmt(ResourceManagementClient, sb)

    def role(self, guid: str) -> str:
        sub = self.sb.subscription_id
        return f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}"

    def assign(self, scope: str, principal: str, guid: str, name: str = "") -> Any:
        return self.auth.role_assignments.create(
            scope,
            name or str(uuid.uuid4()),
            RoleAssignmentCreateParameters(
                role_definition_id=self.role(guid),
                principal_id=principal,
                principal_type="ServicePrincipal",
            ),
        )

    def registry(self, group: str) -> Any:
        return self.acr.registries.begin_create(
            group, unique("acr"), {"location": "westeurope", "sku": {"name": "Basic"}}
        ).result()

    def site_with_identity(self, group: str, identity: str = "SystemAssigned") -> Any:
        plan = self.web.app_service_plans.begin_create_or_update(
            group, unique("plan-"),
            {"location": "westeurope", "kind": "linux", "sku": {"name": "B1", "tier": "Basic"},
             "properties": {"reserved": True}},
        ).result()
        return self.web.web_apps.begin_create_or_update(
            group, unique("func-"),
            {"location": "westeurope", "kind": "functionapp,linux,container",
             "identity": {"type": identity},
             "properties": {"serverFarmId": plan.id,
                            "siteConfig": {"linuxFxVersion": "DOCKER|none.azurecr.io/x:1"}}},
        ).result()


@pytest.fixture(scope="module")
def clouds(sandbox: Sandbox) -> Clouds:
    return Clouds(sandbox)


def test_site_identity_round_trip(clouds: Clouds, group: str, tmp_path: Path) -> None:
    site = clouds.site_with_identity(group)
    identity = site.identity
    assert identity.type == "SystemAssigned"
    assert uuid.UUID(identity.principal_id) and identity.tenant_id == clouds.sb.tenant_id
    got = clouds.web.web_apps.get(group, site.name)
    assert got.identity.principal_id == identity.principal_id
    # The principal stays the same while the identity stays on (PUT or PATCH).
    again = clouds.web.web_apps.update(group, site.name, {"identity": {"type": "SystemAssigned"}})
    assert again.identity.principal_id == identity.principal_id
    untouched = clouds.web.web_apps.update(group, site.name, {"properties": {"httpsOnly": True}})
    assert untouched.identity.principal_id == identity.principal_id
    store = clouds.sb.context.store
    assert store.service_principal(identity.principal_id)["tenantId"] == clouds.sb.tenant_id
    # Off: the principal leaves the directory; on again: a new one.
    off = clouds.web.web_apps.update(group, site.name, {"identity": {"type": "None"}})
    assert off.identity is None
    assert store.service_principal(identity.principal_id) is None
    on = clouds.web.web_apps.update(group, site.name, {"identity": {"type": "SystemAssigned"}})
    assert on.identity.principal_id not in (None, identity.principal_id)
    clouds.web.web_apps.delete(group, site.name)
    assert store.service_principal(on.identity.principal_id) is None


def test_user_assigned_identity_is_refused(clouds: Clouds, group: str) -> None:
    with pytest.raises(HttpResponseError) as caught:
        clouds.site_with_identity(group, identity="UserAssigned")
    assert caught.value.status_code == 400


def test_identity_survives_a_restart(tmp_path: Path) -> None:
    with Sandbox.start(tmp_path / "s", latency="fast") as sb:
        cl = Clouds(sb)
        cl.rm.resource_groups.create_or_update("rg-id", {"location": "westeurope"})
        site = cl.site_with_identity("rg-id")
        principal = site.identity.principal_id
        cl.assign(f"/subscriptions/{sb.subscription_id}/resourceGroups/rg-id", principal, READER)
    with Sandbox.start(tmp_path / "s", latency="fast") as sb:
        cl = Clouds(sb)
        assert cl.web.web_apps.get("rg-id", site.name).identity.principal_id == principal
        listed = list(cl.auth.role_assignments.list_for_resource_group(
            "rg-id", filter=f"principalId eq '{principal}'"))
        assert [a.principal_id for a in listed] == [principal]


def test_role_assignment_crud_and_filters(clouds: Clouds, group: str) -> None:
    sb = clouds.sb
    sub_scope = f"/subscriptions/{sb.subscription_id}"
    group_scope = f"{sub_scope}/resourceGroups/{group}"
    registry = clouds.registry(group)
    principal = clouds.site_with_identity(group).identity.principal_id

    created = clouds.assign(registry.id, principal, ACR_PULL)
    suffix = f"/providers/Microsoft.Authorization/roleAssignments/{created.name}"
    assert created.id == registry.id + suffix
    assert created.type == "Microsoft.Authorization/roleAssignments"
    assert created.scope == registry.id and created.principal_id == principal
    assert created.principal_type == "ServicePrincipal"
    assert created.role_definition_id == clouds.role(ACR_PULL)
    assert created.created_on is not None
    at_group = clouds.assign(group_scope, principal, READER)
    assert clouds.auth.role_assignments.get(registry.id, created.name).id == created.id

    # principalId eq: at, above and below the scope; atScope(): at or above.
    for_group = clouds.auth.role_assignments.list_for_resource_group(
        group, filter=f"principalId eq '{principal}'")
    assert {a.name for a in for_group} == {created.name, at_group.name}
    at_or_above = clouds.auth.role_assignments.list_for_scope(group_scope, filter="atScope()")
    assert {a.name for a in at_or_above if a.principal_id == principal} == {at_group.name}
    for_registry = clouds.auth.role_assignments.list_for_scope(
        registry.id, filter=f"principalId eq '{principal}'")
    assert {a.name for a in for_registry} == {created.name, at_group.name}
    other = str(uuid.uuid4())
    assert list(clouds.auth.role_assignments.list_for_scope(
        group_scope, filter=f"principalId eq '{other}'")) == []

    # Not tracked resources: the group's resource list does not show them.
    types = {r.type for r in clouds.rm.resources.list_by_resource_group(group)}
    assert "Microsoft.Authorization/roleAssignments" not in types

    store = sb.context.store
    assert holds_role(store, principal, registry.id, ["AcrPull"])
    assert holds_role(store, principal, registry.id + "/x/y", ["Reader"])
    assert not holds_role(store, principal, sub_scope, ["Reader"])

    deleted = clouds.auth.role_assignments.delete(registry.id, created.name)
    assert deleted is not None and deleted.name == created.name
    assert clouds.auth.role_assignments.delete(registry.id, created.name) is None  # 204
    with pytest.raises(ResourceNotFoundError) as caught:
        clouds.auth.role_assignments.get(registry.id, created.name)
    assert caught.value.error.code == "RoleAssignmentNotFound"
    assert not holds_role(store, principal, registry.id, ["AcrPull"])


def test_role_assignment_errors(clouds: Clouds, group: str) -> None:
    sb = clouds.sb
    group_scope = f"/subscriptions/{sb.subscription_id}/resourceGroups/{group}"
    principal = clouds.site_with_identity(group).identity.principal_id
    first = clouds.assign(group_scope, principal, READER)

    def code_of(call: Any) -> tuple[int, str, str]:
        with pytest.raises(HttpResponseError) as caught:
            call()
        return caught.value.status_code, caught.value.error.code, caught.value.error.message

    status, code, message = code_of(lambda: clouds.assign(group_scope, principal, READER))
    assert (status, code, message) == (409, "RoleAssignmentExists",
                                        "The role assignment already exists.")
    status, code, _ = code_of(lambda: clouds.assign(group_scope, principal, READER, first.name))
    assert (status, code) == (409, "RoleAssignmentExists")
    stranger = str(uuid.uuid4())
    status, code, message = code_of(lambda: clouds.assign(group_scope, stranger, READER))
    assert (status, code) == (400, "PrincipalNotFound")
    assert message.startswith(f"Principal {stranger.replace('-', '')} does not exist in the "
                              f"directory {sb.tenant_id}.")
    assert "replication delay" in message
    missing_role = str(uuid.uuid4())
    status, code, message = code_of(lambda: clouds.assign(group_scope, principal, missing_role))
    assert (status, code) == (400, "RoleDefinitionDoesNotExist")
    assert missing_role in message
    status, code, _ = code_of(lambda: clouds.assign(group_scope, principal, ACR_PULL, "not-a-guid"))
    assert (status, code) == (400, "InvalidRoleAssignmentId")
    status, code, _ = code_of(lambda: clouds.assign(
        f"/subscriptions/{sb.subscription_id}/resourceGroups/nope-{uuid.uuid4().hex[:6]}",
        principal, READER))
    assert (status, code) == (404, "ResourceGroupNotFound")
    # The signed-in user is a principal of the home tenant too.
    user = sb.context.directory.home.user_object_id
    mine = clouds.auth.role_assignments.create(group_scope, str(uuid.uuid4()),
                                               RoleAssignmentCreateParameters(
                                                   role_definition_id=clouds.role(ACR_PULL),
                                                   principal_id=user))
    assert mine.principal_type == "User"


def test_assignments_go_with_their_group(clouds: Clouds, resource_client: Any) -> None:
    sb = clouds.sb
    name = unique("rg-rbac-")
    resource_client.resource_groups.create_or_update(name, {"location": "westeurope"})
    principal = clouds.site_with_identity(name).identity.principal_id
    registry = clouds.registry(name)
    clouds.assign(registry.id, principal, ACR_PULL)
    sub_scope = f"/subscriptions/{sb.subscription_id}"
    at_sub = clouds.assign(sub_scope, principal, READER)
    resource_client.resource_groups.begin_delete(name).result()
    remaining = [a for a in clouds.auth.role_assignments.list_for_subscription()
                 if a.principal_id == principal]
    # The group's (and its resources') assignments are gone; the subscription's stays,
    # its principal now unknown to the directory, as Azure keeps such orphans.
    assert [a.name for a in remaining] == [at_sub.name]
    assert sb.context.store.service_principal(principal) is None
    clouds.auth.role_assignments.delete(sub_scope, at_sub.name)


def test_role_definitions(clouds: Clouds) -> None:
    sub_scope = f"/subscriptions/{clouds.sb.subscription_id}"
    found = clouds.auth.role_definitions.get(sub_scope, BLOB_OWNER)
    assert found.role_name == "Storage Blob Data Owner" and found.role_type == "BuiltInRole"
    assert found.id == role_definition_id(clouds.sb.subscription_id, BLOB_OWNER)
    by_name = list(clouds.auth.role_definitions.list(sub_scope, filter="roleName eq 'AcrPull'"))
    assert [d.name for d in by_name] == [ACR_PULL]
