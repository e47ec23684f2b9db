"""The rights the function app's managed identity holds (Microsoft.Authorization/roleAssignments).

A keyless deployment gives the function app a system-assigned identity and, in
place of copied passwords, role assignments on what it reaches: AcrPull on the
registry it pulls from, and the data roles the Functions host needs on its storage
account. Each is a step of its own, adopted when the identity already holds the
role at that scope or above it.

Azure replicates a brand-new identity to its authorization service with a delay:
a first assignment for it may be refused with `PrincipalNotFound` (HTTP 400), and
azure-cli retries that (`_resolve_object_id`/`create_role_assignment` retry loop in
`azure/cli/command_modules/role/custom.py`). So does this step, within a bound.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.errors import ServiceFailure
from app.services.context import DeployContext
from app.services.resources.app_service_plan import WEB_API
from app.services.resources.base import ArmWiring, AzCliPart, ResourceStatus, ResourceStep, Shell
from app.services.runner import StepReport
from app.spec import DeploymentSpec

if TYPE_CHECKING:
    from app.services.clients import ClientFactory

ROLE_API = "2022-04-01"
# How long a new identity may stay unknown to the authorization service.
PRINCIPAL_WAIT_S = 180.0
_NAMESPACE = uuid.UUID("6b1c3f0e-4a55-4d8e-9a57-6d6c6f6b3a11")


@dataclass(frozen=True)
class Role:
    """A built-in role: its name and the id Azure gives it in every tenant."""

    name: str
    guid: str
    why: str


# Built-in role ids: Microsoft Learn, "Azure built-in roles".
ACR_PULL = Role("AcrPull", "7f951dda-4ed3-4680-a7ca-43fe172d538d",
                "pull the model image")
# What Microsoft Learn ("Connecting to host storage with an identity") and the Functions
# azd templates give the host for AzureWebJobsStorage: blobs (keys, leases), queues,
# tables (diagnostic events).
STORAGE_BLOB_DATA_OWNER = Role("Storage Blob Data Owner", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
                               "the Functions host's keys, leases and blobs")
STORAGE_QUEUE_DATA_CONTRIBUTOR = Role("Storage Queue Data Contributor",
                                      "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
                                      "the Functions host's queues")
STORAGE_TABLE_DATA_CONTRIBUTOR = Role("Storage Table Data Contributor",
                                      "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
                                      "the Functions host's diagnostic events")
# What an identity needs to send telemetry to Application Insights with Entra
# authentication (Microsoft Learn, "Microsoft Entra authentication for Application
# Insights": the role's name says metrics, it covers all telemetry).
MONITORING_METRICS_PUBLISHER = Role("Monitoring Metrics Publisher",
                                    "3913510d-42f4-4e42-8a64-420c390055eb",
                                    "send its telemetry to Application Insights")
# A role granted at a scope includes what these roles grant, so they count as held.
_COVERS = {
    ACR_PULL.guid: {
        "8311e382-0749-4cb8-b61a-304f252e45ec",  # AcrPush
        "b24988ac-6180-42a0-ab88-20f7382dd24c",  # Contributor
        "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",  # Owner
    },
}


def assignment_name(scope: str, principal_id: str, role: Role) -> str:
    """A stable name, as Bicep's guid(scope, principal, role) gives: a re-run finds it."""
    return str(uuid.uuid5(_NAMESPACE, f"{scope.lower()}|{principal_id.lower()}|{role.guid}"))


def role_definition_id(subscription_id: str, role: Role) -> str:
    return (f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/"
            f"roleDefinitions/{role.guid}")


def _holds(assignment: Any, scope: str, role: Role) -> bool:
    held = (assignment.role_definition_id or "").rstrip("/").rsplit("/", 1)[-1].lower()
    at = (assignment.scope or "").rstrip("/").lower()
    covers = held == role.guid or held in _COVERS.get(role.guid, set())
    return covers and (scope.lower() == at or scope.lower().startswith(at + "/"))


def held_roles(clients: ClientFactory, scope: str, principal_id: str,
               roles: tuple[Role, ...]) -> list[Role]:
    """Those of `roles` the principal holds at `scope` or above it."""
    listed = list(clients.authorization().role_assignments.list_for_scope(
        scope, filter=f"principalId eq '{principal_id}'"))
    return [r for r in roles if any(_holds(a, scope, r) for a in listed)]


def _error_code(exc: Exception) -> str:
    error = getattr(exc, "error", None)
    return str(getattr(error, "code", "") or "")


def assign_role(ctx: DeployContext, scope: str, principal_id: str, role: Role,
                report: StepReport) -> None:
    """Create one assignment; a new identity Azure does not know yet is waited for."""
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

    body = RoleAssignmentCreateParameters(
        role_definition_id=role_definition_id(ctx.target.subscription_id, role),
        principal_id=principal_id, principal_type="ServicePrincipal")
    deadline = time.monotonic() + PRINCIPAL_WAIT_S
    while True:
        try:
            ctx.clients.authorization().role_assignments.create(
                scope, assignment_name(scope, principal_id, role), body)
            return
        except HttpResponseError as exc:
            code = _error_code(exc)
            if code == "RoleAssignmentExists":
                return  # the same right under another name: held
            if code != "PrincipalNotFound" or time.monotonic() > deadline:
                raise
            report.progress("Waiting for the identity",
                            "Azure does not know the new identity yet; trying again")
            report.sleep(max(ctx.target.polling_interval, 1.0))


class RoleAssignmentStep(ResourceStep):
    """Roles the function app's identity gets on the resource another step made."""

    arm_type = "Microsoft.Authorization/roleAssignments"
    label = "role assignment"
    icon = "settings"
    nominal_s = 2.0
    progress_text = "Granting {title}"
    success_text = "Granted {title}"
    adopted_text = "{title} already granted"
    probe_needs = ("resource-group", "function-app")
    # Set by each subclass: the step whose output "id" is the scope, the roles, and
    # the template's expressions for that scope: its resource id, and the relative
    # form an extension resource's "scope" takes.
    scope_step = ""
    roles: tuple[Role, ...] = ()
    # Steps granting rights before this one (their "granted" output is read here), and
    # whether this step restarts the site once every right is in place.
    after: tuple[str, ...] = ()
    restarts_site = False
    id_expr = ""
    scope_expr = ""

    def __init__(self, spec: DeploymentSpec, scope_name: str, what: str) -> None:
        super().__init__(spec)
        self.depends_on = ("function-app", self.scope_step, *self.after)
        self.scope_name = scope_name
        names = ", ".join(r.name for r in self.roles)
        self.title = f"{names} on {what} {scope_name} to {spec.function_app.name}"

    def resource_name(self) -> str:
        return f"{', '.join(r.name for r in self.roles)} on {self.scope_name}"

    def has_portal_page(self) -> bool:
        return False

    def _scope(self, ctx: DeployContext) -> str:
        return ctx.output(self.scope_step, "id")

    def _granted_before(self, ctx: DeployContext) -> bool:
        """Whether a rights step this one waits for granted something in this run."""
        return any(ctx.outputs.get(n, {}).get("granted") == "yes" for n in self.depends_on)

    def find_existing(self, ctx: DeployContext) -> dict[str, str] | None:
        scope, principal = self._scope(ctx), ctx.output("function-app", "principal_id")
        if self.restarts_site and self._granted_before(ctx):
            return None  # create() restarts the site for the rights granted before it
        if len(held_roles(ctx.clients, scope, principal, self.roles)) == len(self.roles):
            return {"scope": scope, "roles": ",".join(r.name for r in self.roles),
                    "granted": "no"}
        return None

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        scope, principal = self._scope(ctx), ctx.output("function-app", "principal_id")
        if not principal:
            raise ServiceFailure(f"function app {ctx.spec.function_app.name} has no "
                                 "managed identity to grant roles to")
        held = held_roles(ctx.clients, scope, principal, self.roles)
        for role in self.roles:
            if role not in held:
                assign_role(ctx, scope, principal, role, report)
                report.log(f"{role.name} on {scope.rsplit('/', 1)[-1]} for the identity "
                           f"{principal} ({role.why})")
        granted = len(held) < len(self.roles)
        if self.restarts_site and (granted or self._granted_before(ctx)):
            # The container started before it held these rights (its first pull or
            # host start was refused): start it again now that it does.
            ctx.clients.web().web_apps.restart(ctx.group, ctx.spec.function_app.name)
            report.log(f"restarted {ctx.spec.function_app.name} so its new rights take effect")
        return {"scope": scope, "roles": ",".join(r.name for r in self.roles),
                "granted": "yes" if granted else "no"}

    def probe(self, clients: ClientFactory) -> list[ResourceStatus]:
        from app.services.arm import get_or_none

        group, app = self.spec.resource_group.name, self.spec.function_app.name
        site = get_or_none(clients.web().web_apps.get, group, app)
        principal = getattr(getattr(site, "identity", None), "principal_id", None)
        scope = self.probe_scope(clients)
        if not principal or not scope:
            return [ResourceStatus(self.label, self.resource_name(), False, step=self.name)]
        held = held_roles(clients, scope, principal, self.roles)
        missing = [r.name for r in self.roles if r not in held]
        return [ResourceStatus(
            self.label, self.resource_name(), not missing,
            "Succeeded" if not missing else "",
            f"missing: {', '.join(missing)}" if missing else f"held by {principal}",
            self.name)]

    def probe_scope(self, clients: ClientFactory) -> str | None:
        """The scope's resource id as it stands (None when the resource is not there)."""
        raise NotImplementedError

    # -- export --------------------------------------------------------------------
    def arm_resources(self, wiring: ArmWiring) -> list[dict[str, Any]]:
        site = "resourceId('Microsoft.Web/sites', parameters('functionAppName'))"
        principal = f"[reference({site}, '{WEB_API}', 'full').identity.principalId]"
        return [{
            "type": self.arm_type,
            "apiVersion": ROLE_API,
            "name": f"[guid({self.id_expr}, {site}, '{role.guid}')]",
            "scope": f"[{self.scope_expr}]",
            "dependsOn": [f"[{site}]", *([wiring.ids[self.scope_step]]
                                         if self.scope_step in wiring.ids else [])],
            "properties": {
                "roleDefinitionId": "[subscriptionResourceId('Microsoft.Authorization/"
                                    f"roleDefinitions', '{role.guid}')]",
                "principalId": principal,
                "principalType": "ServicePrincipal",
            },
        } for role in self.roles]

    def azcli(self, sh: Shell) -> AzCliPart:
        return AzCliPart(create=[
            f"az role assignment create --assignee-object-id \"$principal_id\" "
            f"--assignee-principal-type ServicePrincipal --role {role.guid} "
            f"--scope \"{self.azcli_scope(sh)}\" --output none  # {role.name}"
            for role in self.roles
        ])

    def azcli_scope(self, sh: Shell) -> str:
        raise NotImplementedError


class RegistryPullStep(RoleAssignmentStep):
    """AcrPull on the registry: the site pulls with its identity, no admin password."""

    name = "registry-pull"
    scope_step = "registry"
    roles = (ACR_PULL,)
    after = ("storage-roles",)
    restarts_site = True
    id_expr = ("resourceId(parameters('registryResourceGroup'), "
               "'Microsoft.ContainerRegistry/registries', parameters('registryName'))")
    scope_expr = "format('Microsoft.ContainerRegistry/registries/{0}', parameters('registryName'))"

    def __init__(self, spec: DeploymentSpec) -> None:
        from app.services.resources.registry import image_reference

        super().__init__(spec, image_reference(spec).registry, "registry")

    def probe_scope(self, clients: ClientFactory) -> str | None:
        for registry in clients.registry().registries.list():
            if (registry.name or "").lower() == self.scope_name.lower():
                return str(registry.id)
        return None

    def azcli_scope(self, sh: Shell) -> str:
        return f"$(az acr show --name {sh.q(self.scope_name)} --query id --output tsv)"


class StorageRolesStep(RoleAssignmentStep):
    """The data roles the Functions host needs on AzureWebJobsStorage, without its key."""

    name = "storage-roles"
    scope_step = "storage"
    roles = (STORAGE_BLOB_DATA_OWNER, STORAGE_QUEUE_DATA_CONTRIBUTOR,
             STORAGE_TABLE_DATA_CONTRIBUTOR)
    id_expr = "resourceId('Microsoft.Storage/storageAccounts', parameters('storageAccountName'))"
    scope_expr = "format('Microsoft.Storage/storageAccounts/{0}', parameters('storageAccountName'))"

    def __init__(self, spec: DeploymentSpec) -> None:
        super().__init__(spec, spec.function_app.storage_account, "storage account")

    def probe_scope(self, clients: ClientFactory) -> str | None:
        from app.services.arm import get_or_none

        account = get_or_none(clients.storage().storage_accounts.get_properties,
                              self.spec.resource_group.name, self.scope_name)
        return str(account.id) if account is not None else None

    def azcli_scope(self, sh: Shell) -> str:
        return (f"$(az storage account show --resource-group {sh.rg} "
                f"--name {sh.q(self.scope_name)} --query id --output tsv)")


class InsightsPublisherStep(RoleAssignmentStep):
    """Monitoring Metrics Publisher on the component: keyless telemetry ingestion."""

    name = "insights-publisher"
    scope_step = "insights"
    roles = (MONITORING_METRICS_PUBLISHER,)
    id_expr = "resourceId('Microsoft.Insights/components', parameters('insightsName'))"
    scope_expr = "format('Microsoft.Insights/components/{0}', parameters('insightsName'))"

    def __init__(self, spec: DeploymentSpec) -> None:
        from app.services.resources.monitoring import insights_name

        super().__init__(spec, insights_name(spec), "Application Insights")

    def probe_scope(self, clients: ClientFactory) -> str | None:
        from app.services.arm import resource_id
        from app.services.resources.monitoring import INSIGHTS_API, INSIGHTS_TYPE, get_generic

        rid = resource_id(clients.target.subscription_id, self.spec.resource_group.name,
                          INSIGHTS_TYPE, self.scope_name)
        found = get_generic(clients, rid, INSIGHTS_API)
        return str(found.id) if found is not None else None

    def azcli_scope(self, sh: Shell) -> str:
        return (f"$(az monitor app-insights component show --resource-group {sh.rg} "
                f"--app {sh.q(self.scope_name)} --query id --output tsv)")
