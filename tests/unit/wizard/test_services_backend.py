"""The wizard's backend on a real sandbox: what of a spec exists, row by row, for
an Azure Managed Redis cache (cluster and default database are separate rows)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.services.context import DeployContext
from app.services.resources.managed_redis import ManagedRedisClusterStep, ManagedRedisDatabaseStep
from app.services.resources.resource_group import ResourceGroupStep
from app.services.runner import Runner
from app.spec import spec_from_dict
from app.wizard.services_backend import ServicesBackend

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServicesBackend]:
    state: Path = tmp_path_factory.mktemp("backend") / "sandbox"
    made = ServicesBackend.for_sandbox(state)
    yield made
    made.close()
    # The wizard's sandbox is a process that outlives its backend: stop it too.
    from app.connect import stop_sandbox_process
    from app.sandbox.processes import processes_mentioning

    assert stop_sandbox_process(state)
    assert not processes_mentioning(str(state.resolve()))


def test_existing_shows_managed_redis_cluster_and_database_rows(backend: ServicesBackend) -> None:
    tag = uuid.uuid4().hex[:8]
    spec = spec_from_dict({
        "version": 1,
        "resource_group": {"name": f"rg-amr-{tag}"},
        "cache": {"name": f"amr-{tag}", "kind": "azure-managed-redis", "tier": "Balanced",
                  "size": "B0"},
        "image": {"reference": f"acr{tag}.azurecr.io/m:v1"},
        "function_app": {"name": f"app-{tag}", "plan_name": f"plan-{tag}",
                         "storage_account": f"st{tag}"},
    })
    rows = {step.name: step for step in backend.plan(spec)}
    assert rows["cache-cluster"].resource_type == "Microsoft.Cache/redisEnterprise"
    assert rows["cache"].resource_name == f"amr-{tag}/default"
    assert backend.existing(spec) == {}

    ctx = DeployContext(spec, backend.target, backend.clients)
    Runner([ResourceGroupStep(spec), ManagedRedisClusterStep(spec)], ctx, []).run()
    found = backend.existing(spec)
    assert set(found) == {"resource-group", "cache-cluster"}
    assert found["cache-cluster"].startswith("Exists")

    Runner([ResourceGroupStep(spec), ManagedRedisClusterStep(spec),
            ManagedRedisDatabaseStep(spec)], ctx, []).run()
    assert set(backend.existing(spec)) == {"resource-group", "cache-cluster", "cache"}
    backend.delete_group(spec.resource_group.name, lambda _text: None)
    assert not backend.group_exists(spec)


def test_group_info_says_whether_we_created_the_group(backend: ServicesBackend) -> None:
    from app.errors import NotPermitted

    tag = uuid.uuid4().hex[:8]
    groups = backend.clients.resources().resource_groups
    ours, theirs = f"rg-ours-{tag}", f"rg-theirs-{tag}"
    groups.create_or_update(ours, {"location": "westeurope",
                                   "tags": {"created-by": "mlcache-deploy"}})
    groups.create_or_update(theirs, {"location": "westeurope"})
    assert backend.group_info(ours).created_by_us is True
    info = backend.group_info(theirs)
    assert info.exists and info.created_by_us is False and info.resources == []
    assert backend.group_info(f"rg-missing-{tag}").exists is False
    assert {ours, theirs} <= set(backend.resource_groups())
    with pytest.raises(NotPermitted):
        backend.delete_group(theirs, lambda _text: None)
    backend.delete_group(theirs, lambda _text: None, force=True)
    backend.delete_group(ours, lambda _text: None)
    assert not ({ours, theirs} & set(backend.resource_groups()))


def test_regions_labelled_and_preflight_refuses_one_not_offered(backend: ServicesBackend) -> None:
    regions = {r.name: r.label for r in backend.locations()}
    assert regions["westeurope"] == "West Europe (westeurope)"
    from app.spec import DeploymentSpec

    spec = DeploymentSpec()
    spec.location = "marsnorth"
    found = [p for p in backend.preflight(spec) if p.field == "location"]
    assert [p.plain for p in found] == [
        "'marsnorth' is not a region this subscription offers; pick one from the list"]
