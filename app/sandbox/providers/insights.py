"""Application Insights and its Log Analytics workspace, with what Azure puts beside them.

- `Microsoft.OperationalInsights/workspaces` (2023-09-01, Workspaces.json and its
  WorkspacesCreate example): PUT answers 201 with provisioningState Creating and no
  operation header (the client polls the workspace), which then shows Succeeded;
  `customerId`, `sku` (PerGB2018 when none is given: Azure's default pricing tier),
  `retentionInDays` (30), `workspaceCapping`, the publicNetworkAccess pair, as the
  service answers them.
- `Microsoft.Insights/components` (2020-02-02, components_API.json): a synchronous
  PUT (200, provisioningState Succeeded) answering `AppId`, `InstrumentationKey`,
  `ConnectionString` (ingestion and live endpoints of the region), `ApplicationId`
  (the name), `TenantId` (the subscription, as Azure fills it), `IngestionMode`
  LogAnalytics and `WorkspaceResourceId`. The type is spelled in lower case, as
  Azure answers it.
- Beside a new component Azure creates, in its group, the action group
  "Application Insights Smart Detection" (location Global, short name SmartDetect,
  the Monitoring Contributor and Monitoring Reader role receivers) once per group,
  and the alert rule "Failure Anomalies - <component>"
  (microsoft.alertsmanagement/smartDetectorAlertRules, location global, detector
  FailureAnomaliesDetector, Sev3, PT1M); both are listed in the group and go with it.

The connection string's `IngestionEndpoint` is the sandbox's own ingestion endpoint
(`app.sandbox.providers.insights_ingestion`), which takes what an Azure Monitor
exporter sends; its `LiveEndpoint` is the sandbox's too, and not served (live
metrics are not emulated).
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.sandbox.arm import ArmError, arm_route, empty_response, json_response, read_json
from app.sandbox.operations import OperationKind, OpRecord, utc_now
from app.sandbox.providers import Provider
from app.sandbox.providers.insights_ingestion import LIVE_PREFIX, ingestion_endpoint
from app.sandbox.providers.resources import PROVIDER_TYPES, location_of, region_names, tags_of

COMPONENT_TYPE = "Microsoft.Insights/components"
ACTION_GROUP_TYPE = "Microsoft.Insights/actionGroups"
WORKSPACE_TYPE = "Microsoft.OperationalInsights/workspaces"
ALERT_RULE_TYPE = "Microsoft.AlertsManagement/smartDetectorAlertRules"

SMART_DETECTION_GROUP = "Application Insights Smart Detection"
# Built-in role ids of the smart detection group's receivers ("Azure built-in roles").
_RECEIVERS = (("Monitoring Contributor", "749f88d5-cbae-40b8-bcfc-e573ddc772fa"),
              ("Monitoring Reader", "43d0d8ad-25c7-4714-9337-8ba259a9fe05"))
_WORKSPACE_SKUS = ("Free", "Standard", "Premium", "PerNode", "PerGB2018", "Standalone",
                   "CapacityReservation", "LACluster")


def _api_versions(rtype: str) -> tuple[str, ...]:
    namespace, _, short = rtype.partition("/")
    for name, versions in PROVIDER_TYPES.get(namespace, ()):
        if name.lower() == short.lower():
            return versions
    return ()


def require_api_version(request: Request, rtype: str, location: str = "") -> None:
    """ARM's 400 for an api-version the type's provider does not serve."""
    version = request.query_params.get("api-version", "")
    supported = _api_versions(rtype)
    if version not in supported:
        where = f"location '{location}' and " if location else ""
        raise ArmError(
            400, "NoRegisteredProviderFound",
            f"No registered resource provider found for {where}API version '{version}' for "
            f"type '{rtype.split('/', 1)[1]}'. The supported api-versions are "
            f"'{', '.join(supported)}'. The supported locations are "
            f"'{', '.join(region_names())}'.")


class _Simple(Provider):
    """GET, list and DELETE of stored resources, which every type here has alike."""

    def read_routes(self, rtype: str, name_param: str) -> tuple[str, list[BaseRoute]]:
        sub = "/subscriptions/{subscriptionId}"
        in_group = f"{sub}/resourceGroups/{{resourceGroupName}}/providers/{rtype}"
        one = f"{in_group}/{{{name_param}}}"

        async def list_all(request: Request) -> Response:
            return self.list_response(request, rtype, in_group=False)

        async def list_group(request: Request) -> Response:
            return self.list_response(request, rtype, in_group=True)

        async def get(request: Request) -> Response:
            return json_response(self.lookup(request, rtype, name_param)[1]["body"])

        async def delete(request: Request) -> Response:
            rid, _ = self.locate(request, rtype, name_param)
            with self.ctx.store.transaction() as store:
                if store.resource(rid) is None:
                    return empty_response(204)
                store.remove_resource(rid)
            return empty_response(200)

        return one, [arm_route(f"{sub}/providers/{rtype}", list_all, ["GET"]),
                     arm_route(in_group, list_group, ["GET"]),
                     arm_route(one, get, ["GET"]),
                     arm_route(one, delete, ["DELETE"])]

    async def write(self, request: Request, rtype: str, name_param: str,
                    ) -> tuple[dict[str, Any], str, str, str, dict[str, Any]]:
        """A PUT's body, the group's name, the id, the region and `properties`, after
        the checks ARM makes first (group, location, api-version)."""
        body = await read_json(request)
        group, rid = self.write_target(request, rtype, name_param)
        location = location_of(body)
        require_api_version(request, rtype, location)
        return body, group["body"]["name"], rid, location, body.get("properties") or {}


class WorkspacesProvider(_Simple):
    namespace = "Microsoft.OperationalInsights"

    def routes(self) -> list[BaseRoute]:
        one, reads = self.read_routes(WORKSPACE_TYPE, "workspaceName")
        return [*reads, arm_route(one, self.put, ["PUT"])]

    def operation_kinds(self) -> dict[str, OperationKind]:
        return {"workspace.create": OperationKind("workspace.create", self._created,
                                                  self.mark_failed)}

    async def put(self, request: Request) -> Response:
        body, group, rid, location, props = await self.write(
            request, WORKSPACE_TYPE, "workspaceName")
        sku = (props.get("sku") or {}).get("name") or "PerGB2018"
        if sku not in _WORKSPACE_SKUS:
            raise ArmError(400, "InvalidParameter",
                           f"The value '{sku}' is not valid for property 'sku.name'.")
        existing = self.ctx.store.resource(rid)
        if existing is not None:
            with self.ctx.store.transaction():
                existing["body"]["tags"] = tags_of(body)
                existing["body"]["properties"]["retentionInDays"] = int(
                    props.get("retentionInDays") or 30)
            return json_response(existing["body"], 200)
        now = utc_now()
        workspace: dict[str, Any] = {
            "id": rid, "name": request.path_params["workspaceName"], "type": WORKSPACE_TYPE,
            "location": location, "tags": tags_of(body), "etag": f'"{uuid.uuid4()}"',
            "properties": {
                "provisioningState": "Creating",
                "customerId": str(uuid.uuid4()),
                "sku": {"name": sku, "lastSkuUpdate": now},
                "retentionInDays": int(props.get("retentionInDays") or 30),
                "features": {"legacy": 0, "searchVersion": 1,
                             "enableLogAccessUsingOnlyResourcePermissions": bool(
                                 (props.get("features") or {}).get(
                                     "enableLogAccessUsingOnlyResourcePermissions", True))},
                "workspaceCapping": {"dailyQuotaGb": -1.0, "quotaNextResetTime": now,
                                     "dataIngestionStatus": "RespectQuota"},
                "publicNetworkAccessForIngestion": "Enabled",
                "publicNetworkAccessForQuery": "Enabled",
                "createdDate": now, "modifiedDate": now,
            },
        }
        with self.ctx.store.transaction() as store:
            store.put_resource(rid, {"body": workspace, "group": group})
        # As Workspaces.json's example answers: 201 with the workspace Creating and no
        # operation header, so a client polls the workspace itself until it is done.
        self.ctx.operations.start(request, "workspace.create", namespace=self.namespace,
                                  location=location, resource_id=rid)
        return json_response(workspace, 201)

    def _created(self, op: OpRecord) -> None:
        with self.ctx.store.transaction() as store:
            record = store.resource(op["resourceId"])
            if record is None:
                raise ArmError(404, "ResourceNotFound",
                               "The workspace was deleted while being created.")
            record["body"]["properties"]["provisioningState"] = "Succeeded"


class InsightsProvider(_Simple):
    """Components, and the smart detection action group Azure makes beside them."""

    namespace = "Microsoft.Insights"

    def routes(self) -> list[BaseRoute]:
        one, reads = self.read_routes(COMPONENT_TYPE, "resourceName")
        _, groups = self.read_routes(ACTION_GROUP_TYPE, "actionGroupName")
        return [*reads, arm_route(one, self.put, ["PUT"]), *groups]

    async def put(self, request: Request) -> Response:
        body, group_name, rid, location, props = await self.write(
            request, COMPONENT_TYPE, "resourceName")
        if not body.get("kind"):
            raise ArmError(400, "InvalidRequestContent",
                           "The request content was invalid: 'kind' is required.")
        if not props.get("Application_Type"):
            raise ArmError(400, "InvalidRequestContent", "The request content was invalid: "
                           "'properties.Application_Type' is required.")
        existing = self.ctx.store.resource(rid)
        if existing is not None:
            with self.ctx.store.transaction():
                existing["body"]["tags"] = tags_of(body)
                if props.get("WorkspaceResourceId"):
                    existing["body"]["properties"]["WorkspaceResourceId"] = \
                        props["WorkspaceResourceId"]
            return json_response(existing["body"], 200)
        name = request.path_params["resourceName"]
        app_id, key = str(uuid.uuid4()), str(uuid.uuid4())
        # Both endpoints are the sandbox's: telemetry must never leave for Azure.
        connection = (f"InstrumentationKey={key};"
                      f"IngestionEndpoint={ingestion_endpoint(self.ctx.endpoint, location)};"
                      f"LiveEndpoint={self.ctx.endpoint}{LIVE_PREFIX}{location}/;"
                      f"ApplicationId={app_id}")
        sub = rid.split("/")[2]
        component: dict[str, Any] = {
            "id": rid, "name": name, "type": COMPONENT_TYPE.lower(), "location": location,
            "tags": tags_of(body), "kind": body["kind"], "etag": f'"{uuid.uuid4()}"',
            "properties": {
                "ApplicationId": name, "AppId": app_id,
                "Application_Type": props["Application_Type"],
                "Flow_Type": props.get("Flow_Type") or "Bluefield",
                "Request_Source": props.get("Request_Source") or "rest",
                "InstrumentationKey": key, "ConnectionString": connection,
                "Name": name, "CreationDate": utc_now(), "TenantId": sub,
                "provisioningState": "Succeeded", "SamplingPercentage": None,
                "RetentionInDays": 90,
                "WorkspaceResourceId": props.get("WorkspaceResourceId"),
                "IngestionMode": props.get("IngestionMode") or "LogAnalytics",
                "publicNetworkAccessForIngestion": "Enabled",
                "publicNetworkAccessForQuery": "Enabled",
            },
        }
        with self.ctx.store.transaction() as store:
            store.put_resource(rid, {"body": component, "group": group_name})
            self._smart_detection(store, sub, group_name, component)
        return json_response(component, 200)

    def _smart_detection(self, store: Any, sub: str, group: str,
                         component: dict[str, Any]) -> None:
        """What Azure adds beside a new component; callers hold the transaction."""
        base = f"/subscriptions/{sub}/resourceGroups/{group}/providers"
        group_id = f"{base}/{ACTION_GROUP_TYPE}/{SMART_DETECTION_GROUP}"
        if store.resource(group_id) is None:
            store.put_resource(group_id, {"group": group, "body": {
                "id": group_id, "name": SMART_DETECTION_GROUP, "type": ACTION_GROUP_TYPE,
                "location": "Global", "tags": {},
                "properties": {
                    "groupShortName": "SmartDetect", "enabled": True,
                    **{k: [] for k in ("emailReceivers", "smsReceivers", "webhookReceivers",
                                       "eventHubReceivers", "itsmReceivers",
                                       "azureAppPushReceivers", "automationRunbookReceivers",
                                       "voiceReceivers", "logicAppReceivers",
                                       "azureFunctionReceivers")},
                    "armRoleReceivers": [{"name": n, "roleId": r, "useCommonAlertSchema": True}
                                         for n, r in _RECEIVERS],
                }}})
        rule = f"Failure Anomalies - {component['name']}"
        rule_id = f"{base}/{ALERT_RULE_TYPE}/{rule}"
        store.put_resource(rule_id, {"group": group, "body": {
            "id": rule_id, "name": rule, "type": ALERT_RULE_TYPE.lower(), "location": "global",
            "tags": {},
            "properties": {
                "description": "Failure Anomalies notifies you of an unusual rise in the rate "
                               "of failed HTTP requests or dependency calls.",
                "state": "Enabled", "severity": "Sev3", "frequency": "PT1M",
                "detector": {"id": "FailureAnomaliesDetector"},
                "scope": [component["id"]], "actionGroups": {"groupIds": [group_id]},
            }}})


class AlertsProvider(_Simple):
    """The smart detector alert rules (read and delete; Azure creates them)."""

    namespace = "Microsoft.AlertsManagement"

    def routes(self) -> list[BaseRoute]:
        return self.read_routes(ALERT_RULE_TYPE, "alertRuleName")[1]

