"""Application Insights and Log Analytics in the sandbox, through the generic resources
client the product uses (no typed client for either is installed)."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.resource.resources.models import GenericResource

from app.sandbox import Sandbox
from app.sandbox.providers.insights_ingestion import received_telemetry
from tests.sandbox.conftest import mgmt
from tests.sandbox.redis_tokens import mint, wait_until

COMPONENT_API = "2020-02-02"
WORKSPACE_API = "2023-09-01"
# Monitoring Metrics Publisher ("Azure built-in roles").
PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"


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
        f"InstrumentationKey={props['InstrumentationKey']};IngestionEndpoint=https://")
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


def _envelope(key: str, cache: str) -> dict[str, Any]:
    """A log record as the Azure Monitor exporter sends it (its `TelemetryItem` with
    `MessageData`, azure-monitor-opentelemetry-exporter's _generated models): the
    record's `extra` are the properties, Application Insights' customDimensions."""
    return {
        "ver": 1, "name": "Microsoft.ApplicationInsights.Message",
        "time": "2026-01-05T10:00:00.000000Z", "sampleRate": 100.0, "iKey": key,
        "tags": {"ai.cloud.role": "app1",
                 "ai.internal.sdkVersion": "py3.11:otel1.45.1:ext1.0.0b58"},
        "data": {"baseType": "MessageData", "baseData": {
            "ver": 2, "message": f"score cache={cache} model=v1", "severityLevel": "Information",
            "properties": {"cache": cache, "model_version": "v1"}}},
    }


def _track(sandbox: Sandbox, component: GenericResource, body: bytes,
           path: str = "v2.1/track", **headers: str) -> requests.Response:
    endpoint = dict(part.split("=", 1) for part in
                    component.properties["ConnectionString"].split(";"))["IngestionEndpoint"]
    return requests.post(endpoint + path, data=body, timeout=10,
                         verify=str(sandbox.ca_cert),
                         headers={"Content-Type": "application/json", **headers})


def test_ingestion_takes_the_exporters_envelopes_plain_and_gzip(
        sandbox: Sandbox, resource_client: ResourceManagementClient, group: str) -> None:
    component = _create(resource_client, sandbox, group)
    key = component.properties["InstrumentationKey"]
    assert f"IngestionEndpoint={sandbox.endpoint}/" in component.properties["ConnectionString"]
    # As the exporter joins them: the endpoint's trailing slash, then /v2.1/track.
    plain = _track(sandbox, component, json.dumps([_envelope(key, "MISS")]).encode(),
                   path="/v2.1/track")
    assert plain.status_code == 200
    assert plain.json() == {"itemsReceived": 1, "itemsAccepted": 1, "errors": []}
    # gzip, and one item naming no component: the others are taken (206).
    zipped = _track(sandbox, component, gzip.compress(json.dumps(
        [_envelope(key, "HIT"), _envelope(str(uuid.uuid4()), "HIT")]).encode()),
        **{"Content-Encoding": "gzip"})
    assert zipped.status_code == 206
    answer = zipped.json()
    assert (answer["itemsReceived"], answer["itemsAccepted"]) == (2, 1)
    assert [(e["index"], e["statusCode"]) for e in answer["errors"]] == [(1, 400)]
    kept = received_telemetry(sandbox.context.store, "/" + _ids(sandbox, group)[1])
    assert [t["data"]["baseData"]["properties"]["cache"] for t in kept] == ["MISS", "HIT"]
    assert _track(sandbox, component, b"{nope").status_code == 400


def test_ingestion_with_a_token_needs_the_monitor_audience_and_the_publisher_role(
        sandbox: Sandbox, resource_client: ResourceManagementClient, group: str) -> None:
    component = _create(resource_client, sandbox, group)
    body = json.dumps([_envelope(component.properties["InstrumentationKey"], "MISS")]).encode()
    # The signed-in user: a principal the directory holds, which RBAC requires.
    tenant = sandbox.context.directory.tenant(sandbox.tenant_id)
    assert tenant is not None
    principal = tenant.user_object_id
    wrong = _track(sandbox, component, body, Authorization="Bearer " + mint(sandbox, principal))
    assert wrong.status_code == 401 and wrong.json()["itemsAccepted"] == 0
    token = mint(sandbox, principal, audience="https://monitor.azure.com/")
    refused = _track(sandbox, component, body, Authorization=f"Bearer {token}")
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["statusCode"] == 403
    mgmt(AuthorizationManagementClient, sandbox).role_assignments.create(
        component.id, str(uuid.uuid4()), RoleAssignmentCreateParameters(
            role_definition_id=f"/subscriptions/{sandbox.subscription_id}/providers/"
                               f"Microsoft.Authorization/roleDefinitions/{PUBLISHER}",
            principal_id=principal, principal_type="User"))
    assert wait_until(lambda: _track(sandbox, component, body,
                                     Authorization=f"Bearer {token}").status_code == 200)
    kept = received_telemetry(sandbox.context.store, component.id)
    assert len(kept) == 1 and kept[0]["data"]["baseData"]["properties"]["cache"] == "MISS"
