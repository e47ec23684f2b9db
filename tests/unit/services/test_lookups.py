"""Pick lists against the sandbox: resource groups and registries from ARM, repositories
and tags from the registry's data plane."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.connect import sandbox_target
from app.errors import BadInput, ServiceFailure
from app.sandbox import Sandbox
from app.sandbox.registry import push_package
from app.services.clients import ClientFactory
from app.services.lookups import (
    Region,
    RegistrySummary,
    list_locations,
    list_registries,
    list_repositories,
    list_resource_groups,
    list_tags,
    location_problems,
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
    names = [r.name for r in regions]
    assert "westeurope" in names and "switzerlandnorth" in names
    # Geographies (regionType Logical) host nothing: left out.
    assert "europe" not in names and "unitedstates" not in names
    assert all(n == n.lower() and " " not in n for n in names)
    # Sorted as the portal lists them, by display name, and labelled with both.
    displays = [r.display_name for r in regions]
    assert displays == sorted(displays, key=str.lower)
    assert Region("westeurope", "West Europe").label == "West Europe (westeurope)"
    assert Region("westeurope", "West Europe") in regions


def test_a_region_is_checked_against_the_subscriptions_list(clients: ClientFactory) -> None:
    regions = list_locations(clients)
    assert location_problems("westeurope", regions) == []
    [unknown] = location_problems("marsnorth", regions)
    assert unknown.field == "location"
    assert unknown.message.startswith("'marsnorth' is not a region this subscription offers")
    assert "westeurope" in unknown.message  # the CLI lists what it may write
    assert unknown.plain.endswith("pick one from the list")
    # The portal's display name is recognised, and the spec's spelling named.
    [display] = location_problems("West Europe", regions)
    assert "'westeurope', not 'West Europe'" in display.message
    # No list known: nothing to say beyond the format rule.
    assert location_problems("marsnorth", []) == []


def test_deploy_refuses_a_region_the_subscription_lacks_before_creating(
        clients: ClientFactory) -> None:
    from app.services.deploy import check_region
    from app.spec import DeploymentSpec

    spec = DeploymentSpec()
    spec.location = "marsnorth"
    with pytest.raises(BadInput, match=r"'marsnorth' is not a region .*nothing was created"):
        check_region(clients, spec)
    spec.location = "westeurope"
    check_region(clients, spec)


def test_preflight_with_the_list_replaces_the_format_rule_for_a_display_name(
        clients: ClientFactory) -> None:
    from app.services.plan import preflight_problems
    from app.spec import DeploymentSpec

    spec = DeploymentSpec()
    spec.location = "West Europe"
    without = [p.message for p in preflight_problems(spec) if p.field == "location"]
    assert len(without) == 1 and "not a display name such as West Europe" in without[0]
    known = [p.message for p in preflight_problems(spec, regions=list_locations(clients))
             if p.field == "location"]
    assert len(known) == 1 and "'westeurope', not 'West Europe'" in known[0]
