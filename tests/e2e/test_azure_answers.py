"""Azure's recorded error answers replayed through the real CLI: what the user reads.

Each test starts a sandbox (latency fast) with a fault rule that sends the body
Azure really sent (the source of each is named next to it), runs `deploy` or
`test` as a person would (plain lines, not --json, where the words matter), and
checks the exit code, the words on stdout/stderr and the next step offered, and
what exists afterwards with the real SDK clients.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from app.sandbox import Sandbox
from tests.e2e.test_cli import Cli, events, finished, make_spec, resource_client
from tests.sandbox.test_fault_replay import HOST_RUNTIME, QUOTA_BODY

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]

MANAGED = {"kind": "azure-managed-redis", "tier": "Balanced", "size": "B0", "redis_version": None}


def requests_logged(sandbox: Sandbox) -> list[dict[str, Any]]:
    """The sandbox's request log: one line per request it answered."""
    text = (sandbox.state_dir / "requests.log").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def step_said(stdout: str, step: str, word: str) -> bool:
    """Whether the plain output has `step`'s line saying `word` (done, skipped, FAILED)."""
    return any(line.split()[:2] == [step, word] for line in stdout.splitlines() if line.strip())


def site_name_taken(name: str) -> dict[str, Any]:
    """App Service's 409 for a site name in use anywhere, verbatim but for the name.

    Recorded in https://github.com/Azure/Azure-Websites-Migration-Tool/issues/11 and
    https://github.com/Azure/RDS-Templates/issues/365 (ExtendedCode 54001).
    """
    message = f"Website with given name {name} already exists."
    return {
        "Code": "Conflict",
        "Message": message,
        "Target": None,
        "Details": [
            {"Message": message},
            {"Code": "Conflict"},
            {"ErrorEntity": {
                "ExtendedCode": "54001",
                "MessageTemplate": "Website with given name {0} already exists.",
                "Parameters": [name],
                "Code": "Conflict",
                "Message": message,
            }},
        ],
        "Innererror": None,
    }


def test_a_plan_refused_for_quota_says_quota_the_limit_and_where_to_ask(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    spec, data = make_spec(tmp_path)
    group, plan = data["resource_group"]["name"], data["function_app"]["plan_name"]
    # App Service's 401 for a plan over quota, as recorded in
    # https://github.com/Azure/azure-cli/issues/31665 and
    # https://github.com/Azure/terraform-azurerm-avm-res-web-site/issues/248
    # (QUOTA_BODY, with the ExtendedCode 70007 ErrorEntity of a live answer).
    sandbox = sandbox_factory({"rules": [{
        "method": "PUT", "path": f"/providers/Microsoft.Web/serverfarms/{plan}$",
        "status": 401, "body": QUOTA_BODY, "headers": {"x-ms-failure-cause": "service"},
    }]})

    result = cli("deploy", str(spec))
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    said = result.stdout + result.stderr
    [failed] = [line for line in result.stdout.splitlines() if " FAILED " in line]
    assert failed.startswith("plan ")
    assert "Operation cannot be completed without additional quota." in failed
    assert "Current Limit (Basic VMs): 0" in failed
    assert "New Limit that you should request to enable this deployment: 1" in failed
    # The next step: where to ask for more, or another size or region. Never a sign-in.
    assert "no App Service quota left" in said and "support request" in said
    assert "Service and subscription limits (quotas)" in said
    assert "Sign in" not in said and "sign in" not in said
    assert "Traceback" not in result.stderr
    assert step_said(result.stdout, "function-app", "skipped")
    assert "Fix the cause and run deploy again" in result.stdout

    from azure.mgmt.web import WebSiteManagementClient

    from app.sandbox.sample_site import sdk_kwargs

    web = WebSiteManagementClient(**sdk_kwargs(sandbox))
    # Asked once: a refusal that retrying cannot change is not retried.
    assert [rule.fired for rule in sandbox.context.faults.rules] == [1]
    assert list(web.app_service_plans.list_by_resource_group(group)) == []
    assert list(web.web_apps.list_by_resource_group(group)) == []


def test_a_function_app_name_taken_says_choose_another(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    spec, data = make_spec(tmp_path)
    name = data["function_app"]["name"]
    sandbox = sandbox_factory({"rules": [{
        "method": "PUT", "path": f"/providers/Microsoft.Web/sites/{name}$",
        "status": 409, "body": site_name_taken(name),
    }]})

    result = cli("deploy", str(spec))
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stdout.splitlines()
    [at] = [i for i, line in enumerate(lines) if " FAILED " in line]
    assert lines[at].startswith("function-app ")
    assert f"Website with given name {name} already exists. (Conflict)" in lines[at]
    # The line under the failure is the next step.
    assert "The name is taken" in lines[at + 1] and "choose another" in lines[at + 1]
    assert "wait and try again" not in result.stdout
    assert "Traceback" not in result.stderr
    assert finished_plain(result.stdout).startswith("Deployment failed")
    assert [rule.fired for rule in sandbox.context.faults.rules] == [1]


def finished_plain(stdout: str) -> str:
    """The run's summary line in plain output."""
    return next(line for line in stdout.splitlines() if line.startswith("Deployment "))


def test_host_keys_while_the_host_starts_are_read_again_without_a_failure(
    sandbox_factory: Any, cli: Cli, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec, data = make_spec(tmp_path)
    group, name = data["resource_group"]["name"], data["function_app"]["name"]
    # The 400 App Service sends while the Functions host starts, as recorded (az rest
    # output) in https://github.com/Azure/azure-cli/issues/20892; twice, then the keys.
    sandbox = sandbox_factory({"rules": [{
        "method": "POST", "path": "/providers/Microsoft.Web/sites/[^/]+/host/default/listkeys$",
        "status": 400, "code": "BadRequest", "message": HOST_RUNTIME, "count": 2,
    }]})

    deployed = cli("deploy", str(spec))
    assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
    tested = cli("test", str(spec))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert [rule.fired for rule in sandbox.context.faults.rules] == [2]
    [call] = [line for line in tested.stdout.splitlines() if line.startswith("#1")]
    assert " 200 " in call and "MISS" in call and "predictions" in call
    # Neither the host's words nor a failure reach the person: the retry is not theirs.
    assert "host runtime" not in tested.stdout + tested.stderr
    assert "error" not in tested.stderr.lower() and "warning" not in tested.stderr.lower()
    keys = [(r["method"], r["status"]) for r in requests_logged(sandbox)
            if r["path"].endswith(f"/sites/{name}/host/default/listkeys")]
    assert keys == [("POST", 400), ("POST", 400), ("POST", 200)]

    # What the retry leaves is an INFO line of the engine's log (the deployment log and
    # the wizard's log pane show those): the same reader, in this process.
    from app.connect import sandbox_target
    from app.services.clients import ClientFactory
    from app.services.scoring import read_function_key

    sandbox.context.faults.rules[0].fired = 0
    target = sandbox_target(sandbox.state_dir, start=False)
    clients = ClientFactory(target)
    with caplog.at_level(logging.INFO, logger="mlcache"):
        key = read_function_key(clients, group, name, pause=0.05)
    clients.close()
    assert key
    retries = [r for r in caplog.records if "not ready" in r.getMessage()]
    assert [r.levelno for r in retries] == [logging.INFO, logging.INFO]
    assert "the host is starting" in retries[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_free_trial_build_is_stopped_before_anything_is_created(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    spec, data = make_spec(tmp_path)
    data["image"]["builder"] = "acr-tasks"
    spec.write_text(json.dumps(data))
    group = data["resource_group"]["name"]
    # A free trial's subscriptionPolicies.quotaId, FreeTrial_2014-09-01; Azure refuses
    # its scheduleRun with TasksOperationsNotAllowed (see the next test).
    sandbox = sandbox_factory(offer="free-trial")

    result = cli("deploy", str(spec))
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "is a free trial (FreeTrial_2014-09-01)" in result.stderr
    assert "may not run ACR Tasks builds" in result.stderr
    assert "nothing was created" in result.stderr
    assert 'image.builder to "layer"' in result.stderr and "image.reference" in result.stderr
    assert "Traceback" not in result.stderr
    # Stopped before the first step: no step ran, no write reached ARM.
    assert "started" not in result.stdout
    assert not resource_client(sandbox).resource_groups.check_existence(group)
    writes = [r for r in requests_logged(sandbox) if r["method"] not in ("GET", "HEAD")]
    assert writes == []


def test_acr_tasks_refused_by_azure_points_at_image_reference(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    """A subscription the preflight cannot tell (not FreeTrial_) whose builds Azure refuses."""
    spec, data = make_spec(tmp_path)
    data["image"]["builder"] = "acr-tasks"
    spec.write_text(json.dumps(data))
    registry = data["image"]["registry"]
    # scheduleRun's 400, verbatim but for the names, from
    # https://github.com/Azure-Samples/azure-search-openai-demo/issues/2592
    sandbox = sandbox_factory({"rules": [{
        "method": "POST",
        "path": f"/providers/Microsoft.ContainerRegistry/registries/{registry}/scheduleRun$",
        "status": 400,
        "body": {"error": {
            "code": "TasksOperationsNotAllowed",
            "message": f"ACR Tasks requests for the registry {registry} and "
                       "f0542a21-69d2-489d-861c-ed7d0ec47ee4 are not permitted. Please file an "
                       "Azure support request at http://aka.ms/azuresupport for assistance.",
            "target": "request",
        }},
    }]})

    result = cli("deploy", str(spec), "--json")
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    end = finished(result.stdout)
    assert end["failed"] == ["image"]
    failure = next(e for e in events(result.stdout) if e["event"] == "step_failed")
    assert failure["code"] == "TasksOperationsNotAllowed"
    assert "are not permitted" in failure["message"]
    assert "image.builder" in failure["hint"] and "again will not help" in failure["hint"]
    # Asked once: a refusal that retrying cannot change is not retried.
    assert [rule.fired for rule in sandbox.context.faults.rules] == [1]


def test_managed_redis_without_capacity_names_other_regions_and_the_move_deploys(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    from azure.mgmt.redisenterprise import RedisEnterpriseManagementClient

    from app.sandbox.sample_site import sdk_kwargs

    spec, data = make_spec(tmp_path, **MANAGED)
    group, cache = data["resource_group"]["name"], data["cache"]["name"]
    # Accepted, then Failed (https://github.com/langchain-ai/terraform/issues/258), with
    # the code and words of a live run, https://github.com/microsoft/aspire/issues/19174.
    # count = 1: the next PUT provisions, as Azure does once there is room.
    sandbox = sandbox_factory({"rules": [{
        "method": "PUT", "path": f"/providers/Microsoft.Cache/redisEnterprise/{cache}$",
        "fail_provisioning": True, "count": 1, "code": "InsufficientCapacity",
        "message": "Request failed due to insufficient capacity. Retry using a different "
                   "Azure Managed Redis size or region.",
    }]})

    first = cli("deploy", str(spec))
    assert first.returncode == 1, first.stdout[-2000:] + first.stderr[-2000:]
    lines = first.stdout.splitlines()
    [at] = [i for i, line in enumerate(lines) if " FAILED " in line]
    assert lines[at].startswith("cache-cluster ")
    assert "Request failed due to insufficient capacity." in lines[at]
    assert "(InsufficientCapacity)" in lines[at]
    advice = lines[at + 1]
    assert "no capacity" in advice and "another region" in advice
    assert "Set location" in advice and "northeurope" in advice
    assert step_said(first.stdout, "cache", "skipped")
    assert "Traceback" not in first.stderr

    # Following the advice: another region, deploy again; the Failed cluster is replaced.
    data["location"] = "northeurope"
    spec.write_text(json.dumps(data))
    again = cli("deploy", str(spec), "--json")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    assert finished(again.stdout)["succeeded"]
    notes = [e["message"] for e in events(again.stdout)
             if e["event"] == "step_log" and e["step"] == "cache-cluster"]
    assert any("is in state Failed; deleting it to retry" in note for note in notes)
    cluster = RedisEnterpriseManagementClient(**sdk_kwargs(sandbox)).redis_enterprise.get(
        group, cache)
    assert cluster.provisioning_state == "Succeeded" and cluster.location == "northeurope"
