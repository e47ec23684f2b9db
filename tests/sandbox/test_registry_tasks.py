"""ACR Tasks quick builds in the sandbox, driven by the real ContainerRegistryTasksMgmtClient.

The steps are the ones `app.services.packaging.build_image_in_acr` takes on Azure:
upload URL, PUT of the context, scheduleRun, then the run and its log blob.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerregistry import ContainerRegistryManagementClient
from azure.mgmt.containerregistrytasks import ContainerRegistryTasksMgmtClient
from azure.mgmt.containerregistrytasks.models import DockerBuildRequest, PlatformProperties
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.resource.subscriptions import SubscriptionClient
from azure.mgmt.web import WebSiteManagementClient

from app.folders import folder_files, pack_folder
from app.paths import resources_dir
from app.sandbox import Sandbox
from app.sandbox.registry import package_digest
from app.services.acr_build import context_archive
from app.services.packaging import build_package

from .conftest import client_kwargs, mgmt, unique


@pytest.fixture(scope="module")
def acr(sandbox: Sandbox) -> ContainerRegistryManagementClient:
    return mgmt(ContainerRegistryManagementClient, sandbox)


def tasks_client(sb: Any) -> ContainerRegistryTasksMgmtClient:
    """The client as the product makes it, pointed at the sandbox and its CA."""
    return ContainerRegistryTasksMgmtClient(
        sb.credential(),
        sb.subscription_id,
        base_url=sb.endpoint,
        credential_scopes=["https://management.azure.com/.default"],
        connection_verify=str(sb.ca_cert),
    )


@pytest.fixture(scope="module")
def tasks(sandbox: Sandbox) -> ContainerRegistryTasksMgmtClient:
    return tasks_client(sandbox)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample model built into a function package with its Dockerfile."""
    out = tmp_path_factory.mktemp("package") / "pkg"
    build_package(resources_dir() / "sample-model", out)
    return out


def new_registry(acr: ContainerRegistryManagementClient, group: str) -> str:
    name = unique("acr")
    acr.registries.begin_create(
        group,
        name,
        {"location": "westeurope", "sku": {"name": "Basic"},
         "properties": {"adminUserEnabled": True}},
    ).result()
    return name


def wait_until(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll `check` until it returns something truthy, as a client polls a run."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except requests.ConnectionError as exc:  # a site's port while its host starts
            last = exc
        else:
            if last:
                return last
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def upload(tasks: ContainerRegistryTasksMgmtClient, sb: Any, group: str, registry: str,
           archive: bytes) -> str:
    target = tasks.registries.get_build_source_upload_url(group, registry)
    assert target.relative_path and target.upload_url
    assert target.relative_path.startswith("source/") and target.relative_path.endswith(".tar.gz")
    assert target.upload_url.startswith(sb.endpoint + "/")
    put = requests.put(
        target.upload_url,
        data=archive,
        headers={"x-ms-blob-type": "BlockBlob", "Content-Type": "application/gzip"},
        verify=str(sb.ca_cert),
        timeout=30,
    )
    assert put.status_code == 201, put.text
    assert put.headers["ETag"] and put.headers["Content-MD5"]
    return target.relative_path


def schedule(tasks: ContainerRegistryTasksMgmtClient, group: str, registry: str, source: str,
             image: str) -> Any:
    return tasks.registries.schedule_run(
        group,
        registry,
        DockerBuildRequest(
            source_location=source,
            docker_file_path="Dockerfile",
            image_names=[image],
            is_push_enabled=True,
            platform=PlatformProperties(os="Linux", architecture="amd64"),
            timeout=3600,
        ),
    )


def status_of(run: Any) -> str:
    return str(run.properties.status.value if hasattr(run.properties.status, "value")
               else run.properties.status)


def test_quick_build_runs_and_stores_the_package(
    sandbox: Sandbox,
    tasks: ContainerRegistryTasksMgmtClient,
    acr: ContainerRegistryManagementClient,
    group: str,
    package: Path,
) -> None:
    registry = new_registry(acr, group)
    source = upload(tasks, sandbox, group, registry, context_archive(package))
    run = schedule(tasks, group, registry, source, "ml/score:v1")
    assert run.properties is not None
    run_id = run.properties.run_id
    assert run_id == "ca1" and run.name == "ca1"
    assert status_of(run) == "Queued"

    seen: set[str] = set()

    def finished() -> Any:
        current = tasks.runs.get(group, registry, run_id)
        seen.add(status_of(current))
        return current if status_of(current) in ("Succeeded", "Failed") else None

    done = wait_until(finished, "the run to finish")
    assert status_of(done) == "Succeeded", done.properties.run_error_message
    assert "Running" in seen
    login_server = acr.registries.get(group, registry).properties.login_server
    [image] = done.properties.output_images
    assert (image.registry, image.repository, image.tag) == (login_server, "ml/score", "v1")
    # The same digest a push of the same folder gives.
    assert image.digest == package_digest(package)
    assert done.properties.start_time and done.properties.finish_time

    log_link = tasks.runs.get_log_sas_url(group, registry, run_id).log_link
    assert log_link
    verify = str(sandbox.ca_cert)
    head = requests.head(log_link, verify=verify, timeout=30)
    assert head.status_code == 200
    assert head.headers["x-ms-meta-Complete"] == "Succeeded"
    assert head.headers["x-ms-blob-type"] == "AppendBlob"
    size = int(head.headers["Content-Length"])
    text = requests.get(log_link, verify=verify, timeout=30).text
    assert "Step 1/" in text and "FROM mcr.microsoft.com/azure-functions/python" in text
    assert f"Successfully pushed image: {login_server}/ml/score:v1" in text
    assert text.splitlines()[-1].startswith(f"Run ID: {run_id} was successful after ")
    ranged = requests.get(log_link, headers={"Range": "bytes=10-"}, verify=verify, timeout=30)
    assert ranged.status_code == 206
    assert ranged.headers["Content-Range"] == f"bytes 10-{size - 1}/{size}"
    past = requests.get(log_link, headers={"Range": f"bytes={size}-"}, verify=verify, timeout=30)
    assert past.status_code == 416
    assert past.headers["x-ms-error-code"] == "InvalidRange"
    assert "<Code>InvalidRange</Code>" in past.text

    # The image is in the registry, and a second build of the same folder is the same image.
    listing = tasks.runs.list(group, registry)
    assert [r.name for r in listing] == [run_id]
    providers = sandbox.context.providers
    found = next(p for p in providers if type(p).__name__ == "RegistryProvider").packages.resolve(
        registry, "ml/score", "v1"
    )
    assert found is not None and found.digest == image.digest


def test_log_grows_while_the_run_runs(
    tmp_path: Path, package: Path
) -> None:
    """With realistic timing the log blob is readable, and incomplete, before the end."""
    with Sandbox.start(tmp_path / "state", latency=0.1) as sb:
        rm = mgmt(ResourceManagementClient, sb)
        rm.resource_groups.create_or_update("rg", {"location": "westeurope"})
        registry = new_registry(mgmt(ContainerRegistryManagementClient, sb), "rg")
        tasks = tasks_client(sb)
        source = upload(tasks, sb, "rg", registry, context_archive(package))
        run_id = schedule(tasks, "rg", registry, source, "ml/score:v2").properties.run_id
        link = tasks.runs.get_log_sas_url("rg", registry, run_id).log_link

        def partial_log() -> Any:
            answer = requests.get(link, verify=str(sb.ca_cert), timeout=30)
            if answer.status_code == 200 and "Step 1/" in answer.text:
                return answer
            return None

        early = wait_until(partial_log, "log lines of the running run")
        assert "x-ms-meta-Complete" not in early.headers
        assert early.text.endswith("\r\n")
        assert status_of(tasks.runs.get("rg", registry, run_id)) == "Running"
        wait_until(
            lambda: requests.head(link, verify=str(sb.ca_cert), timeout=30).headers.get(
                "x-ms-meta-Complete"
            ),
            "the log to be marked complete",
        )
        assert status_of(tasks.runs.get("rg", registry, run_id)) == "Succeeded"


def test_a_context_that_is_no_package_fails_the_run(
    sandbox: Sandbox,
    tasks: ContainerRegistryTasksMgmtClient,
    acr: ContainerRegistryManagementClient,
    group: str,
    tmp_path: Path,
) -> None:
    registry = new_registry(acr, group)
    folder = tmp_path / "not-a-package"
    folder.mkdir()
    (folder / "Dockerfile").write_text("FROM python:3.11\nCOPY . /app\n")
    (folder / "app.py").write_text("print('hello')\n")
    source = upload(tasks, sandbox, group, registry, pack_folder(folder_files(folder)))
    run_id = schedule(tasks, group, registry, source, "web:v1").properties.run_id

    done = wait_until(
        lambda: (r := tasks.runs.get(group, registry, run_id)) and status_of(r) in (
            "Succeeded", "Failed") and r,
        "the run to finish",
    )
    assert status_of(done) == "Failed"
    assert "not a function package" in done.properties.run_error_message
    assert "host.json" in done.properties.run_error_message
    assert not done.properties.output_images
    link = tasks.runs.get_log_sas_url(group, registry, run_id).log_link
    answer = requests.get(link, verify=str(sandbox.ca_cert), timeout=30)
    assert answer.headers["x-ms-meta-Complete"] == "Failed"
    assert f"Run ID: {run_id} failed after" in answer.text
    assert "Azure Functions packages only" in answer.text


def test_a_context_without_its_dockerfile_fails(
    sandbox: Sandbox,
    tasks: ContainerRegistryTasksMgmtClient,
    acr: ContainerRegistryManagementClient,
    group: str,
    tmp_path: Path,
) -> None:
    registry = new_registry(acr, group)
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "host.json").write_text('{"version": "2.0"}\n')
    (folder / "function_app.py").write_text("\n")
    source = upload(tasks, sandbox, group, registry, pack_folder(folder_files(folder)))
    run_id = schedule(tasks, group, registry, source, "web:v1").properties.run_id
    done = wait_until(
        lambda: (r := tasks.runs.get(group, registry, run_id)) and status_of(r) == "Failed" and r,
        "the run to fail",
    )
    assert "no Dockerfile" in done.properties.run_error_message


def test_bad_requests_and_unknown_runs(
    tasks: ContainerRegistryTasksMgmtClient, acr: ContainerRegistryManagementClient, group: str
) -> None:
    registry = new_registry(acr, group)
    with pytest.raises(HttpResponseError) as caught:
        tasks.runs.get(group, registry, "ca99")
    assert caught.value.status_code == 404
    with pytest.raises(HttpResponseError) as caught:
        schedule(tasks, group, registry, "source/x.tar.gz", "Not_Lower:v1")
    assert caught.value.status_code == 400


def test_upload_url_refuses_what_storage_refuses(
    sandbox: Sandbox, tasks: ContainerRegistryTasksMgmtClient,
    acr: ContainerRegistryManagementClient, group: str,
) -> None:
    registry = new_registry(acr, group)
    target = tasks.registries.get_build_source_upload_url(group, registry)
    verify = str(sandbox.ca_cert)
    missing_type = requests.put(target.upload_url, data=b"x", verify=verify, timeout=30)
    assert missing_type.status_code == 400
    assert missing_type.headers["x-ms-error-code"] == "MissingRequiredHeader"
    forged = target.upload_url.replace("sig=", "sig=AAAA")
    answer = requests.put(forged, data=b"x", headers={"x-ms-blob-type": "BlockBlob"},
                          verify=verify, timeout=30)
    assert answer.status_code == 403
    assert answer.headers["x-ms-error-code"] == "AuthenticationFailed"
    # The upload URL may write, not read.
    read = requests.get(target.upload_url, verify=verify, timeout=30)
    assert read.status_code == 403


def test_a_free_trial_subscription_cannot_schedule_runs(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Sandbox.start(state, offer="free-trial") as sb:
        subscription = SubscriptionClient(sb.credential(), **client_kwargs(sb)).subscriptions.get(
            sb.subscription_id
        )
        assert subscription.subscription_policies.quota_id == "FreeTrial_2014-09-01"
        mgmt(ResourceManagementClient, sb).resource_groups.create_or_update(
            "rg", {"location": "westeurope"}
        )
        registry = new_registry(mgmt(ContainerRegistryManagementClient, sb), "rg")
        tasks = tasks_client(sb)
        with pytest.raises(HttpResponseError) as caught:
            schedule(tasks, "rg", registry, "source/x.tar.gz", "web:v1")
        assert caught.value.status_code == 400
        error = caught.value.error
        assert error is not None and error.code == "TasksOperationsNotAllowed"
        assert error.message == (
            f"ACR Tasks requests for the registry {registry} and {sb.subscription_id} are not "
            "permitted. Please file an Azure support request at http://aka.ms/azuresupport "
            "for assistance."
        )
        assert error.target == "request"
    # The offer is kept in the state directory.
    with Sandbox.start(state) as sb:
        subscription = SubscriptionClient(sb.credential(), **client_kwargs(sb)).subscriptions.get(
            sb.subscription_id
        )
        assert subscription.subscription_policies.quota_id == "FreeTrial_2014-09-01"
    with Sandbox.start(state, offer="pay-as-you-go") as sb:
        subscription = SubscriptionClient(sb.credential(), **client_kwargs(sb)).subscriptions.get(
            sb.subscription_id
        )
        assert subscription.subscription_policies.quota_id == "PayAsYouGo_2014-09-01"


def test_a_site_runs_the_built_image_by_login_server_and_digest(
    sandbox: Sandbox,
    tasks: ContainerRegistryTasksMgmtClient,
    acr: ContainerRegistryManagementClient,
    group: str,
    tmp_path: Path,
) -> None:
    """The product's Azure path end to end: build, then a site pulling
    `<loginServer>/<repo>@<digest>` with DOCKER_REGISTRY_SERVER_URL = https://<loginServer>."""
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "host.json").write_text('{"version": "2.0"}\n')
    (folder / "Dockerfile").write_text("FROM mcr.microsoft.com/azure-functions/python:4\n")
    (folder / "function_app.py").write_text(
        "import azure.functions as func\n\n"
        "app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)\n\n\n"
        '@app.route(route="hello")\n'
        "def hello(req: func.HttpRequest) -> func.HttpResponse:\n"
        '    return func.HttpResponse("built")\n'
    )
    registry = new_registry(acr, group)
    source = upload(tasks, sandbox, group, registry, context_archive(folder))
    run_id = schedule(tasks, group, registry, source, "hello:v1").properties.run_id
    done = wait_until(
        lambda: (r := tasks.runs.get(group, registry, run_id)) and status_of(r) in (
            "Succeeded", "Failed") and r,
        "the build",
    )
    assert status_of(done) == "Succeeded", done.properties.run_error_message
    digest = done.properties.output_images[0].digest
    login_server = acr.registries.get(group, registry).properties.login_server
    password = acr.registries.list_credentials(group, registry).passwords[0].value

    web = mgmt(WebSiteManagementClient, sandbox)
    plan = web.app_service_plans.begin_create_or_update(
        group, unique("plan-"),
        {"location": "westeurope", "kind": "linux", "properties": {"reserved": True},
         "sku": {"name": "B1", "tier": "Basic"}},
    ).result()
    site = web.web_apps.begin_create_or_update(
        group, unique("func-"),
        {
            "location": "westeurope",
            "kind": "functionapp,linux,container",
            "properties": {
                "serverFarmId": plan.id,
                "siteConfig": {
                    "linuxFxVersion": f"DOCKER|{login_server}/hello@{digest}",
                    "appSettings": [
                        {"name": "DOCKER_REGISTRY_SERVER_URL", "value": f"https://{login_server}"},
                        {"name": "DOCKER_REGISTRY_SERVER_USERNAME", "value": registry},
                        {"name": "DOCKER_REGISTRY_SERVER_PASSWORD", "value": password},
                    ],
                },
            },
        },
    ).result()
    runtime = next(p for p in sandbox.context.providers if hasattr(p, "runtime")).runtime
    try:
        answer = wait_until(
            lambda: (a := requests.get(f"https://{site.default_host_name}/api/hello",
                                       verify=str(sandbox.ca_cert), timeout=30))
            .status_code == 200 and a,
            "the site to serve the built image",
            timeout=120,
        )
    except AssertionError:
        log = runtime.log_file(site.name)
        raise AssertionError(log.read_text() if log.exists() else "no site log") from None
    assert answer.text == "built"
