"""Microsoft.Web in the sandbox, driven by the real WebSiteManagementClient.

Function apps run for real: a package pushed to the sandbox registry, pulled
with the credentials in the site's app settings, served over HTTPS by a local
function host that verifies against the sandbox CA.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.containerregistry import ContainerRegistryManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.web import WebSiteManagementClient

from app.sandbox import Sandbox
from app.sandbox.processes import pid_alive
from app.sandbox.registry import push_package

from .conftest import mgmt, unique

FUNCTION_APP = """
import os

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="hello", methods=["GET", "POST"])
def hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"{VERSION} " + os.environ.get("GREETING", "nobody"))
"""


def write_package(root: Path, version: str = "v1") -> Path:
    """A tiny Azure Functions Python v2 app whose answer names its version and a setting."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "function_app.py").write_text(f"VERSION = {version!r}\n" + FUNCTION_APP)
    (root / "host.json").write_text('{"version": "2.0"}\n')
    return root


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy (start-up is asynchronous, as on Azure)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except requests.RequestException as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def call(sb: Any, host: str, key: str | None = None, header: bool = False) -> requests.Response:
    params = {"code": key} if key and not header else None
    headers = {"x-functions-key": key} if key and header else None
    return requests.get(
        f"https://{host}/api/hello",
        params=params,
        headers=headers,
        verify=str(sb.ca_cert),
        timeout=10,
    )


def answers(sb: Any, host: str, key: str, text: str) -> Callable[[], bool]:
    def check() -> bool:
        response = call(sb, host, key)
        return response.status_code == 200 and response.text == text

    return check


def unavailable(sb: Any, host: str) -> Callable[[], bool]:
    return lambda: call(sb, host).status_code == 503


def port_closed(host: str) -> bool:
    import socket

    address, port = host.rsplit(":", 1)
    with socket.socket() as sock:
        return sock.connect_ex((address, int(port))) != 0


class Cloud:
    """The SDK clients and the steps a deployment takes, for one sandbox."""

    def __init__(self, sb: Any) -> None:
        self.sb = sb
        self.web = mgmt(WebSiteManagementClient, sb)
        self.acr = mgmt(ContainerRegistryManagementClient, sb)
        self.rm = mgmt(ResourceManagementClient, sb)

    def registry(self, group: str) -> tuple[str, str]:
        """A registry with the admin user on; returns (name, password)."""
        name = unique("acr")
        self.acr.registries.begin_create(
            group,
            name,
            {
                "location": "westeurope",
                "sku": {"name": "Basic"},
                "properties": {"adminUserEnabled": True},
            },
        ).result()
        creds = self.acr.registries.list_credentials(group, name)
        assert creds.passwords is not None and creds.passwords[0].value is not None
        return name, creds.passwords[0].value

    def push(self, package: Path, image: str) -> str:
        result = push_package(
            package, image, endpoint=self.sb.endpoint, ca_cert=self.sb.ca_cert, token=self.sb.token
        )
        return result.digest

    def plan(self, group: str, name: str = "") -> Any:
        return self.web.app_service_plans.begin_create_or_update(
            group,
            name or unique("plan-"),
            {
                "location": "westeurope",
                "kind": "linux",
                "sku": {"name": "B1", "tier": "Basic"},
                "properties": {"reserved": True},
            },
        ).result()

    def site(
        self, group: str, plan_id: str, image: str, settings: dict[str, str], name: str = ""
    ) -> Any:
        return self.web.web_apps.begin_create_or_update(
            group,
            name or unique("func-"),
            {
                "location": "westeurope",
                "kind": "functionapp,linux,container",
                "properties": {
                    "serverFarmId": plan_id,
                    "httpsOnly": True,
                    "siteConfig": {
                        "linuxFxVersion": f"DOCKER|{image}",
                        "appSettings": [{"name": k, "value": v} for k, v in settings.items()],
                    },
                },
            },
        ).result()

    def running_app(self, group: str, package: Path) -> tuple[Any, str, str]:
        """Create `group` with a registry, `package` pushed as app:v1 and a site pulling it
        with the admin user; wait until it answers. Returns (site, host, function key)."""
        self.rm.resource_groups.create_or_update(group, {"location": "westeurope"})
        registry, password = self.registry(group)
        image = f"{registry}.azurecr.io/app:v1"
        self.push(package, image)
        plan = self.plan(group)
        site = self.site(group, plan.id, image, registry_settings(registry, password))
        host = site.properties.default_host_name
        key = self.web.web_apps.list_host_keys(group, site.name).function_keys["default"]
        wait_for(answers(self.sb, host, key, "v1 nobody"), what="the function")
        return site, host, key


def registry_settings(registry: str, password: str) -> dict[str, str]:
    return {
        "DOCKER_REGISTRY_SERVER_URL": f"https://{registry}.azurecr.io",
        "DOCKER_REGISTRY_SERVER_USERNAME": registry,
        "DOCKER_REGISTRY_SERVER_PASSWORD": password,
    }


def web_provider(sb: Any) -> Any:
    return next(p for p in sb.context.providers if p.namespace == "Microsoft.Web")


def site_log(sb: Any, name: str) -> str:
    path = web_provider(sb).runtime.log_file(name)
    return path.read_text(encoding="utf-8") if path.exists() else ""


def host_pid(sb: Any, name: str) -> int:
    pid = web_provider(sb).runtime.host_pid(name)
    assert pid is not None, "the site has no running host"
    return int(pid)


@pytest.fixture(scope="module")
def cloud(sandbox: Sandbox) -> Cloud:
    return Cloud(sandbox)


def test_check_name_availability(cloud: Cloud, group: str) -> None:
    check = cloud.web.check_name_availability
    name = unique("func-")
    free = check({"name": name, "type": "Microsoft.Web/sites"})
    assert free.name_available is True
    bad = check({"name": "-starts-with-hyphen", "type": "Microsoft.Web/sites"})
    assert bad.name_available is False and bad.reason == "Invalid"

    plan = cloud.plan(group)
    cloud.site(group, plan.id, "nothere01.azurecr.io/app:v1", {}, name=name)
    taken = check({"name": name.upper(), "type": "Site"})
    assert taken.name_available is False and taken.reason == "AlreadyExists"
    assert name.upper() in (taken.message or "")

    # Site names are global: the same name in another group is a conflict.
    other = unique("rg-test-")
    cloud.rm.resource_groups.create_or_update(other, {"location": "westeurope"})
    try:
        other_plan = cloud.plan(other)
        with pytest.raises(ResourceExistsError):
            cloud.site(other, other_plan.id, "nothere01.azurecr.io/app:v1", {}, name=name)
    finally:
        cloud.rm.resource_groups.begin_delete(other).result()


def test_plan_lifecycle(cloud: Cloud, group: str) -> None:
    plans = cloud.web.app_service_plans
    name = unique("plan-")
    plan = cloud.plan(group, name)
    assert plan.kind == "linux"
    assert plan.sku is not None and (plan.sku.name, plan.sku.tier) == ("B1", "Basic")
    assert plan.properties is not None and plan.properties.reserved is True
    assert plan.properties.provisioning_state == "Succeeded"
    assert plans.get(group, name).id == plan.id
    assert [p.name for p in plans.list_by_resource_group(group)] == [name]

    site = cloud.site(group, plan.id, "nothere01.azurecr.io/app:v1", {})
    got = plans.get(group, name)
    assert got.properties is not None and got.properties.number_of_sites == 1
    with pytest.raises(HttpResponseError) as caught:
        plans.delete(group, name)
    assert caught.value.status_code == 409
    assert site.name in str(caught.value)

    cloud.web.web_apps.delete(group, site.name)
    with pytest.raises(ResourceNotFoundError):
        cloud.web.web_apps.get(group, site.name)
    plans.delete(group, name)
    with pytest.raises(ResourceNotFoundError):
        plans.get(group, name)

    with pytest.raises(HttpResponseError) as caught:
        plans.begin_create_or_update(
            group, unique("plan-"), {"location": "westeurope", "sku": {"name": "Z9"}}
        ).result()
    assert caught.value.status_code == 400


def test_site_needs_an_existing_plan(cloud: Cloud, group: str) -> None:
    missing = (
        f"/subscriptions/{cloud.sb.subscription_id}/resourceGroups/{group}"
        "/providers/Microsoft.Web/serverfarms/noplan"
    )
    with pytest.raises(ResourceNotFoundError, match="Cannot find ServerFarm"):
        cloud.site(group, missing, "nothere01.azurecr.io/app:v1", {})


def test_function_app_end_to_end(cloud: Cloud, group: str, tmp_path: Path) -> None:
    sb, apps = cloud.sb, cloud.web.web_apps
    registry, password = cloud.registry(group)
    image = f"{registry}.azurecr.io/score:v1"
    digest = cloud.push(write_package(tmp_path / "v1"), image)
    plan = cloud.plan(group)
    settings = {"GREETING": "world", "OTHER": "x", **registry_settings(registry, password)}
    site = cloud.site(group, plan.id, image, settings)
    name, host = site.name, site.properties.default_host_name

    # What ARM says about the site.
    assert site.kind == "functionapp,linux,container"
    assert host.startswith("127.0.0.1:")
    assert site.properties.state == "Running"
    assert site.properties.server_farm_id == plan.id
    assert site.properties.reserved is True
    assert site.properties.site_config.linux_fx_version == f"DOCKER|{image}"
    assert [s.name for s in apps.list_by_resource_group(group)] == [name]
    assert apps.get(group, name).properties.default_host_name == host

    keys = apps.list_host_keys(group, name)
    function_key = keys.function_keys["default"]
    assert keys.master_key and function_key and keys.master_key != function_key
    assert apps.list_function_keys(group, name, "hello").properties["default"] == function_key

    # The deployed function answers over HTTPS, verified against the sandbox CA.
    wait_for(answers(sb, host, function_key, "v1 world"), what="the function to answer")
    assert call(sb, host).status_code == 401
    assert call(sb, host, "wrong-key").status_code == 401
    assert call(sb, host, function_key, header=True).text == "v1 world"
    assert call(sb, host, keys.master_key).status_code == 200
    log = site_log(sb, name)
    assert f"Pull Image successful, Image: {image}, {digest}" in log
    assert password not in log
    assert function_key not in log and keys.master_key not in log

    # Functions as App Service lists them, with the URL to invoke.
    functions = list(apps.list_functions(group, name))
    assert [f.name for f in functions] == [f"{name}/hello"]
    hello = apps.get_function(group, name, "hello")
    assert hello.properties.invoke_url_template == f"https://{host}/api/hello"
    assert hello.properties.config["bindings"][0]["authLevel"] == "function"
    with pytest.raises(ResourceNotFoundError):
        apps.get_function(group, name, "nope")
    with pytest.raises(ResourceNotFoundError):
        apps.list_function_keys(group, name, "nope")

    # App settings: list, then a PUT replaces the whole set and restarts the host.
    listed = apps.list_application_settings(group, name).properties
    assert listed == settings
    first_pid = host_pid(sb, name)
    new_settings = {"GREETING": "again", **registry_settings(registry, password)}
    result = apps.update_application_settings(group, name, {"properties": new_settings})
    assert result.properties == new_settings
    assert "OTHER" not in apps.list_application_settings(group, name).properties
    wait_for(answers(sb, host, function_key, "v1 again"), what="the new setting")
    assert host_pid(sb, name) != first_pid
    assert not pid_alive(first_pid)

    # Site config: the image moves to a new tag; the host restarts on it, same address.
    cloud.push(write_package(tmp_path / "v2", "v2"), f"{registry}.azurecr.io/score:v2")
    config = apps.get_configuration(group, name)
    assert config.properties.linux_fx_version == f"DOCKER|{image}"
    updated = apps.update_configuration(
        group, name, {"properties": {"linuxFxVersion": f"DOCKER|{registry}.azurecr.io/score:v2"}}
    )
    assert updated.properties.linux_fx_version.endswith("/score:v2")
    assert updated.properties.min_tls_version == "1.2"
    wait_for(answers(sb, host, function_key, "v2 again"), what="the new image")
    replaced = apps.create_or_update_configuration(
        group, name, {"properties": {"linuxFxVersion": f"DOCKER|{image}", "alwaysOn": True}}
    )
    assert replaced.properties.always_on is True
    wait_for(answers(sb, host, function_key, "v1 again"), what="the old image again")

    # Restart: a new process, same port, same keys.
    before = host_pid(sb, name)
    apps.restart(group, name, synchronous=True)
    assert call(sb, host, function_key).text == "v1 again"
    assert host_pid(sb, name) != before

    # PATCH the site: settings given in siteConfig replace the set too.
    patched = apps.update(
        group,
        name,
        {
            "properties": {
                "siteConfig": {
                    "appSettings": [
                        {"name": k, "value": v}
                        for k, v in {
                            "GREETING": "patched",
                            **registry_settings(registry, password),
                        }.items()
                    ]
                }
            }
        },
    )
    assert patched.properties.default_host_name == host
    wait_for(answers(sb, host, function_key, "v1 patched"), what="the patched setting")

    # Deleting the site stops its host and frees its address.
    pid = host_pid(sb, name)
    apps.delete(group, name)
    assert not pid_alive(pid)
    assert port_closed(host)
    with pytest.raises(ResourceNotFoundError):
        apps.get(group, name)


def test_missing_image_shows_in_log_until_pushed(cloud: Cloud, group: str, tmp_path: Path) -> None:
    sb, apps = cloud.sb, cloud.web.web_apps
    registry, password = cloud.registry(group)
    image = f"{registry}.azurecr.io/later:v1"
    plan = cloud.plan(group)
    # Azure accepts a site whose image does not exist yet.
    site = cloud.site(group, plan.id, image, registry_settings(registry, password))
    host = site.properties.default_host_name

    wait_for(unavailable(sb, host), what="503 while the image is missing")
    wait_for(lambda: "manifest unknown" in site_log(sb, site.name), what="the pull failure")

    # The push alone starts the site: no restart needed.
    cloud.push(write_package(tmp_path / "pkg"), image)
    key = apps.list_host_keys(group, site.name).function_keys["default"]
    wait_for(answers(sb, host, key, "v1 nobody"), what="the function after the push")
    assert "retrying" in site_log(sb, site.name)

    # Stopping the site on purpose: App Service's 403 page, then back on start.
    pid = host_pid(sb, site.name)
    apps.stop(group, site.name)
    assert apps.get(group, site.name).properties.state == "Stopped"
    wait_for(lambda: call(sb, host, key).status_code == 403, what="403 of a stopped site")
    assert not pid_alive(pid)
    apps.start(group, site.name)
    assert apps.get(group, site.name).properties.state == "Running"
    wait_for(answers(sb, host, key, "v1 nobody"), what="the function after start")


def test_continuous_deployment_restarts_on_push(cloud: Cloud, group: str, tmp_path: Path) -> None:
    sb, apps = cloud.sb, cloud.web.web_apps
    registry, password = cloud.registry(group)
    image = f"{registry}.azurecr.io/app:latest"
    cloud.push(write_package(tmp_path / "v1"), image)
    plan = cloud.plan(group)
    settings = {**registry_settings(registry, password), "DOCKER_ENABLE_CI": "true"}
    site = cloud.site(group, plan.id, image, settings)
    plain = cloud.site(group, plan.id, image, registry_settings(registry, password))
    key = apps.list_host_keys(group, site.name).function_keys["default"]
    plain_key = apps.list_host_keys(group, plain.name).function_keys["default"]
    wait_for(answers(sb, site.properties.default_host_name, key, "v1 nobody"))
    wait_for(answers(sb, plain.properties.default_host_name, plain_key, "v1 nobody"))

    cloud.push(write_package(tmp_path / "v2", "v2"), image)
    wait_for(answers(sb, site.properties.default_host_name, key, "v2 nobody"), what="redeploy")
    assert "Continuous deployment" in site_log(sb, site.name)
    # Without DOCKER_ENABLE_CI the site keeps the image it pulled, as on Azure.
    assert call(sb, plain.properties.default_host_name, plain_key).text == "v1 nobody"


def test_wrong_registry_credentials_fail_the_pull(cloud: Cloud, group: str, tmp_path: Path) -> None:
    sb, apps = cloud.sb, cloud.web.web_apps
    registry, password = cloud.registry(group)
    image = f"{registry}.azurecr.io/app:v1"
    cloud.push(write_package(tmp_path / "pkg"), image)
    plan = cloud.plan(group)
    wrong = {**registry_settings(registry, password), "DOCKER_REGISTRY_SERVER_PASSWORD": "nope"}
    site = cloud.site(group, plan.id, image, wrong)
    host = site.properties.default_host_name

    wait_for(
        lambda: "unauthorized: authentication required" in site_log(sb, site.name),
        what="the unauthorized pull in the log",
    )
    assert call(sb, host).status_code == 503
    assert "nope" not in site_log(sb, site.name)

    # No credentials at all: the registry does not allow anonymous pulls either.
    apps.update_application_settings(group, site.name, {"properties": {"A": "b"}})
    wait_for(lambda: site_log(sb, site.name).count("unauthorized") >= 2, what="second refusal")
    assert call(sb, host).status_code == 503

    apps.update_application_settings(
        group, site.name, {"properties": registry_settings(registry, password)}
    )
    key = apps.list_host_keys(group, site.name).function_keys["default"]
    wait_for(answers(sb, host, key, "v1 nobody"), what="the function with fixed credentials")


def test_log_stream(cloud: Cloud, group: str, tmp_path: Path) -> None:
    sb = cloud.sb
    registry, password = cloud.registry(group)
    plan = cloud.plan(group)
    site = cloud.site(
        group, plan.id, f"{registry}.azurecr.io/none:v1", registry_settings(registry, password)
    )
    url = f"{sb.endpoint}/dataplane/sites/{site.name}/api/logstream"

    refused = requests.get(url, verify=str(sb.ca_cert), timeout=10)
    assert refused.status_code == 401
    missing = requests.get(
        f"{sb.endpoint}/dataplane/sites/{unique('ghost-')}/api/logstream",
        headers={"Authorization": f"Bearer {sb.token}"},
        verify=str(sb.ca_cert),
        timeout=10,
    )
    assert missing.status_code == 404

    with requests.get(
        url,
        headers={"Authorization": f"Bearer {sb.token}"},
        verify=str(sb.ca_cert),
        stream=True,
        timeout=30,
    ) as stream:
        assert stream.status_code == 200
        seen = ""
        lines = stream.iter_lines(decode_unicode=True)
        deadline = time.monotonic() + 30
        while "manifest unknown" not in seen and time.monotonic() < deadline:
            seen += next(lines) + "\n"
        assert "Welcome, you are now connected to log-streaming service." in seen
        assert "manifest unknown" in seen

        # New lines arrive while the stream is open.
        cloud.web.web_apps.restart(group, site.name)
        while "restart requested" not in seen and time.monotonic() < deadline:
            seen += next(lines) + "\n"
        assert f"Site {site.name} restart requested." in seen

    # The log file itself, Kudu VFS style, with a range for what is new.
    files_url = f"{sb.endpoint}/dataplane/sites/{site.name}/api/vfs/LogFiles/"
    auth = {"Authorization": f"Bearer {sb.token}"}
    listing = requests.get(files_url, headers=auth, verify=str(sb.ca_cert), timeout=10).json()
    assert [entry["name"] for entry in listing] == ["site.log"]
    whole = requests.get(files_url + "site.log", headers=auth, verify=str(sb.ca_cert), timeout=10)
    assert whole.status_code == 200 and "manifest unknown" in whole.text
    tail = requests.get(
        files_url + "site.log",
        headers={**auth, "Range": "bytes=10-"},
        verify=str(sb.ca_cert),
        timeout=10,
    )
    assert tail.status_code == 206
    assert tail.content.startswith(whole.content[10:])  # the log may have grown since
    assert requests.get(files_url, verify=str(sb.ca_cert), timeout=10).status_code == 401


def test_group_delete_leaves_no_host(cloud: Cloud, tmp_path: Path) -> None:
    sb = cloud.sb
    group = unique("rg-test-")
    site, host, _ = cloud.running_app(group, write_package(tmp_path / "pkg"))
    pid = host_pid(sb, site.name)

    cloud.rm.resource_groups.begin_delete(group).result()
    assert not pid_alive(pid)
    assert port_closed(host)
    assert not web_provider(sb).runtime.site_dir(site.name).exists()
    assert cloud.web.check_name_availability(
        {"name": site.name, "type": "Microsoft.Web/sites"}
    ).name_available


def test_sandbox_restart_brings_the_site_back(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Sandbox.start(state, latency="fast") as sb:
        cloud = Cloud(sb)
        group = unique("rg-test-")
        site, host, key = cloud.running_app(group, write_package(tmp_path / "pkg"))
        pid = host_pid(sb, site.name)
    assert not pid_alive(pid)
    assert port_closed(host)

    with Sandbox.start(state, latency="fast") as sb:
        cloud = Cloud(sb)
        again = cloud.web.web_apps.get(group, site.name)
        assert again.properties.default_host_name == host
        assert cloud.web.web_apps.list_host_keys(group, site.name).function_keys["default"] == key
        wait_for(answers(sb, host, key, "v1 nobody"), what="the function after the restart")
        pid = host_pid(sb, site.name)
    assert not pid_alive(pid)


def test_faults_on_synchronous_writes(tmp_path: Path) -> None:
    faults = {
        "rules": [
            {"method": "PUT", "path": "/serverfarms/", "count": 1, "status": 429, "retry_after": 0},
            {
                "method": "PUT",
                "path": "/sites/broken-",
                "fail_provisioning": True,
                "code": "SiteProvisioningFailed",
                "message": "The site could not be provisioned.",
            },
        ]
    }
    with Sandbox.start(tmp_path / "state", latency="fast", faults=faults) as sb:
        cloud = Cloud(sb)
        group = unique("rg-test-")
        cloud.rm.resource_groups.create_or_update(group, {"location": "westeurope"})
        # The SDK's retry policy absorbs the throttled first attempt.
        plan = cloud.plan(group)
        assert plan.properties.provisioning_state == "Succeeded"
        with pytest.raises(HttpResponseError) as caught:
            cloud.site(group, plan.id, "nothere01.azurecr.io/app:v1", {}, name=unique("broken-"))
        # App Service answers in its own shape, which azure-core does not parse.
        assert caught.value.response is not None
        body = json.loads(caught.value.response.text())
        assert body["Code"] == "SiteProvisioningFailed"
        assert body["Message"] == "The site could not be provisioned."
        assert list(cloud.web.web_apps.list_by_resource_group(group)) == []


def test_sample_model_package_scores_over_https(cloud: Cloud, group: str, tmp_path: Path) -> None:
    """The product's own package (template + sample model) deployed as the deploy does it."""
    from app.paths import resources_dir
    from app.services.packaging import build_package

    sb, apps = cloud.sb, cloud.web.web_apps
    sample = resources_dir() / "sample-model"
    info = build_package(sample, tmp_path / "package")
    registry, password = cloud.registry(group)
    image = f"{registry}.azurecr.io/digits:{info.model_version}"
    cloud.push(info.out_dir, image)
    plan = cloud.plan(group)
    site = cloud.site(group, plan.id, image, registry_settings(registry, password))
    host = site.properties.default_host_name
    key = apps.list_host_keys(group, site.name).function_keys["default"]
    payload = json.loads((sample / "sample-request.json").read_text())

    def score(code: str | None) -> requests.Response:
        return requests.post(
            f"https://{host}/api/score",
            params={"code": code} if code else None,
            json=payload,
            verify=str(sb.ca_cert),
            timeout=30,
        )

    scored = wait_for(
        lambda: (r := score(key)).status_code == 200 and r, what="the sample model to score"
    )
    assert "predictions" in scored.json()
    assert score(None).status_code == 401
    assert score("not-the-key").status_code == 401


def test_killed_sandbox_leaves_no_host(tmp_path: Path) -> None:
    """Even a SIGKILLed `sandbox serve` takes its function hosts along."""
    from app.sandbox import SandboxProcess, connect
    from app.sandbox.processes import processes_mentioning

    state = tmp_path / "state"
    serve = SandboxProcess.start(state)
    try:
        conn = connect(state)
        cloud = Cloud(conn)
        site, _, _ = cloud.running_app(unique("rg-test-"), write_package(tmp_path / "pkg"))
        children = processes_mentioning(str(state))
        assert children, "the function host should mention the state directory"
    finally:
        serve.kill()
    wait_for(
        lambda: not [pid for pid in children if pid_alive(pid)],
        timeout=30,
        what="the hosts to exit",
    )
    assert port_closed(site.properties.default_host_name)


def test_settings_changed_while_the_host_starts_restart_it_with_the_new_ones(
    cloud: Cloud, group: str, tmp_path: Path
) -> None:
    """A container still starting is started again with the latest settings at once,
    not first brought up on the old ones (the deploy's cache settings arrive while
    the new site's first start is under way)."""
    sb, apps = cloud.sb, cloud.web.web_apps
    gate = tmp_path / "gate"
    package = write_package(tmp_path / "v1")
    # The package's import waits for the gate, so the first start is still under way
    # when the settings change, however fast or slow this machine is.
    app = package / "function_app.py"
    app.write_text(
        "import pathlib, time\n"
        f"while not pathlib.Path({str(gate)!r}).exists():\n    time.sleep(0.02)\n"
        + app.read_text())
    registry, password = cloud.registry(group)
    image = f"{registry}.azurecr.io/app:v1"
    cloud.push(package, image)
    site = cloud.site(group, cloud.plan(group).id, image, registry_settings(registry, password))
    wait_for(lambda: "Starting function host" in site_log(sb, site.name), what="first start")
    apps.update_application_settings(group, site.name, {"properties": {
        **registry_settings(registry, password), "GREETING": "second"}})
    wait_for(lambda: "configuration changed while its container started" in site_log(
        sb, site.name), what="the start cut short")
    gate.touch()
    key = apps.list_host_keys(group, site.name).function_keys["default"]
    wait_for(answers(sb, site.properties.default_host_name, key, "v1 second"))
    log = site_log(sb, site.name)
    assert log.count("initialized successfully") == 1, log
    assert "failing site start" not in log
