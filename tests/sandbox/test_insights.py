"""Application Insights and Log Analytics in the sandbox, through the generic resources
client the product uses (no typed client for either is installed)."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.resource.resources.models import GenericResource

from app.sandbox import Sandbox

COMPONENT_API = "2020-02-02"
WORKSPACE_API = "2023-09-01"


def _ids(sandbox: Sandbox, group: str) -> tuple[str, str]:
    base = f"subscriptions/{sandbox.subscription_id}/resourceGroups/{group}/providers"
    return (f"{base}/Microsoft.OperationalInsights/workspaces/logs1",
            f"{base}/Microsoft.Insights/components/app1")


def _create(client: ResourceManagementClient, sandbox: Sandbox, group: str) -> GenericResource:
    workspace_id, component_id = _ids(sandbox, group)
    workspace = client.resources.begin_create_or_update_by_id(
        workspace_id, GenericResource({"location": "westeurope",
                                       "properties": {"sku": {"name": "PerGB2018"}}}),
        api_version=WORKSPACE_API).result()
    assert workspace.properties["provisioningState"] == "Succeeded"
    return client.resources.begin_create_or_update_by_id(
        component_id, GenericResource({
            "location": "westeurope", "kind": "web",
            "properties": {"Application_Type": "web", "IngestionMode": "LogAnalytics",
                           "WorkspaceResourceId": "/" + workspace_id}}),
        api_version=COMPONENT_API).result()


def test_component_answers_connection_string_and_keys(
        sandbox: Sandbox, resource_client: ResourceManagementClient, group: str) -> None:
    component = _create(resource_client, sandbox, group)
    props = component.properties
    assert component.type == "microsoft.insights/components"
    assert props["provisioningState"] == "Succeeded"
    assert props["IngestionMode"] == "LogAnalytics"
    assert props["WorkspaceResourceId"].endswith("/workspaces/logs1")
    assert props["ConnectionString"].startswith(
        f"InstrumentationKey={props['InstrumentationKey']};IngestionEndpoint=https://westeurope")
    assert props["ConnectionString"].endswith(f"ApplicationId={props['AppId']}")
    again = resource_client.resources.get_by_id(_ids(sandbox, group)[1],
                                                api_version=COMPONENT_API)
    assert again.properties["AppId"] == props["AppId"]


def test_smart_detection_appears_beside_a_component_and_goes_with_the_group(
        sandbox: Sandbox, resource_client: ResourceManagementClient, group: str) -> None:
    component = _create(resource_client, sandbox, group)
    listed = {(r.type or "").lower(): r for r in
              resource_client.resources.list_by_resource_group(group)}
    assert set(listed) == {"microsoft.operationalinsights/workspaces",
                           "microsoft.insights/components", "microsoft.insights/actiongroups",
                           "microsoft.alertsmanagement/smartdetectoralertrules"}
    assert listed["microsoft.insights/actiongroups"].name == \
        "Application Insights Smart Detection"
    rule = resource_client.resources.get_by_id(
        listed["microsoft.alertsmanagement/smartdetectoralertrules"].id,
        api_version="2021-04-01")
    assert rule.name == "Failure Anomalies - app1"
    assert rule.properties["scope"] == [component.id]
    assert rule.properties["detector"]["id"] == "FailureAnomaliesDetector"
    resource_client.resource_groups.begin_delete(group).result()
    assert not resource_client.resource_groups.check_existence(group)
    with pytest.raises(ResourceNotFoundError):
        resource_client.resources.get_by_id(rule.id, api_version="2021-04-01")


def test_unknown_api_version_is_refused_as_arm_does(
        sandbox: Sandbox, resource_client: ResourceManagementClient, group: str) -> None:
    with pytest.raises(HttpResponseError) as caught:
        resource_client.resources.begin_create_or_update_by_id(
            _ids(sandbox, group)[1], GenericResource({
                "location": "westeurope", "kind": "web",
                "properties": {"Application_Type": "web"}}),
            api_version="2019-01-01").result()
    assert caught.value.error is not None
    assert caught.value.error.code == "NoRegisteredProviderFound"
