"""The model package end to end on the sandbox: build, push, run in a site, MISS then HIT.

Every part is real: the `package build` / `package push` commands, the sandbox's
ARM endpoint driven by the Azure SDK clients, a redis-server behind the cache
resource, and the function host the sandbox starts for the site.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from app.paths import resources_dir
from app.sandbox import Sandbox
from app.sandbox.processes import processes_mentioning

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]

SAMPLE = resources_dir() / "sample-model"
LOCATION = "westeurope"
GROUP = "rg-package-e2e"


def _post(url: str, body: bytes, ca: Path) -> tuple[int, dict[str, str], bytes]:
    context = ssl.create_default_context(cafile=str(ca))
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return (
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                response.read(),
            )
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def _wait_serving(base: str, ca: Path, timeout: float = 60.0) -> dict[str, Any]:
    """The site's host starts after the create returns (as on Azure): wait for health."""
    context = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/api/health", context=context, timeout=5) as r:
                health: dict[str, Any] = json.loads(r.read())
                return health
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"the site never answered /api/health: {last}")


def test_sample_package_served_by_a_sandbox_site_misses_then_hits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient
    from azure.mgmt.containerregistry import models as acr
    from azure.mgmt.redis import RedisManagementClient
    from azure.mgmt.redis import models as redis_models
    from azure.mgmt.resource.resources import ResourceManagementClient
    from azure.mgmt.web import WebSiteManagementClient
    from azure.mgmt.web import models as web

    state = tmp_path / "sandbox"
    package = tmp_path / "package"
    assert main(["package", "build", str(SAMPLE), "--out", str(package)]) == 0

    with Sandbox.start(state, latency="fast") as sb:
        kwargs: dict[str, Any] = {
            "credential": sb.credential(),
            "subscription_id": sb.subscription_id,
            "base_url": sb.endpoint,
            "credential_scopes": [sb.credential_scope],
            "connection_verify": str(sb.ca_cert),
            # The fast profile sends no Retry-After; poll the LROs briskly.
            "polling_interval": 0.1,
        }
        ResourceManagementClient(**kwargs).resource_groups.create_or_update(
            GROUP, {"location": LOCATION}
        )
        redis_client = RedisManagementClient(**kwargs)
        cache = redis_client.redis.begin_create(
            GROUP,
            "pkg-e2e-cache",
            redis_models.RedisCreateParameters(
                location=LOCATION, sku=redis_models.Sku(name="Basic", family="C", capacity=0)
            ),
        ).result()
        cache_key = redis_client.redis.list_keys(GROUP, cache.name).primary_key

        registries = ContainerRegistryManagementClient(**kwargs).registries
        registry = registries.begin_create(
            GROUP,
            "pkge2eacr",
            acr.Registry(
                location=LOCATION,
                sku=acr.Sku(name="Basic"),
                properties=acr.RegistryProperties(admin_user_enabled=True),
            ),
        ).result()
        image = f"{registry.name}.azurecr.io/digits-scoring:v1"
        capsys.readouterr()
        assert (
            main(["package", "push", str(package), "--image", image, "--state-dir", str(state)])
            == 0
        )
        assert "sha256:" in capsys.readouterr().out

        credentials = registries.list_credentials(GROUP, registry.name)
        assert credentials.passwords
        web_client = WebSiteManagementClient(**kwargs)
        plan = web_client.app_service_plans.begin_create_or_update(
            GROUP,
            "plan-pkg-e2e",
            web.AppServicePlan(
                location=LOCATION,
                sku=web.SkuDescription(name="B1", tier="Basic"),
                reserved=True,
                kind="linux",
            ),
        ).result()
        settings = {
            "FUNCTIONS_EXTENSION_VERSION": "~4",
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "DOCKER_REGISTRY_SERVER_URL": f"https://{registry.name}.azurecr.io",
            "DOCKER_REGISTRY_SERVER_USERNAME": str(credentials.username),
            "DOCKER_REGISTRY_SERVER_PASSWORD": str(credentials.passwords[0].value),
            "REDIS_HOST": str(cache.host_name),
            "REDIS_PORT": str(cache.ssl_port),
            "REDIS_KEY": str(cache_key),
            "REDIS_AUTH": "access-keys",
            "REDIS_CA_BUNDLE": str(sb.ca_cert),
        }
        site = web_client.web_apps.begin_create_or_update(
            GROUP,
            "pkg-e2e-digits",
            web.Site(
                location=LOCATION,
                kind="functionapp,linux,container",
                server_farm_id=plan.id,
                site_config=web.SiteConfig(
                    linux_fx_version=f"DOCKER|{image}",
                    app_settings=[web.NameValuePair(name=k, value=v) for k, v in settings.items()],
                ),
            ),
        ).result()
        keys = web_client.web_apps.list_host_keys(GROUP, site.name)
        function_key = (keys.function_keys or {})["default"]
        base = f"https://{site.default_host_name}"

        health = _wait_serving(base, sb.ca_cert)
        assert health["model_loaded"] is True and health["cache"] == "reachable"

        body = (package / "sample-request.json").read_bytes()
        assert _post(f"{base}/api/score", body, sb.ca_cert)[0] == 401
        status1, headers1, answer1 = _post(
            f"{base}/api/score?code={function_key}", body, sb.ca_cert
        )
        status2, headers2, answer2 = _post(
            f"{base}/api/score?code={function_key}", body, sb.ca_cert
        )

        assert (status1, status2) == (200, 200)
        assert (headers1["x-cache"], headers2["x-cache"]) == ("MISS", "HIT")
        assert json.loads(answer1) == json.loads(answer2) == {"predictions": [2]}

    assert processes_mentioning(str(state)) == [], "the sandbox left processes behind"
