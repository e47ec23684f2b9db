"""Steps against the sandbox: adopt what is compatible, refuse what is not, with a clear message."""

from __future__ import annotations

import copy
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
from app.services.resources.app_service_plan import AppServicePlanStep
from app.services.resources.managed_redis import ManagedRedisClusterStep, ManagedRedisDatabaseStep
from app.services.resources.registry import RegistryStep
from app.services.resources.resource_group import ResourceGroupStep
from app.services.resources.storage import StorageAccountStep
from app.services.runner import Runner, Step
from app.services.target import CloudTarget
from app.spec import DeploymentSpec, spec_from_dict

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudTarget]:
    state: Path = tmp_path_factory.mktemp("steps") / "sandbox"
    with Sandbox.start(state, latency="fast"):
        yield sandbox_target(state, start=False)


def new_spec(**group: Any) -> DeploymentSpec:
    tag = uuid.uuid4().hex[:8]
    return spec_from_dict({
        "version": 1,
        "resource_group": {"name": f"rg-steps-{tag}", **group},
        "cache": {"kind": "azure-cache-for-redis", "name": f"cache-steps-{tag}",
                  "auth": "access-keys"},
        "tags": {"team": "ml"},
        "image": {"build_from": "model", "registry": f"acrsteps{tag}", "repository": "m",
                  "tag": "v1"},
        "function_app": {"name": f"func-steps-{tag}", "plan_name": f"plan-steps-{tag}",
                         "storage_account": f"ststeps{tag}"},
    })


def run(spec: DeploymentSpec, target: CloudTarget, *steps: Step) -> dict[str, Event]:
    seen: dict[str, Event] = {}

    def keep(event: Event) -> None:
        if isinstance(event, StepSucceeded | StepFailed):
            seen[event.step] = event

    Runner(list(steps), DeployContext(spec, target), [keep]).run()
    return seen


def test_created_resources_carry_tags_and_a_rerun_adopts_them(target: CloudTarget) -> None:
    spec = new_spec()
    steps = [ResourceGroupStep(spec), StorageAccountStep(spec), AppServicePlanStep(spec)]
    first = run(spec, target, *steps)
    assert all(isinstance(e, StepSucceeded) and not e.adopted for e in first.values())
    clients = ClientFactory(target)
    group = clients.resources().resource_groups.get(spec.resource_group.name)
    assert group.tags == {"team": "ml", "created-by": "mlcache-deploy"}
    web = clients.web()
    plan = web.app_service_plans.get(spec.resource_group.name, spec.function_app.plan_name)
    assert plan.reserved and plan.tags["created-by"] == "mlcache-deploy"
    second = run(spec, target, *steps)
    assert all(isinstance(e, StepSucceeded) and e.adopted for e in second.values())


def test_a_windows_plan_of_the_same_name_is_refused(target: CloudTarget) -> None:
    from azure.mgmt.web import models

    spec = new_spec()
    clients = ClientFactory(target)
    clients.resources().resource_groups.create_or_update(
        spec.resource_group.name, {"location": "westeurope"}
    )
    clients.web().app_service_plans.begin_create_or_update(
        spec.resource_group.name, spec.function_app.plan_name,
        models.AppServicePlan(location="westeurope", sku=models.SkuDescription(name="B1")),
    ).result()
    result = run(spec, target, ResourceGroupStep(spec), AppServicePlanStep(spec))
    failed = result["plan"]
    assert isinstance(failed, StepFailed) and failed.code == "BadInput"
    assert "is a Windows plan" in failed.message and "plan_name" in failed.hint
    assert isinstance(result["resource-group"], StepSucceeded) and result["resource-group"].adopted


def test_a_storage_name_taken_elsewhere_is_refused_before_creating(target: CloudTarget) -> None:
    owner, spec = new_spec(), new_spec()
    spec.function_app.storage_account = owner.function_app.storage_account
    run(owner, target, ResourceGroupStep(owner), StorageAccountStep(owner))
    failed = run(spec, target, ResourceGroupStep(spec), StorageAccountStep(spec))["storage"]
    assert isinstance(failed, StepFailed)
    assert f"storage account name {spec.function_app.storage_account} is not available" in (
        failed.message
    )


def test_a_missing_group_with_create_false_is_bad_input(target: CloudTarget) -> None:
    spec = new_spec(create=False)
    failed = run(spec, target, ResourceGroupStep(spec))["resource-group"]
    assert isinstance(failed, StepFailed)
    assert "does not exist and resource_group.create is false" in failed.message
    assert not ClientFactory(target).resources().resource_groups.check_existence(
        spec.resource_group.name
    )


def test_a_registry_without_admin_user_is_refused_with_the_fix(target: CloudTarget) -> None:
    """Only a spec that keeps keys needs the admin user; a keyless one adopts it as it is."""
    from azure.mgmt.containerregistry import models

    spec = new_spec()
    spec.function_app.auth = "keys"
    clients = ClientFactory(target)
    clients.resources().resource_groups.create_or_update(
        spec.resource_group.name, {"location": "westeurope"}
    )
    clients.registry().registries.begin_create(
        spec.resource_group.name, spec.image.registry,
        models.Registry(location="westeurope", sku=models.Sku(name="Basic")),
    ).result()
    failed = run(spec, target, ResourceGroupStep(spec), RegistryStep(spec))["registry"]
    assert isinstance(failed, StepFailed) and failed.code == "NotPermitted"
    assert "admin user disabled" in failed.message and "--admin-enabled true" in failed.hint
    keyless = copy.deepcopy(spec)
    keyless.function_app.auth = "managed-identity"
    adopted = run(keyless, target, ResourceGroupStep(keyless), RegistryStep(keyless))["registry"]
    assert isinstance(adopted, StepSucceeded), adopted


def test_status_reports_an_azure_managed_redis_cluster_and_database(target: CloudTarget) -> None:
    from app.services.status import deployment_status

    spec = new_spec()
    spec.cache.kind = "azure-managed-redis"
    spec.cache.tier, spec.cache.size, spec.cache.redis_version = "Balanced", "B0", None
    results = run(spec, target, ResourceGroupStep(spec), ManagedRedisClusterStep(spec),
                  ManagedRedisDatabaseStep(spec))
    assert all(isinstance(e, StepSucceeded) for e in results.values()), results
    rows = {row.kind: row for row in deployment_status(spec, ClientFactory(target))}
    cluster = rows["Azure Managed Redis"]
    assert cluster.exists and "Balanced_B0" in cluster.detail
    database = rows["Azure Managed Redis database"]
    assert database.exists and database.name == f"{spec.cache.name}/default"
    assert database.detail.startswith("port ") and "(TLS)" in database.detail
    assert not rows["storage account"].exists


def test_premium_persistence_writes_to_the_storage_account(target: CloudTarget) -> None:
    from app.services.redaction import MASK, redact
    from app.services.resources.redis_cache import RedisCacheStep

    spec = new_spec()
    spec.cache.tier, spec.cache.size, spec.cache.persistence = "Premium", "P1", "rdb"
    cache_step = RedisCacheStep(spec)
    assert set(cache_step.depends_on) == {"resource-group", "storage"}
    results = run(spec, target, ResourceGroupStep(spec), StorageAccountStep(spec), cache_step)
    assert isinstance(results["cache"], StepSucceeded), results["cache"]
    cache = ClientFactory(target).redis().redis.get(spec.resource_group.name, spec.cache.name)
    config = cache.redis_configuration
    assert config.rdb_backup_enabled == "true"
    connection = config.rdb_storage_connection_string
    assert f"AccountName={spec.function_app.storage_account};" in connection
    assert redact(connection) == MASK  # registered as a secret the moment it was read


def test_premium_options_are_sent_to_arm_by_the_cache_step(target: CloudTarget) -> None:
    from app.services.resources.redis_cache import RedisCacheStep

    spec = new_spec()
    spec.cache.tier, spec.cache.size, spec.cache.persistence = "Premium", "P1", "rdb"
    spec.cache.persistence_frequency, spec.cache.replicas = "720", 2
    spec.cache.update_channel = "Preview"
    results = run(spec, target, ResourceGroupStep(spec), StorageAccountStep(spec),
                  RedisCacheStep(spec))
    assert isinstance(results["cache"], StepSucceeded), results["cache"]
    cache = ClientFactory(target).redis().redis.get(spec.resource_group.name, spec.cache.name)
    assert cache.redis_configuration.rdb_backup_frequency == "720"
    assert cache.replicas_per_master == 2 and cache.update_channel == "Preview"


def _registry_with(
    target: CloudTarget, spec: DeploymentSpec, packages: dict[str, dict[str, str]]
) -> str:
    """Create the spec's registry (admin user on) and push `{repo:tag: {file: text}}`."""
    from azure.mgmt.containerregistry import models as acr

    from app.sandbox.registry import push_package

    registry = spec.image.registry or ""
    clients = ClientFactory(target)
    clients.resources().resource_groups.create_or_update(
        spec.resource_group.name, {"location": "westeurope"}
    )
    clients.registry().registries.begin_create(
        spec.resource_group.name, registry,
        acr.Registry(location="westeurope", sku=acr.Sku(name="Basic"),
                     properties=acr.RegistryProperties(admin_user_enabled=True)),
    ).result()
    for image, files in packages.items():
        folder = Path(f"/tmp/mlcache-steps-{uuid.uuid4().hex[:8]}")
        folder.mkdir()
        try:
            for name, text in files.items():
                (folder / name).write_text(text)
            push_package(folder, f"{registry}.azurecr.io/{image}", endpoint=target.arm_endpoint,
                         ca_cert=target.ca_bundle or "",
                         token=target.credential.get_token().token)
        finally:
            for child in folder.iterdir():
                child.unlink()
            folder.rmdir()
    return registry


BROKEN_APP = {
    "host.json": '{"version": "2.0"}',
    "requirements.txt": "azure-functions\n",
    "function_app.py": "raise RuntimeError('init-exploded-marker')\n",
}


def test_a_missing_image_is_named_with_the_tags_there_are(target: CloudTarget) -> None:
    from app.services.resources.registry import RegistryCredentialsStep

    spec = new_spec()
    registry = _registry_with(target, spec, {"scoring:v1": BROKEN_APP, "scoring:v2": BROKEN_APP})
    spec.image = type(spec.image)(reference=f"{registry}.azurecr.io/scoring:v3")
    failed = run(spec, target, RegistryCredentialsStep(spec))["registry"]
    assert isinstance(failed, StepFailed) and failed.code == "BadInput"
    assert f"image {registry}.azurecr.io/scoring:v3 is not in registry {registry}" in failed.message
    assert "tags there: v1, v2" in failed.message


def test_a_site_that_never_answers_fails_with_its_log(target: CloudTarget) -> None:
    from app.services.events import StepLog
    from app.services.plan import build_plan
    from app.services.resources.endpoint import EndpointCheckStep

    spec = new_spec()
    registry = _registry_with(target, spec, {"broken:v1": BROKEN_APP})
    spec.image = type(spec.image)(reference=f"{registry}.azurecr.io/broken:v1")
    spec.cache.tier, spec.cache.size = "Basic", "C0"
    steps = [s if s.name != "endpoint" else EndpointCheckStep(spec, timeout_s=3)
             for s in build_plan(spec)]
    events: list[Event] = []
    result = Runner(steps, DeployContext(spec, target), [events.append]).run()
    failed = result.outcomes["endpoint"]
    assert failed.status == "failed" and failed.error is not None
    assert "did not answer within 3 s" in failed.error.message
    site_log = [e.message for e in events if isinstance(e, StepLog) and e.step == "endpoint"]
    assert any("site log:" in m for m in site_log), site_log
    assert any("init-exploded-marker" in m for m in site_log), site_log
    assert all(o.ok for n, o in result.outcomes.items() if n != "endpoint")


def test_health_wait_says_in_plain_words_that_the_host_is_not_answering(
        target: CloudTarget) -> None:
    """A host that is not listening yet is "not answering yet (connection refused)",
    in the progress line and in the final error, not an exception class name."""
    import socket

    from app.services.events import StepProgress
    from app.services.resources.endpoint import EndpointCheckStep

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on `port` now: connecting is refused.

    class LoneEndpointCheck(EndpointCheckStep):
        depends_on = ()

    spec = new_spec()
    ctx = DeployContext(spec, target)
    ctx.outputs["function-app"] = {"default_host_name": f"127.0.0.1:{port}"}
    seen: list[Event] = []
    Runner([LoneEndpointCheck(spec, timeout_s=0.3)], ctx, [seen.append]).run()
    progress = [e.message for e in seen if isinstance(e, StepProgress) and "/api/" in e.message]
    assert progress and all("not answering yet (connection refused)" in m for m in progress)
    failed = [e for e in seen if isinstance(e, StepFailed)]
    assert len(failed) == 1
    assert "last: not answering yet (connection refused)" in failed[0].message
    assert "ConnectionError" not in " ".join([*progress, failed[0].message])


def test_a_model_whose_init_fails_stops_the_wait_at_once_with_its_words(
        target: CloudTarget, tmp_path: Path) -> None:
    """The health route says the model did not load; the step says so without
    waiting out its timeout (it used to cost 90 s on the sandbox, 15 min on Azure)."""
    import shutil
    import time as clock

    from app.paths import resources_dir
    from app.services.packaging import build_package
    from app.services.plan import build_plan
    from app.services.resources.endpoint import EndpointCheckStep

    model = tmp_path / "model"
    shutil.copytree(resources_dir() / "sample-model", model)
    (model / "score.py").write_text(
        "def init():\n    raise RuntimeError('init-failed-marker')\n\n"
        "def run(raw_data):\n    return raw_data\n")
    from app.sandbox.registry import push_package

    package = build_package(model, tmp_path / "package").out_dir
    spec = new_spec()
    registry = _registry_with(target, spec, {})
    password = ClientFactory(target).registry().registries.list_credentials(
        spec.resource_group.name, registry).passwords[0].value
    push_package(package, f"{registry}.azurecr.io/initfails:v1", endpoint=target.arm_endpoint,
                 ca_cert=target.ca_bundle or "", username=registry, password=password)
    spec.image = type(spec.image)(reference=f"{registry}.azurecr.io/initfails:v1")
    spec.cache.tier, spec.cache.size = "Basic", "C0"
    steps = [s if s.name != "endpoint" else EndpointCheckStep(spec, timeout_s=60)
             for s in build_plan(spec)]
    began = clock.monotonic()
    result = Runner(steps, DeployContext(spec, target), []).run()
    failed = result.outcomes["endpoint"]
    assert failed.status == "failed" and failed.error is not None
    assert "model did not load" in failed.error.message
    assert "init-failed-marker" in failed.error.message
    assert failed.duration < 30, failed.duration  # not the 60 s timeout
    assert clock.monotonic() - began < 60
