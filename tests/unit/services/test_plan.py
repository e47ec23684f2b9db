"""The plan's shape by mode, and the checks before anything is created."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from app.errors import BadInput
from app.services.plan import build_plan, preflight
from app.services.runner import critical_path
from app.spec import DeploymentSpec, load_spec

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.fixture
def sandbox_spec() -> DeploymentSpec:
    return load_spec(EXAMPLES / "digits-classic-sandbox.json")


def deps(spec: DeploymentSpec) -> dict[str, tuple[str, ...]]:
    return {s.name: tuple(sorted(s.depends_on)) for s in build_plan(spec)}


def test_build_plan_with_a_model_folder(sandbox_spec: DeploymentSpec) -> None:
    assert deps(sandbox_spec) == {
        "resource-group": (),
        "cache": ("resource-group",),
        "storage": ("resource-group",),
        "plan": ("resource-group",),
        "registry": ("resource-group",),
        "image": ("registry",),
        "function-app": ("image", "plan", "registry", "resource-group", "storage"),
        # The identity's rights, each a step, before the settings that restart the site.
        "registry-pull": ("function-app", "registry", "storage-roles"),
        "storage-roles": ("function-app", "storage"),
        # Application Insights (on by default) and, keyless, its publisher role.
        "workspace": ("resource-group",),
        "insights": ("resource-group", "workspace"),
        "insights-publisher": ("function-app", "insights"),
        "app-settings": ("cache", "function-app", "insights", "insights-publisher",
                         "registry-pull", "storage-roles"),
        "endpoint": ("app-settings",),
    }


def test_a_plan_that_keeps_keys_grants_no_roles(sandbox_spec: DeploymentSpec) -> None:
    sandbox_spec.function_app.auth = "keys"
    plan = deps(sandbox_spec)
    assert "registry-pull" not in plan and "storage-roles" not in plan
    # With keys the function sends telemetry with the connection string alone: no role.
    assert "insights-publisher" not in plan
    assert plan["app-settings"] == ("cache", "function-app", "insights")


def test_no_monitoring_leaves_application_insights_out(sandbox_spec: DeploymentSpec) -> None:
    sandbox_spec.monitoring.enabled = False
    plan = deps(sandbox_spec)
    assert not {"workspace", "insights", "insights-publisher"} & set(plan)
    assert plan["app-settings"] == ("cache", "function-app", "registry-pull", "storage-roles")


def test_build_plan_with_an_existing_image() -> None:
    spec = load_spec(EXAMPLES / "digits-azure.toml")
    plan = deps(spec)
    assert plan["registry"] == ()  # the registry may live anywhere in the subscription
    assert "image" not in plan
    assert plan["function-app"] == ("plan", "registry", "resource-group", "storage")
    # Premium persistence (this spec) is written to the storage account.
    assert plan["cache"] == ("resource-group", "storage")


def test_only_the_settings_wait_for_the_cache(sandbox_spec: DeploymentSpec) -> None:
    waiting = [n for n, d in deps(sandbox_spec).items() if "cache" in d]
    assert waiting == ["app-settings"]
    steps = build_plan(sandbox_spec)
    # The realistic profile: the cache chain (20 + 1) is the critical path.
    assert critical_path(steps, lambda s: s.nominal_s) == pytest.approx(21.0)


def test_titles_name_the_resources(sandbox_spec: DeploymentSpec) -> None:
    titles = {s.name: s.title for s in build_plan(sandbox_spec)}
    assert titles["cache"] == "Azure Cache for Redis digits-cache-demo (Standard C1)"
    assert titles["plan"] == "App Service plan plan-digits-demo (Linux B1)"


def test_preflight_accepts_the_example(sandbox_spec: DeploymentSpec) -> None:
    preflight(sandbox_spec)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda s: setattr(s.cache, "public_network_access", False), "cache.public_network_access"),
    ],
)
def test_preflight_refuses_what_is_not_supported_yet(
    sandbox_spec: DeploymentSpec, change: object, field: str
) -> None:
    spec = copy.deepcopy(sandbox_spec)
    change(spec)  # type: ignore[operator]
    with pytest.raises(BadInput, match=field) as info:
        preflight(spec)
    assert "nothing was created" in str(info.value)


def test_preflight_lists_rule_problems(sandbox_spec: DeploymentSpec) -> None:
    spec = copy.deepcopy(sandbox_spec)
    spec.cache.size = "P9"
    spec.function_app.storage_account = "Not_Valid"
    with pytest.raises(BadInput) as info:
        preflight(spec)
    text = str(info.value)
    assert "2 problem(s)" in text and "cache.size" in text
    assert "function_app.storage_account" in text


def test_preflight_checks_the_model_folder_before_anything_is_created(
    sandbox_spec: DeploymentSpec, tmp_path: Path
) -> None:
    preflight(sandbox_spec, EXAMPLES)  # resources/sample-model, found above examples/
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "requirements.txt").write_text("scikit-learn\n")
    spec = copy.deepcopy(sandbox_spec)
    spec.image.build_from = str(broken)
    with pytest.raises(BadInput) as info:
        preflight(spec, tmp_path)
    assert str(info.value).startswith("image.build_from: ") and "nothing was created" in str(
        info.value
    )
    spec.image.build_from = "no/such/folder"
    with pytest.raises(BadInput, match="does not exist"):
        preflight(spec, tmp_path)


def test_the_container_start_limit_grows_with_the_model_and_stays_within_azures() -> None:
    from app.services.resources.function_app import (
        START_LIMIT_DEFAULT_S,
        START_LIMIT_MAX_S,
        start_time_limit,
    )

    mib = 1024 * 1024
    assert start_time_limit(0) == START_LIMIT_DEFAULT_S
    assert start_time_limit(10 * mib) == START_LIMIT_DEFAULT_S + 60
    assert start_time_limit(600 * mib) == START_LIMIT_DEFAULT_S + 180
    assert start_time_limit(100 * 1024 * mib) == START_LIMIT_MAX_S
    assert START_LIMIT_DEFAULT_S < start_time_limit(None) < START_LIMIT_MAX_S


def test_a_create_that_answers_failed_is_not_reported_as_created() -> None:
    """ARM may answer a PUT at once with the resource as it stands (here as the SDK
    deserializes ARM's JSON): a registry left
    Failed by an earlier run comes back Failed with no error raised."""
    from azure.mgmt.containerregistry.models import Registry

    from app.errors import ServiceFailure
    from app.services.arm import require_not_failed

    left = Registry({"location": "westeurope", "sku": {"name": "Basic"},
                                 "properties": {"provisioningState": "Failed"}})
    with pytest.raises(ServiceFailure, match="provisioning state Failed"):
        require_not_failed(left, "container registry digitsacr")
    ready = Registry({"location": "westeurope", "sku": {"name": "Basic"},
                                  "properties": {"provisioningState": "Succeeded"}})
    assert require_not_failed(ready, "container registry digitsacr") is ready
