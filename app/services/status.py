"""What of a spec exists right now, asked of ARM resource by resource (the plan's order)."""

from __future__ import annotations

from app.services.clients import ClientFactory
from app.services.plan import build_plan
from app.services.resources.base import ResourceStatus
from app.spec import DeploymentSpec


def deployment_status(spec: DeploymentSpec, clients: ClientFactory) -> list[ResourceStatus]:
    """One row per resource the plan makes; nothing is asked inside a missing parent."""
    rows: list[ResourceStatus] = []
    missing: set[str] = set()
    for step in build_plan(spec):
        if missing & set(step.probe_needs):
            missing.add(step.name)
            continue
        found = step.probe(clients)
        rows += found
        if any(not row.exists for row in found):
            missing.add(step.name)
    return rows


__all__ = ["ResourceStatus", "deployment_status"]
