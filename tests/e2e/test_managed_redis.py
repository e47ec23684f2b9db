"""Azure Managed Redis end to end through the CLI on a real sandbox (latency fast).

The same flow as the classic cache's (deploy, test MISS then HIT, cleanup leaves
nothing), plus the blocked tenant: Azure refuses an Azure Cache for Redis, the
run says why and names the switch, and the switched spec deploys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.redisenterprise import RedisEnterpriseManagementClient
from azure.mgmt.web import WebSiteManagementClient

from app.sandbox import Sandbox
from app.sandbox.processes import processes_mentioning
from app.sandbox.sample_site import sdk_kwargs
from app.services.cache_migration import switch_to_managed_redis
from app.services.resources.redis_cache import BLOCKED_CODE, BLOCKED_MESSAGE
from app.spec import load_spec, save_spec
from tests.e2e.test_cli import Cli, events, finished, make_spec, resource_client

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]

MANAGED = {"kind": "azure-managed-redis", "tier": "Balanced", "size": "B0", "redis_version": None,
           "auth": "access-keys"}


def _client(cls: Any, sandbox: Sandbox) -> Any:
    return cls(**sdk_kwargs(sandbox))


def test_managed_redis_deploy_test_cleanup_leaves_nothing(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    sandbox = sandbox_factory()
    spec, data = make_spec(tmp_path, **MANAGED)
    group, cache, app = (data["resource_group"]["name"], data["cache"]["name"],
                         data["function_app"]["name"])

    # Without monitoring: no Application Insights, no workspace, no telemetry settings.
    deployed = cli("deploy", str(spec), "--json", "--no-monitoring")
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
    end = finished(deployed.stdout)
    assert end["succeeded"] and not end["failed"]
    assert set(end["done"]) == {
        "resource-group", "cache-cluster", "cache", "storage", "plan", "registry", "image",
        "function-app", "registry-pull", "storage-roles", "app-settings", "endpoint",
    }

    # The function's settings point at the database's real port, read from ARM.
    amr = _client(RedisEnterpriseManagementClient, sandbox)
    cluster = amr.redis_enterprise.get(group, cache)
    database = amr.databases.get(group, cache, "default")
    assert cluster.sku.name == "Balanced_B0" and cluster.minimum_tls_version == "1.2"
    assert database.client_protocol == "Encrypted"
    assert database.access_keys_authentication == "Enabled"
    settings = _client(WebSiteManagementClient, sandbox).web_apps.list_application_settings(
        group, app
    ).properties
    assert settings["REDIS_HOST"] == cluster.host_name
    assert settings["REDIS_PORT"] == str(database.port) != "10000"
    keys = amr.databases.list_keys(group, cache, "default")
    assert settings["REDIS_KEY"] == keys.primary_key
    assert not any(name.startswith("APPLICATIONINSIGHTS_") for name in settings)

    tested = cli("test", str(spec), "--json", "--repeat", "2")
    assert tested.returncode == 0, tested.stderr
    calls = events(tested.stdout)
    assert [c["status"] for c in calls] == [200, 200]
    assert [c["cache"] for c in calls] == ["MISS", "HIT"]
    assert calls[0]["body"] == calls[1]["body"] and "predictions" in calls[0]["body"]
    assert "Application Insights" not in tested.stderr

    # `status` judges the deployment as it was made: complete without monitoring.
    status = cli("status", str(spec), "--json", "--no-monitoring")
    assert status.returncode == 0, status.stderr
    rows = {row["kind"]: row for row in events(status.stdout)}
    assert "Application Insights" not in rows and all(r["exists"] for r in rows.values())
    without = {row["kind"]: row for row in events(cli("status", str(spec), "--json").stdout)}
    assert not without["Application Insights"]["exists"]

    client = resource_client(sandbox)
    listed = list(client.resources.list_by_resource_group(group, expand="tags"))
    assert "Microsoft.Cache/redisEnterprise" in {item.type for item in listed}
    assert len(listed) == 5
    for item in listed:
        assert (item.tags or {}).get("created-by") == "mlcache-deploy", item.name
    assert processes_mentioning(f"{cache.lower()}-default") != []

    cleaned = cli("cleanup", str(spec), "--confirm", group)
    assert cleaned.returncode == 0, cleaned.stderr
    assert not client.resource_groups.check_existence(group)
    assert list(amr.redis_enterprise.list()) == []
    assert processes_mentioning(str(sandbox.state_dir)) == []

    # Neither key reached the terminal or a file of ours (deployment logs live under
    # the data dir); the function's app settings hold it, as Azure's do.
    written = "".join(r.stdout + r.stderr for r in (deployed, tested, cleaned))
    written += "".join(
        p.read_text(errors="replace") for p in (tmp_path / "data").rglob("*") if p.is_file()
    )
    assert list((tmp_path / "data").rglob("*.jsonl")), "the deployment log was not written"
    for secret in (keys.primary_key, keys.secondary_key):
        assert secret and secret not in written


def test_blocked_tenant_explains_and_the_suggested_switch_deploys(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    spec, data = make_spec(tmp_path, tier="Standard", size="C0")
    cache = data["cache"]["name"]
    # Azure's answer to a tenant that may no longer create Azure Cache for Redis.
    sandbox_factory({"rules": [{
        "method": "PUT", "path": f"/providers/Microsoft.Cache/redis/{cache}$",
        "status": 400, "code": BLOCKED_CODE, "message": BLOCKED_MESSAGE,
    }]})

    first = cli("deploy", str(spec), "--json")
    assert first.returncode == 1
    end = finished(first.stdout)
    assert end["failed"] == ["cache"]
    failure = next(e for e in events(first.stdout) if e["event"] == "step_failed")
    assert failure["code"] == "BadRequest"
    assert "blocked for this tenant" in failure["message"]
    assert "Azure Cache for Redis is retiring" in failure["message"]
    assert "Standard C0 maps to Balanced_B0" in failure["hint"]
    assert 'cache.kind = "azure-managed-redis"' in failure["hint"]
    assert 'cache.size = "B0"' in failure["hint"]

    # A person reading the terminal gets the same sentence and the exact change.
    plain = cli("deploy", str(spec))
    assert plain.returncode == 1
    assert "blocked for this tenant" in plain.stdout
    assert 'cache.tier = "Balanced", cache.size = "B0"' in plain.stdout

    save_spec(switch_to_managed_redis(load_spec(spec)), spec)
    switched = cli("deploy", str(spec), "--json")
    assert switched.returncode == 0, switched.stdout[-3000:] + switched.stderr[-3000:]
    done = {e["step"]: e for e in events(switched.stdout) if e["event"] == "step_succeeded"}
    assert not done["cache-cluster"]["adopted"] and not done["cache"]["adopted"]
    assert done["function-app"]["adopted"]
    tested = cli("test", str(spec), "--json")
    assert tested.returncode == 0 and events(tested.stdout)[0]["cache"] == "MISS"
