"""Small helpers every resource module uses to talk to ARM: get, state, wait.

They hold no knowledge of any one resource: "does it exist?" is `get_or_none`,
"is it done?" is `state_of` against `SUCCEEDED` / `FAILED`, and the two waits
keep progress events and cancellation alive while Azure works.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from app.errors import ServiceFailure

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

# provisioningState values after which nothing more will happen by itself.
SUCCEEDED = frozenset({"succeeded", "running"})
FAILED = frozenset({"failed", "canceled", "cancelled"})
# The SDK polls at the target's interval in its own thread; waking up in short
# slices keeps cancel and progress responsive.
_WAIT_SLICE_S = 0.25


class Progress(Protocol):
    """What a wait reports to: the runner's `StepReport` satisfies it."""

    def progress(self, provisioning_state: str, message: str = "", force: bool = False) -> None:
        ...

    def log(self, message: str, level: str = "info") -> None:
        ...

    def check_cancelled(self) -> None:
        ...

    def sleep(self, seconds: float) -> None:
        ...


class Poller(Protocol[T_co]):
    """What `wait_lro` needs of azure-core's LROPoller."""

    def done(self) -> bool: ...
    def status(self) -> str: ...
    def wait(self, timeout: float | None = None) -> None: ...
    def result(self, timeout: float | None = None) -> T_co: ...


def get_or_none(call: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """`call(*args)`, or None when ARM answers 404 (the resource or its group is missing)."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return call(*args, **kwargs)
    except ResourceNotFoundError:
        return None


def enum_text(value: Any) -> str:
    """An SDK enum or string as its wire value ("Succeeded", not "RunStatus.SUCCEEDED")."""
    return str(getattr(value, "value", value) or "")


def state_of(resource: Any) -> str:
    """A resource's provisioningState as text ('' when it has none)."""
    value = getattr(resource, "provisioning_state", None)
    if value is None:
        props = getattr(resource, "properties", None)
        # A generic resource's properties are the wire's own dict.
        value = (props.get("provisioningState") if isinstance(props, dict)
                 else getattr(props, "provisioning_state", None))
    return enum_text(value)


def succeeded(resource: Any) -> bool:
    return state_of(resource).lower() in SUCCEEDED


def failed(resource: Any) -> bool:
    return state_of(resource).lower() in FAILED


def wait_lro(poller: Poller[T], report: Progress, state: str = "Creating") -> T:
    """Wait for an SDK poller, reporting progress and stopping when the run is cancelled."""
    while not poller.done():
        status = str(poller.status() or "")
        report.progress(state if status.lower() in ("", "inprogress", "accepted") else status)
        poller.wait(timeout=_WAIT_SLICE_S)
        report.check_cancelled()
    return poller.result()


def require_not_deleting(resource: Any, what: str) -> None:
    """Refuse, with what to do, a resource Azure is deleting: it can be neither used nor
    provisioned again until it is gone (a PUT would be refused with a 409)."""
    if state_of(resource).lower() == "deleting":
        raise ServiceFailure(
            f"{what} is being deleted (provisioning state Deleting)",
            "Wait until the deletion has finished (usually a few minutes), then deploy "
            "again: the next run creates it anew. To go on now, choose another name.",
        )


def adoptable(resource: Any, what: str) -> bool:
    """Whether a step may use an existing resource as it stands (its find_existing).

    Succeeded (or no provisioningState at all): yes. Creating/Updating: not yet, the
    step's create() waits for it. Failed/Canceled: no, create() sends the same PUT,
    which provisions it again. Deleting: ServiceFailure saying to wait and retry.
    """
    require_not_deleting(resource, what)
    state = state_of(resource).lower()
    return not state or state in SUCCEEDED


def wait_until_settled(
    get: Callable[[], T | None], report: Progress, interval: float, state: str = "Creating",
    what: str = "the resource",
) -> T | None:
    """Poll `get()` until the resource's provisioningState is final (resume after cancel);
    None when it does not exist. A resource being deleted is refused (`require_not_deleting`)."""
    while True:
        resource = get()
        if resource is not None:
            require_not_deleting(resource, what)
        current = state_of(resource)
        if resource is None or current.lower() in SUCCEEDED | FAILED or not current:
            return resource
        report.progress(current or state)
        report.sleep(interval)


def settle_existing(
    get: Callable[[], T | None], report: Progress, interval: float, what: str
) -> T | None:
    """What a create() finds before its PUT: None (nothing there), a resource that is
    done (Succeeded: use it), or one whose provisioning failed (the PUT provisions it
    again, as ARM allows). An operation still running is waited for first."""
    resource = wait_until_settled(get, report, interval, what=what)
    if resource is not None and failed(resource):
        report.log(f"{what} is in provisioning state {state_of(resource)}; sending the same "
                   "request again to provision it anew", "warning")
    return resource


def require_not_failed(resource: T, what: str) -> T:
    """`resource` as a create answered it, refused when its provisioning ended Failed.

    An ARM PUT may answer at once with the resource as it stands, so a resource left
    Failed by an earlier run comes back Failed without any error being raised.
    """
    if failed(resource):
        raise ServiceFailure(
            f"{what} ended in provisioning state {state_of(resource)}",
            "Deploy again: the next run asks Azure to provision it again (delete it "
            "first if it stays Failed).",
        )
    return resource


def id_name(resource_id: str | None) -> str:
    """The last segment of an ARM id (the resource's own name)."""
    return (resource_id or "").rstrip("/").rsplit("/", 1)[-1]


def group_of(resource_id: str | None) -> str:
    """The resource group named in an ARM id."""
    match = re.search(r"/resourceGroups/([^/]+)/", resource_id or "", re.IGNORECASE)
    if not match:
        raise ServiceFailure(f"cannot read the resource group from id {resource_id!r}")
    return match.group(1)


def resource_id(subscription_id: str, group: str, arm_type: str = "", name: str = "") -> str:
    """The ARM id of a group, or of a top-level resource in it."""
    base = f"/subscriptions/{subscription_id}/resourceGroups/{group}"
    if not arm_type or arm_type == "Microsoft.Resources/resourceGroups":
        return base
    return f"{base}/providers/{arm_type}/{name}"
