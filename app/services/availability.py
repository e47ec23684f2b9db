"""Remote name checks: is a name free across Azure, taken, or already ours?

The instant rule check lives in `app.rules`; this is the second, remote half
(run by the wizard in a worker, debounced). Each resource module answers for its
own kind (`ResourceStep.check_name`); the create steps ask the same function
before creating. A name that exists in the spec's own resource group is
"yours": deploy will adopt it. Answers never raise: an error becomes "unknown"
with the reason, since deploy reports a taken name anyway.
"""

from __future__ import annotations

from app.services.clients import ClientFactory
from app.services.explain import describe
from app.services.plan import resource_kinds
from app.services.resources.base import NameAnswer, ResourceStep
from app.spec import DeploymentSpec


def name_kinds() -> dict[str, type[ResourceStep]]:
    """Name kind (a key of app.rules.NAME_RULES) → the resource step that checks it."""
    return {k.name_kind: k for k in resource_kinds() if k.name_kind}


def check_availability(
    clients: ClientFactory, kind: str, name: str, spec: DeploymentSpec | None = None
) -> NameAnswer:
    """Ask ARM about `name` of `kind` (a key of app.rules.NAME_RULES)."""
    resource = name_kinds().get(kind)
    if resource is None:
        return NameAnswer("unknown", f"no remote check for {kind} names")
    group = spec.resource_group.name if spec is not None else ""
    try:
        return resource.check_name(clients, name, group)
    except Exception as exc:
        explained = describe(exc)
        return NameAnswer("unknown", f"could not check: {explained.message}")


__all__ = ["NameAnswer", "check_availability", "name_kinds"]
