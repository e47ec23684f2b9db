"""What the Microsoft.Web parts share: the resource types, the site runtime, lookups.

`WebProvider` (in `web`) is put together from one mixin per area the RP serves
(plans, sites, host keys and functions, logs); they all build on
`WebProviderBase`, so each reaches the same `SiteRuntime`, the same Kudu hosts
(`web_kudu`) and the same store lookups without knowing about the others.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request

from app.sandbox.arm import ArmError
from app.sandbox.providers import Provider, SandboxContext
from app.sandbox.providers.registry import images_of, packages_of, registry_by_login_server
from app.sandbox.providers.web_access import SiteAccess
from app.sandbox.providers.web_container_logs import ContainerLogFile, container_log_files
from app.sandbox.providers.web_errors import AppServiceError, app_service_error
from app.sandbox.providers.web_kudu import KuduHosts, KuduSource
from app.sandbox.providers.web_runtime import RegistryAccess, SiteRuntime, SiteSpec
from app.sandbox.store import Record

NAMESPACE = "Microsoft.Web"
SITE_TYPE = "Microsoft.Web/sites"
PLAN_TYPE = "Microsoft.Web/serverfarms"


def properties_of(body: dict[str, Any]) -> dict[str, Any]:
    """A request body's `properties` (empty when absent), or ARM's 400."""
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise AppServiceError(400, "InvalidRequestContent", "'properties' must be an object.")
    return props


class WebProviderBase(Provider):
    """The Microsoft.Web provider's shared state: every site's host runs in `runtime`."""

    namespace = NAMESPACE

    def __init__(self, ctx: SandboxContext) -> None:
        super().__init__(ctx)
        self.access = SiteAccess(ctx)
        self.runtime = SiteRuntime(
            ctx.provider_dir(NAMESPACE) / "sites",
            ctx.ca,
            packages_of(ctx),
            self._registry_access,
            request_log=ctx.request_log,
            access=self.access,
            images=images_of(ctx),
        )
        self.kudu = KuduHosts(ctx.request_log, ctx.faults)

    def _registry_access(self, name_or_host: str) -> RegistryAccess | None:
        """A registry named by its name, `<name>.azurecr.io` or its `loginServer`."""
        host = name_or_host if ("." in name_or_host or ":" in name_or_host) else (
            f"{name_or_host}.azurecr.io"
        )
        record = registry_by_login_server(self.ctx, host)
        if record is None:
            return None
        props = record["body"]["properties"]
        if props.get("provisioningState") != "Succeeded":
            return None
        return RegistryAccess(
            name=record["body"]["name"],
            admin_enabled=bool(props.get("adminUserEnabled")),
            passwords=tuple(record["private"]["passwords"]),
            anonymous_pull=bool(props.get("anonymousPullEnabled")),
            login_server=str(props.get("loginServer") or ""),
            resource_id=str(record["body"]["id"]),
        )

    def site_record(self, request: Request) -> Record:
        """The site the request's path names, or ARM's 404."""
        return self.lookup(request, SITE_TYPE, "siteName")[1]

    def run_kudu(self, record: Record) -> None:
        """Start (or keep) the site's Kudu on its SCM port (`private.scmPort`)."""
        name = str(record["body"]["name"])
        port = int(record["private"]["scmPort"])
        cert = self.ctx.ca.issue_leaf(self.runtime.site_dir(name) / "tls", "scm")
        self.kudu.ensure(
            KuduSource(
                site=name,
                host=f"127.0.0.1:{port}",
                token=lambda: self.ctx.token,
                exists=lambda: self.ctx.store.find_by_name(SITE_TYPE, name) is not None,
                files=lambda: self.container_logs(name),
            ),
            port,
            cert,
        )

    def container_logs(self, name: str) -> list[ContainerLogFile]:
        """The site's `*_docker.log` files: what it logged while container logging was on."""
        record = self.ctx.store.find_by_name(SITE_TYPE, name)
        if record is None:
            return []
        segments = list(record["private"].get("containerLogs") or [])
        return container_log_files(self.runtime.log_file(name), segments)

    def sites_on_plan(self, plan_id: str) -> list[Record]:
        """The sites an App Service plan hosts."""
        return [
            r
            for r in self.ctx.store.resources(SITE_TYPE)
            if str(r["body"]["properties"].get("serverFarmId", "")).lower() == plan_id.lower()
        ]

    async def sync_delay(self, request: Request, step: str) -> None:
        """App Service answers writes when done: wait the profile's time, honour faults."""
        await asyncio.sleep(self.ctx.latency.seconds(step))
        fault = getattr(request.state, "fail_provisioning", None)
        if fault:
            raise AppServiceError(400, fault["code"], fault["message"])

    def fault_error(
        self, status: int, code: str, message: str, headers: dict[str, str]
    ) -> ArmError:
        """A fault rule's answer on a Microsoft.Web path comes from App Service, so it
        has App Service's shape."""
        return app_service_error(ArmError(status, code, message, headers))

    def site_spec(self, record: Record) -> SiteSpec:
        """How the site's host must run now (the runtime restarts it when this changes)."""
        body = record["body"]
        private = record["private"]
        config = private["siteConfig"]
        plan = self.ctx.store.resource(str(body["properties"].get("serverFarmId", "")))
        linux = bool(plan and plan["body"]["properties"].get("reserved"))
        identity = body.get("identity") or {}
        return SiteSpec(
            name=body["name"],
            resource_group=record["group"],
            linux_fx_version=str(config.get("linuxFxVersion") or ""),
            app_settings=dict(private["appSettings"]),
            port=int(private["port"]),
            master_key=private["masterKey"],
            function_key=private["functionKey"],
            acr_managed_identity=bool(config.get("acrUseManagedIdentityCreds")),
            enabled=body["properties"].get("state") == "Running",
            linux_plan=linux,
            principal_id=str(identity.get("principalId") or ""),
            tenant_id=str(identity.get("tenantId") or ""),
            site_id=str(body["id"]),
        )
