"""Microsoft.Storage/storageAccounts through azure-mgmt-storage."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.storage import StorageManagementClient
from azure.mgmt.storage import models as sm

from tests.sandbox.conftest import unique

pytestmark = pytest.mark.sandbox

RTYPE = "Microsoft.Storage/storageAccounts"


def _params(**extra: object) -> sm.StorageAccountCreateParameters:
    return sm.StorageAccountCreateParameters(
        sku=sm.Sku(name="Standard_LRS"), kind="StorageV2", location="westeurope", **extra
    )


def test_check_name_availability_reasons(storage_mgmt: StorageManagementClient, group: str) -> None:
    accounts = storage_mgmt.storage_accounts
    name = unique("st")
    free = accounts.check_name_availability({"name": name, "type": RTYPE})
    assert free.name_available is True
    invalid = accounts.check_name_availability({"name": "Not_Valid", "type": RTYPE})
    assert invalid.name_available is False
    assert invalid.reason == "AccountNameInvalid"
    assert "between 3 and 24 characters" in invalid.message
    accounts.begin_create(group, name, _params()).result()
    taken = accounts.check_name_availability({"name": name, "type": RTYPE})
    assert (taken.name_available, taken.reason) == (False, "AlreadyExists")
    assert name in taken.message


def test_create_is_a_location_lro_then_get_keys_delete(
    storage_mgmt: StorageManagementClient, group: str
) -> None:
    accounts = storage_mgmt.storage_accounts
    name = unique("st")
    poller = accounts.begin_create(group, name, _params(tags={"app": "fn"}))
    initial = poller.polling_method()._initial_response.http_response  # type: ignore[attr-defined]
    assert initial.status_code == 202
    assert "/providers/microsoft.storage/locations/westeurope/asyncoperations/" in (
        initial.headers["Location"].lower()
    )
    account = poller.result()
    assert account.name == name
    assert account.provisioning_state == "Succeeded"
    assert account.primary_endpoints.blob == f"https://{name}.blob.core.windows.net/"
    assert account.sku.name == "Standard_LRS" and account.kind == "StorageV2"
    assert account.tags == {"app": "fn"}
    assert accounts.get_properties(group, name).id == account.id
    assert [a.name for a in accounts.list_by_resource_group(group)] == [name]
    keys = accounts.list_keys(group, name).keys_property
    assert [k.key_name for k in keys] == ["key1", "key2"]
    assert keys[0].value and keys[0].value != keys[1].value
    regenerated = accounts.regenerate_key(
        group, name, sm.StorageAccountRegenerateKeyParameters(key_name="key1")
    ).keys_property
    assert regenerated[0].value != keys[0].value and regenerated[1].value == keys[1].value
    patched = accounts.update(
        group,
        name,
        sm.StorageAccountUpdateParameters(
            tags={"app": "fn", "tier": "cool"},
            properties=sm.StorageAccountPropertiesUpdateParameters(access_tier="Cool"),
        ),
    )
    assert patched.tags == {"app": "fn", "tier": "cool"}
    assert patched.access_tier == "Cool"
    accounts.delete(group, name)
    with pytest.raises(ResourceNotFoundError):
        accounts.get_properties(group, name)


def test_create_errors(storage_mgmt: StorageManagementClient, group: str, resource_client) -> None:  # type: ignore[no-untyped-def]
    accounts = storage_mgmt.storage_accounts
    with pytest.raises(HttpResponseError) as info:
        accounts.begin_create(group, "Bad_Name", _params())
    assert info.value.error.code == "AccountNameInvalid"
    name = unique("st")
    accounts.begin_create(group, name, _params()).result()
    other = unique("rg-other-")
    resource_client.resource_groups.create_or_update(other, {"location": "westeurope"})
    try:
        with pytest.raises(ResourceExistsError) as taken:
            accounts.begin_create(other, name, _params())
        assert taken.value.error.code == "StorageAccountAlreadyTaken"
    finally:
        resource_client.resource_groups.begin_delete(other).result()
