"""Microsoft.Web answers errors in App Service's own shape; ARM's own errors keep ARM's.

Driven by the real WebSiteManagementClient (which, as against Azure, cannot parse
App Service's PascalCase body into `HttpResponseError.error`), and by `requests` for
the raw bodies.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.web import WebSiteManagementClient

from app.sandbox import Sandbox
from tests.sandbox.conftest import mgmt, unique

pytestmark = pytest.mark.sandbox

PLAN = {
    "location": "westeurope",
    "kind": "linux",
    "sku": {"name": "B1", "tier": "Basic"},
    "properties": {"reserved": True},
}
IMAGE = "DOCKER|nothere01.azurecr.io/app:v1"


@pytest.fixture(scope="module")
def web(sandbox: Sandbox) -> WebSiteManagementClient:
    return mgmt(WebSiteManagementClient, sandbox)


def _body(exc: HttpResponseError) -> dict[str, Any]:
    assert exc.response is not None
    body = json.loads(exc.response.text())
    assert isinstance(body, dict)
    return body


def _assert_app_service_shape(body: dict[str, Any], code: str, message: str) -> dict[str, Any]:
    assert list(body) == ["Code", "Message", "Target", "Details", "Innererror"]
    assert body["Code"] == code and body["Message"] == message
    assert body["Target"] is None and body["Innererror"] is None
    assert body["Details"][0] == {"Message": message}
    assert body["Details"][1] == {"Code": code}
    entity: dict[str, Any] = body["Details"][2]["ErrorEntity"]
    assert set(entity) == {"ExtendedCode", "MessageTemplate", "Parameters", "Code", "Message"}
    assert entity["Code"] == code and entity["Message"] == message
    return entity


def _site(plan_id: str) -> dict[str, Any]:
    return {
        "location": "westeurope",
        "properties": {"serverFarmId": plan_id, "siteConfig": {"linuxFxVersion": IMAGE}},
    }


def test_a_taken_site_name_is_app_service_54001(
    web: WebSiteManagementClient, group: str, resource_client: Any
) -> None:
    name = unique("func-")
    plan = web.app_service_plans.begin_create_or_update(group, unique("plan-"), PLAN).result()
    web.web_apps.begin_create_or_update(group, name, _site(plan.id)).result()
    other = unique("rg-test-")
    resource_client.resource_groups.create_or_update(other, {"location": "westeurope"})
    try:
        other_plan = web.app_service_plans.begin_create_or_update(
            other, unique("plan-"), PLAN
        ).result()
        with pytest.raises(ResourceExistsError) as caught:
            web.web_apps.begin_create_or_update(other, name, _site(other_plan.id)).result()
        assert caught.value.status_code == 409
        assert caught.value.error is None  # azure-core reads ARM's shape only, as on Azure
        entity = _assert_app_service_shape(
            _body(caught.value), "Conflict", f"Website with given name {name} already exists."
        )
        assert entity["ExtendedCode"] == "54001"
        assert entity["MessageTemplate"] == "Website with given name {0} already exists."
        assert entity["Parameters"] == [name]
    finally:
        resource_client.resource_groups.begin_delete(other).result()


def test_a_missing_plan_and_a_busy_plan(
    sandbox: Sandbox, web: WebSiteManagementClient, group: str
) -> None:
    missing = (
        f"/subscriptions/{sandbox.subscription_id}/resourceGroups/{group}"
        "/providers/Microsoft.Web/serverfarms/noplan"
    )
    with pytest.raises(ResourceNotFoundError) as caught:
        web.web_apps.begin_create_or_update(group, unique("func-"), _site(missing)).result()
    entity = _assert_app_service_shape(
        _body(caught.value), "NotFound", "Cannot find ServerFarm with name noplan."
    )
    assert entity["ExtendedCode"] == "51004"
    assert entity["Parameters"] == ["ServerFarm", "noplan"]

    plan_name = unique("plan-")
    plan = web.app_service_plans.begin_create_or_update(group, plan_name, PLAN).result()
    site = web.web_apps.begin_create_or_update(group, unique("func-"), _site(plan.id)).result()
    with pytest.raises(HttpResponseError) as caught:
        web.app_service_plans.delete(group, plan_name)
    body = _body(caught.value)
    assert body["Code"] == "Conflict" and site.name in body["Message"]
    with pytest.raises(HttpResponseError) as caught:
        web.app_service_plans.begin_create_or_update(
            group, unique("plan-"), {**PLAN, "sku": {"name": "Z9"}}
        ).result()
    assert caught.value.status_code == 400 and _body(caught.value)["Code"] == "BadRequest"


def test_config_and_function_errors_are_app_service_shaped(
    sandbox: Sandbox, web: WebSiteManagementClient, group: str
) -> None:
    plan = web.app_service_plans.begin_create_or_update(group, unique("plan-"), PLAN).result()
    site = web.web_apps.begin_create_or_update(group, unique("func-"), _site(plan.id)).result()
    url = (
        f"{sandbox.endpoint}/subscriptions/{sandbox.subscription_id}/resourceGroups/{group}"
        f"/providers/Microsoft.Web/sites/{site.name}"
    )
    auth = {"Authorization": f"Bearer {sandbox.token}"}
    version = {"api-version": "2024-11-01"}
    settings = requests.put(
        url + "/config/appsettings",
        params=version,
        headers=auth,
        json={"properties": {"A": {"nested": 1}}},
        verify=str(sandbox.ca_cert),
        timeout=10,
    )
    assert settings.status_code == 400 and "Code" in settings.json()
    function = requests.get(
        url + "/functions/nothere",
        params=version,
        headers=auth,
        verify=str(sandbox.ca_cert),
        timeout=10,
    )
    assert function.status_code == 404 and function.json()["Code"] == "NotFound"


def test_arm_errors_before_the_rp_keep_arms_shape(
    sandbox: Sandbox, web: WebSiteManagementClient, group: str
) -> None:
    # A site that does not exist: ARM's ResourceNotFound (ARMResourceNotFoundFix), as live.
    with pytest.raises(ResourceNotFoundError) as caught:
        web.web_apps.get(group, unique("ghost-"))
    assert caught.value.error is not None and caught.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as caught:
        web.web_apps.get(unique("rg-none-"), "x")
    assert caught.value.error is not None
    assert caught.value.error.code == "ResourceGroupNotFound"
    sites = (
        f"{sandbox.endpoint}/subscriptions/{sandbox.subscription_id}/providers/Microsoft.Web/sites"
    )
    no_token = requests.get(
        sites, params={"api-version": "2024-11-01"}, verify=str(sandbox.ca_cert), timeout=10
    )
    assert no_token.status_code == 401
    assert no_token.json()["error"]["code"] == "AuthenticationFailed"
    no_version = requests.get(
        sites,
        headers={"Authorization": f"Bearer {sandbox.token}"},
        verify=str(sandbox.ca_cert),
        timeout=10,
    )
    assert no_version.status_code == 400
    assert no_version.json()["error"]["code"] == "MissingApiVersionParameter"
