"""What of a spec exists right now, asked of ARM resource by resource."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.services.clients import ClientFactory
from app.services.steps import get_or_none, image_reference, state_of
from app.spec import DeploymentSpec


@dataclass(frozen=True)
class ResourceStatus:
    kind: str
    name: str
    exists: bool
    state: str = ""
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "exists": self.exists,
            "state": self.state,
            "detail": self.detail,
        }


def _probe(
    kind: str, name: str, get: Callable[[], Any], detail: Callable[[Any], str]
) -> ResourceStatus:
    from azure.core.exceptions import HttpResponseError

    try:
        resource = get_or_none(get)
    except HttpResponseError as exc:
        code = exc.error.code if exc.error is not None else str(exc.status_code)
        return ResourceStatus(kind, name, False, "unknown", f"ARM answered {code}")
    if resource is None:
        return ResourceStatus(kind, name, False, "missing")
    return ResourceStatus(kind, name, True, state_of(resource) or "exists", detail(resource))


def deployment_status(spec: DeploymentSpec, clients: ClientFactory) -> list[ResourceStatus]:
    group = spec.resource_group.name
    resources = clients.resources()
    out = [
        _probe("resource group", group, lambda: resources.resource_groups.get(group),
               lambda g: f"location {g.location}"),
    ]
    if not out[0].exists:
        return out
    cache = spec.cache
    if cache.kind == "azure-cache-for-redis":
        out.append(
            _probe(
                "Azure Cache for Redis", cache.name,
                lambda: clients.redis().redis.get(group, cache.name),
                lambda c: f"{c.sku.name} {c.sku.family}{c.sku.capacity}, "
                          f"{c.host_name}:{c.ssl_port} (TLS)",
            )
        )
    else:
        enterprise = clients.redis_enterprise()
        out.append(
            _probe(
                "Azure Managed Redis", cache.name,
                lambda: enterprise.redis_enterprise.get(group, cache.name),
                lambda c: f"{getattr(c.sku, 'name', '')}, {c.host_name}",
            )
        )
        if out[-1].exists:
            out.append(
                _probe(
                    "Azure Managed Redis database", f"{cache.name}/default",
                    lambda: enterprise.databases.get(group, cache.name, "default"),
                    lambda d: f"port {d.port} (TLS)",
                )
            )
    app = spec.function_app
    storage = clients.storage()
    out.append(
        _probe("storage account", app.storage_account,
               lambda: storage.storage_accounts.get_properties(group, app.storage_account),
               lambda a: str(getattr(a.kind, "value", a.kind)))
    )
    out.append(
        _probe("App Service plan", app.plan_name,
               lambda: clients.web().app_service_plans.get(group, app.plan_name),
               lambda p: f"{getattr(p.sku, 'name', '')}, {'Linux' if p.reserved else 'Windows'}")
    )
    if spec.image.build_from:
        registry = image_reference(spec).registry
        out.append(
            _probe("container registry", registry,
                   lambda: clients.registry().registries.get(group, registry),
                   lambda r: r.login_server or "")
        )
    out.append(
        _probe("function app", app.name,
               lambda: clients.web().web_apps.get(group, app.name),
               lambda s: f"https://{s.default_host_name} ({s.state or 'unknown'})")
    )
    return out
