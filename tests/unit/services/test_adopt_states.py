"""A step that finds its resource reads its provisioning state before using it.

Creating/Updating: waited for, then used. Deleting: refused with what to do (wait,
then deploy again). Failed: the same PUT provisions it again (the e2e test in
tests/e2e/test_provisioning_states.py drives that through the CLI).
The sandbox here takes seconds to create and delete a registry, so a step really
meets those states.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.mgmt.containerregistry import models

from app.connect import sandbox_target
from app.sandbox import Sandbox
from app.sandbox.latency import FAST_SECONDS, LatencyProfile
from app.services.clients import ClientFactory
from app.services.events import StepFailed, StepSucceeded
from app.services.resources.registry import RegistryStep
from app.services.resources.resource_group import ResourceGroupStep
from app.services.target import CloudTarget
from tests.unit.services.test_steps import new_spec, run

pytestmark = pytest.mark.sandbox

# Registry create 1.5 s, registry delete (an unlisted step: the default) 3 s.
SLOW_REGISTRY = LatencyProfile("slow-registry", {**FAST_SECONDS, "registry.create": 1.5}, 3.0)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudTarget]:
    state: Path = tmp_path_factory.mktemp("adopt") / "sandbox"
    with Sandbox.start(state, latency=SLOW_REGISTRY):
        yield sandbox_target(state, start=False)


def _registry() -> models.Registry:
    return models.Registry(location="westeurope", sku=models.Sku(name="Basic"),
                           properties=models.RegistryProperties(admin_user_enabled=True))


def test_a_registry_still_creating_is_waited_for_then_used(target: CloudTarget) -> None:
    spec = new_spec()
    assert run(spec, target, ResourceGroupStep(spec))["resource-group"]
    acr = ClientFactory(target).registry().registries
    name = spec.image.registry or ""
    acr.begin_create(spec.resource_group.name, name, _registry())  # not waited for
    assert acr.get(spec.resource_group.name, name).provisioning_state == "Creating"
    started = time.monotonic()
    event = run(spec, target, ResourceGroupStep(spec), RegistryStep(spec))["registry"]
    assert isinstance(event, StepSucceeded), event
    assert time.monotonic() - started >= 0.5  # it waited for the running create
    assert acr.get(spec.resource_group.name, name).provisioning_state == "Succeeded"
    assert event.outputs["login_server"].startswith("127.0.0.1:")


def test_a_registry_being_deleted_is_explained_not_put_again(target: CloudTarget) -> None:
    spec = new_spec()
    assert run(spec, target, ResourceGroupStep(spec))["resource-group"]
    acr = ClientFactory(target).registry().registries
    name = spec.image.registry or ""
    acr.begin_create(spec.resource_group.name, name, _registry()).result()
    acr.begin_delete(spec.resource_group.name, name)  # not waited for
    assert acr.get(spec.resource_group.name, name).provisioning_state == "Deleting"
    event = run(spec, target, ResourceGroupStep(spec), RegistryStep(spec))["registry"]
    assert isinstance(event, StepFailed), event
    assert "is being deleted" in event.message and name in event.message
    assert "Wait until the deletion has finished" in event.hint
    assert "deploy again" in event.hint
