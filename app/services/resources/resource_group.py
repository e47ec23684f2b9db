"""The resource group: everything else lives in it, and cleanup deletes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.errors import BadInput
from app.services.arm import get_or_none, require_not_deleting
from app.services.context import DeployContext
from app.services.resources.base import (
    AzCliPart,
    NameAnswer,
    ResourceStatus,
    ResourceStep,
    Shell,
    probe,
)
from app.services.runner import StepReport
from app.spec import DeploymentSpec

if TYPE_CHECKING:
    from app.services.clients import ClientFactory


class ResourceGroupStep(ResourceStep):
    name = "resource-group"
    arm_type = "Microsoft.Resources/resourceGroups"
    label = "resource group"
    icon = "resource-group"
    name_kind = "resource_group"
    probe_needs = ()
    progress_text = "Creating {title}"
    success_text = "Created {title}"

    def __init__(self, spec: DeploymentSpec) -> None:
        super().__init__(spec)
        self.title = f"resource group {spec.resource_group.name}"

    def resource_name(self) -> str:
        return self.spec.resource_group.name

    def has_portal_page(self) -> bool:
        return True

    @classmethod
    def check_name(cls, clients: ClientFactory, name: str, group: str) -> NameAnswer:
        if clients.resources().resource_groups.check_existence(name):
            return NameAnswer("yours", f"Resource group {name} exists; deploy will use it.")
        return NameAnswer("available", f"Resource group {name} will be created.")

    def probe(self, clients: ClientFactory) -> list[ResourceStatus]:
        group = self.spec.resource_group.name
        groups = clients.resources().resource_groups
        return [probe("resource group", group, lambda: groups.get(group),
                      lambda g: f"location {g.location}", self.name)]

    def arm_parameters(self) -> dict[str, dict[str, object]]:
        return {"location": {"type": "string", "defaultValue": self.spec.location}}

    def azcli(self, sh: Shell) -> AzCliPart:
        return AzCliPart(create=[
            f"az group create --name {sh.rg} --location {sh.location} --tags {sh.tags}",
        ])

    def find_existing(self, ctx: DeployContext) -> dict[str, str] | None:
        group = get_or_none(ctx.clients.resources().resource_groups.get, ctx.group)
        if group is None:
            if not ctx.spec.resource_group.create:
                raise BadInput(
                    f"resource group {ctx.group} does not exist and resource_group.create is false",
                    "Create it first, or set resource_group.create to true.",
                )
            return None
        require_not_deleting(group, f"resource group {ctx.group}")
        return {"name": group.name or ctx.group, "location": group.location or ""}

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        group = ctx.clients.resources().resource_groups.create_or_update(
            ctx.group, {"location": ctx.spec.location, "tags": ctx.tags}
        )
        return {"name": group.name or ctx.group, "location": group.location or ""}
