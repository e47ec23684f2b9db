"""Take a deployment down: list what goes, confirm by name, delete, wait, verify gone.

Portal parity: the resource group's name must be typed out. A group this tool
did not create (no `created-by: mlcache-deploy` tag) is refused unless forced.
A group that is already gone counts as success.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from app.errors import BadInput, MlcacheError, NotPermitted, ServiceFailure
from app.rules import CREATED_BY_TAG, CREATED_BY_VALUE, created_by_us
from app.services.arm import get_or_none
from app.services.clients import ClientFactory
from app.services.explain import as_error
from app.services.logs import get_logger

log = get_logger("cleanup")

Say = Callable[[str], None]


@dataclass(frozen=True, order=True)
class GroupItem:
    type: str
    name: str
    id: str = field(default="", compare=False)

    def __str__(self) -> str:
        return f"{self.type} {self.name}"


@dataclass(frozen=True)
class CleanupResult:
    group: str
    deleted: tuple[GroupItem, ...]
    already_gone: bool
    elapsed: float


def group_contents(clients: ClientFactory, group: str) -> list[GroupItem]:
    items = clients.resources().resources.list_by_resource_group(group)
    return sorted(GroupItem(item.type or "", item.name or "", item.id or "") for item in items)


def still_there(clients: ClientFactory, contents: list[GroupItem]) -> list[GroupItem]:
    """Those of `contents` that ARM still finds by id, among what Application Insights
    brings: the component, its workspace, and the smart-detection action group and
    alert rule Azure made beside it unasked (global-location resources no step of the
    plan knows, so the group's own check is not taken as their word)."""
    from app.services.resources.monitoring import GONE_CHECK_APIS

    resources = clients.resources().resources
    return [item for item in contents
            if item.id and item.type.lower() in GONE_CHECK_APIS
            and resources.check_existence_by_id(item.id.lstrip("/"),
                                                api_version=GONE_CHECK_APIS[item.type.lower()])]


def delete_group(
    clients: ClientFactory,
    group: str,
    confirm: str | None,
    force: bool = False,
    say: Say = print,
    poll: float = 0.25,
) -> CleanupResult:
    """Delete `group` after the checks above; raises BadInput/NotPermitted when refused.

    Every ARM call is retried by the client's policy; a fault that outlasts it, at
    any point (listing, deleting, the final check), says to run cleanup again.
    """
    from azure.core.exceptions import AzureError

    try:
        return _delete_group(clients, group, confirm, force, say, poll)
    except AzureError as exc:
        raise cleanup_error(exc, group) from None


def cleanup_error(exc: BaseException, group: str) -> MlcacheError:
    """What a cleanup that Azure (or the network) interrupted tells the person to do."""
    error = as_error(exc, prefix=f"deleting {group}: ", again="run cleanup")
    if isinstance(error, ServiceFailure) and _transient(exc):
        error.recommendation = (
            "A temporary failure interrupted the cleanup: run cleanup again "
            "(what is already deleted stays deleted).")
    return error


def _transient(exc: BaseException) -> bool:
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    from app.services.transport import TRANSIENT_STATUSES

    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return True
    return getattr(exc, "status_code", None) in TRANSIENT_STATUSES


def _delete_group(
    clients: ClientFactory, group: str, confirm: str | None, force: bool, say: Say,
    poll: float,
) -> CleanupResult:
    from azure.core.exceptions import ResourceNotFoundError

    started = time.monotonic()
    resources = clients.resources()
    existing = get_or_none(resources.resource_groups.get, group)
    if existing is None:
        say(f"Resource group {group} does not exist: nothing to delete.")
        return CleanupResult(group, (), True, time.monotonic() - started)
    contents = group_contents(clients, group)
    say(f"Resource group {group} ({existing.location}) holds {len(contents)} resource(s):")
    for item in contents:
        say(f"  {item}")
    if confirm != group:
        raise BadInput(
            f"deleting {group} needs its name typed out: --confirm {group}"
            + (f" (got {confirm!r})" if confirm else ""),
            "Everything listed above is deleted, and it cannot be undone.",
        )
    if not created_by_us(existing.tags) and not force:
        raise NotPermitted(
            f"resource group {group} was not created by mlcache-deploy "
            f"(no tag {CREATED_BY_TAG}: {CREATED_BY_VALUE}); refusing to delete it",
            "If you are sure it should go, add --force.",
        )
    say(f"Deleting resource group {group} ...")
    try:
        poller = resources.resource_groups.begin_delete(group)
        last = 0.0
        while not poller.done():
            poller.wait(timeout=poll)
            now = time.monotonic()
            if now - last >= 5:
                say(f"  still deleting ({now - started:.0f} s)")
                last = now
        poller.result()
    except ResourceNotFoundError:
        log.info("resource group %s vanished while deleting: already gone", group)
    if resources.resource_groups.check_existence(group):
        raise ServiceFailure(
            f"resource group {group} still exists after the delete finished",
            "Run cleanup again in a minute; Azure may still be deleting.",
        )
    left = still_there(clients, contents)
    if left:
        raise ServiceFailure(
            f"resource group {group} is gone but {', '.join(map(str, left))} still "
            "answer(s)", "Run cleanup again in a minute; Azure may still be deleting.")
    elapsed = time.monotonic() - started
    say(f"Resource group {group} is gone ({elapsed:.1f} s).")
    log.info("deleted resource group %s with %d resource(s)", group, len(contents))
    return CleanupResult(group, tuple(contents), False, elapsed)
