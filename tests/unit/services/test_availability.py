"""Remote name checks against the sandbox: available, yours (same group), taken (elsewhere)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.connect import sandbox_target
from app.sandbox import Sandbox
from app.services.availability import check_availability
from app.services.clients import ClientFactory
from app.spec import DeploymentSpec

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClientFactory]:
    state: Path = tmp_path_factory.mktemp("names") / "sandbox"
    with Sandbox.start(state, latency="fast"):
        target = sandbox_target(state, start=False)
        factory = ClientFactory(target)
        yield factory
        factory.close()


def spec_in(group: str) -> DeploymentSpec:
    spec = DeploymentSpec()
    spec.resource_group.name = group
    return spec


def test_storage_and_cache_names(clients: ClientFactory) -> None:
    from azure.mgmt.redis import models as redis_models
    from azure.mgmt.storage import models as storage_models

    tag = uuid.uuid4().hex[:8]
    group, other = f"rg-names-{tag}", f"rg-other-{tag}"
    account, cache = f"stnames{tag}", f"cache-names-{tag}"
    mine, theirs = spec_in(group), spec_in(other)
    assert check_availability(clients, "storage_account", account, mine).state == "available"
    assert check_availability(clients, "cache", cache, mine).state == "available"
    assert check_availability(clients, "resource_group", group, mine).state == "available"

    clients.resources().resource_groups.create_or_update(group, {"location": "westeurope"})
    clients.storage().storage_accounts.begin_create(
        group, account,
        storage_models.StorageAccountCreateParameters(
            sku=storage_models.Sku(name="Standard_LRS"), kind="StorageV2", location="westeurope"
        ),
    ).result()
    clients.redis().redis.begin_create(
        group, cache,
        redis_models.RedisCreateParameters(
            location="westeurope", sku=redis_models.Sku(name="Basic", family="C", capacity=0)
        ),
    ).result()

    assert check_availability(clients, "storage_account", account, mine).state == "yours"
    assert check_availability(clients, "cache", cache, mine).state == "yours"
    assert check_availability(clients, "resource_group", group, mine).state == "yours"
    taken = check_availability(clients, "storage_account", account, theirs)
    assert taken.state == "taken" and taken.message
    cache_taken = check_availability(clients, "cache", cache, copy.deepcopy(theirs))
    assert cache_taken.state == "taken"
    # Words lead and the name follows as typed: a field's message capitalises its
    # first letter, which must not be the user's own.
    assert cache_taken.message == f"The name {cache}.redis.cache.windows.net is taken"
    clients.resources().resource_groups.begin_delete(group).result()


def test_unknown_kinds_and_errors_answer_unknown(clients: ClientFactory) -> None:
    assert check_availability(clients, "spaceship", "x").state == "unknown"
    # A storage name Azure itself rejects comes back as an answer, not an exception.
    answer = check_availability(clients, "storage_account", "NO", spec_in("rg-x"))
    assert answer.state in ("taken", "unknown") and answer.message


def test_registry_plan_and_function_app_names(clients: ClientFactory) -> None:
    from azure.mgmt.containerregistry import models as acr

    tag = uuid.uuid4().hex[:8]
    group, registry = f"rg-names-{tag}", f"acrnames{tag}"
    mine = spec_in(group)
    assert check_availability(clients, "registry", registry, mine).state == "available"
    assert check_availability(clients, "function_app", f"func-names-{tag}", mine).state == (
        "available"
    )
    assert check_availability(clients, "plan", f"plan-{tag}", mine).state == "available"
    clients.resources().resource_groups.create_or_update(group, {"location": "westeurope"})
    clients.registry().registries.begin_create(
        group, registry, acr.Registry(location="westeurope", sku=acr.Sku(name="Basic"))
    ).result()
    assert check_availability(clients, "registry", registry, mine).state == "yours"
    taken = check_availability(clients, "registry", registry, spec_in("rg-elsewhere"))
    assert taken.state == "taken" and registry in taken.message
    clients.resources().resource_groups.begin_delete(group).result()
