"""What the e2e deploys check of Application Insights: the component on its workspace, the
function's settings pointing at it, and the smart detection Azure adds beside it."""

from __future__ import annotations

import time
from typing import Any

from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.web import WebSiteManagementClient

from app.sandbox.providers.insights_ingestion import received_telemetry
from app.sandbox.sample_site import sdk_kwargs

MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
SMART_DETECTION_TYPES = ("microsoft.insights/actiongroups",
                         "microsoft.alertsmanagement/smartdetectoralertrules")


def insights_wired(sandbox: Any, data: dict[str, Any]) -> Any:
    """The spec's component, having checked it sits on its workspace and that the
    function's settings point at it (keyless: Entra authentication and its role)."""
    group, app = data["resource_group"]["name"], data["function_app"]["name"]
    client = ResourceManagementClient(**sdk_kwargs(sandbox))
    base = f"subscriptions/{sandbox.subscription_id}/resourceGroups/{group}/providers"
    component = client.resources.get_by_id(
        f"{base}/Microsoft.Insights/components/{app}", api_version="2020-02-02")
    workspace = client.resources.get_by_id(
        f"{base}/Microsoft.OperationalInsights/workspaces/{app}-logs", api_version="2023-09-01")
    assert workspace.properties["provisioningState"] == "Succeeded"
    assert component.properties["WorkspaceResourceId"].lower() == workspace.id.lower()
    web = WebSiteManagementClient(**sdk_kwargs(sandbox))
    settings = web.web_apps.list_application_settings(group, app).properties
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == \
        component.properties["ConnectionString"]
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "Authorization=AAD"
    principal = web.web_apps.get(group, app).identity.principal_id
    authorization = AuthorizationManagementClient(**sdk_kwargs(sandbox))
    held = authorization.role_assignments.list_for_scope(
        component.id, filter=f"principalId eq '{principal}'")
    assert any(a.role_definition_id.endswith(MONITORING_METRICS_PUBLISHER) for a in held)
    return component


def traced_cache_outcomes(sandbox: Any, component_id: str, wanted: list[str],
                          timeout: float = 60.0) -> list[dict[str, Any]]:
    """The scoring traces the component has received, once their `cache` custom
    dimensions are `wanted` (in order), or whatever arrived when `timeout` ran out.
    The exporter in the function host sends a batch every few seconds
    (OTEL_BLRP_SCHEDULE_DELAY, 5 s by default), so this waits for it."""
    deadline = time.monotonic() + timeout
    while True:
        traces = [item["data"]["baseData"] for item in
                  received_telemetry(sandbox.context.store, component_id)
                  if item.get("data", {}).get("baseType") == "MessageData"
                  and "cache" in (item["data"]["baseData"].get("properties") or {})]
        if [t["properties"]["cache"] for t in traces] == wanted \
                or time.monotonic() > deadline:
            return traces
        time.sleep(0.25)
