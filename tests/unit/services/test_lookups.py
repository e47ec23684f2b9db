"""Pick lists against the sandbox: resource groups and registries from ARM, repositories
and tags from the registry's data plane."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.connect import sandbox_target
from app.errors import ServiceFailure
from app.sandbox import Sandbox
from app.sandbox.registry import push_package
from app.services.clients import ClientFactory
from app.services.lookups import (
    RegistrySummary,
    list_locations,
    list_registries,
    list_repositories,
    list_resource_groups,
    list_tags,
)
from app.services.target import CloudTarget

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudTarget]:
    state: Path = tmp_path_factory.mktemp("lookups") / "sandbox"
    with Sandbox.start(state, latency="fast"):
        yield sandbox_target(state, start=False)


@pytest.fixture(scope="module")
def clients(target: CloudTarget) -> Iterator[ClientFactory]:
    factory = ClientFactory(target)
    yield factory
    factory.close()


def test_resource_groups_are_listed_with_our_tag(clients: ClientFactory) -> None:
    tag = uuid.uuid4().hex[:6]
    groups = clients.resources().resource_groups
    groups.create_or_update(f"rg-B-{tag}", {"location": "westeurope",
                                            "tags": {"created-by": "mlcache-deploy"}})
    groups.create_or_update(f"rg-a-{tag}", {"location": "northeurope"})
    listed = [g for g in list_resource_groups(clients) if g.name.endswith(tag)]
    assert [g.name for g in listed] == [f"rg-a-{tag}", f"rg-B-{tag}"]
    assert [(g.location, g.created_by_us) for g in listed] == [
        ("northeurope", False), ("westeurope", True)]


def test_registries_repositories_and_tags(target: CloudTarget, clients: ClientFactory,
                                          tmp_path: Path) -> None:
    from azure.mgmt.containerregistry import models

    tag = uuid.uuid4().hex[:6]
    group, name = f"rg-acr-{tag}", f"lookacr{tag}"
    clients.resources().resource_groups.create_or_update(group, {"location": "westeurope"})
    clients.registry().registries.begin_create(
        group, name,
        models.Registry(location="westeurope", sku=models.Sku(name="Basic"),
                        properties=models.RegistryProperties(admin_user_enabled=True)),
    ).result()
    found = [r for r in list_registries(clients) if r.name == name]
    answered = clients.registry().registries.get(group, name).login_server
    # The data plane's host is the loginServer ARM answers (on the sandbox 127.0.0.1:<port>).
    assert answered and answered != f"{name}.azurecr.io"
    assert found == [RegistrySummary(name, answered, group, True)]
    registry = found[0]
    assert list_repositories(target, registry) == []

    package = tmp_path / "pkg"
    package.mkdir()
    (package / "score.py").write_text("print('hi')\n")
    token = target.credential.get_token(*target.credential_scopes).token
    for image in (f"{name}.azurecr.io/ml/score:v2", f"{name}.azurecr.io/ml/score:v1",
                  f"{name}.azurecr.io/other:latest"):
        push_package(package, image, endpoint=target.arm_endpoint,
                     ca_cert=target.ca_bundle or "", token=token)

    assert list_repositories(target, registry) == ["ml/score", "other"]
    assert list_tags(target, registry, "ml/score") == ["v1", "v2"]
    # An unknown repository has no tags; a loginServer nothing answers on says so.
    assert list_tags(target, registry, "nothing-here") == []
    missing = RegistrySummary(f"missing{tag}", "127.0.0.1:9", "", False)
    with pytest.raises(ServiceFailure, match=r"cannot reach 127\.0\.0\.1:9"):
        list_repositories(target, missing)


def test_locations_are_the_subscriptions_physical_regions(clients: ClientFactory) -> None:
    regions = list_locations(clients)
    assert "westeurope" in regions and "switzerlandnorth" in regions
    assert regions == sorted(regions) and all(r == r.lower() and " " not in r for r in regions)
