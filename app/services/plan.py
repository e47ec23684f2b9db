"""From a spec to the list of steps, and the checks that run before any of them.

`build_plan` picks the steps by mode (an existing image or a build; the cache
kind); `preflight` refuses a spec this version cannot deploy before anything is
created, so a run never stops half-way for a reason known up front.
"""

from __future__ import annotations

from pathlib import Path

from app.errors import BadInput
from app.rules import validate_spec
from app.services.managed_redis import BlockAwareRedisCacheStep, managed_redis_steps
from app.services.runner import Step, check_plan
from app.services.steps import (
    AppServicePlanStep,
    EndpointCheckStep,
    FunctionAppStep,
    FunctionSettingsStep,
    ImageBuildStep,
    RegistryCredentialsStep,
    RegistryStep,
    ResourceGroupStep,
    StorageAccountStep,
    resolve_spec_path,
)
from app.spec import DeploymentSpec


def build_plan(spec: DeploymentSpec) -> list[Step]:
    """The steps that create (or adopt) everything `spec` describes, with dependencies."""
    steps: list[Step] = [ResourceGroupStep(spec)]
    if spec.cache.kind == "azure-managed-redis":
        steps += managed_redis_steps(spec)
    else:
        steps.append(BlockAwareRedisCacheStep(spec))
    steps += [StorageAccountStep(spec), AppServicePlanStep(spec)]
    if spec.image.build_from:
        steps += [RegistryStep(spec), ImageBuildStep(spec)]
    else:
        steps.append(RegistryCredentialsStep(spec))
    steps += [FunctionAppStep(spec), FunctionSettingsStep(spec), EndpointCheckStep(spec)]
    check_plan(steps)
    return steps


# Options the rules accept but this version cannot deploy yet: (check, field, message).
_NOT_YET = (
    (
        lambda s: not s.cache.public_network_access,
        "cache.public_network_access",
        "false (a private endpoint) is not supported by deploy yet",
    ),
    (
        lambda s: s.cache.auth == "entra",
        "cache.auth",
        "entra (Microsoft Entra authentication) is not supported by deploy yet",
    ),
)


def preflight(spec: DeploymentSpec, spec_dir: Path | None = None) -> None:
    """Raise BadInput (exit 2) when the spec breaks a rule or asks for what is not supported.

    With `spec_dir` (where relative paths in the spec are read from), a model folder
    to build is checked too, so a broken folder stops the run before anything exists.
    """
    problems = validate_spec(spec)
    if problems:
        listing = "\n  ".join(str(p) for p in problems)
        raise BadInput(
            f"the spec has {len(problems)} problem(s):\n  {listing}",
            "Fix them (`mlcache-deploy validate SPEC` lists them) and deploy again.",
        )
    for check, field, message in _NOT_YET:
        if check(spec):
            raise BadInput(
                f"{field}: {message}; nothing was created",
                f"Change {field} in the spec to deploy with this version.",
            )
    if spec_dir is not None and spec.image.build_from:
        from app.services.packaging import validate_model_dir

        try:
            validate_model_dir(resolve_spec_path(spec.image.build_from, spec_dir))
        except BadInput as exc:
            raise BadInput(
                f"image.build_from: {exc.message}; nothing was created",
                exc.recommendation or "Fix the model folder and deploy again.",
            ) from None
