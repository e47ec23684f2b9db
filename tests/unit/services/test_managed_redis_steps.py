"""Managed Redis steps against the sandbox: create, adopt, repair access keys, refuse mismatches."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.connect import sandbox_target
from app.sandbox import Sandbox
from app.services.clients import ClientFactory
from app.services.context import DeployContext
from app.services.events import Event, StepFailed, StepSucceeded
from app.services.resources.managed_redis import ManagedRedisClusterStep, ManagedRedisDatabaseStep
from app.services.resources.resource_group import ResourceGroupStep
from app.services.runner import Runner, Step
from app.services.target import CloudTarget
from app.spec import DeploymentSpec, spec_from_dict

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudTarget]:
    state: Path = tmp_path_factory.mktemp("amr-steps") / "sandbox"
    with Sandbox.start(state, latency="fast"):
        yield sandbox_target(state, start=False)


def new_spec(**cache: Any) -> DeploymentSpec:
    tag = uuid.uuid4().hex[:8]
    return spec_from_dict({
        "version": 1,
        "resource_group": {"name": f"rg-amr-{tag}"},
        "cache": {"kind": "azure-managed-redis", "name": f"amr-steps-{tag}", "tier": "Balanced",
                  "size": "B0", "redis_version": None, "auth": "access-keys", **cache},
        "tags": {"team": "ml"},
        "image": {"reference": "acr.azurecr.io/m:v1"},
        "function_app": {"name": f"func-{tag}", "plan_name": f"plan-{tag}",
                         "storage_account": f"st{tag}"},
    })


def run(spec: DeploymentSpec, target: CloudTarget) -> dict[str, Event]:
    seen: dict[str, Event] = {}

    def keep(event: Event) -> None:
        if isinstance(event, StepSucceeded | StepFailed):
            seen[event.step] = event

    steps: list[Step] = [ResourceGroupStep(spec), ManagedRedisClusterStep(spec),
                         ManagedRedisDatabaseStep(spec)]
    Runner(steps, DeployContext(spec, target), [keep]).run()
    return seen


def test_create_then_adopt_with_outputs_read_from_arm(target: CloudTarget) -> None:
    spec = new_spec(persistence="rdb")
    first = run(spec, target)
    cluster, database = first["cache-cluster"], first["cache"]
    assert isinstance(cluster, StepSucceeded) and not cluster.adopted
    assert isinstance(database, StepSucceeded) and not database.adopted
    amr = ClientFactory(target).redis_enterprise()
    group, name = spec.resource_group.name, spec.cache.name
    created = amr.redis_enterprise.get(group, name)
    assert created.sku.name == "Balanced_B0" and created.minimum_tls_version == "1.2"
    assert created.tags == {"team": "ml", "created-by": "mlcache-deploy"}
    db = amr.databases.get(group, name, "default")
    assert db.clustering_policy == "EnterpriseCluster" and db.persistence.rdb_enabled
    assert database.outputs["ssl_port"] == str(db.port)
    assert database.outputs["host"] == created.host_name
    assert database.outputs["kind"] == "azure-managed-redis"

    second = run(spec, target)
    assert all(isinstance(e, StepSucceeded) and e.adopted for e in second.values())


def test_policies_modules_and_frequency_are_sent_to_arm(target: CloudTarget) -> None:
    spec = new_spec(persistence="aof", persistence_frequency="always",
                    eviction_policy="NoEviction", modules=["RediSearch", "RedisJSON"])
    results = run(spec, target)
    assert all(isinstance(e, StepSucceeded) for e in results.values()), results
    db = ClientFactory(target).redis_enterprise().databases.get(
        spec.resource_group.name, spec.cache.name, "default")
    assert db.persistence.aof_enabled and db.persistence.aof_frequency == "always"
    assert db.eviction_policy == "NoEviction" and db.clustering_policy == "EnterpriseCluster"
    assert [m.name for m in db.modules] == ["RediSearch", "RedisJSON"]


def test_a_database_without_the_modules_asked_for_is_refused(target: CloudTarget) -> None:
    spec = new_spec()
    assert all(isinstance(e, StepSucceeded) for e in run(spec, target).values())
    spec.cache.modules = ["RedisJSON"]
    second = run(spec, target)["cache"]
    assert isinstance(second, StepFailed)
    assert "has no RedisJSON module" in second.message
    assert "only be added when a database is created" in second.message


def test_access_keys_follow_the_spec_both_ways(target: CloudTarget) -> None:
    from azure.mgmt.redisenterprise import models

    spec = new_spec()
    run(spec, target)
    amr = ClientFactory(target).redis_enterprise()
    group, name = spec.resource_group.name, spec.cache.name
    amr.databases.begin_update(
        group, name, "default", models.DatabaseUpdate(access_keys_authentication="Disabled")
    ).result()
    again = run(spec, target)
    assert isinstance(again["cache"], StepSucceeded) and not again["cache"].adopted
    assert amr.databases.get(group, name, "default").access_keys_authentication == "Enabled"
    spec.cache.auth = "entra"  # Entra only: the keys Azure would hand out are turned off
    keyless = run(spec, target)
    assert isinstance(keyless["cache"], StepSucceeded) and not keyless["cache"].adopted
    assert amr.databases.get(group, name, "default").access_keys_authentication == "Disabled"


def test_a_cluster_of_another_size_is_refused(target: CloudTarget) -> None:
    spec = new_spec()
    run(spec, target)
    spec.cache.size = "B1"
    refused = run(spec, target)
    failure = refused["cache-cluster"]
    assert isinstance(failure, StepFailed)
    assert "as Balanced_B0, but the spec asks for Balanced_B1" in failure.message
    assert "cache.size" in failure.hint
    assert "cache" not in refused  # skipped, not run


def test_an_oss_clustered_database_is_refused(target: CloudTarget) -> None:
    from azure.mgmt.redisenterprise import models

    spec = new_spec()
    group, name = spec.resource_group.name, spec.cache.name
    run(spec, target)
    amr = ClientFactory(target).redis_enterprise()
    amr.databases.begin_delete(group, name, "default").result()
    amr.databases.begin_create(
        group, name, "default",
        models.Database(clustering_policy="OSSCluster", access_keys_authentication="Enabled"),
    ).result()
    refused = run(spec, target)
    failure = refused["cache"]
    assert isinstance(failure, StepFailed) and "OSS clustering" in failure.message


def test_a_failed_cluster_is_recreated_on_the_next_run(tmp_path: Path) -> None:
    spec = new_spec()
    name = spec.cache.name
    faults = {"rules": [{
        "method": "PUT", "path": f"/redisEnterprise/{name}$", "count": 1,
        "fail_provisioning": True, "code": "ProvisioningDisabled",
        "message": "The cluster could not be provisioned.",
    }]}
    state = tmp_path / "sandbox"
    with Sandbox.start(state, latency="fast", faults=faults):
        target = sandbox_target(state, start=False)
        first = run(spec, target)
        failure = first["cache-cluster"]
        assert isinstance(failure, StepFailed) and failure.code == "ProvisioningDisabled"
        second = run(spec, target)
        assert isinstance(second["cache-cluster"], StepSucceeded)
        assert isinstance(second["cache"], StepSucceeded)
        cluster = ClientFactory(target).redis_enterprise().redis_enterprise.get(
            spec.resource_group.name, name
        )
        assert cluster.provisioning_state == "Succeeded"
        target.close()
