"""The one deploy use case the CLI and the wizard both call: plan, preflight, run, events.

The faces differ only in how they listen (the CLI prints events, the wizard turns
them into signals) and how they cancel (Ctrl-C, a button): both set the event
they pass in. Everything else, from the first ARM read to the deployment log,
happens here the same way for both.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable
from pathlib import Path

from app.errors import BadInput, NotPermitted
from app.rules import image_builder
from app.services.clients import ClientFactory
from app.services.context import DeployContext
from app.services.events import Listener
from app.services.explain import as_error
from app.services.logs import DeploymentLog
from app.services.plan import build_plan, preflight
from app.services.resources.base import ResourceStep
from app.services.runner import Runner, RunResult
from app.services.target import CloudTarget
from app.spec import DeploymentSpec


def plan_deployment(spec: DeploymentSpec, spec_dir: Path) -> list[ResourceStep]:
    """Preflight, then the plan: raises BadInput before anything is asked of Azure."""
    preflight(spec, spec_dir)
    return build_plan(spec)


def check_access(clients: ClientFactory, spec: DeploymentSpec) -> None:
    """One cheap read before creating anything: signed in, subscription visible, ARM reachable."""
    try:
        clients.resources().resource_groups.check_existence(spec.resource_group.name)
    except Exception as exc:
        raise as_error(exc, prefix="before creating anything, ARM could not be used: ") from None


def check_region(clients: ClientFactory, spec: DeploymentSpec) -> None:
    """Refuse, before anything is created, a region the subscription does not offer
    (the rule only checks its format: `marsnorth` is well-formed)."""
    from app.services.lookups import list_locations, location_problems

    problems = location_problems(spec.location, list_locations(clients))
    if problems:
        raise BadInput(f"{problems[0]}; nothing was created",
                       "Choose one of the subscription's regions (the spec's location; "
                       "the wizard's Region list offers only those) and deploy again.")


# The offer of a subscription, as ARM reports it in subscriptionPolicies.quotaId
# (Microsoft Learn lists the IDs under "Understand Cost Management data"). A free
# trial may not run ACR Tasks: scheduleRun answers 400 TasksOperationsNotAllowed.
FREE_TRIAL_QUOTA_PREFIX = "FreeTrial_"


def check_build_allowed(clients: ClientFactory, spec: DeploymentSpec) -> None:
    """Refuse, before anything is created, a cloud build the subscription may not run.

    Only ACR Tasks is refused on a free trial; the layer builder needs no Tasks."""
    if not spec.image.build_from or image_builder(spec) != "acr-tasks":
        return
    subscription = clients.subscriptions().subscriptions.get(clients.target.subscription_id)
    policies = subscription.subscription_policies
    quota_id = (policies.quota_id if policies is not None else None) or ""
    if quota_id.startswith(FREE_TRIAL_QUOTA_PREFIX):
        raise NotPermitted(
            f"subscription {clients.target.subscription_id} is a free trial ({quota_id}), "
            "which may not run ACR Tasks builds (Azure answers TasksOperationsNotAllowed); "
            "nothing was created",
            'Set image.builder to "layer" (the default: built on this machine, no ACR '
            "Tasks needed), or build and push the image elsewhere and set image.reference, "
            "or deploy to a pay-as-you-go subscription.",
            code="TasksOperationsNotAllowed",
        )


def run_deployment(
    spec: DeploymentSpec,
    target: CloudTarget,
    clients: ClientFactory,
    steps: list[ResourceStep],
    spec_dir: Path,
    listeners: Iterable[Listener] = (),
    cancel: threading.Event | None = None,
) -> RunResult:
    """Run `steps` (from `plan_deployment`) to the end; blocks until done or cancelled.

    Every event goes to `listeners` and, redacted, to a new deployment log whose
    path the `RunFinished` event names.
    """
    check_access(clients, spec)
    check_region(clients, spec)
    check_build_allowed(clients, spec)
    with DeploymentLog(spec.resource_group.name) as deployment_log:
        ctx = DeployContext(spec, target, clients, spec_dir=spec_dir)
        if cancel is not None:
            ctx.cancel_event = cancel
        runner = Runner(steps, ctx, [deployment_log, *listeners])
        runner.log_path = str(deployment_log.path)
        return runner.run()


# What a deploy imports lazily on its way, besides the clients: the SDK models its
# steps build requests from, azure-core's response wrapper (loaded at the first
# streamed answer) and the text decoding its policies use, requests' .netrc lookup
# (at a session's first call), the image build, the cache's live check (redis-py)
# and the engine modules the wizard calls around a run.
_LAZY_MODULES = (
    "azure.mgmt.authorization.v2022_04_01.models",
    "azure.mgmt.containerregistry.models",
    "azure.mgmt.containerregistrytasks.models",
    "azure.mgmt.redis.models",
    "azure.mgmt.redisenterprise.models",
    "azure.mgmt.storage.models",
    "azure.mgmt.web.models",
    "azure.core.rest._requests_basic",
    "encodings.utf_8_sig",
    "netrc",
    "redis",
    "redis.backoff",
    "redis.retry",
    "app.services.acr_build",
    "azure.containerregistry",
    "app.services.image_layers",
    "app.services.image_push",
    "app.services.availability",
    "app.services.cleanup",
    "app.services.export",
    "app.services.livecheck",
    "app.services.logstream",
    "app.services.lookups",
    "app.services.pricing",
    "app.services.scoring",
    "app.services.status",
)


def preload(clients: ClientFactory) -> None:
    """Import now, in the calling thread, everything a deploy would otherwise import
    while it runs: every SDK client, the models, redis-py and the function template
    the package is checked against.

    Why: an import runs Python code while holding the interpreter lock, and objects
    made after the wizard freezes the garbage collector's view (`gc.freeze()`) are
    traversed by every full collection. Imported mid-deploy (the image step loaded
    ACR Tasks and redis-py, ~4,000 objects), they made the UI thread wait.
    """
    from app.services.packaging import template_cache_aside

    for make in (clients.resources, clients.subscriptions, clients.redis,
                 clients.redis_enterprise, clients.storage, clients.web, clients.registry,
                 clients.registry_tasks, clients.authorization):
        make()
    for name in _LAZY_MODULES:
        importlib.import_module(name)
    template_cache_aside()


__all__ = ["check_access", "check_build_allowed", "plan_deployment", "preload",
           "run_deployment"]
