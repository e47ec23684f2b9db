"""The provider framework: each Azure resource provider is one listed class.

A provider subclasses `Provider` (a large one may combine mixins from several
modules, as `web.WebProvider` does), names its ARM `namespace`, and returns its
Starlette routes (built with `app.sandbox.arm.arm_route`, paths exactly as the
SDK's operations modules spell them). The server adds, for every route:
bearer-token auth, the api-version check, the subscription check, fault
injection, and ARM error bodies for `ArmError`. See docs/sandbox.md
("Adding a provider").

Lifecycle hooks, all called by the sandbox:
  start()            after the store is loaded: bring back backing processes
  teardown(record)   a resource of this provider goes away (own DELETE or the
                     resource group's cascade): stop its processes, drop files
  stop()             the sandbox stops: stop every backing process (the store
                     keeps the resources, `start()` revives them next time)

Helpers on `Provider` do what every ARM resource type does alike, so each
provider writes only its own wire format: `resource_routes` (list/get/put/
patch/delete routes, lists and GET answered from the store), `lookup`/`locate`
(the record a path names, ARM's 404), `put_new` (create under a global name),
`delete_operation` (a repeated DELETE joins the running one),
`remove_after_teardown` and `mark_failed` (operation handlers), and `fault_error`
(the shape a fault rule's answer takes on the provider's paths). The Redis-backed
providers share `redis_base.RedisBackedProvider` on top of this.

`PROVIDER_CLASSES` lists the provider classes by module, in routing order.
"""

from __future__ import annotations

import base64
import importlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.sandbox.arm import (
    ArmError,
    Handler,
    arm_route,
    group_not_found,
    json_response,
    not_found,
    resource_id,
)
from app.sandbox.certs import CertificateAuthority
from app.sandbox.directory import Directory
from app.sandbox.entra_tokens import TokenIssuer
from app.sandbox.faults import FaultPlan
from app.sandbox.latency import LatencyProfile
from app.sandbox.offers import OFFERS, Offer
from app.sandbox.operations import OperationKind, Operations, OpRecord
from app.sandbox.processes import ProcessSupervisor
from app.sandbox.requestlog import REQUEST_LOG_NAME, RequestLog
from app.sandbox.store import Record, Store

# Module path and class name of every provider; order = routing priority.
PROVIDER_CLASSES: list[tuple[str, str]] = [
    ("app.sandbox.providers.resources", "ResourcesProvider"),
    ("app.sandbox.providers.authorization", "AuthorizationProvider"),
    ("app.sandbox.providers.cache", "CacheProvider"),
    ("app.sandbox.providers.managed_redis", "ManagedRedisProvider"),
    ("app.sandbox.providers.storage", "StorageProvider"),
    ("app.sandbox.providers.web", "WebProvider"),
    ("app.sandbox.providers.registry", "RegistryProvider"),
    ("app.sandbox.providers.registry_tasks", "RegistryTasksProvider"),
    ("app.sandbox.providers.insights", "InsightsProvider"),
    ("app.sandbox.providers.insights", "WorkspacesProvider"),
    ("app.sandbox.providers.insights", "AlertsProvider"),
    ("app.sandbox.providers.insights_ingestion", "InsightsIngestionProvider"),
    ("app.sandbox.providers.prices", "PricesProvider"),
]

# Everything under this path skips bearer auth and the api-version check:
# data planes (e.g. a registry's) that authenticate their own way.
DATA_PLANE_ROOT = "/dataplane/"

_PROVIDER_PATH = re.compile(r"/providers/(?P<ns>[^/]+)/(?P<type>[^/?]+)", re.IGNORECASE)


@dataclass
class SandboxContext:
    """What providers share: state, timing, faults, certificates, processes."""

    state_dir: Path
    store: Store
    latency: LatencyProfile
    faults: FaultPlan
    ca: CertificateAuthority
    processes: ProcessSupervisor
    directory: Directory
    endpoint: str = ""
    token: str = ""
    offer: Offer = OFFERS["pay-as-you-go"]
    # The Entra authority's signer: managed identity tokens are minted with it, and
    # data planes that take Entra tokens (Redis) listen to it.
    tokens: TokenIssuer | None = None
    providers: list[Provider] = field(default_factory=list)
    operations: Operations = field(init=False)
    request_log: RequestLog = field(init=False)

    def __post_init__(self) -> None:
        self.operations = Operations(self)
        self.request_log = RequestLog(self.state_dir / REQUEST_LOG_NAME)

    @property
    def subscription_id(self) -> str:
        """The home tenant's subscription (what `connection.json` names first)."""
        return self.store.subscription_id

    def provider_dir(self, namespace: str) -> Path:
        """A directory for a provider's files (configs, certificates, packages)."""
        path = self.state_dir / "providers" / namespace.lower()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def provider_for(self, rtype: str) -> Provider | None:
        # Providers sharing a namespace (Microsoft.Cache) name their types.
        for provider in self.providers:
            if rtype.lower() in (t.lower() for t in provider.resource_types):
                return provider
        namespace = rtype.split("/", 1)[0].lower()
        for provider in self.providers:
            if provider.namespace.lower() == namespace:
                return provider
        return None

    def require_group(self, subscription_id: str, name: str, *, for_write: bool = False) -> Record:
        """The group's record, or ARM's 404; writes into a deleting group get 409."""
        record = self.store.group(subscription_id, name)
        if record is None:
            raise group_not_found(name)
        state = record["body"]["properties"]["provisioningState"]
        if for_write and state == "Deleting":
            raise ArmError(
                409,
                "ResourceGroupBeingDeleted",
                f"The resource group '{record['body']['name']}' is in deprovisioning state and "
                "cannot perform this operation.",
            )
        return record

    def provider_for_path(self, path: str) -> Provider | None:
        """The provider whose namespace a request path names (`.../providers/{ns}/{type}`),
        so answers made for it outside its routes (faults) can take its shape."""
        match = _PROVIDER_PATH.search(path)
        if match is None:
            return None
        return self.provider_for(f"{match.group('ns')}/{match.group('type')}")

    def teardown(self, record: Record) -> None:
        """Ask the owning provider to stop a resource's backing processes."""
        provider = self.provider_for(record["body"]["type"])
        if provider is not None:
            provider.teardown(record)


class Provider:
    """Base class of a resource provider (see the module docstring)."""

    namespace: ClassVar[str] = ""
    # Resource types served, when another provider shares the namespace.
    resource_types: ClassVar[tuple[str, ...]] = ()
    # Path prefixes of data planes this provider serves under the sandbox endpoint
    # (e.g. "/registries/"): no bearer token or api-version check there.
    data_plane_prefixes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx

    def routes(self) -> list[BaseRoute]:
        return []

    def operation_kinds(self) -> dict[str, OperationKind]:
        """Long-running operation handlers by kind (see app.sandbox.operations)."""
        return {}

    def start(self) -> None:
        """Bring back the backing processes of this provider's resources."""

    def teardown(self, record: Record) -> None:
        """Stop the backing of one resource that is going away."""

    def stop(self) -> None:
        """Stop every backing process; resources stay in the store."""

    def on_role_assignment(self, principal_id: str) -> None:
        """A role assignment of `principal_id` has just taken effect (after the latency
        profile's `rbac.propagation`): retry what was refused for want of it."""

    def fault_error(
        self, status: int, code: str, message: str, headers: dict[str, str]
    ) -> ArmError:
        """What a fault rule's `status` answer looks like on this provider's paths: ARM's
        shape here; a resource provider that answers in its own shape (App Service)
        overrides this."""
        return ArmError(status, code, message, headers)

    # helpers for subclasses

    def resource_routes(
        self,
        rtype: str,
        name_param: str,
        *,
        put: Handler,
        patch: Handler,
        delete: Handler,
        view: Callable[[Record], dict[str, Any]] | None = None,
    ) -> tuple[str, list[BaseRoute]]:
        """ARM's routes for one resource type (`Namespace/type`): list in the subscription
        and in a group, GET/PUT/PATCH/DELETE one. Lists and GET answer `view(record)`
        (default: the stored body). Returns the one-resource path (for its actions) and
        the routes."""
        show = view or (lambda record: record["body"])

        async def list_all(request: Request) -> Response:
            return self.list_response(request, rtype, in_group=False, view=show)

        async def list_group(request: Request) -> Response:
            return self.list_response(request, rtype, in_group=True, view=show)

        async def get(request: Request) -> Response:
            return json_response(show(self.lookup(request, rtype, name_param)[1]))

        sub = "/subscriptions/{subscriptionId}"
        in_group = f"{sub}/resourceGroups/{{resourceGroupName}}/providers/{rtype}"
        one = f"{in_group}/{{{name_param}}}"
        return one, [
            arm_route(f"{sub}/providers/{rtype}", list_all, ["GET"]),
            arm_route(in_group, list_group, ["GET"]),
            arm_route(one, get, ["GET"]),
            arm_route(one, put, ["PUT"]),
            arm_route(one, patch, ["PATCH"]),
            arm_route(one, delete, ["DELETE"]),
        ]

    def subscription_matches(self, request: Request) -> str:
        """The subscription the path names, spelled as the sandbox created it, or ARM's 404.

        (The server has already refused a token of another tenant with 401.)"""
        sub = request.path_params.get("subscriptionId", "")
        found = self.ctx.directory.subscription(sub)
        if found is None:
            raise ArmError(
                404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found."
            )
        return found.subscription_id

    def locate(self, request: Request, rtype: str, name_param: str) -> tuple[str, Record | None]:
        """The id a request's path names and its record (None if absent); ARM's 404
        when the group does not exist."""
        sub = self.subscription_matches(request)
        group = request.path_params["resourceGroupName"]
        self.ctx.require_group(sub, group)
        rid = resource_id(sub, group, rtype, request.path_params[name_param])
        return rid, self.ctx.store.resource(rid)

    def lookup(self, request: Request, rtype: str, name_param: str) -> tuple[str, Record]:
        """The id and record a request's path names, or ARM's 404 (group or resource)."""
        rid, record = self.locate(request, rtype, name_param)
        if record is None:
            params = request.path_params
            raise not_found(rtype, params[name_param], params["resourceGroupName"])
        return rid, record

    def write_target(self, request: Request, rtype: str, name_param: str) -> tuple[Record, str]:
        """For a PUT: the group's record (404, or 409 while it is being deleted) and the id
        of the resource the path names, with the group spelled as it was created."""
        sub = self.subscription_matches(request)
        group_record = self.ctx.require_group(
            sub, request.path_params["resourceGroupName"], for_write=True
        )
        name = request.path_params[name_param]
        return group_record, resource_id(sub, group_record["body"]["name"], rtype, name)

    def list_response(
        self,
        request: Request,
        rtype: str,
        *,
        in_group: bool,
        view: Callable[[Record], dict[str, Any]] | None = None,
    ) -> Response:
        """ARM's `{"value": [...]}` of every resource of a type, in the subscription or
        the request's group (404 when the group does not exist), sorted by id."""
        sub = self.subscription_matches(request)
        group = None
        if in_group:
            group = request.path_params["resourceGroupName"]
            self.ctx.require_group(sub, group)
        records = self.ctx.store.resources(rtype, group=group, subscription=sub)
        bodies = [view(r) if view else r["body"] for r in records]
        return json_response({"value": sorted(bodies, key=lambda b: str(b["id"]).lower())})

    def put_new(self, rid: str, record: Record, taken: ArmError) -> None:
        """Store a new resource whose name is global; `taken` if another holds the name."""
        with self.ctx.store.transaction() as store:
            if store.find_by_name(record["body"]["type"], record["body"]["name"]) is not None:
                raise taken
            store.put_resource(rid, record)

    def delete_operation(
        self,
        request: Request,
        holder: dict[str, Any],
        kind: str,
        *,
        location: str,
        resource_id: str | None = None,
        args: dict[str, Any] | None = None,
        on_start: Callable[[], None] | None = None,
    ) -> OpRecord:
        """The delete still running for `holder` (a repeated DELETE joins it), or a new one.

        `on_start` runs in the store's transaction just before a new one starts.
        """
        pending = holder.get("deleteOperation")
        op = self.ctx.operations.get(pending) if pending else None
        if op is None or op["status"] != "InProgress":
            if on_start is not None:
                with self.ctx.store.transaction():
                    on_start()
            op = self.ctx.operations.start(
                request,
                kind,
                namespace=self.namespace,
                location=location,
                resource_id=resource_id,
                final_body=False,
                args=args,
            )
            with self.ctx.store.transaction():
                holder["deleteOperation"] = op["id"]
        return op

    def remove_after_teardown(self, op: OpRecord) -> None:
        """Delete work: stop what backs the operation's resource, then drop its record."""
        record = self.ctx.store.resource(op["resourceId"])
        if record is None:
            return
        self.teardown(record)
        with self.ctx.store.transaction() as store:
            store.remove_resource(op["resourceId"])

    def mark_failed(self, op: OpRecord, error: ArmError | None = None) -> None:
        """Failure handler: the operation's resource (if still there) shows Failed."""
        with self.ctx.store.transaction() as store:
            record = store.resource(op["resourceId"])
            if record is not None:
                record["body"]["properties"]["provisioningState"] = "Failed"


def new_access_key(nbytes: int = 32) -> str:
    """An access key as Azure shows them: base64 of `nbytes` random bytes."""
    return base64.b64encode(secrets.token_bytes(nbytes)).decode("ascii")


def load_providers(ctx: SandboxContext) -> list[Provider]:
    """Instantiate every provider; the sandbox routes to them in this order.

    Imported here rather than at the top, since each provider module imports
    this one for `Provider`.
    """
    providers: list[Provider] = []
    for module_name, class_name in PROVIDER_CLASSES:
        cls = getattr(importlib.import_module(module_name), class_name)
        providers.append(cls(ctx))
    return providers
