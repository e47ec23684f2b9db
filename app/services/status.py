"""What of a spec exists right now, asked of ARM resource by resource (the plan's order).

ARM's answer is the stored state; where a resource can be asked itself (a cache's
PING, the function's health route) the row also carries that live answer, so a
dead server behind a Succeeded record shows up instead of a green row.
"""

from __future__ import annotations

import dataclasses

from app.services.arm import SUCCEEDED
from app.services.clients import ClientFactory
from app.services.livecheck import LiveAnswer
from app.services.plan import build_plan
from app.services.resources.base import ResourceStatus, ResourceStep
from app.spec import DeploymentSpec


def deployment_status(
    spec: DeploymentSpec, clients: ClientFactory, live: bool = False
) -> list[ResourceStatus]:
    """One row per resource the plan makes; nothing is asked inside a missing parent.

    With `live`, each provisioned resource that can be asked itself is (a few
    seconds at most each); without, every row is ARM's stored state.
    """
    rows: list[ResourceStatus] = []
    missing: set[str] = set()
    for step in build_plan(spec):
        if missing & set(step.probe_needs):
            missing.add(step.name)
            continue
        found = step.probe(clients)
        if live:
            found = [_with_live_check(step, clients, row) for row in found]
        rows += found
        if any(not row.exists for row in found):
            missing.add(step.name)
    return rows


def _with_live_check(step: ResourceStep, clients: ClientFactory,
                     row: ResourceStatus) -> ResourceStatus:
    # "exists": a resource without a provisioningState (a site) that ARM found.
    if not row.exists or row.state.lower() not in SUCCEEDED | {"exists"}:
        return row
    try:
        live = step.live_check(clients)
    except Exception as exc:  # a check that could not run says so; status never fails
        live = LiveAnswer(False, f"the live check failed: {type(exc).__name__}: {exc}")
    return row if live is None else dataclasses.replace(row, live=live)


__all__ = ["ResourceStatus", "deployment_status"]
