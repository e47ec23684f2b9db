"""Azure RBAC in the sandbox: built-in role definitions, and who holds which role where.

Role assignments (`Microsoft.Authorization/roleAssignments`) are kept in the store
(`Store.role_assignments`); the Authorization provider serves their ARM API, and
the parts of the sandbox that Azure guards with RBAC (a registry pull with the
site's identity, the Functions host's storage) ask `holds_role` here. An
assignment counts only once it has taken effect: Azure takes a while to
propagate a new assignment, and the sandbox waits the latency profile's
`rbac.propagation` before it does (`effectiveAt` in the record's private part).

Scopes nest as Azure's do: an assignment at a subscription covers every group
and resource in it, one at a group every resource in the group.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from app.sandbox.store import Record, Store

ROLE_DEFINITION_TYPE = "Microsoft.Authorization/roleDefinitions"
ROLE_ASSIGNMENT_TYPE = "Microsoft.Authorization/roleAssignments"


@dataclass(frozen=True)
class BuiltInRole:
    """A built-in role as Azure defines it (docs: "Azure built-in roles")."""

    name: str
    guid: str
    description: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()


_STORAGE = "Microsoft.Storage/storageAccounts"
BUILT_IN_ROLES: tuple[BuiltInRole, ...] = (
    BuiltInRole("Owner", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
                "Grants full access to manage all resources, including the ability to assign "
                "roles in Azure RBAC.", ("*",)),
    BuiltInRole("Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c",
                "Grants full access to manage all resources, but does not allow you to assign "
                "roles in Azure RBAC, manage assignments in Azure Blueprints, or share image "
                "galleries.", ("*",),
                ("Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
                 "Microsoft.Authorization/elevateAccess/Action")),
    BuiltInRole("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7",
                "View all resources, but does not allow you to make any changes.", ("*/read",)),
    BuiltInRole("AcrPull", "7f951dda-4ed3-4680-a7ca-43fe172d538d", "acr pull",
                ("Microsoft.ContainerRegistry/registries/pull/read",)),
    BuiltInRole("AcrPush", "8311e382-0749-4cb8-b61a-304f252e45ec", "acr push",
                ("Microsoft.ContainerRegistry/registries/pull/read",
                 "Microsoft.ContainerRegistry/registries/push/write")),
    BuiltInRole("Storage Blob Data Owner", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
                "Allows for full access to Azure Storage blob containers and data, including "
                "assigning POSIX access control.",
                (f"{_STORAGE}/blobServices/containers/*",
                 f"{_STORAGE}/blobServices/generateUserDelegationKey/action"),
                (), (f"{_STORAGE}/blobServices/containers/blobs/*",)),
    BuiltInRole("Storage Blob Data Contributor", "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
                "Allows for read, write and delete access to Azure Storage blob containers "
                "and data",
                (f"{_STORAGE}/blobServices/containers/delete",
                 f"{_STORAGE}/blobServices/containers/read",
                 f"{_STORAGE}/blobServices/containers/write",
                 f"{_STORAGE}/blobServices/generateUserDelegationKey/action"),
                (), (f"{_STORAGE}/blobServices/containers/blobs/delete",
                     f"{_STORAGE}/blobServices/containers/blobs/read",
                     f"{_STORAGE}/blobServices/containers/blobs/write",
                     f"{_STORAGE}/blobServices/containers/blobs/move/action",
                     f"{_STORAGE}/blobServices/containers/blobs/add/action")),
    BuiltInRole("Storage Queue Data Contributor", "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
                "Allows for read, write, and delete access to Azure Storage queues and queue "
                "messages",
                (f"{_STORAGE}/queueServices/queues/delete",
                 f"{_STORAGE}/queueServices/queues/read",
                 f"{_STORAGE}/queueServices/queues/write"),
                (), (f"{_STORAGE}/queueServices/queues/messages/delete",
                     f"{_STORAGE}/queueServices/queues/messages/read",
                     f"{_STORAGE}/queueServices/queues/messages/write",
                     f"{_STORAGE}/queueServices/queues/messages/process/action")),
    BuiltInRole("Storage Table Data Contributor", "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
                "Allows for read, write and delete access to Azure Storage tables and entities",
                (f"{_STORAGE}/tableServices/tables/read",
                 f"{_STORAGE}/tableServices/tables/write",
                 f"{_STORAGE}/tableServices/tables/delete"),
                (), (f"{_STORAGE}/tableServices/tables/entities/read",
                     f"{_STORAGE}/tableServices/tables/entities/write",
                     f"{_STORAGE}/tableServices/tables/entities/delete",
                     f"{_STORAGE}/tableServices/tables/entities/add/action",
                     f"{_STORAGE}/tableServices/tables/entities/update/action")),
    BuiltInRole("Storage Account Contributor", "17d1049b-9a84-46fb-8f53-869881c3d3ab",
                "Lets you manage storage accounts, including accessing storage account keys "
                "which provide full access to storage account data.",
                ("Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*",
                 "Microsoft.Insights/diagnosticSettings/*",
                 "Microsoft.ResourceHealth/availabilityStatuses/read",
                 "Microsoft.Resources/deployments/*",
                 "Microsoft.Resources/subscriptions/resourceGroups/read",
                 f"{_STORAGE}/*", "Microsoft.Support/*")),
    BuiltInRole("Monitoring Metrics Publisher", "3913510d-42f4-4e42-8a64-420c390055eb",
                "Enables publishing metrics against Azure resources",
                ("Microsoft.Insights/Register/Action", "Microsoft.Support/*",
                 "Microsoft.Resources/subscriptions/resourceGroups/read"),
                (), ("Microsoft.Insights/Metrics/Write", "Microsoft.Insights/Telemetry/Write")),
)

_BY_GUID = {role.guid: role for role in BUILT_IN_ROLES}
_BY_NAME = {role.name.lower(): role for role in BUILT_IN_ROLES}

# Who may pull from a registry (ACR's roles table) and what the Functions host needs on
# its storage account with an identity (Microsoft Learn, "Connecting to host storage
# with an identity").
PULL_ROLES = ("AcrPull", "AcrPush", "Contributor", "Owner")
HOST_STORAGE_ROLES = ("Storage Blob Data Owner",)


def role(name_or_guid: str) -> BuiltInRole | None:
    """A built-in role by its name (`AcrPull`) or its guid."""
    key = name_or_guid.strip().lower()
    return _BY_GUID.get(key) or _BY_NAME.get(key)


def role_definition_id(subscription_id: str, name_or_guid: str) -> str:
    """`/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/{guid}`, the
    form ARM answers in `roleDefinitionId`; KeyError for a role the sandbox lacks."""
    found = role(name_or_guid)
    if found is None:
        raise KeyError(name_or_guid)
    return f"/subscriptions/{subscription_id}/providers/{ROLE_DEFINITION_TYPE}/{found.guid}"


def role_of_definition_id(definition_id: str) -> BuiltInRole | None:
    """The built-in role a `roleDefinitionId` names, in any of ARM's forms
    (subscription-level, tenant-level `/providers/...`, or the bare guid)."""
    return _BY_GUID.get(definition_id.rstrip("/").rsplit("/", 1)[-1].lower())


def scope_covers(outer: str, inner: str) -> bool:
    """Whether an assignment at `outer` applies at `inner` (same scope or above it)."""
    a = outer.lower().rstrip("/")
    b = inner.lower().rstrip("/")
    return a == "" or b == a or b.startswith(a + "/")


def effective(record: Record, now: float | None = None) -> bool:
    """Whether an assignment has propagated (`rbac.propagation` after its PUT)."""
    at = float(record.get("private", {}).get("effectiveAt", 0.0))
    return (time.time() if now is None else now) >= at


def holds_role(store: Store, principal_id: str, scope: str, roles: Iterable[str]) -> bool:
    """Does `principal_id` hold one of `roles` (names or guids) at `scope`, through an
    assignment at that scope or above it that has taken effect? This is the question
    every RBAC-guarded part of the sandbox asks."""
    wanted = {r.guid for r in (role(name) for name in roles) if r is not None}
    now = time.time()
    for record in store.role_assignments():
        props = record["body"]["properties"]
        found = role_of_definition_id(str(props["roleDefinitionId"]))
        if (
            found is not None
            and found.guid in wanted
            and str(props["principalId"]).lower() == principal_id.lower()
            and scope_covers(str(props["scope"]), scope)
            and effective(record, now)
        ):
            return True
    return False


def role_definition_body(subscription_id: str, found: BuiltInRole) -> dict[str, object]:
    """The role definition as ARM answers it (GET roleDefinitions/{guid})."""
    return {
        "id": role_definition_id(subscription_id, found.guid),
        "name": found.guid,
        "type": ROLE_DEFINITION_TYPE,
        "properties": {
            "roleName": found.name,
            "type": "BuiltInRole",
            "description": found.description,
            "assignableScopes": ["/"],
            "permissions": [
                {
                    "actions": list(found.actions),
                    "notActions": list(found.not_actions),
                    "dataActions": list(found.data_actions),
                    "notDataActions": [],
                }
            ],
            "createdOn": "2015-02-02T21:55:09.8806423Z",
            "updatedOn": "2021-11-11T20:13:47.8628684Z",
            "createdBy": None,
            "updatedBy": None,
        },
    }
