"""The headless CLI against a real sandbox (latency fast): deploy, test, cleanup, resume, faults.

Each test starts its own sandbox in a tmp state dir, runs `python -m app ...` as a
user would, and checks what exists afterwards with the real SDK clients.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from app.sandbox import Sandbox
from app.sandbox.processes import processes_mentioning
from app.services.resources.monitoring import GONE_CHECK_APIS
from tests.e2e.insights_checks import (
    SMART_DETECTION_TYPES,
    insights_wired,
    traced_cache_outcomes,
)

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_MODEL = ROOT / "resources" / "sample-model"


def make_spec(folder: Path, **cache: Any) -> tuple[Path, dict[str, Any]]:
    """A spec with names unique to this test, building the sample model."""
    tag = uuid.uuid4().hex[:8]
    data: dict[str, Any] = {
        "version": 1,
        "target": "sandbox",
        "location": "westeurope",
        "resource_group": {"name": f"rg-e2e-{tag}", "create": True},
        # The classic cache with its key unless a test asks otherwise; the keyless
        # defaults have their own tests (test_keyless.py).
        "cache": {"kind": "azure-cache-for-redis", "name": f"cache-e2e-{tag}", "tier": "Basic",
                  "size": "C0", "auth": "access-keys", **cache},
        "tags": {"suite": "e2e"},
        "image": {
            "build_from": str(SAMPLE_MODEL),
            "registry": f"acre2e{tag}",
            "repository": "digits-scoring",
            "tag": "v1",
        },
        "function_app": {
            "name": f"func-e2e-{tag}",
            "plan_name": f"plan-e2e-{tag}",
            "plan_sku": "B1",
            "storage_account": f"ste2e{tag}",
        },
    }
    path = folder / "spec.json"
    path.write_text(json.dumps(data, indent=2))
    return path, data


class Cli:
    """Runs the CLI in a child process with its data dir under tmp."""

    def __init__(self, state: Path, data_home: Path) -> None:
        self.state = state
        self.env = {**os.environ, "XDG_DATA_HOME": str(data_home)}

    def __call__(self, *argv: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app", *argv, "--sandbox-state", str(self.state)],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def finished(stdout: str) -> dict[str, Any]:
    last = events(stdout)[-1]
    assert last["event"] == "run_finished"
    return last


def resource_client(sandbox: Sandbox) -> Any:
    from azure.mgmt.resource.resources import ResourceManagementClient

    return ResourceManagementClient(
        sandbox.credential(),
        sandbox.subscription_id,
        base_url=sandbox.endpoint,
        credential_scopes=[sandbox.credential_scope],
        connection_verify=str(sandbox.ca_cert),
    )


def tail_log(sandbox: Sandbox, spec_path: Path, since: int = 0) -> tuple[list[str], int]:
    from app.connect import sandbox_target
    from app.services.clients import ClientFactory
    from app.services.logstream import tail
    from app.spec import load_spec

    target = sandbox_target(sandbox.state_dir, start=False)
    return tail(load_spec(spec_path), target, ClientFactory(target), since)


def test_deploy_test_miss_hit_redeploy_then_cleanup_leaves_nothing(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    import shutil

    sandbox = sandbox_factory()
    model = tmp_path / "model"
    shutil.copytree(SAMPLE_MODEL, model)
    spec, data = make_spec(tmp_path)
    data["image"]["build_from"] = str(model)
    spec.write_text(json.dumps(data))
    group = data["resource_group"]["name"]

    deployed = cli("deploy", str(spec), "--json")
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
    end = finished(deployed.stdout)
    assert end["succeeded"] and not end["failed"]
    assert set(end["done"]) == {
        "resource-group", "cache", "storage", "plan", "registry", "image",
        "function-app", "registry-pull", "storage-roles", "app-settings", "endpoint",
        "workspace", "insights", "insights-publisher",
    }
    kinds = {e["event"] for e in events(deployed.stdout)}
    assert {"step_started", "step_progress", "step_succeeded", "run_finished"} <= kinds

    tested = cli("test", str(spec), "--json", "--repeat", "2")
    assert tested.returncode == 0, tested.stderr
    calls = events(tested.stdout)
    assert len(calls) == 2
    assert [c["status"] for c in calls] == [200, 200]
    assert [c["cache"] for c in calls] == ["MISS", "HIT"]
    assert calls[0]["body"] == calls[1]["body"] and "predictions" in calls[0]["body"]
    assert all(c["latency_ms"] > 0 for c in calls)
    component = insights_wired(sandbox, data)
    # The distro in the function sent each call's trace, keyless, with the cache
    # outcome and model version as customDimensions.
    traces = traced_cache_outcomes(sandbox, component.id, ["MISS", "HIT"])
    assert [t["properties"]["cache"] for t in traces] == ["MISS", "HIT"], traces
    versions = {t["properties"]["model_version"] for t in traces}
    assert len(versions) == 1 and "" not in versions, traces
    assert all(t["message"].startswith("score cache=") for t in traces), traces
    # `test` names the component; the sandbox has no portal, so its id stands for the links.
    assert f"Application Insights: {component.name} ({component.id})" in tested.stderr

    status = cli("status", str(spec), "--json")
    assert status.returncode == 0, status.stderr
    rows = {row["kind"]: row for row in events(status.stdout)}
    # Eight resources and the identity's role assignments (one row per kind).
    assert all(row["exists"] for row in rows.values()) and len(rows) == 9
    assert rows["Application Insights"]["state"] == "Succeeded"
    assert "role assignment" in rows
    assert rows["Azure Cache for Redis"]["state"] == "Succeeded"

    # The function's log tells of the calls (what the GUI's log tail shows).
    lines, offset = tail_log(sandbox, spec)
    assert offset > 0 and any("/api/score" in line for line in lines)
    # ... and of what the cache did, the trace the host sends to Application Insights.
    assert any("score cache=MISS" in line for line in lines), lines[-20:]
    assert any("score cache=HIT" in line for line in lines), lines[-20:]
    assert tail_log(sandbox, spec, offset)[0] == []

    # Every resource carries the spec's tags and created-by.
    client = resource_client(sandbox)
    listed = list(client.resources.list_by_resource_group(group, expand="tags"))
    # Azure adds Application Insights' smart detection (its action group and alert rule)
    # unasked and untagged: cleanup's gone-check covers them all the same.
    smart = [i for i in listed if (i.type or "").lower() in SMART_DETECTION_TYPES]
    assert sorted((i.type or "").lower() for i in smart) == sorted(SMART_DETECTION_TYPES)
    assert len(listed) == 9
    for item in (i for i in listed if i not in smart):
        assert (item.tags or {}).get("created-by") == "mlcache-deploy", item.name
        assert (item.tags or {}).get("suite") == "e2e", item.name

    # A retrained model under the same tag: a new digest, so the site is updated and
    # pulls it; its new model version misses the old cache entries.
    with (model / "score.py").open("a") as script:
        script.write("\n# retrained\n")
    redeployed = cli("deploy", str(spec), "--json")
    assert redeployed.returncode == 0, redeployed.stdout[-2000:]
    succeeded = {e["step"]: e for e in events(redeployed.stdout) if e["event"] == "step_succeeded"}
    assert not succeeded["function-app"]["adopted"]
    assert succeeded["storage"]["adopted"] and succeeded["cache"]["adopted"]
    after = events(cli("test", str(spec), "--json").stdout)
    assert after[0]["status"] == 200 and after[0]["cache"] == "MISS"

    refused = cli("cleanup", str(spec))
    assert refused.returncode == 2 and f"--confirm {group}" in refused.stderr
    assert client.resource_groups.check_existence(group)

    cleaned = cli("cleanup", str(spec), "--confirm", group)
    assert cleaned.returncode == 0, cleaned.stderr
    assert "is gone" in cleaned.stdout
    assert not client.resource_groups.check_existence(group)
    for item in listed:  # the component, its workspace and smart detection included
        assert not client.resources.check_existence_by_id(
            (item.id or "").lstrip("/"), api_version=GONE_CHECK_APIS.get(
                (item.type or "").lower(), "2024-11-01")), item.id
    assert processes_mentioning(str(sandbox.state_dir)) == []

    again = cli("cleanup", str(spec), "--confirm", group)
    assert again.returncode == 0 and "nothing to delete" in again.stdout


def test_resume_after_a_failed_provisioning(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    spec, data = make_spec(tmp_path)
    cache = data["cache"]["name"]
    sandbox_factory(
        {
            "rules": [
                {
                    "method": "PUT",
                    "path": f"/redis/{cache}$",
                    "count": 1,
                    "fail_provisioning": True,
                    "code": "ProvisioningDisabled",
                    "message": "The cache could not be provisioned.",
                }
            ]
        }
    )
    first = cli("deploy", str(spec), "--json")
    assert first.returncode == 1
    end = finished(first.stdout)
    assert end["failed"] == ["cache"]
    assert set(end["skipped"]) == {"app-settings", "endpoint"}
    assert set(end["done"]) == {"resource-group", "storage", "plan", "registry", "image",
                                "function-app", "storage-roles", "registry-pull",
                                "workspace", "insights", "insights-publisher"}
    failure = next(e for e in events(first.stdout) if e["event"] == "step_failed")
    assert failure["code"] == "ProvisioningDisabled"
    assert "could not be provisioned" in failure["message"] and failure["hint"]

    second = cli("deploy", str(spec), "--json")
    assert second.returncode == 0, second.stdout[-3000:]
    succeeded = {e["step"]: e for e in events(second.stdout) if e["event"] == "step_succeeded"}
    for step in ("resource-group", "storage", "plan", "registry", "function-app",
                 "storage-roles", "registry-pull", "workspace", "insights",
                 "insights-publisher"):
        assert succeeded[step]["adopted"], step
    assert not succeeded["cache"]["adopted"]
    assert finished(second.stdout)["succeeded"]


def test_throttling_5xx_and_a_dropped_poll_are_survived(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    spec, _ = make_spec(tmp_path)
    sandbox = sandbox_factory(
        {
            "rules": [
                {"method": "PUT", "path": "/resourcegroups/rg-e2e-", "count": 1,
                 "status": 429, "retry_after": 1},
                {"method": "PUT", "path": "/storageAccounts/", "count": 2,
                 "status": 429, "retry_after": 1},
                {"method": "PUT", "path": "/serverfarms/", "count": 2, "status": 503},
                {"method": "POST", "path": "/redis/[^/]+/listKeys", "count": 1, "status": 503},
                # Keyless: a role assignment's PUT, where keys would read listCredentials.
                {"method": "PUT", "path": "/Microsoft.Authorization/roleAssignments/",
                 "count": 1, "status": 500},
                {"method": "GET", "path": "/asyncOperations/", "count": 1, "drop": True},
            ]
        }
    )
    deployed = cli("deploy", str(spec), "--json")
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-2000:]
    assert finished(deployed.stdout)["succeeded"]
    fired = [rule.fired for rule in sandbox.context.faults.rules]
    assert fired == [1, 2, 2, 1, 1, 1]


def test_options_not_supported_yet_stop_before_anything_is_created(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    sandbox = sandbox_factory()
    spec, data = make_spec(tmp_path, public_network_access=False)
    result = cli("deploy", str(spec))
    assert result.returncode == 2
    assert "cache.public_network_access" in result.stderr and "Traceback" not in result.stderr
    assert not resource_client(sandbox).resource_groups.check_existence(
        data["resource_group"]["name"]
    )


def test_an_incompatible_existing_cache_is_refused_with_what_differs(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    from azure.mgmt.redis import RedisManagementClient, models

    sandbox = sandbox_factory()
    spec, data = make_spec(tmp_path)
    group, cache = data["resource_group"]["name"], data["cache"]["name"]
    resource_client(sandbox).resource_groups.create_or_update(
        group, {"location": "westeurope", "tags": {"created-by": "mlcache-deploy"}}
    )
    redis = RedisManagementClient(
        sandbox.credential(), sandbox.subscription_id, base_url=sandbox.endpoint,
        credential_scopes=[sandbox.credential_scope], connection_verify=str(sandbox.ca_cert),
        polling_interval=0.1,
    )
    redis.redis.begin_create(
        group, cache,
        models.RedisCreateParameters(
            location="westeurope", sku=models.Sku(name="Standard", family="C", capacity=2)
        ),
    ).result()
    result = cli("deploy", str(spec))
    assert result.returncode == 1
    assert f"a cache named {cache} already exists in {group} as Standard C2" in result.stdout
    assert "spec asks for Basic C0" in result.stdout


def test_cleanup_refuses_a_group_it_did_not_create_unless_forced(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    sandbox = sandbox_factory()
    spec, data = make_spec(tmp_path)
    group = data["resource_group"]["name"]
    client = resource_client(sandbox)
    client.resource_groups.create_or_update(group, {"location": "westeurope"})
    refused = cli("cleanup", str(spec), "--confirm", group)
    assert refused.returncode == 1
    assert "not created by mlcache-deploy" in refused.stderr and "--force" in refused.stderr
    assert client.resource_groups.check_existence(group)
    forced = cli("cleanup", str(spec), "--confirm", group, "--force")
    assert forced.returncode == 0, forced.stderr
    assert not client.resource_groups.check_existence(group)


def test_bad_spec_and_flags_are_exit_2_without_traceback(cli: Cli, tmp_path: Path) -> None:
    missing = cli("deploy", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    spec, _ = make_spec(tmp_path)
    repeat = cli("test", str(spec), "--repeat", "0")
    assert repeat.returncode == 2 and "--repeat" in repeat.stderr
    for result in (missing, repeat):
        assert "Traceback" not in result.stderr


def test_sign_in_flags(cli: Cli, sandbox_factory: Any, tmp_path: Path) -> None:
    """--auth/--tenant choose the sign-in; an Azure spec needs its subscription."""
    spec, data = make_spec(tmp_path)
    wrong = cli("status", str(spec), "--auth", "carrier-pigeon")
    assert wrong.returncode == 2 and "invalid choice" in wrong.stderr
    azure = tmp_path / "azure.json"
    azure.write_text(json.dumps({**data, "target": "azure"}))
    no_subscription = cli("status", str(azure), "--auth", "device-code", "--tenant", "t-1")
    assert no_subscription.returncode == 2
    assert "subscription id" in no_subscription.stderr
    sandbox_factory()
    # The sandbox's own token: no sign-in, the home tenant.
    own = cli("status", str(spec), "--json")
    assert own.returncode == 0, own.stderr
    assert "note: using" not in own.stderr
    assert json.loads(own.stdout.splitlines()[0])["kind"] == "resource group"
    for result in (wrong, no_subscription, own):
        assert "Traceback" not in result.stderr


def test_ctrl_c_cancels_names_what_is_still_creating_and_a_rerun_adopts_it(
    tmp_path: Path, cli: Cli
) -> None:
    import signal

    from app.sandbox.latency import FAST_SECONDS, LatencyProfile

    spec, _ = make_spec(tmp_path)
    # Everything fast but the cache, which takes 15 s: the deploy cannot end before
    # the cache does, so the interrupt (sent on the cache's first progress event)
    # lands mid-deploy however slowly this test reads, and the re-run waits out the rest.
    slow_cache = LatencyProfile("slow-cache", {**FAST_SECONDS, "redis.create": 15.0}, 0.05)
    with Sandbox.start(tmp_path / "sandbox", latency=slow_cache):
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "deploy", str(spec), "--json",
             "--sandbox-state", str(cli.state)],
            cwd=ROOT, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            # As in a terminal's foreground: a suite started in the background of a
            # shell inherits SIGINT ignored, and Python then never raises Ctrl-C.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            event = json.loads(line)
            if event["event"] == "step_progress" and event["step"] == "cache":
                process.send_signal(signal.SIGINT)
                break
        rest, stderr = process.communicate(timeout=60)
        assert process.returncode == 1, stderr
        assert rest.strip(), stderr
        end = finished("".join(lines) + rest)
        assert end["cancelled"] and not end["succeeded"]
        assert "cache" in end["still_creating"]
        assert "cancelling" in stderr and "Traceback" not in stderr

        again = cli("deploy", str(spec), "--json")
        assert again.returncode == 0, again.stdout[-2000:]
        succeeded = {e["step"]: e for e in events(again.stdout) if e["event"] == "step_succeeded"}
        assert succeeded["resource-group"]["adopted"]
        assert finished(again.stdout)["succeeded"]


def test_a_tenant_blocked_from_azure_cache_for_redis_is_told_about_azure_managed_redis(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    spec, data = make_spec(tmp_path)
    sandbox_factory(
        {
            "rules": [
                {
                    "method": "PUT",
                    "path": f"/redis/{data['cache']['name']}$",
                    "status": 400,
                    "code": "BadRequest",
                    "message": "Creating new Azure Cache for Redis instances is blocked for "
                    "this tenant. Use Azure Managed Redis.",
                }
            ]
        }
    )
    result = cli("deploy", str(spec), "--json")
    assert result.returncode == 1
    failure = next(e for e in events(result.stdout) if e["event"] == "step_failed")
    assert failure["step"] == "cache"
    assert "Azure Managed Redis" in failure["hint"] and "azure-managed-redis" in failure["hint"]
    end = finished(result.stdout)
    assert "function-app" in end["done"]


def test_deploy_an_image_already_in_a_registry_of_another_group(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    """The AzureML package-location path: image.reference, the registry found by name."""
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient
    from azure.mgmt.containerregistry import models as acr

    from app.sandbox.registry import push_package
    from app.services.packaging import build_package

    sandbox = sandbox_factory()
    spec_path, data = make_spec(tmp_path)
    registry = data["image"]["registry"]
    shared = f"rg-shared-{registry[-8:]}"
    resource_client(sandbox).resource_groups.create_or_update(shared, {"location": "westeurope"})
    registries = ContainerRegistryManagementClient(
        sandbox.credential(), sandbox.subscription_id, base_url=sandbox.endpoint,
        credential_scopes=[sandbox.credential_scope], connection_verify=str(sandbox.ca_cert),
        polling_interval=0.1,
    )
    registries.registries.begin_create(
        shared, registry,
        acr.Registry(location="westeurope", sku=acr.Sku(name="Basic"),
                     properties=acr.RegistryProperties(admin_user_enabled=True)),
    ).result()
    package = build_package(SAMPLE_MODEL, tmp_path / "package")
    pushed = push_package(
        package.out_dir, f"{registry}.azurecr.io/digits:v7",
        endpoint=sandbox.endpoint, ca_cert=sandbox.ca_cert, token=sandbox.token,
    )
    data["image"] = {"reference": f"{registry}.azurecr.io/digits@{pushed.digest}"}
    spec_path.write_text(json.dumps(data))

    deployed = cli("deploy", str(spec_path), "--json")
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-2000:]
    steps = {e["step"] for e in events(deployed.stdout) if e["event"] == "step_succeeded"}
    assert "image" not in steps and "registry" in steps

    no_payload = cli("test", str(spec_path))
    assert no_payload.returncode == 2 and "--payload" in no_payload.stderr
    payload = SAMPLE_MODEL / "sample-request.json"
    tested = cli("test", str(spec_path), "--json", "--payload", str(payload))
    assert tested.returncode == 0, tested.stderr
    call = events(tested.stdout)[0]
    assert call["status"] == 200 and call["cache"] == "MISS" and "predictions" in call["body"]


def test_no_permission_stops_before_anything_is_created(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    spec, data = make_spec(tmp_path)
    group = data["resource_group"]["name"]
    sandbox = sandbox_factory(
        {"rules": [{"method": "HEAD", "path": f"/resourcegroups/{group}$", "count": 1,
                    "status": 403, "code": "AuthorizationFailed",
                    "message": "The client does not have authorization to perform action."}]}
    )
    result = cli("deploy", str(spec))
    assert result.returncode == 1
    assert "before creating anything" in result.stderr and "AuthorizationFailed" in result.stderr
    assert "Contributor" in result.stderr and "Traceback" not in result.stderr
    assert not resource_client(sandbox).resource_groups.check_existence(group)


def test_an_image_without_a_health_route_deploys_with_a_note(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    """Packages built elsewhere (e.g. by AzureML) may have no open /api/health."""
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient
    from azure.mgmt.containerregistry import models as acr

    from app.sandbox.registry import push_package

    sandbox = sandbox_factory()
    spec_path, data = make_spec(tmp_path)
    registry, group = data["image"]["registry"], data["resource_group"]["name"]
    resource_client(sandbox).resource_groups.create_or_update(
        group, {"location": "westeurope", "tags": {"created-by": "mlcache-deploy"}}
    )
    ContainerRegistryManagementClient(
        sandbox.credential(), sandbox.subscription_id, base_url=sandbox.endpoint,
        credential_scopes=[sandbox.credential_scope], connection_verify=str(sandbox.ca_cert),
        polling_interval=0.1,
    ).registries.begin_create(
        group, registry,
        acr.Registry(location="westeurope", sku=acr.Sku(name="Basic"),
                     properties=acr.RegistryProperties(admin_user_enabled=True)),
    ).result()
    package = tmp_path / "legacy"
    package.mkdir()
    (package / "host.json").write_text('{"version": "2.0"}')
    (package / "requirements.txt").write_text("azure-functions\n")
    (package / "function_app.py").write_text(
        "import azure.functions as func\n"
        "app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)\n\n"
        "@app.route(route='score', methods=['POST'])\n"
        "def score(req: func.HttpRequest) -> func.HttpResponse:\n"
        "    return func.HttpResponse('{\"predictions\": [0]}', mimetype='application/json')\n"
    )
    push_package(package, f"{registry}.azurecr.io/legacy:v1", endpoint=sandbox.endpoint,
                 ca_cert=sandbox.ca_cert, token=sandbox.token)
    data["image"] = {"reference": f"{registry}.azurecr.io/legacy:v1"}
    spec_path.write_text(json.dumps(data))

    deployed = cli("deploy", str(spec_path), "--json")
    assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
    notes = [e["message"] for e in events(deployed.stdout) if e["event"] == "step_log"]
    assert any("no open health route" in n for n in notes)
    payload = SAMPLE_MODEL / "sample-request.json"
    call = events(cli("test", str(spec_path), "--json", "--payload", str(payload)).stdout)[0]
    assert call["status"] == 200 and call["body"] == {"predictions": [0]}


def test_without_a_running_sandbox_each_command_starts_one_for_itself(
    cli: Cli, tmp_path: Path
) -> None:
    spec, data = make_spec(tmp_path)
    deployed = cli("deploy", str(spec))
    assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
    assert "started one for this command" in deployed.stderr
    assert "Deployment succeeded" in deployed.stdout and "Scoring endpoint: https://" in (
        deployed.stdout
    )
    # The state persists: the next command's sandbox brings the resources back.
    status = cli("status", str(spec), "--json")
    assert status.returncode == 0, status.stderr
    assert all(json.loads(line)["exists"] for line in status.stdout.splitlines())
    cleaned = cli("cleanup", str(spec), "--confirm", data["resource_group"]["name"])
    assert cleaned.returncode == 0, cleaned.stderr
    assert processes_mentioning(str(cli.state)) == []


def test_a_rule_problem_is_exit_1_in_validate_and_in_deploy_alike(
    cli: Cli, tmp_path: Path
) -> None:
    spec, _ = make_spec(tmp_path)
    data = json.loads(spec.read_text())
    data["cache"]["size"] = "P9"  # not a size of the Standard tier
    spec.write_text(json.dumps(data))
    validate = subprocess.run([sys.executable, "-m", "app", "validate", str(spec)], cwd=ROOT,
                              capture_output=True, text=True, timeout=60, env=cli.env)
    deploy = cli("deploy", str(spec))
    assert (validate.returncode, deploy.returncode) == (1, 1)
    assert "cache.size" in deploy.stderr and "Traceback" not in deploy.stderr
    too_many = cli("test", str(spec), "--repeat", "1000000")
    assert too_many.returncode == 2 and "--repeat must be from 1 to 10,000" in too_many.stderr
