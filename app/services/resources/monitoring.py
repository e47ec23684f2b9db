"""Application Insights for the function, and the Log Analytics workspace it writes to
(Microsoft.Insights/components, Microsoft.OperationalInsights/workspaces).

Both are made in the deployment's group and named after the function app (the
portal names a function app's component after the app too). The component is
workspace-based (`IngestionMode: LogAnalytics`, the only kind Azure creates since
classic components retired in 2024). No azure-mgmt-applicationinsights or
-loganalytics client is installed, so both go through the generic resources
client (`resources.begin_create_or_update_by_id` with each type's own
api-version), which sends the same PUT the typed clients send.

Azure puts two things beside a new component by itself (Microsoft Learn, "Smart
Detection of Failure Anomalies"; exported groups show them): the action group
"Application Insights Smart Detection" (Microsoft.Insights/actionGroups) and the
alert rule "Failure Anomalies - <component>"
(microsoft.alertsmanagement/smartDetectorAlertRules). They are in the same group,
so cleanup's group delete takes them and its gone-check looks for them
(`GONE_CHECK_APIS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.errors import BadInput
from app.rules import WORKSPACE_SUFFIX
from app.services.arm import (
    adoptable,
    get_or_none,
    require_not_failed,
    resource_id,
    settle_existing,
    succeeded,
    wait_lro,
)
from app.services.context import DeployContext
from app.services.meters import (
    LOG_ANALYTICS_GB,
    LOG_ANALYTICS_METER,
    LOG_ANALYTICS_PRODUCT,
    LOG_ANALYTICS_SERVICE,
    LOG_ANALYTICS_SKU,
    PriceQuery,
)
from app.services.resources.base import (
    ArmWiring,
    AzCliPart,
    ResourceStatus,
    ResourceStep,
    Shell,
    keyless,
    probe,
)
from app.services.runner import StepReport
from app.spec import DeploymentSpec

if TYPE_CHECKING:
    from app.services.clients import ClientFactory

# azure-rest-api-specs: applicationinsights/resource-manager/Microsoft.Insights/stable/
# 2020-02-02/components_API.json; operationalinsights/resource-manager/
# Microsoft.OperationalInsights/stable/2023-09-01/Workspaces.json.
INSIGHTS_TYPE = "Microsoft.Insights/components"
INSIGHTS_API = "2020-02-02"
WORKSPACE_TYPE = "Microsoft.OperationalInsights/workspaces"
WORKSPACE_API = "2023-09-01"
# What Azure creates beside a new component, in the same group: cleanup checks them gone.
SMART_DETECTION_GROUP = "Application Insights Smart Detection"
ACTION_GROUP_API = "2023-01-01"
ALERT_RULE_API = "2021-04-01"
# What cleanup checks gone by id after the group's delete (lower-cased type -> api).
GONE_CHECK_APIS = {
    INSIGHTS_TYPE.lower(): INSIGHTS_API,
    WORKSPACE_TYPE.lower(): WORKSPACE_API,
    "microsoft.insights/actiongroups": ACTION_GROUP_API,
    "microsoft.alertsmanagement/smartdetectoralertrules": ALERT_RULE_API,
}

# The app settings (Microsoft Learn, "App settings reference for Azure Functions"):
# the connection string, and with a system-assigned identity `Authorization=AAD`
# ("Microsoft Entra authentication for Application Insights").
CONNECTION_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
AUTHENTICATION_SETTING = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"
ENTRA_AUTHENTICATION = "Authorization=AAD"
SETTINGS = (CONNECTION_SETTING, AUTHENTICATION_SETTING)

INSIGHTS_ID = "resourceId('Microsoft.Insights/components', parameters('insightsName'))"
WORKSPACE_ID = ("resourceId('Microsoft.OperationalInsights/workspaces', "
                "parameters('workspaceName'))")


def insights_name(spec: DeploymentSpec) -> str:
    return spec.function_app.name


def workspace_name(spec: DeploymentSpec) -> str:
    """`<app>-logs` (`app.rules.check_monitoring` keeps it within Azure's 63 characters)."""
    return f"{spec.function_app.name}{WORKSPACE_SUFFIX}"


def _id(ctx: DeployContext, arm_type: str, name: str) -> str:
    return resource_id(ctx.target.subscription_id, ctx.group, arm_type, name)


def _by_id(rid: str) -> str:
    """The generic client puts the id after a `/` of its own."""
    return rid.lstrip("/")


def get_generic(clients: ClientFactory, rid: str, api: str) -> Any:
    """A resource by id through the generic client (None: not there)."""
    return get_or_none(clients.resources().resources.get_by_id, _by_id(rid), api_version=api)


def _props(resource: Any) -> dict[str, Any]:
    return dict(getattr(resource, "properties", None) or {})


def insights_settings(ctx: DeployContext) -> dict[str, str]:
    """The function's Application Insights settings: the connection string (read from
    the component, kept as a secret), and keyless the Entra authentication string."""
    connection = ctx.secrets.get("insights_connection")
    if connection is None:
        component = get_generic(ctx.clients, ctx.output("insights", "id"), INSIGHTS_API)
        connection = ctx.secret("insights_connection",
                                _props(component).get("ConnectionString"))
    settings = {CONNECTION_SETTING: connection}
    if keyless(ctx.spec):
        settings[AUTHENTICATION_SETTING] = ENTRA_AUTHENTICATION
    return settings


def stale_insights_settings(spec: DeploymentSpec) -> set[str]:
    """Settings an earlier run left that this spec does not want."""
    if not spec.monitoring.enabled:
        return set(SETTINGS)
    return set() if keyless(spec) else {AUTHENTICATION_SETTING}


class _GenericStep(ResourceStep):
    """Create or adopt one resource through the generic resources client."""

    api = ""
    probe_needs = ("resource-group",)

    def resource_name(self) -> str:
        raise NotImplementedError

    def body(self, ctx: DeployContext) -> dict[str, Any]:
        raise NotImplementedError

    def outputs(self, resource: Any) -> dict[str, str]:
        return {"name": str(resource.name), "id": str(resource.id or "")}

    def _rid(self, ctx: DeployContext) -> str:
        return _id(ctx, self.arm_type, self.resource_name())

    def probe(self, clients: ClientFactory) -> list[ResourceStatus]:
        rid = resource_id(clients.target.subscription_id, self.spec.resource_group.name,
                          self.arm_type, self.resource_name())
        return [probe(self.label, self.resource_name(),
                      lambda: clients.resources().resources.get_by_id(_by_id(rid),
                                                                       api_version=self.api),
                      self.detail, self.name)]

    def detail(self, resource: Any) -> str:
        return ""

    def find_existing(self, ctx: DeployContext) -> dict[str, str] | None:
        found = get_generic(ctx.clients, self._rid(ctx), self.api)
        if found is None or not adoptable(found, f"{self.label} {self.resource_name()}"):
            return None
        self.check_adoptable(found)
        return self.outputs(found)

    def check_adoptable(self, resource: Any) -> None:
        """Refuse (BadInput) an existing resource this deployment cannot use."""

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        from azure.mgmt.resource.resources.models import GenericResource

        rid, what = self._rid(ctx), f"{self.label} {self.resource_name()}"
        generic = ctx.clients.resources().resources
        existing = settle_existing(lambda: get_generic(ctx.clients, rid, self.api), report,
                                   ctx.target.polling_interval, what)
        if existing is not None and succeeded(existing):
            self.check_adoptable(existing)
            return self.outputs(existing)
        poller = generic.begin_create_or_update_by_id(
            _by_id(rid), GenericResource(self.body(ctx)), api_version=self.api)
        made = require_not_failed(wait_lro(poller, report), what)
        if made is None or not made.id:
            made = generic.get_by_id(_by_id(rid), api_version=self.api)
        return self.outputs(made)


class WorkspaceStep(_GenericStep):
    """The Log Analytics workspace Application Insights stores its telemetry in."""

    name = "workspace"
    arm_type = WORKSPACE_TYPE
    api = WORKSPACE_API
    label = "Log Analytics workspace"
    icon = "monitoring"
    depends_on = ("resource-group",)
    nominal_s = 3.0

    def __init__(self, spec: DeploymentSpec) -> None:
        super().__init__(spec)
        self.title = f"Log Analytics workspace {workspace_name(spec)}"

    def resource_name(self) -> str:
        return workspace_name(self.spec)

    def detail(self, resource: Any) -> str:
        sku = _props(resource).get("sku") or {}
        return f"{sku.get('name', '')}, {_props(resource).get('retentionInDays', '?')} days"

    def _properties(self) -> dict[str, Any]:
        # PerGB2018 is pay-as-you-go per GB ingested; 30 days is the retention included.
        return {"sku": {"name": "PerGB2018"}, "retentionInDays": 30,
                "features": {"enableLogAccessUsingOnlyResourcePermissions": True}}

    def body(self, ctx: DeployContext) -> dict[str, Any]:
        return {"location": ctx.spec.location, "tags": ctx.tags, "properties": self._properties()}

    def arm_id(self) -> str:
        return f"[{WORKSPACE_ID}]"

    def arm_parameters(self) -> dict[str, dict[str, Any]]:
        return {"workspaceName": {"type": "string", "defaultValue": workspace_name(self.spec)}}

    def arm_resources(self, wiring: ArmWiring) -> list[dict[str, Any]]:
        return [{"type": self.arm_type, "apiVersion": self.api,
                 "name": "[parameters('workspaceName')]", "location": "[parameters('location')]",
                 "tags": "[parameters('tags')]", "properties": self._properties()}]

    def azcli(self, sh: Shell) -> AzCliPart:
        return AzCliPart(create=[
            f"az monitor log-analytics workspace create --resource-group {sh.rg} "
            f"--workspace-name {sh.q(workspace_name(self.spec))} --location {sh.location} "
            f"--sku PerGB2018 --retention-time 30 --tags {sh.tags} --output none",
        ])

    def price_queries(self) -> list[PriceQuery]:
        return [PriceQuery(
            resource=f"Log Analytics workspace {workspace_name(self.spec)} (Application "
                     "Insights data)",
            sku="Pay-as-you-go (PerGB2018)", service_name=LOG_ANALYTICS_SERVICE,
            product_name=LOG_ANALYTICS_PRODUCT, sku_name=LOG_ANALYTICS_SKU,
            meter_name=LOG_ANALYTICS_METER, unit_of_measure="1 GB", units=LOG_ANALYTICS_GB,
            unit_label="GB", filter_sku=False,
            note=f"assumes {LOG_ANALYTICS_GB:g} GB of telemetry ingested a month; the first "
                 "5 GB a month are free, more is billed per GB; 30 days' retention included",
        )]


class InsightsStep(_GenericStep):
    """The workspace-based Application Insights component the function reports to."""

    name = "insights"
    arm_type = INSIGHTS_TYPE
    api = INSIGHTS_API
    label = "Application Insights"
    icon = "monitoring"
    depends_on = ("resource-group", "workspace")
    nominal_s = 2.0

    def __init__(self, spec: DeploymentSpec) -> None:
        super().__init__(spec)
        self.title = f"Application Insights {insights_name(spec)}"

    def resource_name(self) -> str:
        return insights_name(self.spec)

    def detail(self, resource: Any) -> str:
        return f"workspace {str(_props(resource).get('WorkspaceResourceId', '')).rsplit('/')[-1]}"

    def outputs(self, resource: Any) -> dict[str, str]:
        return {**super().outputs(resource), "app_id": str(_props(resource).get("AppId") or "")}

    def check_adoptable(self, resource: Any) -> None:
        if str(_props(resource).get("IngestionMode", "")) == "ApplicationInsights":
            raise BadInput(
                f"Application Insights {resource.name} is a classic component (not "
                "workspace-based); Azure no longer ingests into those",
                "Migrate it to a workspace in the portal, or delete it and deploy again.",
            )

    def _properties(self, workspace: str) -> dict[str, Any]:
        return {"Application_Type": "web", "Flow_Type": "Bluefield", "Request_Source": "rest",
                "IngestionMode": "LogAnalytics", "WorkspaceResourceId": workspace}

    def body(self, ctx: DeployContext) -> dict[str, Any]:
        return {"location": ctx.spec.location, "tags": ctx.tags, "kind": "web",
                "properties": self._properties(ctx.output("workspace", "id"))}

    def arm_id(self) -> str:
        return f"[{INSIGHTS_ID}]"

    def arm_parameters(self) -> dict[str, dict[str, Any]]:
        return {"insightsName": {"type": "string", "defaultValue": insights_name(self.spec)}}

    def arm_settings(self) -> list[dict[str, str]]:
        settings = [{"name": CONNECTION_SETTING,
                     "value": f"[reference({INSIGHTS_ID}, '{INSIGHTS_API}').ConnectionString]"}]
        if keyless(self.spec):
            settings.append({"name": AUTHENTICATION_SETTING, "value": ENTRA_AUTHENTICATION})
        return settings

    def arm_resources(self, wiring: ArmWiring) -> list[dict[str, Any]]:
        return [{"type": self.arm_type, "apiVersion": self.api,
                 "name": "[parameters('insightsName')]", "location": "[parameters('location')]",
                 "tags": "[parameters('tags')]", "kind": "web",
                 "properties": self._properties(wiring.ids["workspace"])}]

    def azcli(self, sh: Shell) -> AzCliPart:
        name = sh.q(insights_name(self.spec))
        auth = (f" {AUTHENTICATION_SETTING}={sh.q(ENTRA_AUTHENTICATION)}"
                if keyless(self.spec) else "")
        return AzCliPart(create=[
            "# `az monitor app-insights` is the application-insights extension of the az CLI",
            f"az monitor app-insights component create --resource-group {sh.rg} --app {name} "
            f"--location {sh.location} --kind web --application-type web "
            f"--workspace {sh.q(workspace_name(self.spec))} --tags {sh.tags} --output none",
        ], read=[
            f"insights_connection=$(az monitor app-insights component show --resource-group "
            f"{sh.rg} --app {name} --query connectionString --output tsv)",
            f"az functionapp config appsettings set --resource-group {sh.rg} "
            f"--name {sh.q(self.spec.function_app.name)} "
            f"--settings {CONNECTION_SETTING}=\"$insights_connection\"{auth} --output none",
        ])


@dataclass(frozen=True)
class InsightsView:
    """What `test` and the Test page show of the component: its name and id, and the
    portal's live metrics and recent requests (where there is a portal to open)."""

    name: str
    resource_id: str
    live_metrics: str
    recent_requests: str

    def lines(self, portal: bool) -> list[str]:
        """Without a portal (the sandbox), the resource's id stands for the links."""
        if not portal:
            return [f"Application Insights: {self.name} ({self.resource_id})"]
        return [f"Application Insights: {self.name}",
                f"  live metrics:    {self.live_metrics}",
                f"  recent requests: {self.recent_requests}"]


def insights_view(spec: DeploymentSpec, clients: ClientFactory) -> InsightsView | None:
    """The spec's component as it exists (None: monitoring is off, or it is not there)."""
    from app.services.portal import live_metrics_url, recent_requests_url

    if not spec.monitoring.enabled:
        return None
    target = clients.target
    rid = resource_id(target.subscription_id, spec.resource_group.name, INSIGHTS_TYPE,
                      insights_name(spec))
    found = get_generic(clients, rid, INSIGHTS_API)
    if found is None:
        return None
    found_id = str(found.id or rid)
    return InsightsView(str(found.name), found_id, live_metrics_url(target.tenant_id, found_id),
                        recent_requests_url(target.tenant_id, found_id))
