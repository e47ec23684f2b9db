"""Remote name checks: is a name free across Azure, taken, or already ours?

The instant rule check lives in `app.rules`; this is the second, remote half
(run by the wizard in a worker, debounced). A name that exists in the spec's own
resource group is "yours": deploy will adopt it. Answers never raise: an error
becomes "unknown" with the reason, since deploy reports a taken name anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.services.clients import ClientFactory
from app.services.hints import describe
from app.services.steps import get_or_none
from app.spec import DeploymentSpec


@dataclass(frozen=True)
class NameAnswer:
    state: str  # available | taken | yours | unknown
    message: str = ""


def _yours(what: str, group: str) -> NameAnswer:
    return NameAnswer("yours", f"This {what} exists in {group}; deploy will use it.")


def _cache(clients: ClientFactory, name: str, group: str) -> NameAnswer:
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.redis import models

    redis = clients.redis().redis
    if group and get_or_none(redis.get, group, name) is not None:
        return _yours("cache", group)
    try:
        redis.check_name_availability(
            models.CheckNameAvailabilityParameters(name=name, type="Microsoft.Cache/redis")
        )
    except HttpResponseError as exc:
        if exc.status_code in (400, 409):
            return NameAnswer("taken", f"{name}.redis.cache.windows.net is taken")
        raise
    return NameAnswer("available", f"{name}.redis.cache.windows.net is available")


def _managed_cache(clients: ClientFactory, name: str, group: str) -> NameAnswer:
    enterprise = clients.redis_enterprise().redis_enterprise
    if group and get_or_none(enterprise.get, group, name) is not None:
        return _yours("cache", group)
    # Azure Managed Redis has no global name-availability operation; the
    # create call reports a conflict.
    return NameAnswer("unknown", "Azure checks Azure Managed Redis names when creating.")


def _storage(clients: ClientFactory, name: str, group: str) -> NameAnswer:
    from azure.mgmt.storage import models

    accounts = clients.storage().storage_accounts
    if group and get_or_none(accounts.get_properties, group, name) is not None:
        return _yours("storage account", group)
    answer = accounts.check_name_availability(
        models.StorageAccountCheckNameAvailabilityParameters(name=name)
    )
    if answer.name_available:
        return NameAnswer("available", f"{name} is available")
    return NameAnswer("taken", answer.message or f"{name} is taken")


def _function_app(clients: ClientFactory, name: str, group: str) -> NameAnswer:
    from azure.mgmt.web import models

    web = clients.web()
    if group and get_or_none(web.web_apps.get, group, name) is not None:
        return _yours("function app", group)
    answer = web.check_name_availability(
        models.ResourceNameAvailabilityRequest(name=name, type="Microsoft.Web/sites")
    )
    if answer.name_available:
        return NameAnswer("available", f"{name}.azurewebsites.net is available")
    return NameAnswer("taken", answer.message or f"{name}.azurewebsites.net is taken")


def _registry(clients: ClientFactory, name: str, group: str) -> NameAnswer:
    from azure.mgmt.containerregistry import models

    registries = clients.registry().registries
    if group and get_or_none(registries.get, group, name) is not None:
        return _yours("registry", group)
    answer = registries.check_name_availability(
        models.RegistryNameCheckRequest(name=name, type="Microsoft.ContainerRegistry/registries")
    )
    if answer.name_available:
        return NameAnswer("available", f"{name}.azurecr.io is available")
    return NameAnswer("taken", answer.message or f"{name}.azurecr.io is taken")


def _plan(clients: ClientFactory, name: str, group: str) -> NameAnswer:
    if group and get_or_none(clients.web().app_service_plans.get, group, name) is not None:
        return _yours("plan", group)
    return NameAnswer("available", "Plan names only need to be unique in the resource group.")


def _resource_group(clients: ClientFactory, name: str, group: str) -> NameAnswer:
    if clients.resources().resource_groups.check_existence(name):
        return NameAnswer("yours", f"Resource group {name} exists; deploy will use it.")
    return NameAnswer("available", f"Resource group {name} will be created.")


CHECKS: dict[str, Callable[[ClientFactory, str, str], NameAnswer]] = {
    "cache": _cache,
    "managed_cache": _managed_cache,
    "storage_account": _storage,
    "function_app": _function_app,
    "registry": _registry,
    "plan": _plan,
    "resource_group": _resource_group,
}


def check_availability(
    clients: ClientFactory, kind: str, name: str, spec: DeploymentSpec | None = None
) -> NameAnswer:
    """Ask ARM about `name` of `kind` (a key of app.rules.NAME_RULES)."""
    check = CHECKS.get(kind)
    if check is None:
        return NameAnswer("unknown", f"no remote check for {kind} names")
    group = spec.resource_group.name if spec is not None else ""
    try:
        return check(clients, name, group)
    except Exception as exc:
        explained = describe(exc)
        return NameAnswer("unknown", f"could not check: {explained.message}")


__all__ = ["CHECKS", "NameAnswer", "check_availability"]
