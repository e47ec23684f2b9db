"""The function's own right to the cache: a Redis access-policy assignment for its identity.

With `cache.auth = "entra"` the function connects to Redis as its managed identity
(user name: the identity's object id, password: a Microsoft Entra token), so the
cache needs no key in the function's settings. What lets that identity in is an
access-policy assignment on the cache:

- Azure Cache for Redis: `Microsoft.Cache/redis/{cache}/accessPolicyAssignments/{name}`
  with one of the built-in access policies, on a cache with `aad-enabled` "true".
- Azure Managed Redis: `.../redisEnterprise/{cluster}/databases/default/
  accessPolicyAssignments/{name}` with the policy "default".

Both are long-running PUTs; the name is the identity's object id without dashes, so
a re-run finds the assignment it made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.services.arm import enum_text, get_or_none, wait_lro
from app.services.context import DeployContext
from app.services.resources.app_service_plan import WEB_API
from app.services.resources.base import ArmWiring, AzCliPart, ResourceStatus, ResourceStep, Shell
from app.services.resources.managed_redis import API_VERSION as MANAGED_API
from app.services.resources.managed_redis import DATABASE
from app.services.resources.redis_cache import API_VERSION as CLASSIC_API
from app.services.resources.redis_cache import ENTRA_SETTING
from app.services.runner import StepReport
from app.spec import DeploymentSpec

if TYPE_CHECKING:
    from app.services.clients import ClientFactory

# The built-in policy the function gets: read and write data, no administration
# (Microsoft Learn, "Use Microsoft Entra ID for cache authentication").
CLASSIC_POLICY = "Data Contributor"
MANAGED_POLICY = "default"
_SITE = "resourceId('Microsoft.Web/sites', parameters('functionAppName'))"
_PRINCIPAL = f"reference({_SITE}, '{WEB_API}', 'full').identity.principalId"


def assignment_name(principal_id: str) -> str:
    return principal_id.replace("-", "").lower()


def _template_name(scope_id: str, policy: str) -> str:
    """The assignment's name in a template: known when the deployment starts, as a
    resource name must be (a `reference()` to the identity is not; Bicep refuses it,
    BCP120), stable across re-deploys, and letters and digits only, as Managed Redis
    requires (`^[A-Za-z0-9]{1,60}$`, azure-mgmt-redisenterprise 3.1
    `_access_policy_assignment_operations.py`). The engine finds assignments by
    object id, so either name is adopted on a re-run."""
    return f"replace(guid({scope_id}, {_SITE}, '{policy}'), '-', '')"


class _CacheAccessStep(ResourceStep):
    name = "cache-access"
    label = "cache access"
    icon = "cache"
    nominal_s = 3.0
    progress_text = "Granting {title}"
    success_text = "Granted {title}"
    adopted_text = "{title} already granted"
    probe_needs = ("resource-group", "cache", "function-app")
    policy = ""

    def __init__(self, spec: DeploymentSpec) -> None:
        super().__init__(spec)
        self.depends_on = ("cache", "function-app")
        self.title = (f"{spec.function_app.name}'s identity access to {spec.cache.name} "
                      f"({self.policy})")

    def resource_name(self) -> str:
        return f"{self.spec.cache.name} access for {self.spec.function_app.name}"

    def has_portal_page(self) -> bool:
        return False

    def _assignments(self, clients: ClientFactory) -> list[Any]:
        raise NotImplementedError

    def _holds(self, clients: ClientFactory, principal_id: str) -> bool:
        return any((a.object_id or "").lower() == principal_id.lower()
                   and (a.access_policy_name or "").lower() == self.policy.lower()
                   and enum_text(a.provisioning_state).lower() in ("", "succeeded")
                   for a in self._assignments(clients))

    def find_existing(self, ctx: DeployContext) -> dict[str, str] | None:
        principal = ctx.output("function-app", "principal_id")
        if self._entra_ready(ctx) and self._holds(ctx.clients, principal):
            return {"principal_id": principal, "policy": self.policy}
        return None

    def _entra_ready(self, ctx: DeployContext) -> bool:
        return True

    def probe(self, clients: ClientFactory) -> list[ResourceStatus]:
        group, app = self.spec.resource_group.name, self.spec.function_app.name
        site = get_or_none(clients.web().web_apps.get, group, app)
        principal = getattr(getattr(site, "identity", None), "principal_id", None)
        held = bool(principal) and self._holds(clients, str(principal))
        return [ResourceStatus(self.label, self.resource_name(), held,
                               "Succeeded" if held else "",
                               f"{self.policy} for {principal}" if held else "no assignment",
                               self.name)]


class RedisCacheAccessStep(_CacheAccessStep):
    """Azure Cache for Redis: Entra authentication on, and the identity's assignment."""

    arm_type = "Microsoft.Cache/redis/accessPolicyAssignments"
    policy = CLASSIC_POLICY

    def _assignments(self, clients: ClientFactory) -> list[Any]:
        return list(clients.redis().access_policy_assignment.list(
            self.spec.resource_group.name, self.spec.cache.name))

    def _entra_ready(self, ctx: DeployContext) -> bool:
        cache = ctx.clients.redis().redis.get(ctx.group, ctx.spec.cache.name)
        config = cache.redis_configuration
        aad = str(getattr(config, "aad_enabled", "") or "").lower() == "true"
        return aad and bool(cache.disable_access_key_authentication)

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        from azure.mgmt.redis import models

        client = ctx.clients.redis()
        principal = ctx.output("function-app", "principal_id")
        if not self._entra_ready(ctx):
            # A cache made with keys (an older deploy) is switched over in place.
            report.log(f"turning on Microsoft Entra authentication on {ctx.spec.cache.name} "
                       "and access keys off")
            update = models.RedisUpdateParameters(
                redis_configuration=models.RedisCommonPropertiesRedisConfiguration(
                    aad_enabled="true"),
                disable_access_key_authentication=True)
            wait_lro(client.redis.begin_update(ctx.group, ctx.spec.cache.name, update),
                     report, "Updating")
        if not self._holds(ctx.clients, principal):
            body = models.RedisCacheAccessPolicyAssignment(
                object_id=principal, object_id_alias=ctx.spec.function_app.name,
                access_policy_name=self.policy)
            wait_lro(client.access_policy_assignment.begin_create_update(
                ctx.group, ctx.spec.cache.name, assignment_name(principal), body), report)
        return {"principal_id": principal, "policy": self.policy}

    def arm_resources(self, wiring: ArmWiring) -> list[dict[str, Any]]:
        cache = "resourceId('Microsoft.Cache/redis', parameters('cacheName'))"
        return [{
            "type": self.arm_type,
            "apiVersion": CLASSIC_API,
            "name": f"[format('{{0}}/{{1}}', parameters('cacheName'), "
                    f"{_template_name(cache, self.policy)})]",
            "dependsOn": [f"[{cache}]", f"[{_SITE}]"],
            "properties": {
                "accessPolicyName": self.policy,
                "objectId": f"[{_PRINCIPAL}]",
                "objectIdAlias": "[parameters('functionAppName')]",
            },
        }]

    def azcli(self, sh: Shell) -> AzCliPart:
        name = sh.q(self.spec.cache.name)
        return AzCliPart(read=[
            f"az redis update --resource-group {sh.rg} --name {name} "
            f"--set redisConfiguration.{ENTRA_SETTING}=true "
            "--set disableAccessKeyAuthentication=true --output none",
            f"az redis access-policy-assignment create --resource-group {sh.rg} "
            f"--name {name} --policy-assignment-name \"${{principal_id//-/}}\" "
            f"--access-policy-name {sh.q(self.policy)} --object-id \"$principal_id\" "
            f"--object-id-alias {sh.q(self.spec.function_app.name)} --output none",
        ])


class ManagedRedisAccessStep(_CacheAccessStep):
    """Azure Managed Redis: the default database's assignment (keys are already off)."""

    arm_type = "Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments"
    policy = MANAGED_POLICY

    def _assignments(self, clients: ClientFactory) -> list[Any]:
        found = clients.redis_enterprise().access_policy_assignment.list(
            self.spec.resource_group.name, self.spec.cache.name, DATABASE)
        return [_Flat(a) for a in found]

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        from azure.mgmt.redisenterprise import models

        principal = ctx.output("function-app", "principal_id")
        if not self._holds(ctx.clients, principal):
            body = models.AccessPolicyAssignment(
                access_policy_name=self.policy,
                user=models.AccessPolicyAssignmentPropertiesUser(object_id=principal))
            wait_lro(ctx.clients.redis_enterprise().access_policy_assignment.begin_create_update(
                ctx.group, ctx.spec.cache.name, DATABASE, assignment_name(principal), body),
                report)
        return {"principal_id": principal, "policy": self.policy}

    def arm_resources(self, wiring: ArmWiring) -> list[dict[str, Any]]:
        database = (f"resourceId('Microsoft.Cache/redisEnterprise/databases', "
                    f"parameters('cacheName'), '{DATABASE}')")
        return [{
            "type": self.arm_type,
            "apiVersion": MANAGED_API,
            "name": f"[format('{{0}}/{DATABASE}/{{1}}', parameters('cacheName'), "
                    f"{_template_name(database, self.policy)})]",
            "dependsOn": [f"[{database}]", f"[{_SITE}]"],
            "properties": {
                "accessPolicyName": self.policy,
                "user": {"objectId": f"[{_PRINCIPAL}]"},
            },
        }]

    def azcli(self, sh: Shell) -> AzCliPart:
        return AzCliPart(read=[
            f"az redisenterprise database access-policy-assignment create "
            f"--resource-group {sh.rg} --cluster-name {sh.q(self.spec.cache.name)} "
            f"--database-name {DATABASE} --access-policy-assignment-name "
            f"\"${{principal_id//-/}}\" --access-policy-name {self.policy} "
            "--object-id \"$principal_id\" --output none",
        ])


class _Flat:
    """A Managed Redis assignment read like a classic one (object id at the top)."""

    def __init__(self, assignment: Any) -> None:
        user = getattr(assignment, "user", None)
        self.object_id = getattr(user, "object_id", None)
        self.access_policy_name = assignment.access_policy_name
        self.provisioning_state = assignment.provisioning_state
