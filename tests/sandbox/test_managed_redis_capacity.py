"""Azure Managed Redis refused for capacity: accepted, host name assigned, then Failed.

As reported from live runs (langchain-ai/terraform#258: `InsufficientCapacity` for
Balanced_B1 in eastus2; the failed cluster sits in the group's list like a healthy one,
host name and all, and only its own state says Failed), a `fail_provisioning` rule
with Azure's code makes the create end that way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.mgmt.redisenterprise import RedisEnterpriseManagementClient
from azure.mgmt.redisenterprise.models import Cluster, Sku
from azure.mgmt.resource.resources import ResourceManagementClient

from app.sandbox import Sandbox
from tests.sandbox.conftest import mgmt

pytestmark = pytest.mark.sandbox

CAPACITY = {
    "InsufficientCapacity": (
        "There is not enough capacity in the region to create the Azure Managed Redis "
        "instance. Try another region or SKU."
    ),
    "AllocationFailed": "The allocation of the Azure Managed Redis instance failed.",
}


@pytest.mark.parametrize("code", sorted(CAPACITY))
def test_capacity_refusal_leaves_a_failed_cluster_with_a_host_name(
    tmp_path: Path, code: str
) -> None:
    faults = {
        "rules": [
            {
                "method": "PUT",
                "path": "/providers/Microsoft.Cache/redisEnterprise/amr-full$",
                "fail_provisioning": True,
                "code": code,
                "message": CAPACITY[code],
            }
        ]
    }
    with Sandbox.start(tmp_path / "state", latency="fast", faults=faults) as sb:
        amr = mgmt(RedisEnterpriseManagementClient, sb)
        rm = mgmt(ResourceManagementClient, sb)
        rm.resource_groups.create_or_update("rg-full", {"location": "westeurope"})
        started: list[Any] = []

        def hook(response: Any) -> None:
            if response.http_response.request.method == "PUT":
                started.append(response.http_response)

        cluster = Cluster(
            location="westeurope",
            sku=Sku(name="Balanced_B1"),
            minimum_tls_version="1.2",
            public_network_access="Enabled",
        )
        poller = amr.redis_enterprise.begin_create(
            "rg-full", "amr-full", cluster, raw_response_hook=hook
        )
        with pytest.raises(HttpResponseError) as caught:
            poller.result()
        assert caught.value.error is not None and caught.value.error.code == code
        assert CAPACITY[code] in str(caught.value)

        # The PUT was accepted, with the host name already assigned.
        [put] = started
        assert put.status_code == 201
        assert put.json()["properties"]["hostName"]
        assert put.json()["properties"]["provisioningState"] == "Creating"

        # In the group's list like any other cluster; only its own state says Failed.
        [listed] = amr.redis_enterprise.list_by_resource_group("rg-full")
        assert listed.name == "amr-full" and listed.host_name
        assert listed.provisioning_state == "Failed"
        got = amr.redis_enterprise.get("rg-full", "amr-full")
        assert got.provisioning_state == "Failed" and got.resource_state == "CreateFailed"

        # The operation's status document carries the error.
        status = requests.get(
            put.headers["Azure-AsyncOperation"],
            headers={"Authorization": f"Bearer {sb.token}"},
            verify=str(sb.ca_cert),
            timeout=10,
        ).json()
        assert "/operationsStatus/" in status["id"]
        assert status["status"] == "Failed"
        assert status["error"] == {"code": code, "message": CAPACITY[code]}
        amr.close()
        rm.close()
