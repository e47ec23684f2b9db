"""Each site's Kudu on the SCM host the site reports, and container logging via config/logs.

The client finds Kudu where it would on Azure: the `hostNameSslStates` entry with
`hostType: Repository`. The `*_default_docker.log` files appear only once
`update_diagnostic_logs_config` has set `httpLogs.fileSystem.enabled`, which is
what `az webapp log config --docker-container-logging filesystem` sends.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.mgmt.web.models import FileSystemHttpLogsConfig, HttpLogsConfig, SiteLogsConfig

from app.sandbox import Sandbox
from tests.sandbox.conftest import unique
from tests.sandbox.test_web import Cloud, answers, call, wait_for, write_package

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def kudu_cloud(sandbox: Sandbox) -> Cloud:
    return Cloud(sandbox)


def _scm_host(site: Any) -> str:
    [scm] = [s.name for s in site.properties.host_name_ssl_states if s.host_type == "Repository"]
    return str(scm)


def _get(sb: Any, url: str, token: str | None = None, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token or sb.token}", **kwargs.pop("headers", {})}
    return requests.get(url, headers=headers, verify=str(sb.ca_cert), timeout=30, **kwargs)


def _container_logging() -> SiteLogsConfig:
    # Exactly what azure-cli's `az webapp log config --docker-container-logging filesystem` sends.
    return SiteLogsConfig(
        http_logs=HttpLogsConfig(
            file_system=FileSystemHttpLogsConfig(
                retention_in_mb=100, retention_in_days=3, enabled=True
            )
        )
    )


def test_scm_host_is_reported_like_azure_and_reachable(
    kudu_cloud: Cloud, tmp_path: Path
) -> None:
    sb = kudu_cloud.sb
    group = unique("rg-test-")
    site, host, key = kudu_cloud.running_app(group, write_package(tmp_path / "pkg"))
    try:
        got = kudu_cloud.web.web_apps.get(group, site.name)
        scm = _scm_host(got)
        assert scm.startswith("127.0.0.1:") and scm != host
        assert got.properties.host_names == [host]
        assert got.properties.enabled_host_names == [host, scm]
        standard = [s for s in got.properties.host_name_ssl_states if s.host_type == "Standard"]
        assert [s.name for s in standard] == [host]

        listing_url = f"https://{scm}/api/vfs/LogFiles/"
        assert _get(sb, listing_url, token="not-the-token").status_code == 401
        assert requests.get(listing_url, verify=str(sb.ca_cert), timeout=10).status_code == 401
        # Container logging is off: no docker logs, though the app has run.
        assert _get(sb, listing_url).json() == []
        apps = kudu_cloud.web.web_apps
        config = apps.get_diagnostic_logs_configuration(group, site.name)
        assert config.http_logs.file_system.enabled is False

        updated = apps.update_diagnostic_logs_config(group, site.name, _container_logging())
        assert updated.http_logs.file_system.enabled is True
        assert updated.http_logs.file_system.retention_in_mb == 100
        assert updated.detailed_error_messages.enabled is False  # untouched sections stay
        assert apps.get_diagnostic_logs_configuration(
            group, site.name
        ).http_logs.file_system.enabled

        # New output lands in the container log; what came before does not.
        assert call(sb, host, key).status_code == 200
        apps.restart(group, site.name, synchronous=True)
        wait_for(answers(sb, host, key, "v1 nobody"), what="the function after the restart")

        def docker_logs() -> list[dict[str, Any]]:
            entries: list[dict[str, Any]] = _get(sb, listing_url).json()
            return entries if len(entries) == 2 else []

        entries = wait_for(docker_logs, what="both docker logs")
        by_suffix = {e["name"].split("_127-0-0-1_")[1]: e for e in entries}
        app_log, platform_log = by_suffix["default_docker.log"], by_suffix["docker.log"]
        for entry in entries:
            assert set(entry) == {"name", "size", "mtime", "crtime", "mime", "href", "path"}
            assert entry["href"] == f"https://{scm}/api/vfs/LogFiles/{entry['name']}"
            assert entry["path"] == f"/home/LogFiles/{entry['name']}"
            assert entry["mtime"].endswith("+00:00")
        assert app_log["name"].endswith("_default_docker.log")
        content = _get(sb, app_log["href"]).text
        assert "GET /api/hello 200" in content
        assert "Pulling image" not in content
        platform = _get(sb, platform_log["href"]).text
        assert "restart requested" in platform and "Pulling image" in platform
        assert "Site " + site.name + " restart requested." in platform

        tail = _get(sb, app_log["href"], headers={"Range": "bytes=5-"})
        assert tail.status_code == 206
        assert tail.content.startswith(content.encode()[5:])  # the log may have grown since
        past = _get(sb, app_log["href"], headers={"Range": f"bytes={10**9}-"})
        assert past.status_code == 416
        index = _get(sb, f"https://{scm}/api/logs/docker").json()
        assert {i["machineName"] for i in index} == {"127-0-0-1", "127-0-0-1_default"}

        # The old routes on the sandbox endpoint keep working.
        old = _get(sb, f"{sb.endpoint}/dataplane/sites/{site.name}/api/vfs/LogFiles/site.log")
        assert old.status_code == 200 and "restart requested" in old.text

        # The request log names the Kudu host.
        lines = [
            json.loads(line)
            for line in (sb.state_dir / "requests.log").read_text().splitlines()
        ]
        assert any(ln["host"] == scm and ln["path"] == "/api/vfs/LogFiles/" for ln in lines)
    finally:
        kudu_cloud.rm.resource_groups.begin_delete(group).result()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"https://{scm}/api/vfs/LogFiles/", verify=str(sb.ca_cert), timeout=5)


def test_kudu_logstream_follows_the_container_log(kudu_cloud: Cloud, tmp_path: Path) -> None:
    sb = kudu_cloud.sb
    group = unique("rg-test-")
    site, host, key = kudu_cloud.running_app(group, write_package(tmp_path / "pkg"))
    try:
        apps = kudu_cloud.web.web_apps
        apps.update_diagnostic_logs_config(group, site.name, _container_logging())
        scm = _scm_host(apps.get(group, site.name))
        with _get(sb, f"https://{scm}/api/logstream", stream=True) as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines(decode_unicode=True)
            seen = ""
            deadline = time.monotonic() + 30
            while "Starting Live Log Stream" not in seen and time.monotonic() < deadline:
                seen += next(lines) + "\n"
            assert "Welcome, you are now connected to log-streaming service." in seen
            assert call(sb, host, key).status_code == 200
            while "GET /api/hello 200" not in seen and time.monotonic() < deadline:
                seen += next(lines) + "\n"
            assert "GET /api/hello 200" in seen
    finally:
        kudu_cloud.rm.resource_groups.begin_delete(group).result()


def test_logs_config_refuses_what_app_service_refuses(kudu_cloud: Cloud, group: str) -> None:
    plan = kudu_cloud.plan(group)
    site = kudu_cloud.site(group, plan.id, "nothere01.azurecr.io/app:v1", {})
    bad = SiteLogsConfig(
        http_logs=HttpLogsConfig(
            file_system=FileSystemHttpLogsConfig(retention_in_mb=10, enabled=True)
        )
    )
    with pytest.raises(HttpResponseError) as caught:
        kudu_cloud.web.web_apps.update_diagnostic_logs_config(group, site.name, bad)
    assert caught.value.status_code == 400
    assert caught.value.response is not None
    assert "retentionInMb" in json.loads(caught.value.response.text())["Message"]
