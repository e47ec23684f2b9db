"""Keyless deployments end to end through the CLI on a real sandbox (latency fast).

The function app reaches its registry, storage and cache with its managed identity:
no app setting holds a value that listKeys/listCredentials gives out, the registry's
admin user is off, and the scoring route works (MISS then HIT). Removing the cache's
access-policy assignment takes the cache away from the function (BYPASS, with the
reason); putting it back brings HIT back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerregistry import ContainerRegistryManagementClient
from azure.mgmt.redis import RedisManagementClient
from azure.mgmt.redis import models as redis_models
from azure.mgmt.redisenterprise import RedisEnterpriseManagementClient
from azure.mgmt.storage import StorageManagementClient
from azure.mgmt.web import WebSiteManagementClient

from app.sandbox import Sandbox
from app.sandbox.sample_site import sdk_kwargs
from app.services.resources.cache_access import assignment_name
from tests.e2e.test_cli import Cli, events, finished, make_spec

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]

KEYLESS = {"kind": "azure-cache-for-redis", "auth": "entra"}
MANAGED = {"kind": "azure-managed-redis", "tier": "Balanced", "size": "B0",
           "redis_version": None, "auth": "entra"}


def _client(cls: Any, sandbox: Sandbox) -> Any:
    return cls(**sdk_kwargs(sandbox))


def _handed_out_secrets(sandbox: Sandbox, data: dict[str, Any]) -> set[str]:
    """Every key and password the group's resources hand out to whoever may ask."""
    group = data["resource_group"]["name"]
    found: set[str] = set()
    storage = _client(StorageManagementClient, sandbox)
    keys = storage.storage_accounts.list_keys(group, data["function_app"]["storage_account"])
    found |= {k.value for k in keys.keys_property or [] if k.value}
    registry = _client(ContainerRegistryManagementClient, sandbox)
    try:
        creds = registry.registries.list_credentials(group, data["image"]["registry"])
        found |= {p.value for p in creds.passwords or [] if p.value}
    except HttpResponseError:
        pass  # the admin user is off: the registry hands out no password
    cache = data["cache"]
    if cache.get("kind") == "azure-managed-redis":
        db_keys = _client(RedisEnterpriseManagementClient, sandbox).databases.list_keys(
            group, cache["name"], "default")
    else:
        db_keys = _client(RedisManagementClient, sandbox).redis.list_keys(group, cache["name"])
    found |= {k for k in (db_keys.primary_key, db_keys.secondary_key) if k}
    return found


def _call_endpoint(cli: Cli, spec: Path, repeat: int = 1) -> list[dict[str, Any]]:
    tested = cli("test", str(spec), "--json", "--repeat", str(repeat))
    assert tested.returncode == 0, tested.stdout[-2000:] + tested.stderr[-2000:]
    return events(tested.stdout)


@pytest.mark.parametrize("cache", [KEYLESS, MANAGED], ids=["azure-cache-for-redis", "managed"])
def test_a_keyless_deploy_leaves_no_secret_in_the_function(
    sandbox_factory: Any, cli: Cli, tmp_path: Path, cache: dict[str, Any]
) -> None:
    sandbox = sandbox_factory()
    spec, data = make_spec(tmp_path, **cache)
    group, app = data["resource_group"]["name"], data["function_app"]["name"]

    deployed = cli("deploy", str(spec), "--json")
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
    end = finished(deployed.stdout)
    assert {"registry-pull", "storage-roles", "cache-access"} <= set(end["done"])

    web = _client(WebSiteManagementClient, sandbox)
    settings = web.web_apps.list_application_settings(group, app).properties
    secrets = _handed_out_secrets(sandbox, data)
    assert secrets, "the resources hand out keys to compare against"
    assert not secrets & set(settings.values())
    assert "REDIS_KEY" not in settings and "AzureWebJobsStorage" not in settings
    assert settings["AzureWebJobsStorage__accountName"] == data["function_app"]["storage_account"]
    assert settings["REDIS_AUTH"] == "entra"
    registry = _client(ContainerRegistryManagementClient, sandbox).registries.get(
        group, data["image"]["registry"])
    assert registry.admin_user_enabled is False
    site = web.web_apps.get(group, app)
    assert site.identity is not None and site.identity.principal_id
    assert web.web_apps.get_configuration(group, app).acr_use_managed_identity_creds is True

    calls = _call_endpoint(cli, spec, repeat=2)
    assert [c["cache"] for c in calls] == ["MISS", "HIT"]


def _health(sandbox: Sandbox, host: str) -> dict[str, Any]:
    import ssl

    context = ssl.create_default_context(cafile=str(sandbox.ca_cert))
    with urllib.request.urlopen(f"https://{host}/api/health", context=context,
                                timeout=30) as answer:
        body: dict[str, Any] = json.loads(answer.read())
    return body


def test_removing_the_cache_assignment_takes_the_cache_away_and_restoring_brings_it_back(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    sandbox = sandbox_factory()
    spec, data = make_spec(tmp_path, **KEYLESS)
    group, cache, app = (data["resource_group"]["name"], data["cache"]["name"],
                         data["function_app"]["name"])
    deployed = cli("deploy", str(spec), "--json")
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
    assert [c["cache"] for c in _call_endpoint(cli, spec, repeat=2)] == ["MISS", "HIT"]

    redis = _client(RedisManagementClient, sandbox)
    principal = _client(WebSiteManagementClient, sandbox).web_apps.get(
        group, app).identity.principal_id
    name = assignment_name(principal)
    held = redis.access_policy_assignment.get(group, cache, name)
    assert held.object_id == principal
    redis.access_policy_assignment.begin_delete(group, cache, name).result()

    bypassed = _call_endpoint(cli, spec)
    assert bypassed[0]["cache"] == "BYPASS"
    assert "authentication failed" in bypassed[0]["cache_detail"]

    redis.access_policy_assignment.begin_create_update(
        group, cache, name, redis_models.RedisCacheAccessPolicyAssignment(
            object_id=principal, object_id_alias=app, access_policy_name=held.access_policy_name),
    ).result()
    # The function's breaker lets the cache in again within a second of it answering;
    # the health route asks the cache itself, so wait for it to say so.
    host = _client(WebSiteManagementClient, sandbox).web_apps.get(group, app).default_host_name
    deadline = time.monotonic() + 30
    while _health(sandbox, host).get("cache") != "reachable":
        assert time.monotonic() < deadline, "the cache stayed unreachable after restoring"
        time.sleep(0.2)
    assert _call_endpoint(cli, spec)[0]["cache"] == "HIT"


def test_a_spec_that_names_only_the_cache_deploys_keyless_managed_redis(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    sandbox = sandbox_factory()
    spec, data = make_spec(tmp_path)
    data["cache"] = {"name": data["cache"]["name"]}
    spec.write_text(json.dumps(data))
    validated = subprocess.run([sys.executable, "-m", "app", "validate", str(spec)],
                               capture_output=True, text=True, timeout=60, env=cli.env)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "Azure Managed Redis" in validated.stderr and "managed identity" in validated.stderr
    deployed = cli("deploy", str(spec), "--json")
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
    assert {"cache-cluster", "cache-access"} <= set(finished(deployed.stdout)["done"])
    # Keyless, the function app was made with the cache's settings: no key to wait for.
    assert "written now, so the function starts while the cache is created" in deployed.stdout
    cluster = _client(RedisEnterpriseManagementClient, sandbox).redis_enterprise.get(
        data["resource_group"]["name"], data["cache"]["name"])
    assert cluster.sku.name == "Balanced_B0"
    assert [c["cache"] for c in _call_endpoint(cli, spec, repeat=2)] == ["MISS", "HIT"]
