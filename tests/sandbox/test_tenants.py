"""Two tenants, two subscriptions: what connection.json says and what ARM answers per tenant."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.mgmt.resource.resources import ResourceManagementClient

from app.sandbox import Sandbox, connect
from app.sandbox.api import CONNECTION_FILE
from app.sandbox.store import Store
from tests.sandbox.conftest import client_kwargs

pytestmark = pytest.mark.sandbox


def test_connection_names_the_authority_tenants_and_user(sandbox: Sandbox) -> None:
    path = sandbox.state_dir / CONNECTION_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["authority"] == sandbox.endpoint
    assert data["tenant_id"] == sandbox.tenant_id
    home, guest = sorted(data["tenants"], key=lambda t: not t["home"])
    assert home["subscriptions"] == [sandbox.subscription_id]
    assert home["tenant_id"] == sandbox.tenant_id and guest["home"] is False
    assert len(guest["subscriptions"]) == 1
    assert guest["subscriptions"] != home["subscriptions"]
    assert data["user"]["username"] == sandbox.username == "sandbox.user@sandbox.onmicrosoft.com"
    attached = connect(sandbox.state_dir)
    assert attached == sandbox.connection


def test_the_static_token_acts_in_the_home_tenant_only(sandbox: Sandbox) -> None:
    guest = sandbox.guest_tenant
    assert guest is not None
    guest_sub = guest.subscriptions[0]
    rm = ResourceManagementClient(sandbox.credential(), guest_sub, **client_kwargs(sandbox))
    with pytest.raises(ClientAuthenticationError) as info:
        rm.resource_groups.check_existence("anything")
    assert info.value.status_code == 401
    answer = requests.get(
        f"{sandbox.endpoint}/subscriptions/{guest.subscriptions[0]}/resourcegroups"
        "?api-version=2024-11-01",
        headers={"Authorization": f"Bearer {sandbox.token}"},
        verify=str(sandbox.ca_cert),
        timeout=10,
    )
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "InvalidAuthenticationTokenTenant"
    assert f'authorization_uri="{sandbox.authority}/{guest.tenant_id}"' in answer.headers[
        "WWW-Authenticate"
    ]


def test_an_older_single_tenant_store_is_upgraded_in_place(tmp_path: Path) -> None:
    old = {
        "subscription_id": "00000000-0000-0000-0000-0000000000aa",
        "tenant_id": "00000000-0000-0000-0000-0000000000bb",
        "groups": {"rg-old": {"body": {"name": "rg-old"}}},
        "resources": {},
        "operations": {},
    }
    (tmp_path / "store.json").write_text(json.dumps(old))
    store = Store(tmp_path)
    assert store.group(old["subscription_id"], "RG-OLD") == {"body": {"name": "rg-old"}}
    home, guest = store.tenants
    assert home["tenantId"] == old["tenant_id"] and not home["guest"]
    assert home["subscriptions"][0]["subscriptionId"] == old["subscription_id"]
    assert guest["guest"] and guest["subscriptions"][0]["subscriptionId"] != old["subscription_id"]
    # The upgrade was written: the partner tenant keeps its ids from now on.
    assert Store(tmp_path).tenants == store.tenants
