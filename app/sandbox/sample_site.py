"""Put a built model package on a sandbox function app, as a deployer would.

End-to-end tests and the scoring benchmark need the same thing: a package
answering on a sandbox site in front of a real cache. This creates it once,
with the real Azure SDK clients against a running sandbox: a resource group, a
Basic C0 cache, a registry with its admin user, a Linux plan, and a container
function app pulling the package with the admin credentials and reaching the
cache with its primary key over TLS (verified against the sandbox CA).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.sandbox.api import Sandbox, SandboxConnection

# push(image, username, password): store the package under `image` in the sandbox registry.
Push = Callable[[str, str, str], None]


@dataclass(frozen=True)
class SampleSite:
    host: str  # the site's defaultHostName: 127.0.0.1:<port>
    function_key: str

    @property
    def base_url(self) -> str:
        return f"https://{self.host}"


def sdk_kwargs(sb: Sandbox | SandboxConnection, polling_interval: float = 0.1) -> dict[str, Any]:
    """Keyword arguments that point an `azure-mgmt-*` client at the sandbox.

    The fast profile sends no Retry-After, so the pollers use `polling_interval`.
    """
    return {
        "credential": sb.credential(),
        "subscription_id": sb.subscription_id,
        "base_url": sb.endpoint,
        "credential_scopes": [sb.credential_scope],
        "connection_verify": str(sb.ca_cert),
        "polling_interval": polling_interval,
    }


def deploy_sample_site(
    sb: Sandbox | SandboxConnection,
    name: str,
    push: Push,
    *,
    location: str = "westeurope",
    tag: str = "v1",
) -> SampleSite:
    """Create `rg-<name>` with a cache, a registry, a plan and a site running the package
    that `push` stores; return the site once created (its host starts in the background)."""
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient
    from azure.mgmt.containerregistry import models as acr
    from azure.mgmt.redis import RedisManagementClient
    from azure.mgmt.redis import models as redis_models
    from azure.mgmt.resource.resources import ResourceManagementClient
    from azure.mgmt.web import WebSiteManagementClient
    from azure.mgmt.web import models as web

    kwargs = sdk_kwargs(sb)
    group = f"rg-{name}"
    ResourceManagementClient(**kwargs).resource_groups.create_or_update(
        group, {"location": location}
    )
    redis_client = RedisManagementClient(**kwargs)
    cache_name, registry_name, site_name = (
        f"{name}-cache",
        name.replace("-", "") + "acr",
        f"{name}-app",
    )
    cache = redis_client.redis.begin_create(
        group,
        cache_name,
        redis_models.RedisCreateParameters(
            location=location,
            sku=redis_models.Sku(name="Basic", family="C", capacity=0),
            minimum_tls_version="1.2",
        ),
    ).result()
    cache_key = redis_client.redis.list_keys(group, cache_name).primary_key

    registries = ContainerRegistryManagementClient(**kwargs).registries
    registries.begin_create(
        group,
        registry_name,
        acr.Registry(
            location=location,
            sku=acr.Sku(name="Basic"),
            properties=acr.RegistryProperties(admin_user_enabled=True),
        ),
    ).result()
    credentials = registries.list_credentials(group, registry_name)
    if not credentials.passwords:
        raise RuntimeError(f"the sandbox registry {registry_name} listed no admin password")
    username, password = str(credentials.username), str(credentials.passwords[0].value)
    image = f"{registry_name}.azurecr.io/digits-scoring:{tag}"
    push(image, username, password)

    web_client = WebSiteManagementClient(**kwargs)
    plan = web_client.app_service_plans.begin_create_or_update(
        group,
        f"plan-{name}",
        web.AppServicePlan(
            location=location,
            sku=web.SkuDescription(name="B1", tier="Basic"),
            kind="linux",
            properties=web.AppServicePlanProperties(reserved=True),
        ),
    ).result()
    settings = {
        "FUNCTIONS_EXTENSION_VERSION": "~4",
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "DOCKER_REGISTRY_SERVER_URL": f"https://{registry_name}.azurecr.io",
        "DOCKER_REGISTRY_SERVER_USERNAME": username,
        "DOCKER_REGISTRY_SERVER_PASSWORD": password,
        "REDIS_HOST": str(cache.host_name),
        "REDIS_PORT": str(cache.ssl_port),
        "REDIS_KEY": str(cache_key),
        "REDIS_AUTH": "access-keys",
        "REDIS_CA_BUNDLE": str(sb.ca_cert),
    }
    site = web_client.web_apps.begin_create_or_update(
        group,
        site_name,
        web.Site(
            location=location,
            kind="functionapp,linux,container",
            properties=web.SiteProperties(
                server_farm_id=plan.id,
                site_config=web.SiteConfig(
                    linux_fx_version=f"DOCKER|{image}",
                    app_settings=[web.NameValuePair(name=k, value=v) for k, v in settings.items()],
                ),
            ),
        ),
    ).result()
    keys = web_client.web_apps.list_host_keys(group, site_name)
    return SampleSite(str(site.default_host_name), (keys.function_keys or {})["default"])
