"""The wizard's `Backend`, implemented on app.services (the Qt-free engine).

This module is the only wizard module that imports app.services, and it does
so lazily: nothing here loads before the window has painted. It translates
between the engine's results and the small shapes the pages show; it makes no
SDK call of its own. Where the engine offers no answer yet (a cost estimate,
say) the method answers "unknown" and the page says so.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.rules import Problem
from app.spec import DeploymentSpec
from app.wizard.backend import (
    Availability,
    CallResult,
    GroupInfo,
    GroupResource,
    InsightsLinks,
    PlannedStep,
    Region,
    ScoringEndpoint,
    Subscription,
    Tenant,
)

if TYPE_CHECKING:
    from app.services.cleanup import GroupItem
    from app.services.engine_process import EngineProcess
    from app.services.events import Event
    from app.services.lookups import Region as LookupRegion
    from app.services.lookups import RegistrySummary
    from app.services.runner import RunResult
    from app.services.scoring import ScoringClient
    from app.services.target import CloudTarget

class ServicesBackend:
    """One target (sandbox or Azure subscription) and its clients."""

    def __init__(self, target: CloudTarget, label: str, subscription_name: str = "") -> None:
        from app.services.clients import ClientFactory

        self.target = target
        self.clients = ClientFactory(target)
        self.label = label
        self.is_azure = target.kind == "azure"
        self.signed_in = target.signed_in
        self.identity = ""
        self.spec_dir: Path | None = None
        self._subscription_name = subscription_name
        self._scoring: dict[tuple[str, str], ScoringClient] = {}
        self._registries: dict[str, RegistrySummary] = {}
        self._region_list: list[LookupRegion] | None = None
        self._engine: EngineProcess | None = None
        self._closed = False
        self._lock = threading.Lock()

    # -- construction ------------------------------------------
    @classmethod
    def for_sandbox(cls, state_dir: str | Path | None = None,
                    latency: str = "fast") -> ServicesBackend:
        from app.connect import sandbox_process_target

        # A process of its own: it outlives the window and spares the UI thread.
        target = sandbox_process_target(state_dir, latency=latency)
        backend = cls(target, "Local sandbox", "Sandbox subscription")
        backend.warm_up()
        return backend

    def warm_up(self) -> None:
        """Load the SDK clients and everything a deploy imports now, in this worker,
        while the user fills in pages, then move everything loaded so far out of the
        garbage collector's reach: a full collection over the SDK's many model classes
        otherwise pauses every thread, the UI's too, for ~100 ms mid-deploy, and an
        import mid-deploy holds the interpreter lock the UI thread needs.

        The deployment process starts here too, loading the SDKs in parallel, so
        Create finds it ready."""
        import gc

        from app.services.accounts import identity_in_use
        from app.services.deploy import preload

        self._engine_process()
        if self.signed_in:
            # The toolbar names who acts; the token is read here, in the worker.
            self.identity = identity_in_use(self.target).describe()
        preload(self.clients)
        gc.collect()
        gc.freeze()

    def subscription(self) -> Subscription:
        return Subscription(self.target.subscription_id,
                            self._subscription_name or self.target.subscription_id,
                            self.target.tenant_id or "")

    # -- lookups ------------------------------------------
    def name_available(self, kind: str, name: str, spec: DeploymentSpec) -> Availability:
        from app.services.availability import check_availability

        answer = check_availability(self.clients, kind, name, spec)
        return Availability(answer.state, answer.message)

    def resource_groups(self) -> list[str]:
        from app.services.lookups import list_resource_groups

        return [g.name for g in list_resource_groups(self.clients)]

    def group_exists(self, spec: DeploymentSpec) -> bool:
        return self._group_items(spec.resource_group.name) is not None

    def _group_items(self, group: str) -> list[GroupItem] | None:
        """The group's contents, or None when the group does not exist."""
        from app.services.cleanup import group_contents

        try:
            return list(group_contents(self.clients, group))
        except Exception as exc:
            # azure-core maps ARM's 404 (ResourceGroupNotFound) to this class.
            if type(exc).__name__ == "ResourceNotFoundError":
                return None
            raise

    def locations(self) -> list[Region]:
        return [Region(r.name, r.label) for r in self._regions()]

    def _regions(self) -> list[LookupRegion]:
        """The subscription's regions, asked once per backend (they change only as
        Azure opens regions); Review's preflight checks the spec's region against them."""
        from app.services.lookups import list_locations

        with self._lock:
            known = self._region_list
        if known is None:
            known = list_locations(self.clients)
            with self._lock:
                self._region_list = known
        return known

    def registries(self) -> list[str] | None:
        """Names of the subscription's registries (remembered for the data-plane calls)."""
        from app.services.lookups import list_registries

        found = list_registries(self.clients)
        with self._lock:
            self._registries = {r.name.lower(): r for r in found}
        return [r.name for r in found]

    def _registry(self, name: str) -> RegistrySummary:
        with self._lock:
            known = self._registries.get(name.lower())
        if known is None:
            self.registries()  # its loginServer is ARM's to say
            with self._lock:
                known = self._registries.get(name.lower())
        if known is None:
            from app.errors import BadInput

            raise BadInput(f"no container registry named {name} in this subscription")
        return known

    def repositories(self, registry: str) -> list[str]:
        from app.services.lookups import list_repositories

        return list_repositories(self.target, self._registry(registry))

    def image_tags(self, registry: str, repository: str) -> list[str]:
        from app.services.lookups import list_tags

        return list_tags(self.target, self._registry(registry), repository)

    def monthly_cost(self, spec: DeploymentSpec) -> str | None:
        from app.services.pricing import monthly_cost_text

        return monthly_cost_text(spec, self.target)

    def choice_prices(self, spec: DeploymentSpec, path: str) -> dict[str, str]:
        """Each size ("cache.size") or plan ("function_app.plan_sku") with its monthly
        list price in words, from the same price table as the estimate."""
        from app.services.pricing import choice_price_texts

        return choice_price_texts(spec, path, self.target)

    def export(self, spec: DeploymentSpec, fmt: str) -> str:
        from app.services.export import export_text

        return str(export_text(spec, fmt))

    def export_folder(self, spec: DeploymentSpec, fmt: str, folder: Path) -> list[str]:
        from app.services.export import write_export_folder

        return write_export_folder(spec, fmt, folder, self._spec_dir)

    # -- deploy ------------------------------------------
    @property
    def _spec_dir(self) -> Path:
        """Where relative paths in the spec are read from: the opened spec's folder,
        else the current folder (as `deploy` reads them)."""
        return self.spec_dir or Path.cwd()

    def preflight(self, spec: DeploymentSpec) -> list[Problem]:
        """The checks `deploy` runs first, as a list (Review shows them all)."""
        from app.services.plan import preflight_problems

        try:
            regions = self._regions()
        except Exception:
            regions = []  # the list is unknown: the region's format is still checked
        return preflight_problems(spec, self._spec_dir, regions)

    def plan(self, spec: DeploymentSpec) -> list[PlannedStep]:
        """The deploy page's rows, as the resource modules describe their resources."""
        from app.services.arm import resource_id
        from app.services.plan import build_plan

        group = spec.resource_group.name
        rows = []
        for step in build_plan(spec):
            name = step.resource_name()
            link = resource_id(self.target.subscription_id, group, step.arm_type, name) \
                if step.has_portal_page() else ""
            rows.append(PlannedStep(step.name, step.title, step.resource_type(), name, link,
                                    tuple(step.depends_on), step.icon))
        return rows

    def existing(self, spec: DeploymentSpec) -> dict[str, str]:
        from app.services.status import deployment_status

        out: dict[str, str] = {}
        for row in deployment_status(spec, self.clients):
            if row.step and row.exists:
                out[row.step] = f"Exists ({row.state})" if row.state else "Exists"
        return out

    def missing(self, spec: DeploymentSpec) -> list[str]:
        """Resources of the spec that are gone (or failed) now: a finished deployment
        the window reopens on is shown as done only while all of it is there."""
        from app.services.status import deployment_status

        return [row.name for row in deployment_status(spec, self.clients)
                if not row.exists or row.state.lower() == "failed"]

    def deploy(self, spec: DeploymentSpec, listener: Callable[[Event], None],
               cancel: threading.Event) -> RunResult:
        """The same deploy as `mlcache-deploy deploy`, in the deployment process (its
        threads then never hold the interpreter lock the window needs); blocks until
        done or cancelled. A process that has ended is replaced first."""
        try:
            result = self._engine_process().deploy(spec, self._spec_dir, [listener], cancel)
        finally:
            with self._lock:
                self._scoring.clear()
        return result

    def _engine_process(self) -> EngineProcess:
        from app.errors import ServiceFailure
        from app.services.engine_process import EngineProcess

        with self._lock:
            if self._closed:
                raise ServiceFailure("this connection is closed")
            engine = self._engine
            if engine is not None and not engine.alive:
                stale, engine = engine, None
                stale.close()
            if engine is None:
                engine = self._engine = EngineProcess(self.target)
        return engine

    # -- test ------------------------------------------
    def _scoring_client(self, spec: DeploymentSpec) -> ScoringClient:
        """The kept-alive client of the spec's function (its endpoint read once)."""
        from app.services.scoring import ScoringClient, find_endpoint

        key = (spec.resource_group.name, spec.function_app.name)
        with self._lock:
            client = self._scoring.get(key)
        if client is None:
            endpoint = find_endpoint(spec, self.target, self.clients)
            client = ScoringClient(endpoint, self.target.verify, retry=self.target.retry)
            with self._lock:
                self._scoring[key] = client
        return client

    def endpoint(self, spec: DeploymentSpec) -> ScoringEndpoint:
        client = self._scoring_client(spec)
        verify = self.target.verify
        return ScoringEndpoint(client.endpoint.url, client.endpoint.key,
                               verify if isinstance(verify, str) else "")

    def call(self, spec: DeploymentSpec, payload: Any) -> CallResult:
        client = self._scoring_client(spec)
        result = client.call(json.dumps(payload).encode("utf-8"))
        body = result.body if isinstance(result.body, str) else json.dumps(result.body)
        if result.error and not body:
            body = result.error
        return CallResult(result.status, body or "", result.latency_ms, result.cache,
                          result.cache_detail)

    def insights(self, spec: DeploymentSpec) -> InsightsLinks | None:
        from app.services.resources.monitoring import insights_view

        view = insights_view(spec, self.clients)
        if view is None:
            return None
        if not self.is_azure:  # no portal to link to: the page shows the id
            return InsightsLinks(view.name, view.resource_id)
        return InsightsLinks(view.name, view.resource_id, view.live_metrics,
                             view.recent_requests)

    def function_logs(self, spec: DeploymentSpec, since: int) -> tuple[list[str], int]:
        from app.services import logstream

        lines, offset = logstream.tail(spec, self.target, self.clients, since)
        return list(lines), int(offset)

    # -- clean up ------------------------------------------
    def group_info(self, group: str) -> GroupInfo:
        from app.rules import created_by_us
        from app.services.arm import get_or_none
        from app.services.plan import icon_for_type

        existing = get_or_none(self.clients.resources().resource_groups.get, group)
        items = self._group_items(group) if existing is not None else None
        if existing is None or items is None:
            return GroupInfo(False)
        # The dialog offers "delete anyway" for a group we did not create (delete_group
        # refuses it unless forced).
        ours = created_by_us(existing.tags)
        resources = [GroupResource(i.name, i.type, icon=icon_for_type(i.type)) for i in items]
        return GroupInfo(True, ours, resources)

    def delete_group(self, group: str, progress: Callable[[str], None],
                     force: bool = False) -> None:
        from app.services.cleanup import delete_group

        delete_group(self.clients, group, group, force=force, say=progress)

    def portal_url(self, resource_id: str) -> str:
        from app.services.portal import portal_url

        return portal_url(self.target.tenant_id, resource_id) + "/overview"

    def cloud_sign_in(self) -> SignIn:
        """Signing in where this backend is: the sandbox's authority, or Azure's."""
        return SignIn(self.target)

    def close(self) -> None:
        with self._lock:
            clients, self._scoring = list(self._scoring.values()), {}
            engine, self._engine, self._closed = self._engine, None, True
        if engine is not None:
            engine.close()
        for client in clients:
            client.close()
        self.clients.close()
        self.target.close()


class SignIn:
    """The sign-in dialog's face on app.services.target, for one cloud.

    `cloud` None is Azure; a target (the local sandbox's) is where to sign in
    instead: its authority, CA and ARM endpoint. The same azure-identity
    credentials sign in either way.
    """

    def __init__(self, cloud: CloudTarget | None = None) -> None:
        self.cloud = cloud

    @property
    def on_azure(self) -> bool:
        return self.cloud is None or self.cloud.kind == "azure"

    @property
    def title(self) -> str:
        return "Sign in to Azure" if self.on_azure else "Sign in to the local sandbox"

    @property
    def settings_prefix(self) -> str:
        """Where the chosen tenant and subscription are remembered."""
        return "azure" if self.on_azure else "sandbox"

    @property
    def hint(self) -> str:
        """What a person needs to know to sign in here (never a secret)."""
        cloud = self.cloud
        if cloud is None or self.on_azure:
            return ""
        where = f"{cloud.state_dir}/connection.json" if cloud.state_dir else "connection.json"
        return (f"Sign in as {cloud.sign_in_user or 'the sandbox user'}; its password is in "
                f"{where}. The sandbox has a second tenant where that user is a guest.")

    def sign_in(self, method: str, tenant_id: str | None,
                prompt: Callable[[str], None]) -> Any:
        from app.services.target import make_credential

        # Device code: the code and URL go to the dialog (`prompt`), not to stdout.
        return make_credential(method, tenant_id, prompt=prompt, cloud=self.cloud)

    def tenants(self, credential: Any) -> list[Tenant]:
        from app.services.accounts import list_tenants

        tenants = list_tenants(credential, self.cloud)
        return [Tenant(t.tenant_id, t.name or t.domain) for t in tenants]

    def subscriptions(self, credential: Any, tenant_id: str | None) -> list[Subscription]:
        from app.services.accounts import list_subscriptions
        from app.services.target import for_tenant

        # ARM lists only the token's tenant's subscriptions: ask with that tenant's token.
        subs = list_subscriptions(for_tenant(credential, tenant_id), self.cloud)
        return [Subscription(s.subscription_id, s.name, s.tenant_id) for s in subs
                if not tenant_id or s.tenant_id == tenant_id]

    def make_backend(self, credential: Any, subscription: Subscription,
                     tenant_id: str | None) -> ServicesBackend:
        from app.services.target import azure_target, sign_in_target

        if self.cloud is None:
            target = azure_target(subscription.id, credential, tenant_id)
            label = f"Azure \u2014 {subscription.name}"
        else:
            target = sign_in_target(self.cloud, credential, subscription.id, tenant_id)
            place = "Azure" if self.on_azure else "Local sandbox"
            label = f"{place} \u2014 {subscription.name}"
        backend = ServicesBackend(target, label, subscription.name)
        backend.warm_up()
        return backend
