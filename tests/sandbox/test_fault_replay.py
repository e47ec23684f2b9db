"""Fault rules that replay Azure's own answers: `body`, `headers`, App Service's shape.

The quota refusal and the host-runtime error are quoted from live answers
(Azure/azure-cli#31665, Azure/terraform-azurerm-avm-res-web-site#248,
Azure/azure-cli#20892); the real WebSiteManagementClient must see them unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.mgmt.redis import RedisManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.web import WebSiteManagementClient

from app.sandbox import Sandbox
from app.sandbox.faults import FaultFileError, parse_rules
from tests.sandbox.conftest import mgmt, unique

pytestmark = pytest.mark.sandbox

QUOTA_MESSAGE = (
    "Operation cannot be completed without additional quota. \r\n"
    "Additional details - Location:  \r\n"
    "Current Limit (Basic VMs): 0 \r\n"
    "Current Usage: 0\r\n"
    "Amount required for this deployment (Basic VMs): 1 \r\n"
    "(Minimum) New Limit that you should request to enable this deployment: 1. \r\n"
    "Note that if you experience multiple scaling operations failing (in addition to this "
    "one) and need to accommodate the aggregate quota requirements of these operations, you "
    "will need to request a higher quota limit than the one currently displayed."
)
QUOTA_TEMPLATE = (
    "Operation cannot be completed without additional quota. \r\n"
    "Additional details - Location: {0} \r\n"
    "Current Limit ({1}): {2} \r\n"
    "Current Usage: {3}\r\n"
    "Amount required for this deployment ({1}): {4} \r\n"
    "(Minimum) New Limit that you should request to enable this deployment: {5}. \r\n"
    "Note that if you experience multiple scaling operations failing (in addition to this "
    "one) and need to accommodate the aggregate quota requirements of these operations, you "
    "will need to request a higher quota limit than the one currently displayed."
)
QUOTA_BODY: dict[str, Any] = {
    "Code": "Unauthorized",
    "Message": QUOTA_MESSAGE,
    "Target": None,
    "Details": [
        {"Message": QUOTA_MESSAGE},
        {"Code": "Unauthorized"},
        {
            "ErrorEntity": {
                "ExtendedCode": "70007",
                "MessageTemplate": QUOTA_TEMPLATE,
                "Parameters": ["", "Basic VMs", "0", "0", "1", "1"],
                "Code": "Unauthorized",
                "Message": QUOTA_MESSAGE,
            }
        },
    ],
    "Innererror": None,
}
HOST_RUNTIME = "Encountered an error (InternalServerError) from host runtime."
PLAN = {
    "location": "westeurope",
    "kind": "linux",
    "sku": {"name": "B1", "tier": "Basic"},
    "properties": {"reserved": True},
}


def _web(sb: Sandbox) -> tuple[WebSiteManagementClient, ResourceManagementClient]:
    return mgmt(WebSiteManagementClient, sb), mgmt(ResourceManagementClient, sb)


def test_body_and_headers_parse_and_need_a_status() -> None:
    plan = parse_rules(
        {"rules": [{"path": "/x", "status": 401, "body": QUOTA_BODY, "headers": {"X-A": "1"}}]}
    )
    rule = plan.rules[0]
    assert rule.has_body and rule.body == QUOTA_BODY and rule.headers == {"X-A": "1"}
    bad: list[tuple[dict[str, Any], str]] = [
        ({"path": "/x", "drop": True, "body": {}}, "need 'status'"),
        ({"path": "/x", "fail_provisioning": True, "headers": {"A": "b"}}, "need 'status'"),
        ({"path": "/x", "status": 400, "headers": ["A"]}, "table of header names"),
        ({"path": "/x", "status": 400, "headers": {"Content-Length": "1"}}, "cannot set"),
        ({"path": "/x", "status": 400, "headers": {"A": "b\r\nC: d"}}, "line break"),
        ({"path": "/x", "status": 400, "bodyy": {}}, "unknown key(s) bodyy"),
    ]
    for raw, fragment in bad:
        with pytest.raises(FaultFileError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
            parse_rules({"rules": [raw]})


def test_plan_put_refused_for_quota_reaches_the_sdk_unchanged(tmp_path: Path) -> None:
    faults = {
        "rules": [
            {
                "method": "PUT",
                "path": "/providers/Microsoft.Web/serverfarms/[^/]+$",
                "status": 401,
                "body": QUOTA_BODY,
                "headers": {"x-ms-failure-cause": "service"},
            }
        ]
    }
    with Sandbox.start(tmp_path / "state", latency="fast", faults=faults) as sb:
        web, rm = _web(sb)
        group = unique("rg-quota-")
        rm.resource_groups.create_or_update(group, {"location": "westeurope"})
        with pytest.raises(HttpResponseError) as caught:
            web.app_service_plans.begin_create_or_update(group, unique("plan-"), PLAN).result()
        assert caught.value.status_code == 401
        response = caught.value.response
        assert response is not None
        assert json.loads(response.text()) == QUOTA_BODY
        assert response.headers["x-ms-failure-cause"] == "service"
        # The plan was never created.
        assert list(web.app_service_plans.list_by_resource_group(group)) == []


def test_listkeys_while_the_host_starts_then_the_real_keys(tmp_path: Path) -> None:
    faults = {
        "rules": [
            {
                "method": "POST",
                "path": "/providers/Microsoft.Web/sites/[^/]+/host/default/listkeys$",
                "status": 400,
                "code": "BadRequest",
                "message": HOST_RUNTIME,
                "count": 2,
            }
        ]
    }
    with Sandbox.start(tmp_path / "state", latency="fast", faults=faults) as sb:
        web, rm = _web(sb)
        group = unique("rg-keys-")
        rm.resource_groups.create_or_update(group, {"location": "westeurope"})
        plan = web.app_service_plans.begin_create_or_update(group, unique("plan-"), PLAN).result()
        site = web.web_apps.begin_create_or_update(
            group,
            unique("func-"),
            {
                "location": "westeurope",
                "properties": {
                    "serverFarmId": plan.id,
                    "siteConfig": {"linuxFxVersion": "DOCKER|nothere01.azurecr.io/a:v1"},
                },
            },
        ).result()
        for _ in range(2):
            with pytest.raises(HttpResponseError) as caught:
                web.web_apps.list_host_keys(group, site.name)
            assert caught.value.status_code == 400
            assert caught.value.response is not None
            body = json.loads(caught.value.response.text())
            assert "error" not in body
            assert body["Code"] == "BadRequest" and body["Message"] == HOST_RUNTIME
            entity = body["Details"][2]["ErrorEntity"]
            assert entity["Code"] == "BadRequest" and entity["Message"] == HOST_RUNTIME
            assert body["Target"] is None and body["Innererror"] is None
        keys = web.web_apps.list_host_keys(group, site.name)
        assert keys.master_key and keys.function_keys and keys.function_keys["default"]
        assert [rule.fired for rule in sb.context.faults.rules] == [2]


def test_status_rules_take_the_shape_of_the_provider_the_path_names(tmp_path: Path) -> None:
    faults = {
        "rules": [
            {"method": "GET", "path": "/serverfarms$", "status": 409, "count": 1},
            {"method": "GET", "path": "/providers/Microsoft.Cache/redis$", "status": 409},
        ]
    }
    with Sandbox.start(tmp_path / "state", latency="fast", faults=faults) as sb:
        auth = {"Authorization": f"Bearer {sb.token}"}
        base = f"{sb.endpoint}/subscriptions/{sb.subscription_id}/providers"
        web = requests.get(
            f"{base}/Microsoft.Web/serverfarms",
            params={"api-version": "2024-11-01"},
            headers=auth,
            verify=str(sb.ca_cert),
            timeout=10,
        )
        assert web.status_code == 409
        assert web.json()["Code"] == "Conflict" and "error" not in web.json()
        assert web.json()["Details"][1] == {"Code": "Conflict"}
        cache = requests.get(
            f"{base}/Microsoft.Cache/redis",
            params={"api-version": "2024-11-01"},
            headers=auth,
            verify=str(sb.ca_cert),
            timeout=10,
        )
        assert cache.status_code == 409 and cache.json()["error"]["code"] == "Conflict"
        redis_mgmt = mgmt(RedisManagementClient, sb)
        with pytest.raises(HttpResponseError) as caught:
            list(redis_mgmt.redis.list_by_subscription())
        assert caught.value.error is not None and caught.value.error.code == "Conflict"
