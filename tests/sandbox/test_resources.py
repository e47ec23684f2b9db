"""Subscriptions, locations and resource groups through the real SDK clients."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.resource.subscriptions import SubscriptionClient

from app.sandbox import Sandbox
from tests.sandbox.conftest import unique

pytestmark = pytest.mark.sandbox


def test_subscriptions_and_locations(
    sandbox: Sandbox, subscription_client: SubscriptionClient
) -> None:
    subs = list(subscription_client.subscriptions.list())
    assert [s.subscription_id for s in subs] == [sandbox.subscription_id]
    sub = subscription_client.subscriptions.get(sandbox.subscription_id)
    assert sub.state == "Enabled"
    assert sub.id == f"/subscriptions/{sandbox.subscription_id}"
    locations = {
        loc.name: loc
        for loc in subscription_client.subscriptions.list_locations(sandbox.subscription_id)
    }
    assert "westeurope" in locations and "eastus" in locations
    west = locations["westeurope"]
    assert west.display_name == "West Europe"
    assert west.regional_display_name == "(Europe) West Europe"
    assert west.metadata.physical_location == "Netherlands"
    assert west.metadata.geography_group == "Europe"
    assert locations["uksouth"].regional_display_name == "(UK) UK South"
    # Geographies are listed too, as logical locations no resource can be created in.
    assert locations["europe"].metadata.region_type == "Logical"
    with pytest.raises(ResourceNotFoundError):
        subscription_client.subscriptions.get("11111111-1111-1111-1111-111111111111")


def test_group_create_then_update_get_head_list(resource_client: ResourceManagementClient) -> None:
    groups = resource_client.resource_groups
    name = unique("rg-crud-")
    assert groups.check_existence(name) is False
    created = groups.create_or_update(name, {"location": "West Europe", "tags": {"env": "test"}})
    assert created.name == name
    assert created.location == "westeurope"
    assert created.properties.provisioning_state == "Succeeded"
    assert created.tags == {"env": "test"}
    updated = groups.create_or_update(name, {"location": "westeurope", "tags": {"env": "prod"}})
    assert updated.tags == {"env": "prod"}
    assert groups.check_existence(name) is True
    assert groups.check_existence(name.upper()) is True
    assert groups.get(name).tags == {"env": "prod"}
    patched = groups.update(name, {"tags": {"owner": "me"}})
    assert patched.tags == {"owner": "me"}
    assert name in [g.name for g in groups.list()]
    groups.begin_delete(name).result()
    assert groups.check_existence(name) is False


def test_create_answers_201_then_200(resource_client: ResourceManagementClient) -> None:
    name = unique("rg-status-")
    statuses = []

    def record(pipeline_response, deserialized, headers):  # type: ignore[no-untyped-def]
        statuses.append(pipeline_response.http_response.status_code)
        return deserialized

    for _ in range(2):
        resource_client.resource_groups.create_or_update(name, {"location": "eastus"}, cls=record)
    assert statuses == [201, 200]
    resource_client.resource_groups.begin_delete(name).result()


def test_group_errors(resource_client: ResourceManagementClient, group: str) -> None:
    with pytest.raises(HttpResponseError) as info:
        resource_client.resource_groups.create_or_update(group, {"location": "eastus"})
    assert info.value.error.code == "InvalidResourceGroupLocation"
    with pytest.raises(HttpResponseError) as info:
        resource_client.resource_groups.create_or_update(unique("rg-"), {"location": "moon"})
    assert info.value.error.code == "LocationNotAvailableForResourceGroup"
    with pytest.raises(ResourceNotFoundError) as not_found:
        resource_client.resource_groups.begin_delete(unique("rg-missing-")).result()
    assert not_found.value.error.code == "ResourceGroupNotFound"


def test_list_resources_in_group(
    resource_client: ResourceManagementClient,
    storage_mgmt,
    group: str,  # type: ignore[no-untyped-def]
) -> None:
    assert list(resource_client.resources.list_by_resource_group(group)) == []
    account = unique("st")
    storage_mgmt.storage_accounts.begin_create(
        group,
        account,
        {
            "sku": {"name": "Standard_LRS"},
            "kind": "StorageV2",
            "location": "westeurope",
            "tags": {"a": "1"},
        },
    ).result()
    listed = list(resource_client.resources.list_by_resource_group(group))
    assert [(r.name, r.type) for r in listed] == [(account, "Microsoft.Storage/storageAccounts")]
    assert listed[0].tags == {"a": "1"}


def test_group_delete_is_a_location_lro_and_cascades(
    resource_client: ResourceManagementClient,
    storage_mgmt,  # type: ignore[no-untyped-def]
) -> None:
    name = unique("rg-del-")
    resource_client.resource_groups.create_or_update(name, {"location": "westeurope"})
    account = unique("st")
    storage_mgmt.storage_accounts.begin_create(
        name,
        account,
        {"sku": {"name": "Standard_LRS"}, "kind": "StorageV2", "location": "westeurope"},
    ).result()
    poller = resource_client.resource_groups.begin_delete(name)
    first = poller.polling_method()._initial_response.http_response  # type: ignore[attr-defined]
    assert first.status_code == 202
    assert "/operationresults/" in first.headers["Location"]
    poller.result()
    assert poller.status() == "Succeeded"
    assert resource_client.resource_groups.check_existence(name) is False
    check = storage_mgmt.storage_accounts.check_name_availability(
        {"name": account, "type": "Microsoft.Storage/storageAccounts"}
    )
    assert check.name_available is True


def test_tenants_and_registered_providers(
    sandbox: Sandbox,
    subscription_client: SubscriptionClient,
    resource_client: ResourceManagementClient,
) -> None:
    tenants = list(subscription_client.tenants.list())
    # The home tenant and the partner tenant where the sandbox user is a guest.
    assert {t.tenant_id for t in tenants} == {t.tenant_id for t in sandbox.tenants}
    assert sandbox.tenant_id in {t.tenant_id for t in tenants}
    namespaces = {p.namespace for p in resource_client.providers.list()}
    assert {"Microsoft.Cache", "Microsoft.Storage", "Microsoft.Resources"} <= namespaces
    cache = resource_client.providers.get("microsoft.cache")
    assert cache.namespace == "Microsoft.Cache"
    assert cache.registration_state == "Registered"
    assert "redis" in [t.resource_type for t in cache.resource_types]
    assert resource_client.providers.register("Microsoft.Cache").registration_state == "Registered"
    with pytest.raises(ResourceNotFoundError) as info:
        resource_client.providers.get("Microsoft.Nothing")
    assert info.value.error.code == "InvalidResourceNamespace"


def test_generic_resource_operations_by_id(
    resource_client: ResourceManagementClient,
    storage_mgmt,
    group: str,  # type: ignore[no-untyped-def]
) -> None:
    account = unique("st")
    created = storage_mgmt.storage_accounts.begin_create(
        group,
        account,
        {"sku": {"name": "Standard_LRS"}, "kind": "StorageV2", "location": "westeurope"},
    ).result()
    version = "2025-06-01"
    assert resource_client.resources.check_existence_by_id(created.id, api_version=version) is True
    generic = resource_client.resources.get_by_id(created.id, api_version=version)
    assert generic.name == account and generic.type == "Microsoft.Storage/storageAccounts"
    missing = created.id[:-3] + "zzz"
    assert resource_client.resources.check_existence_by_id(missing, api_version=version) is False
