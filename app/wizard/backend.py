"""What the wizard asks of the engine, as one small interface.

Pages and dialogs never import app.services directly: they call a `Backend`
from a worker (see workers.run_task). `ServicesBackend` (services_backend.py)
implements it on app.services for the sandbox and for Azure. Every method may
block on the network; none may be called on the UI thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from app.rules import Problem
from app.spec import DeploymentSpec

if TYPE_CHECKING:
    from app.services.events import Event
    from app.services.runner import RunResult


@dataclass(frozen=True)
class Availability:
    """The answer of a global name check."""

    state: str  # available | taken | yours (exists in the chosen group) | unknown
    message: str = ""

    @property
    def usable(self) -> bool:
        return self.state in ("available", "yours")


@dataclass(frozen=True)
class PlannedStep:
    """One row of the deploy page, known before anything runs."""

    name: str
    title: str
    resource_type: str = ""
    resource_name: str = ""
    resource_id: str = ""
    depends_on: tuple[str, ...] = ()
    icon: str = "settings"


@dataclass(frozen=True)
class CallResult:
    status: int
    body: str
    latency_ms: float
    cache: str  # HIT | MISS | BYPASS | "" when the function did not say
    cache_detail: str = ""  # why the cache was not used, when the function says


@dataclass(frozen=True)
class InsightsLinks:
    """The Test page's Application Insights line: the resource, and on Azure the portal's
    live metrics and recent requests (None on the sandbox: the id is shown)."""

    name: str
    resource_id: str
    live_metrics: str | None = None
    recent_requests: str | None = None


@dataclass(frozen=True)
class ScoringEndpoint:
    """Where the Test page's calls go: the URL, the function key (kept out of reprs,
    logs and the curl line unless asked for) and the CA bundle to trust ("" for the
    system store)."""

    url: str
    key: str = field(repr=False)
    ca_bundle: str = ""


@dataclass(frozen=True)
class GroupResource:
    name: str
    type: str
    id: str = ""
    icon: str = "settings"


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str


@dataclass(frozen=True)
class Subscription:
    id: str
    name: str
    tenant_id: str = ""


@dataclass(frozen=True)
class Region:
    """A region of the subscription: its ARM name (what the spec holds) and what the
    picker shows ("West Europe (westeurope)")."""

    name: str
    label: str


@dataclass
class GroupInfo:
    exists: bool
    created_by_us: bool = False
    resources: list[GroupResource] = field(default_factory=list)


class Backend(Protocol):
    """Answers for the wizard; all blocking, all called from workers."""

    label: str
    is_azure: bool
    # True when a person signed in (Azure, or a user at the sandbox's authority).
    signed_in: bool
    # Who acts, in which tenant and subscription, as the CLI prints it ("" when the
    # sandbox acts with its own token): names only, never a token.
    identity: str
    spec_dir: Path | None

    def subscription(self) -> Subscription: ...

    def name_available(self, kind: str, name: str, spec: DeploymentSpec) -> Availability: ...

    def resource_groups(self) -> list[str]: ...

    def group_exists(self, spec: DeploymentSpec) -> bool: ...

    def locations(self) -> list[Region]: ...

    def registries(self) -> list[str] | None: ...

    def repositories(self, registry: str) -> list[str]: ...

    def image_tags(self, registry: str, repository: str) -> list[str]: ...

    def monthly_cost(self, spec: DeploymentSpec) -> str | None: ...

    def choice_prices(self, spec: DeploymentSpec, path: str) -> dict[str, str]: ...

    def export(self, spec: DeploymentSpec, fmt: str) -> str: ...

    def export_folder(self, spec: DeploymentSpec, fmt: str, folder: Path) -> list[str]:
        """A folder export (azd) written under `folder`; the files it wrote."""
        ...

    def preflight(self, spec: DeploymentSpec) -> list[Problem]:
        """Every reason the deploy would refuse `spec` before creating anything (the
        engine's own preflight, the model folder read from `spec_dir`)."""
        ...

    def plan(self, spec: DeploymentSpec) -> list[PlannedStep]: ...

    def existing(self, spec: DeploymentSpec) -> dict[str, str]: ...

    def missing(self, spec: DeploymentSpec) -> list[str]: ...

    def deploy(self, spec: DeploymentSpec, listener: Callable[[Event], None],
               cancel: threading.Event) -> RunResult: ...

    def endpoint(self, spec: DeploymentSpec) -> ScoringEndpoint: ...

    def call(self, spec: DeploymentSpec, payload: Any) -> CallResult: ...

    def insights(self, spec: DeploymentSpec) -> InsightsLinks | None: ...

    def function_logs(self, spec: DeploymentSpec, since: int) -> tuple[list[str], int]: ...

    def group_info(self, group: str) -> GroupInfo: ...

    def delete_group(self, group: str, progress: Callable[[str], None],
                     force: bool = False) -> None: ...

    def portal_url(self, resource_id: str) -> str: ...

    def cloud_sign_in(self) -> Any:
        """The sign-in dialog's face for this backend's cloud (services_backend.SignIn)."""
        ...

    def close(self) -> None: ...
