"""Fault injection: throttling, 5xx, refused requests, dropped connections, failed provisioning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.mgmt.redis import RedisManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.storage import StorageManagementClient

from app.errors import BadInput
from app.sandbox import Sandbox
from app.sandbox.faults import FaultFileError, load_faults, parse_rules
from app.sandbox.processes import processes_mentioning
from tests.sandbox.conftest import mgmt, run_cli, tls_client

pytestmark = pytest.mark.sandbox

BASIC_C0 = {"location": "westeurope", "sku": {"name": "Basic", "family": "C", "capacity": 0}}


def _clients(sb: Sandbox) -> tuple[ResourceManagementClient, RedisManagementClient]:
    return (
        mgmt(ResourceManagementClient, sb),
        mgmt(RedisManagementClient, sb),
    )


def _fired(sb: Sandbox) -> list[int]:
    return [rule.fired for rule in sb.context.faults.rules]


def test_throttling_is_retried_by_the_sdk_after_retry_after(state_dir: Path) -> None:
    faults = {
        "rules": [
            {
                "method": "PUT",
                "path": "/resourcegroups/rg-throttled$",
                "status": 429,
                "retry_after": 1,
                "count": 1,
            },
        ]
    }
    with Sandbox.start(state_dir, faults=faults) as sb:
        resources, _ = _clients(sb)
        seen: list[tuple[int, str | None]] = []

        def hook(response: Any) -> None:
            seen.append(
                (
                    response.http_response.status_code,
                    response.http_response.headers.get("Retry-After"),
                )
            )

        group = resources.resource_groups.create_or_update(
            "rg-throttled", {"location": "westeurope"}, raw_response_hook=hook
        )
        assert group.name == "rg-throttled"
        assert seen == [(429, "1"), (201, None)]
        assert _fired(sb) == [1]


def test_server_errors_are_retried_and_custom_refusals_surface(state_dir: Path) -> None:
    faults = {
        "rules": [
            {
                "method": "GET",
                "path": "/resourcegroups/rg-flaky$",
                "status": 503,
                "count": 1,
                "retry_after": 0,
            },
            {
                "method": "PUT",
                "path": "/redis/refused",
                "status": 400,
                "code": "QuotaExceeded",
                "message": "Cache quota exceeded.",
            },
        ]
    }
    with Sandbox.start(state_dir, faults=faults) as sb:
        resources, caches = _clients(sb)
        resources.resource_groups.create_or_update("rg-flaky", {"location": "westeurope"})
        assert resources.resource_groups.get("rg-flaky").name == "rg-flaky"
        with pytest.raises(HttpResponseError) as info:
            caches.redis.begin_create("rg-flaky", "refused1", BASIC_C0)
        assert info.value.status_code == 400
        assert info.value.error.code == "QuotaExceeded"
        assert info.value.error.message == "Cache quota exceeded."
        assert _fired(sb) == [1, 1]


def test_dropped_connection_is_survived_by_sdk_retry(state_dir: Path) -> None:
    faults = {
        "rules": [{"method": "GET", "path": "/resourcegroups/rg-drop$", "drop": True, "count": 2}]
    }
    with Sandbox.start(state_dir, faults=faults) as sb:
        resources, _ = _clients(sb)
        resources.resource_groups.create_or_update("rg-drop", {"location": "westeurope"})
        url = f"{sb.endpoint}/subscriptions/{sb.subscription_id}/resourcegroups/rg-drop"
        # The first drop, seen raw: the connection closes with no answer at all.
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(
                url,
                params={"api-version": "2024-11-01"},
                headers={"Authorization": f"Bearer {sb.token}"},
                verify=str(sb.ca_cert),
                timeout=10,
            )
        # The second drop hits the SDK, whose retry policy reconnects.
        assert resources.resource_groups.get("rg-drop").location == "westeurope"
        assert _fired(sb) == [2]


def test_failed_provisioning_surfaces_the_arm_code(state_dir: Path) -> None:
    faults = {
        "rules": [
            {
                "method": "PUT",
                "path": "/redis/broken-",
                "fail_provisioning": True,
                "code": "ProvisioningDisabled",
                "message": "Creating a cache is not allowed for this subscription.",
            },
        ]
    }
    with Sandbox.start(state_dir, faults=faults) as sb:
        resources, caches = _clients(sb)
        resources.resource_groups.create_or_update("rg-fail", {"location": "westeurope"})
        poller = caches.redis.begin_create("rg-fail", "broken-cache", BASIC_C0)
        with pytest.raises(HttpResponseError) as info:
            poller.result()
        assert info.value.error is not None
        assert info.value.error.code == "ProvisioningDisabled"
        assert "not allowed" in info.value.error.message
        assert caches.redis.get("rg-fail", "broken-cache").provisioning_state == "Failed"
        assert processes_mentioning(str(state_dir)) == []
        # A cache that matches no rule still provisions.
        good = caches.redis.begin_create("rg-fail", "good-cache", BASIC_C0).result()
        assert good.provisioning_state == "Succeeded"


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"rules": [{"path": "x", "status": 500, "stauts": 1}]}, "unknown key(s) stauts"),
        ({"rules": [{"path": "x"}]}, "exactly one of"),
        ({"rules": [{"path": "x", "status": 200}]}, "HTTP error status"),
        ({"rules": [{"path": "(", "drop": True}]}, "not a valid regular expression"),
        ({"rules": [{"path": "x", "drop": True, "probability": 2}]}, "between 0 and 1"),
        ({"rulez": []}, "unknown key(s) rulez"),
    ],
)
def test_bad_fault_documents_are_refused(document: dict[str, Any], fragment: str) -> None:
    with pytest.raises(FaultFileError) as info:
        parse_rules(document)
    assert fragment in str(info.value)


def test_toml_faults_file_and_bad_input(tmp_path: Path, state_dir: Path) -> None:
    good = tmp_path / "faults.toml"
    good.write_text(
        '[[rules]]\nmethod = "PUT"\npath = "/redis/"\nstatus = 429\ncount = 2\n', encoding="utf-8"
    )
    plan = load_faults(good)
    assert plan.rules[0].status == 429 and plan.rules[0].retry_after == 1.0
    assert plan.rules[0].count == 2
    bad = tmp_path / "faults.json"
    bad.write_text(
        json.dumps({"rules": [{"path": "x", "drop": True, "typo": 1}]}), encoding="utf-8"
    )
    with pytest.raises(BadInput):
        Sandbox.start(state_dir, faults=bad)


def test_serve_exits_2_on_unknown_fault_keys(tmp_path: Path, state_dir: Path) -> None:
    bad = tmp_path / "faults.json"
    bad.write_text(
        json.dumps({"rules": [{"path": "x", "drop": True, "tpyo": 1}]}), encoding="utf-8"
    )
    result = run_cli("sandbox", "serve", "--state-dir", str(state_dir), "--faults", str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "unknown key(s) tpyo" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_failed_provisioning_can_be_retried_with_the_same_put(state_dir: Path) -> None:
    """ARM re-provisions a resource whose creation failed when the same PUT comes again."""
    faults = {
        "rules": [
            {"method": "PUT", "path": "/redis/retry-me$", "fail_provisioning": True, "count": 1},
            {
                "method": "PUT",
                "path": "/storageAccounts/retryme1$",
                "fail_provisioning": True,
                "count": 1,
            },
        ]
    }
    with Sandbox.start(state_dir, faults=faults) as sb:
        resources, caches = _clients(sb)
        storage = mgmt(StorageManagementClient, sb)
        resources.resource_groups.create_or_update("rg-retry", {"location": "westeurope"})
        with pytest.raises(HttpResponseError) as info:
            caches.redis.begin_create("rg-retry", "retry-me", BASIC_C0).result()
        assert info.value.error.code == "ProvisioningFailed"
        account = {"sku": {"name": "Standard_LRS"}, "kind": "StorageV2", "location": "westeurope"}
        with pytest.raises(HttpResponseError):
            storage.storage_accounts.begin_create("rg-retry", "retryme1", account).result()
        assert (
            storage.storage_accounts.get_properties("rg-retry", "retryme1").provisioning_state
            == "Failed"
        )

        cache = caches.redis.begin_create("rg-retry", "retry-me", BASIC_C0).result()
        assert cache.provisioning_state == "Succeeded"
        key = caches.redis.list_keys("rg-retry", "retry-me").primary_key
        with tls_client(cache.host_name, cache.ssl_port, sb.ca_cert, key) as conn:
            assert conn.ping()
        again = storage.storage_accounts.begin_create("rg-retry", "retryme1", account).result()
        assert again.provisioning_state == "Succeeded"
