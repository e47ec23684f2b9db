"""Transient faults on the data planes are retried, through the product's own code paths.

The faults file's rules apply on a registry's loginServer and on a site's Kudu as on
ARM (`app.sandbox.fault_gate`). Each test injects a 503 with Retry-After and a dropped
connection, shows the product's call comes through them, and shows that the same
faults fail the same call when the target allows no retries (so the retry, not luck,
is what got it through). A cleanup that outlasts its retries says to run it again.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.mgmt.web.models import FileSystemHttpLogsConfig, HttpLogsConfig, SiteLogsConfig

from app.errors import ServiceFailure
from app.sandbox import Sandbox
from app.sandbox.faults import parse_rules
from app.sandbox.registry import push_package
from app.services import logstream
from app.services.cleanup import delete_group
from app.services.clients import ClientFactory
from app.services.lookups import RegistrySummary, list_registries, list_repositories, list_tags
from app.services.scoring import Endpoint, ScoringClient
from app.services.target import CloudTarget, RetrySettings, sandbox_target_from_connection
from app.spec import load_spec
from tests.sandbox.conftest import unique
from tests.sandbox.test_web import Cloud, call, write_package

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
NO_RETRY = RetrySettings(total=0)


@pytest.fixture
def target(sandbox: Sandbox) -> Iterator[CloudTarget]:
    yield sandbox_target_from_connection({
        "endpoint": sandbox.endpoint, "ca_cert": str(sandbox.ca_cert),
        "subscription_id": sandbox.subscription_id, "token": sandbox.token,
    })
    sandbox.context.faults.rules = []


def inject(sb: Sandbox, *rules: dict[str, Any]) -> list[Any]:
    """Make `rules` the running sandbox's faults (fresh counters); returns them."""
    plan = parse_rules({"rules": list(rules)})
    sb.context.faults.rules = plan.rules
    return plan.rules


def fired(rules: list[Any]) -> list[int]:
    return [rule.fired for rule in rules]


def registry_with_images(clients: ClientFactory, target: CloudTarget, tmp_path: Path,
                         group: str) -> RegistrySummary:
    from azure.mgmt.containerregistry import models

    name = unique("retryacr")
    clients.resources().resource_groups.create_or_update(group, {"location": "westeurope"})
    clients.registry().registries.begin_create(
        group, name, models.Registry(location="westeurope", sku=models.Sku(name="Basic"),
                                     properties=models.RegistryProperties())).result()
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "score.py").write_text("print('hi')\n")
    token = target.credential.get_token(*target.credential_scopes).token
    for image in (f"{name}.azurecr.io/ml/score:v1", f"{name}.azurecr.io/ml/score:v2"):
        push_package(package, image, endpoint=target.arm_endpoint,
                     ca_cert=target.ca_bundle or "", token=token)
    [registry] = [r for r in list_registries(clients) if r.name == name]
    return registry


def registry_faults() -> list[dict[str, Any]]:
    return [
        {"method": "POST", "path": "^/oauth2/exchange$", "count": 1, "status": 503,
         "retry_after": 1},
        {"method": "POST", "path": "^/oauth2/token$", "count": 1, "drop": True},
        {"method": "GET", "path": "^/v2/_catalog$", "count": 1, "status": 503,
         "retry_after": 1},
        {"method": "GET", "path": "^/v2/_catalog$", "count": 1, "drop": True},
        {"method": "GET", "path": "^/v2/ml/score/tags/list$", "count": 1, "status": 429,
         "retry_after": 1},
    ]


def test_registry_listing_survives_503_and_dropped_connections(
    sandbox: Sandbox, target: CloudTarget, tmp_path: Path
) -> None:
    clients = ClientFactory(target)
    group = unique("rg-retry-")
    try:
        registry = registry_with_images(clients, target, tmp_path, group)
        rules = inject(sandbox, *registry_faults())
        started = time.monotonic()
        assert list_repositories(target, registry) == ["ml/score"]
        assert list_tags(target, registry, "ml/score") == ["v1", "v2"]
        assert fired(rules) == [1, 1, 1, 1, 1]
        # The two 503s and the 429 each asked for 1 s (Retry-After), and were given it.
        assert time.monotonic() - started >= 3.0

        # The same faults without retries: the first one fails the listing.
        inject(sandbox, *registry_faults())
        bare = dataclasses.replace(target, retry=NO_RETRY)
        with pytest.raises(ServiceFailure, match="HTTP 503 to a token request"):
            list_repositories(bare, registry)
    finally:
        clients.resources().resource_groups.begin_delete(group).result()
        clients.close()


def _container_logging() -> SiteLogsConfig:
    return SiteLogsConfig(http_logs=HttpLogsConfig(file_system=FileSystemHttpLogsConfig(
        retention_in_mb=100, retention_in_days=3, enabled=True)))


def kudu_faults() -> list[dict[str, Any]]:
    return [
        {"method": "GET", "path": "^/api/vfs/LogFiles/$", "count": 1, "drop": True},
        {"method": "GET", "path": "^/api/vfs/LogFiles/$", "count": 1, "status": 503,
         "retry_after": 1},
        {"method": "GET", "path": r"^/api/vfs/LogFiles/.+_default_docker\.log$", "count": 1,
         "status": 502},
        {"method": "GET", "path": r"^/api/vfs/LogFiles/.+_default_docker\.log$", "count": 1,
         "drop": True},
    ]


def test_kudu_log_tail_and_scoring_survive_faults(
    sandbox: Sandbox, target: CloudTarget, tmp_path: Path
) -> None:
    cloud = Cloud(sandbox)
    group = unique("rg-retry-")
    site, host, key = cloud.running_app(group, write_package(tmp_path / "pkg"))
    try:
        cloud.web.web_apps.update_diagnostic_logs_config(group, site.name, _container_logging())
        assert call(sandbox, host, key).status_code == 200
        spec = load_spec(ROOT / "examples" / "digits-classic-sandbox.json")
        spec.resource_group.name, spec.function_app.name = group, site.name
        clients = ClientFactory(target)

        def logged() -> list[str]:
            lines, _ = logstream.tail(spec, target, clients)
            return [line for line in lines if "GET /api/hello 200" in line]

        deadline = time.monotonic() + 30
        while not logged():  # the host writes its request line after answering
            assert time.monotonic() < deadline, "the request never reached the container log"
            time.sleep(0.1)

        rules = inject(sandbox, *kudu_faults())
        assert logged()
        assert fired(rules) == [1, 1, 1, 1]

        inject(sandbox, *kudu_faults())
        with pytest.raises(requests.ConnectionError):
            logstream.tail(spec, dataclasses.replace(target, retry=NO_RETRY), clients)
        clients.close()
    finally:
        cloud.rm.resource_groups.begin_delete(group).result()


def test_a_scoring_call_is_sent_again_after_a_drop_but_a_5xx_is_reported(
    sandbox: Sandbox, target: CloudTarget
) -> None:
    """The sandbox's own /retail/prices route stands in for a function here: a POST
    that gets no answer is sent again; an HTTP 500 answer comes back as it was."""
    url = f"{sandbox.endpoint}/retail/prices"
    endpoint = Endpoint(url, url, "not-a-real-key")
    rules = inject(sandbox, {"method": "POST", "path": "^/retail/prices$", "count": 2,
                             "drop": True})
    with ScoringClient(endpoint, target.verify, retry=target.retry) as client:
        result = client.call(b"{}")
    assert fired(rules) == [2]
    assert result.status != 0, result.error  # an HTTP answer came, after two drops

    rules = inject(sandbox, {"method": "POST", "path": "^/retail/prices$", "status": 500})
    with ScoringClient(endpoint, target.verify, retry=target.retry) as client:
        result = client.call(b"{}")
    assert (result.status, result.error, fired(rules)) == (500, "HTTP 500", [1])

    rules = inject(sandbox, {"method": "POST", "path": "^/retail/prices$", "count": 1,
                             "drop": True})
    with ScoringClient(endpoint, target.verify, retry=NO_RETRY) as client:
        result = client.call(b"{}")
    assert result.status == 0 and "connection closed" in result.error


def test_a_cleanup_interrupted_by_faults_says_run_cleanup_again(
    sandbox: Sandbox, target: CloudTarget
) -> None:
    quick = dataclasses.replace(
        target, retry=RetrySettings(total=2, backoff_factor=0.05, backoff_max=0.1))
    clients = ClientFactory(quick)
    group = unique("rg-retry-")
    clients.resources().resource_groups.create_or_update(
        group, {"location": "westeurope", "tags": {"created-by": "mlcache-deploy"}})
    said: list[str] = []
    for rule in (
        {"method": "DELETE", "path": f"/resourcegroups/{group}$", "status": 503,
         "retry_after": 0},
        {"method": "GET", "path": f"/resourcegroups/{group}/resources$", "drop": True},
    ):
        inject(sandbox, rule)
        with pytest.raises(ServiceFailure) as caught:
            delete_group(clients, group, group, say=said.append)
        assert "run cleanup again" in caught.value.recommendation.lower()
        assert "deploy" not in caught.value.recommendation.lower()
    sandbox.context.faults.rules = []
    result = delete_group(clients, group, group, say=said.append)
    assert not result.already_gone and not clients.resources().resource_groups.check_existence(
        group)
    clients.close()
