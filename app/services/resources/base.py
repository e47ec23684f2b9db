"""The contract of a resource module: one step class that knows its whole resource.

A `ResourceStep` is the runner's `Step` (find_existing / create) plus what the
other faces of the product need of the same resource: its ARM type, title and
icon for the wizard's rows, where its name sits in the spec and how that name
is checked remotely, its status probe, its pieces of the ARM template and of
the az CLI script, and the meters it bills on. `status`, `export`, `estimate`,
the name checks and the wizard's rows are loops over the plan's steps.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.errors import BadInput
from app.services.context import DeployContext
from app.services.livecheck import LiveAnswer
from app.services.runner import Step, StepReport
from app.spec import DeploymentSpec

if TYPE_CHECKING:
    from app.services.clients import ClientFactory
    from app.services.meters import PriceQuery


@dataclass(frozen=True)
class NameAnswer:
    """The remote half of a name check (the instant half is `app.rules`)."""

    state: str  # available | taken | yours | unknown
    message: str = ""


def keyless(spec: DeploymentSpec) -> bool:
    """Whether the function reaches its registry and storage with its managed identity
    (role assignments), not the registry's admin password and the storage key."""
    return spec.function_app.auth == "managed-identity"


def yours(what: str, group: str) -> NameAnswer:
    return NameAnswer("yours", f"This {what} exists in {group}; deploy will use it.")


@dataclass(frozen=True)
class ResourceStatus:
    """One row of `status`: what exists right now, and which step it belongs to.

    `live` is what the resource itself answered (None: only ARM's stored state was
    read), since a record can say Succeeded of a cache whose server is gone.
    """

    kind: str
    name: str
    exists: bool
    state: str = ""
    detail: str = ""
    step: str = ""
    live: LiveAnswer | None = None

    @property
    def checked(self) -> str:
        return "live" if self.live is not None else "stored state"

    @property
    def healthy(self) -> bool:
        """Exists, and did not fail a live check."""
        return self.exists and (self.live is None or self.live.ok)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "exists": self.exists,
            "state": self.state,
            "detail": self.detail,
            "checked": self.checked,
            "live_ok": None if self.live is None else self.live.ok,
            "live": "" if self.live is None else self.live.text,
        }


def probe(
    kind: str, name: str, get: Callable[[], Any], detail: Callable[[Any], str], step: str = ""
) -> ResourceStatus:
    """Ask ARM for one resource; an error becomes an 'unknown' row, never an exception."""
    from azure.core.exceptions import HttpResponseError

    from app.services.arm import get_or_none, state_of

    try:
        resource = get_or_none(get)
    except HttpResponseError as exc:
        code = exc.error.code if exc.error is not None else str(exc.status_code)
        return ResourceStatus(kind, name, False, "unknown", f"ARM answered {code}", step)
    if resource is None:
        return ResourceStatus(kind, name, False, "missing", step=step)
    return ResourceStatus(kind, name, True, state_of(resource) or "exists", detail(resource), step)


@dataclass
class ArmWiring:
    """What earlier resources hand the function app in the ARM template."""

    settings: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)


@dataclass
class AzCliPart:
    """A resource's lines in the az CLI script: created first, read after the app exists."""

    create: list[str] = field(default_factory=list)
    read: list[str] = field(default_factory=list)


class Shell:
    """Quoting and shared arguments for az CLI lines."""

    def __init__(self, spec: DeploymentSpec, tags: dict[str, str]) -> None:
        self.q = shlex.quote
        self.rg = shlex.quote(spec.resource_group.name)
        self.location = shlex.quote(spec.location)
        self.tags = " ".join(shlex.quote(f"{k}={v}") for k, v in tags.items())


class ResourceStep(Step[DeployContext]):
    """A plan step that owns everything known about its Azure resource."""

    arm_type: str = ""  # "" for what is not an ARM resource (an image, a health check)
    label: str = ""  # the kind in words: "storage account"
    icon: str = "settings"
    # The name kind for `app.rules.NAME_RULES` and the remote check (None: no check).
    name_kind: str | None = None
    # Steps whose resource must exist for this one's status probe to mean anything.
    probe_needs: tuple[str, ...] = ("resource-group",)

    def __init__(self, spec: DeploymentSpec) -> None:
        self.spec = spec

    # -- what the wizard shows -------------------------------------------------
    def resource_name(self) -> str:
        """The name shown in the deploy page's row."""
        return self.name

    def resource_type(self) -> str:
        """The type shown in the deploy page's row."""
        return self.arm_type

    def has_portal_page(self) -> bool:
        return self.arm_type.startswith("Microsoft.") and self.arm_type.count("/") == 1

    # -- remote name check ------------------------------------------------------
    @classmethod
    def check_name(cls, clients: ClientFactory, name: str, group: str) -> NameAnswer:
        return NameAnswer("unknown", f"no remote check for {cls.name_kind or cls.name} names")

    def require_name_free(self, ctx: DeployContext, name: str, recommendation: str) -> None:
        """Before creating: the same check the wizard runs, refusing a taken name."""
        answer = self.check_name(ctx.clients, name, "")
        if answer.state == "taken":
            raise BadInput(
                f"the {self.label} name {name} is not available: {answer.message}",
                recommendation,
            )

    # -- status, export, price --------------------------------------------------
    def probe(self, clients: ClientFactory) -> list[ResourceStatus]:
        return []

    def live_check(self, clients: ClientFactory) -> LiveAnswer | None:
        """Ask the resource itself whether it works (None: it has no such check, so
        `status` shows ARM's stored state only). Called only when the probe found it
        provisioned; errors are the check's answer, never an exception."""
        return None

    def arm_settings(self) -> list[dict[str, str]]:
        """App settings this resource gives the function app in the ARM template."""
        return []

    def arm_id(self) -> str | None:
        """The template expression the function app waits for (None: nothing)."""
        return None

    def arm_resources(self, wiring: ArmWiring) -> list[dict[str, Any]]:
        return []

    def arm_parameters(self) -> dict[str, dict[str, Any]]:
        return {}

    def azcli(self, sh: Shell) -> AzCliPart:
        return AzCliPart()

    def price_queries(self) -> list[PriceQuery]:
        return []

    # -- the runner's contract ---------------------------------------------------
    def find_existing(self, ctx: DeployContext) -> dict[str, str] | None:
        return None

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        raise NotImplementedError
