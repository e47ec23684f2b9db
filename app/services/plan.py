"""From a spec to the list of steps, and the checks that run before any of them.

`build_plan` picks the resource steps by mode (an existing image or a build; the
cache kind); `preflight` refuses a spec this version cannot deploy before
anything is created, so a run never stops half-way for a reason known up front.
Name checks, status, export, estimate and the wizard's rows are loops over the
steps this returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from app.errors import BadInput, RuleProblems
from app.rules import Problem, validate_spec
from app.services.context import resolve_spec_path
from app.services.lookups import Region, location_problems
from app.services.resources.app_service_plan import AppServicePlanStep
from app.services.resources.app_settings import FunctionSettingsStep
from app.services.resources.base import ResourceStep
from app.services.resources.cache_access import ManagedRedisAccessStep, RedisCacheAccessStep
from app.services.resources.endpoint import EndpointCheckStep
from app.services.resources.function_app import FunctionAppStep
from app.services.resources.image import ImageBuildStep
from app.services.resources.managed_redis import ManagedRedisClusterStep, ManagedRedisDatabaseStep
from app.services.resources.monitoring import InsightsStep, WorkspaceStep
from app.services.resources.redis_cache import RedisCacheStep
from app.services.resources.registry import RegistryCredentialsStep, RegistryStep
from app.services.resources.resource_group import ResourceGroupStep
from app.services.resources.role_assignments import (
    InsightsPublisherStep,
    RegistryPullStep,
    StorageRolesStep,
)
from app.services.resources.storage import StorageAccountStep
from app.services.runner import check_plan
from app.spec import DeploymentSpec


def build_plan(spec: DeploymentSpec) -> list[ResourceStep]:
    """The steps that create (or adopt) everything `spec` describes, with dependencies."""
    steps: list[ResourceStep] = [ResourceGroupStep(spec)]
    access: ResourceStep
    if spec.cache.kind == "azure-managed-redis":
        database = ManagedRedisDatabaseStep(spec)
        steps += [ManagedRedisClusterStep(spec), database]
        keys, access = database.access_keys, ManagedRedisAccessStep(spec)
        address = database.address
    else:
        cache = RedisCacheStep(spec)
        steps.append(cache)
        keys, access = cache.access_keys, RedisCacheAccessStep(spec)
        address = cache.address
    steps += [StorageAccountStep(spec), AppServicePlanStep(spec)]
    if spec.image.build_from:
        steps += [RegistryStep(spec), ImageBuildStep(spec)]
    else:
        steps.append(RegistryCredentialsStep(spec))
    # The identity's rights: steps of their own. The storage roles come first, then
    # AcrPull, whose step restarts the site once both are held (its first pull and
    # host start were refused without them).
    rights: list[ResourceStep] = []
    if spec.function_app.auth == "managed-identity":
        rights += [StorageRolesStep(spec), RegistryPullStep(spec)]
    if spec.cache.auth == "entra":
        rights.append(access)
    monitoring: list[ResourceStep] = []
    if spec.monitoring.enabled:
        monitoring = [WorkspaceStep(spec), InsightsStep(spec)]
        steps += monitoring
        if spec.function_app.auth == "managed-identity":
            rights.append(InsightsPublisherStep(spec))
    settings = FunctionSettingsStep(spec, keys, address, after=(
        *(m.name for m in monitoring[1:]), *(r.name for r in rights)))
    steps += [FunctionAppStep(spec, early_settings=settings.early), *rights, settings,
              EndpointCheckStep(spec)]
    check_plan(steps)
    return steps


def resource_kinds() -> list[type[ResourceStep]]:
    """Every resource step class there is (those a plan may hold)."""
    found: list[type[ResourceStep]] = []
    pending: list[type[ResourceStep]] = [ResourceStep]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub not in found:
                found.append(sub)
                pending.append(sub)
    return found


def icon_for_type(arm_type: str) -> str:
    """The icon key for an ARM type (types are case-insensitive: the sandbox answers
    Microsoft.Cache/Redis)."""
    for kind in resource_kinds():
        if kind.arm_type and kind.arm_type.lower() == arm_type.lower():
            return kind.icon
    return "settings"


# Options the rules accept but this version cannot deploy yet: (check, field, message).
_NOT_YET = (
    (
        lambda s: not s.cache.public_network_access,
        "cache.public_network_access",
        "a private endpoint (no public access) is not supported by deploy yet",
    ),
)


def unsupported_problems(spec: DeploymentSpec) -> list[Problem]:
    """What the rules accept but this version cannot deploy yet (a private endpoint)."""
    return [Problem(field, message) for check, field, message in _NOT_YET if check(spec)]


def _model_folder_error(spec: DeploymentSpec, spec_dir: Path | None) -> BadInput | None:
    """What is wrong with the model folder to build, read where the engine reads it
    (nothing is checked without `spec_dir`)."""
    if spec_dir is None or not spec.image.build_from:
        return None
    from app.services.packaging import validate_model_dir

    try:
        validate_model_dir(resolve_spec_path(spec.image.build_from, spec_dir))
    except BadInput as exc:
        return exc
    return None


def preflight_problems(spec: DeploymentSpec, spec_dir: Path | None = None,
                       regions: Sequence[Region] = ()) -> list[Problem]:
    """Every reason `preflight` would refuse `spec`, all at once: the wizard's Review
    lists them (with links to their fields) before it offers Create.

    With `regions` (the subscription's, when known) the spec's region must be one of
    them; that answer replaces the format rule's for a display name ("West Europe")."""
    folder = _model_folder_error(spec, spec_dir)
    found = location_problems(spec.location, list(regions))
    rules = [p for p in validate_spec(spec) if not (found and p.field == "location")]
    return [*rules, *found, *unsupported_problems(spec),
            *([Problem("image.build_from", folder.message)] if folder else [])]


def preflight(spec: DeploymentSpec, spec_dir: Path | None = None) -> None:
    """Raise BadInput (exit 2) when the spec breaks a rule or asks for what is not supported.

    With `spec_dir` (where relative paths in the spec are read from), a model folder
    to build is checked too, so a broken folder stops the run before anything exists.
    The checks are `preflight_problems`'; this raises for the first kind found.
    """
    problems = validate_spec(spec)
    if problems:
        listing = "\n  ".join(str(p) for p in problems)
        raise RuleProblems(
            f"the spec has {len(problems)} problem(s):\n  {listing}",
            "Fix them (`mlcache-deploy validate SPEC` lists them) and deploy again.",
        )
    unsupported = unsupported_problems(spec)
    if unsupported:
        raise BadInput(
            f"{unsupported[0]}; nothing was created",
            f"Change {unsupported[0].field} in the spec to deploy with this version.",
        )
    folder = _model_folder_error(spec, spec_dir)
    if folder is not None:
        raise BadInput(
            f"image.build_from: {folder.message}; nothing was created",
            folder.recommendation or "Fix the model folder and deploy again.",
        )
