"""Microsoft.Web: App Service plans and function apps, as WebSiteManagementClient calls them.

App Service answers plan and site writes synchronously (200 with the resource),
so this provider does too, after the latency profile's delay. A site is a real
local function host (see `web_runtime`): creating one succeeds whether or not its
image exists yet, the image named by `siteConfig.linuxFxVersion`
(`DOCKER|<registry>.azurecr.io/<repository>:<tag>`) is pulled from the sandbox
registry with the credentials in the `DOCKER_REGISTRY_SERVER_*` app settings, and
a failed pull shows in the site's log while the site answers 503.

`defaultHostName` is `127.0.0.1:<port>`: the address the host really listens on,
with a certificate from the sandbox CA, so `https://{defaultHostName}/api/...`
works unchanged. Site names are global across the sandbox, as on Azure.

Beyond ARM, the site's Kudu-style log endpoints take the sandbox token:
`GET /dataplane/sites/<name>/api/logstream` streams the log as Kudu's
`/api/logstream` does, and `GET /dataplane/sites/<name>/api/vfs/LogFiles/site.log`
returns the file (with `Range: bytes=N-` for what is new since offset N).
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import hmac
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from app.sandbox.arm import (
    ArmError,
    arm_route,
    empty_response,
    json_response,
    read_json,
    resource_id,
)
from app.sandbox.ports import free_port, port_free
from app.sandbox.providers import DATA_PLANE_ROOT, Provider, SandboxContext
from app.sandbox.providers.registry import RTYPE as REGISTRY_TYPE
from app.sandbox.providers.registry import packages_of
from app.sandbox.providers.resources import location_of, string_tags
from app.sandbox.providers.web_runtime import (
    RegistryAccess,
    SiteRuntime,
    SiteSpec,
)
from app.sandbox.store import Record

NAMESPACE = "Microsoft.Web"
SITE_TYPE = "Microsoft.Web/sites"
PLAN_TYPE = "Microsoft.Web/serverfarms"

_SITE_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,58}[A-Za-z0-9])?$")
_PLAN_NAME = re.compile(r"^[A-Za-z0-9_-]{1,60}$")

# SKU name -> (tier, family, maximum workers), as App Service reports them.
_PLAN_SKUS: dict[str, tuple[str, str, int]] = {
    "F1": ("Free", "F", 1),
    "D1": ("Shared", "D", 1),
    "B1": ("Basic", "B", 3),
    "B2": ("Basic", "B", 3),
    "B3": ("Basic", "B", 3),
    "S1": ("Standard", "S", 10),
    "S2": ("Standard", "S", 10),
    "S3": ("Standard", "S", 10),
    "P1V2": ("PremiumV2", "Pv2", 30),
    "P2V2": ("PremiumV2", "Pv2", 30),
    "P3V2": ("PremiumV2", "Pv2", 30),
    "P0V3": ("PremiumV3", "Pv3", 30),
    "P1V3": ("PremiumV3", "Pv3", 30),
    "P2V3": ("PremiumV3", "Pv3", 30),
    "P3V3": ("PremiumV3", "Pv3", 30),
    "EP1": ("ElasticPremium", "EP", 20),
    "EP2": ("ElasticPremium", "EP", 20),
    "EP3": ("ElasticPremium", "EP", 20),
    "Y1": ("Dynamic", "Y", 200),
}

# What GET .../config/web shows for a new Linux function app.
_DEFAULT_SITE_CONFIG: dict[str, Any] = {
    "numberOfWorkers": 1,
    "netFrameworkVersion": "v4.0",
    "linuxFxVersion": "",
    "requestTracingEnabled": False,
    "remoteDebuggingEnabled": False,
    "httpLoggingEnabled": False,
    "acrUseManagedIdentityCreds": False,
    "logsDirectorySizeLimit": 35,
    "detailedErrorLoggingEnabled": False,
    "use32BitWorkerProcess": False,
    "webSocketsEnabled": False,
    "alwaysOn": False,
    "appCommandLine": "",
    "managedPipelineMode": "Integrated",
    "loadBalancing": "LeastRequests",
    "autoHealEnabled": False,
    "vnetRouteAllEnabled": False,
    "http20Enabled": False,
    "minTlsVersion": "1.2",
    "scmMinTlsVersion": "1.2",
    "ftpsState": "FtpsOnly",
    "functionAppScaleLimit": 0,
    "functionsRuntimeScaleMonitoringEnabled": False,
    "minimumElasticInstanceCount": 0,
    "healthCheckPath": None,
    "cors": None,
}
# Parts of siteConfig kept elsewhere (app settings) or not modelled.
_CONFIG_EXCLUDED = ("appSettings", "connectionStrings", "metadata", "azureStorageAccounts")

_LOGSTREAM_POLL_SECONDS = 0.25
_LOGSTREAM_BACKLOG_BYTES = 64 * 1024
_LOGSTREAM_HEARTBEAT_SECONDS = 60.0


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


def _new_key() -> str:
    # Functions keys are 56 characters of base64 text ending in '=='.
    return secrets.token_urlsafe(40)[:54] + "=="


def _properties(body: dict[str, Any]) -> dict[str, Any]:
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise ArmError(400, "InvalidRequestContent", "'properties' must be an object.")
    return props


def _settings_list(value: Any) -> dict[str, str]:
    """siteConfig.appSettings ([{name, value}]) as a dict, or ARM's 400."""
    shapeless = ArmError(
        400, "InvalidRequestContent", "siteConfig.appSettings must be a list of {name, value}."
    )
    if not isinstance(value, list):
        raise shapeless
    settings: dict[str, str] = {}
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise shapeless
        raw = item.get("value")
        settings[item["name"]] = "" if raw is None else str(raw)
    return settings


def _settings_dict(value: Any) -> dict[str, str]:
    """A StringDictionary's `properties`, or ARM's 400."""
    if not isinstance(value, dict):
        raise ArmError(
            400, "InvalidRequestContent", "The request needs 'properties': {name: value, ...}."
        )
    settings: dict[str, str] = {}
    for key, raw in value.items():
        if raw is not None and not isinstance(raw, str | int | float | bool):
            raise ArmError(
                400, "InvalidRequestContent", f"The value of app setting '{key}' must be a string."
            )
        settings[str(key)] = "" if raw is None else str(raw)
    return settings


def _site_config_in(value: Any) -> tuple[dict[str, Any], dict[str, str] | None]:
    """A request's siteConfig, and its appSettings as a dict (None when not given)."""
    if value is None:
        return {}, None
    if not isinstance(value, dict):
        raise ArmError(400, "InvalidRequestContent", "'siteConfig' must be an object.")
    settings = value.get("appSettings")
    return value, (_settings_list(settings) if settings is not None else None)


def _merge_config(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(current)
    for key, value in changes.items():
        if key in _CONFIG_EXCLUDED:
            continue
        if value is not None:
            merged[key] = value
    return merged


class WebProvider(Provider):
    namespace = NAMESPACE

    def __init__(self, ctx: SandboxContext) -> None:
        super().__init__(ctx)
        self.runtime = SiteRuntime(
            ctx.provider_dir(NAMESPACE) / "sites",
            ctx.ca,
            packages_of(ctx),
            self._registry_access,
        )

    def routes(self) -> list[BaseRoute]:
        sub = "/subscriptions/{subscriptionId}"
        _, plans = self.resource_routes(
            PLAN_TYPE,
            "planName",
            put=self.put_plan,
            patch=self.patch_plan,
            delete=self.delete_plan,
            view=self._plan_view,
        )
        site, sites = self.resource_routes(
            SITE_TYPE,
            "siteName",
            put=self.put_site,
            patch=self.patch_site,
            delete=self.delete_site,
            view=self._site_view,
        )
        return [
            arm_route(
                sub + f"/providers/{NAMESPACE}/checknameavailability", self.check_name, ["POST"]
            ),
            *plans,
            *sites,
            arm_route(site + "/config/appsettings", self.put_app_settings, ["PUT"]),
            arm_route(site + "/config/appsettings/list", self.list_app_settings, ["POST"]),
            arm_route(site + "/config/web", self.get_config, ["GET"]),
            arm_route(site + "/config/web", self.put_config, ["PUT"]),
            arm_route(site + "/config/web", self.patch_config, ["PATCH"]),
            arm_route(site + "/restart", self.restart, ["POST"]),
            arm_route(site + "/start", self.start_site, ["POST"]),
            arm_route(site + "/stop", self.stop_site, ["POST"]),
            arm_route(site + "/host/default/listkeys", self.list_host_keys, ["POST"]),
            arm_route(site + "/functions", self.list_functions, ["GET"]),
            arm_route(site + "/functions/{functionName}", self.get_function, ["GET"]),
            arm_route(
                site + "/functions/{functionName}/listkeys", self.list_function_keys, ["POST"]
            ),
            Route(
                DATA_PLANE_ROOT + "sites/{siteName}/api/logstream",
                self.logstream,
                methods=["GET"],
            ),
            Route(
                DATA_PLANE_ROOT + "sites/{siteName}/api/vfs/LogFiles/",
                self.list_log_files,
                methods=["GET"],
            ),
            Route(
                DATA_PLANE_ROOT + "sites/{siteName}/api/vfs/LogFiles/{fileName}",
                self.get_log_file,
                methods=["GET", "HEAD"],
            ),
        ]

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Bring every site's host back (sandbox restart), keeping its port when free."""
        for record in self.ctx.store.resources(SITE_TYPE):
            port = int(record["private"]["port"])
            if not port_free(port, reuse_address=True):
                with self.ctx.store.transaction():
                    port = free_port()
                    record["private"]["port"] = port
                    self._set_host_names(record["body"], port)
            self.runtime.apply(self._spec(record))

    def stop(self) -> None:
        self.runtime.shutdown()

    def teardown(self, record: Record) -> None:
        if record["body"]["type"].lower() == SITE_TYPE.lower():
            self.runtime.remove_site(record["body"]["name"])

    def on_image_pushed(self, registry: str, repository: str, tag: str) -> None:
        """Called by the registry provider after a push (see `RegistryProvider`)."""
        self.runtime.image_pushed(registry, repository, tag)

    # -- helpers ---------------------------------------------------------------

    def _registry_access(self, name: str) -> RegistryAccess | None:
        record = self.ctx.store.find_by_name(REGISTRY_TYPE, name)
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
        )

    def _plan_id(self, group: str, name: str) -> str:
        return resource_id(self.ctx.subscription_id, group, PLAN_TYPE, name)

    def _site_id(self, group: str, name: str) -> str:
        return resource_id(self.ctx.subscription_id, group, SITE_TYPE, name)

    def _plan_record(self, request: Request) -> Record:
        return self.lookup(request, PLAN_TYPE, "planName")[1]

    def _site_record(self, request: Request) -> Record:
        return self.lookup(request, SITE_TYPE, "siteName")[1]

    def _sites_on_plan(self, plan_id: str) -> list[Record]:
        return [
            r
            for r in self.ctx.store.resources(SITE_TYPE)
            if str(r["body"]["properties"].get("serverFarmId", "")).lower() == plan_id.lower()
        ]

    def _plan_view(self, record: Record) -> dict[str, Any]:
        body = copy.deepcopy(record["body"])
        body["properties"]["numberOfSites"] = len(self._sites_on_plan(body["id"]))
        return body

    @staticmethod
    def _shown_config(record: Record) -> dict[str, Any]:
        """siteConfig as ARM shows it: settings and connection strings have their own APIs."""
        config = dict(record["private"]["siteConfig"])
        config["appSettings"] = None
        config["connectionStrings"] = None
        return config

    def _site_view(self, record: Record) -> dict[str, Any]:
        body = copy.deepcopy(record["body"])
        body["properties"]["siteConfig"] = self._shown_config(record)
        return body

    def _spec(self, record: Record) -> SiteSpec:
        body = record["body"]
        private = record["private"]
        config = private["siteConfig"]
        plan = self.ctx.store.resource(str(body["properties"].get("serverFarmId", "")))
        linux = bool(plan and plan["body"]["properties"].get("reserved"))
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
        )

    @staticmethod
    def _set_host_names(body: dict[str, Any], port: int) -> None:
        host = f"127.0.0.1:{port}"
        props = body["properties"]
        props["defaultHostName"] = host
        props["hostNames"] = [host]
        props["enabledHostNames"] = [host]
        props["hostNameSslStates"] = [
            {"name": host, "sslState": "Disabled", "hostType": "Standard"},
        ]

    async def _sync_delay(self, request: Request, step: str) -> None:
        """App Service answers writes when done: wait the profile's time, honour faults."""
        await asyncio.sleep(self.ctx.latency.seconds(step))
        fault = getattr(request.state, "fail_provisioning", None)
        if fault:
            raise ArmError(400, fault["code"], fault["message"])

    def _site_name_problem(self, name: str, site_id: str | None = None) -> tuple[str, str] | None:
        if not _SITE_NAME.match(name):
            return (
                "Invalid",
                f"The name '{name}' is not valid: site names are 2-60 characters of letters, "
                "digits and hyphens, and start and end with a letter or digit.",
            )
        existing = self.ctx.store.find_by_name(SITE_TYPE, name)
        if existing is not None and (
            site_id is None or existing["body"]["id"].lower() != site_id.lower()
        ):
            return (
                "AlreadyExists",
                f"Hostname '{name}' already exists. Please select a different name.",
            )
        return None

    # -- name availability ---------------------------------------------------------

    async def check_name(self, request: Request) -> Response:
        self.subscription_matches(request)
        body = await read_json(request)
        name = body.get("name")
        rtype = body.get("type")
        if not isinstance(name, str) or not isinstance(rtype, str):
            raise ArmError(
                400, "InvalidRequestContent", "The request needs 'name' and 'type' strings."
            )
        if rtype.lower() not in ("site", "microsoft.web/sites"):
            raise ArmError(
                400,
                "BadRequest",
                f"The sandbox checks names of type 'Microsoft.Web/sites' only, not '{rtype}'.",
            )
        problem = self._site_name_problem(name)
        if problem is None:
            return json_response({"nameAvailable": True, "reason": None, "message": None})
        reason, message = problem
        return json_response({"nameAvailable": False, "reason": reason, "message": message})

    # -- plans -------------------------------------------------------------------------

    @staticmethod
    def _plan_sku(body: dict[str, Any]) -> dict[str, Any]:
        sku = body.get("sku")
        if not isinstance(sku, dict) or not isinstance(sku.get("name"), str):
            raise ArmError(
                400, "InvalidRequestContent", "The request content is missing the required 'sku'."
            )
        name = sku["name"].upper()
        if name not in _PLAN_SKUS:
            raise ArmError(
                400,
                "BadRequest",
                f"The pricing tier '{sku['name']}' is not allowed. Choose one of "
                f"{', '.join(_PLAN_SKUS)}.",
            )
        tier, family, _ = _PLAN_SKUS[name]
        capacity = sku.get("capacity") or 1
        if not isinstance(capacity, int) or capacity < 1:
            raise ArmError(400, "BadRequest", "The sku capacity must be a positive integer.")
        canonical = name[:-2] + name[-2:].lower() if name.endswith(("V2", "V3")) else name
        return {
            "name": canonical,
            "tier": tier,
            "size": canonical,
            "family": family,
            "capacity": capacity,
        }

    async def put_plan(self, request: Request) -> Response:
        self.subscription_matches(request)
        group = request.path_params["resourceGroupName"]
        name = request.path_params["planName"]
        body = await read_json(request)
        group_record = self.ctx.require_group(group, for_write=True)
        if not _PLAN_NAME.match(name):
            raise ArmError(
                400,
                "BadRequest",
                f"The plan name '{name}' is not valid: 1-60 letters, digits, '-' and '_'.",
            )
        location = location_of(body)
        sku = self._plan_sku(body)
        props = _properties(body)
        reserved = bool(props.get("reserved", False))
        pid = self._plan_id(group, name)
        existing = self.ctx.store.resource(pid)
        if existing is not None and bool(existing["body"]["properties"]["reserved"]) != reserved:
            raise ArmError(
                409,
                "Conflict",
                "The operating system of an App Service plan cannot be changed "
                "(properties.reserved differs from the existing plan).",
            )
        await self._sync_delay(request, "web.plan")
        _, _, max_workers = _PLAN_SKUS[sku["name"].upper()]
        with self.ctx.store.transaction() as store:
            existing = store.resource(pid)
            if existing is not None:
                current = existing["body"]
                current["sku"] = sku
                current["tags"] = string_tags(body)
                current["properties"]["maximumNumberOfWorkers"] = max_workers
                return json_response(self._plan_view(existing))
            plan_body: dict[str, Any] = {
                "id": pid,
                "name": name,
                "type": PLAN_TYPE,
                "kind": body.get("kind") or ("linux" if reserved else "app"),
                "location": location,
                "tags": string_tags(body),
                "sku": sku,
                "properties": {
                    "name": name,
                    "status": "Ready",
                    "maximumNumberOfWorkers": max_workers,
                    "geoRegion": location,
                    "numberOfSites": 0,
                    "isSpot": False,
                    "reserved": reserved,
                    "isXenon": False,
                    "hyperV": False,
                    "perSiteScaling": False,
                    "elasticScaleEnabled": sku["tier"] == "ElasticPremium",
                    "maximumElasticWorkerCount": 1,
                    "targetWorkerCount": 0,
                    "targetWorkerSizeId": 0,
                    "provisioningState": "Succeeded",
                    "zoneRedundant": bool(props.get("zoneRedundant", False)),
                    "resourceGroup": group_record["body"]["name"],
                },
            }
            store.put_resource(
                pid, {"body": plan_body, "group": group_record["body"]["name"], "private": {}}
            )
        return json_response(self._plan_view({"body": plan_body}))

    async def patch_plan(self, request: Request) -> Response:
        body = await read_json(request)
        with self.ctx.store.transaction():
            record = self._plan_record(request)
            current = record["body"]
            if body.get("sku"):
                current["sku"] = self._plan_sku(body)
            if body.get("tags") is not None:
                current["tags"] = string_tags(body)
        await self._sync_delay(request, "web.plan")
        return json_response(self._plan_view(record))

    async def delete_plan(self, request: Request) -> Response:
        pid, _ = self.locate(request, PLAN_TYPE, "planName")
        with self.ctx.store.transaction() as store:
            record = store.resource(pid)
            if record is None:
                return empty_response(204)
            sites = self._sites_on_plan(pid)
            if sites:
                # App Service refuses to delete a plan that still hosts apps.
                names = ", ".join(sorted(s["body"]["name"] for s in sites))
                raise ArmError(
                    409,
                    "Conflict",
                    f"Server farm '{record['body']['name']}' cannot be deleted because it has "
                    f"web app(s) {names} assigned to it.",
                )
            store.remove_resource(pid)
        return empty_response(200)

    # -- sites -------------------------------------------------------------------------

    def _resolve_plan(self, plan_id: Any) -> Record:
        if not isinstance(plan_id, str) or not plan_id:
            raise ArmError(
                400,
                "BadRequest",
                "properties.serverFarmId is required: sandbox function apps run on an App "
                "Service plan (create one with Microsoft.Web/serverfarms first).",
            )
        plan = self.ctx.store.resource(plan_id)
        if plan is None or plan["body"]["type"].lower() != PLAN_TYPE.lower():
            raise ArmError(
                404, "NotFound", f"Cannot find ServerFarm with name {plan_id.rsplit('/', 1)[-1]}."
            )
        return plan

    async def put_site(self, request: Request) -> Response:
        self.subscription_matches(request)
        group = request.path_params["resourceGroupName"]
        name = request.path_params["siteName"]
        body = await read_json(request)
        group_record = self.ctx.require_group(group, for_write=True)
        sid = self._site_id(group, name)
        problem = self._site_name_problem(name, sid)
        if problem is not None:
            reason, message = problem
            if reason == "Invalid":
                raise ArmError(400, "BadRequest", message)
            raise ArmError(409, "Conflict", f"Website with given name {name} already exists.")
        location = location_of(body)
        props = _properties(body)
        plan = self._resolve_plan(props.get("serverFarmId"))
        config_in, settings = _site_config_in(props.get("siteConfig"))
        await self._sync_delay(request, "web.site")
        with self.ctx.store.transaction() as store:
            record = store.resource(sid)
            if record is None:
                # Checked again under the lock: a concurrent create may have taken the name.
                if self._site_name_problem(name, sid) is not None:
                    raise ArmError(
                        409, "Conflict", f"Website with given name {name} already exists."
                    )
                port = free_port()
                record = {
                    "body": self._new_site_body(sid, name, group_record, location, body, plan),
                    "group": group_record["body"]["name"],
                    "private": {
                        "appSettings": settings or {},
                        "siteConfig": _merge_config(_DEFAULT_SITE_CONFIG, config_in),
                        "port": port,
                        "masterKey": _new_key(),
                        "functionKey": _new_key(),
                    },
                }
                self._set_host_names(record["body"], port)
                store.put_resource(sid, record)
            else:
                current = record["body"]
                current["kind"] = body.get("kind") or current.get("kind")
                current["tags"] = string_tags(body)
                self._change_site(record, props, plan, config_in, settings)
            answer = self._site_view(record)
            spec = self._spec(record)
        self.runtime.apply(spec)
        return json_response(answer)

    def _new_site_body(
        self,
        sid: str,
        name: str,
        group_record: Record,
        location: str,
        body: dict[str, Any],
        plan: Record,
    ) -> dict[str, Any]:
        props = _properties(body)
        site_body: dict[str, Any] = {
            "id": sid,
            "name": name,
            "type": SITE_TYPE,
            "kind": body.get("kind") or "functionapp,linux,container",
            "location": location,
            "tags": string_tags(body),
            "properties": {
                "name": name,
                "state": "Running",
                "repositorySiteName": name,
                "usageState": "Normal",
                "enabled": True,
                "availabilityState": "Normal",
                "serverFarmId": plan["body"]["id"],
                "reserved": bool(plan["body"]["properties"].get("reserved")),
                "isXenon": False,
                "hyperV": False,
                "lastModifiedTimeUtc": _now(),
                "scmSiteAlsoStopped": False,
                "clientAffinityEnabled": bool(props.get("clientAffinityEnabled", False)),
                "clientCertEnabled": False,
                "clientCertMode": "Required",
                "hostNamesDisabled": False,
                "outboundIpAddresses": "127.0.0.1",
                "possibleOutboundIpAddresses": "127.0.0.1",
                "containerSize": 1536,
                "dailyMemoryTimeQuota": 0,
                "resourceGroup": group_record["body"]["name"],
                "httpsOnly": bool(props.get("httpsOnly", False)),
                "redundancyMode": "None",
                "publicNetworkAccess": props.get("publicNetworkAccess") or "Enabled",
                "storageAccountRequired": False,
                "keyVaultReferenceIdentity": "SystemAssigned",
            },
        }
        return site_body

    @staticmethod
    def _apply_site_properties(
        current: dict[str, Any], props: dict[str, Any], plan: Record | None
    ) -> None:
        target = current["properties"]
        if plan is not None:
            target["serverFarmId"] = plan["body"]["id"]
            target["reserved"] = bool(plan["body"]["properties"].get("reserved"))
        for key in ("httpsOnly", "clientAffinityEnabled"):
            if props.get(key) is not None:
                target[key] = bool(props[key])
        if props.get("enabled") is not None:
            target["enabled"] = bool(props["enabled"])
            target["state"] = "Running" if target["enabled"] else "Stopped"
        target["lastModifiedTimeUtc"] = _now()

    async def patch_site(self, request: Request) -> Response:
        body = await read_json(request)
        props = _properties(body)
        record = self._site_record(request)
        plan = self._resolve_plan(props["serverFarmId"]) if props.get("serverFarmId") else None
        config_in, settings = _site_config_in(props.get("siteConfig"))
        await self._sync_delay(request, "web.site")
        with self.ctx.store.transaction():
            record = self._site_record(request)
            if body.get("tags") is not None:
                record["body"]["tags"] = string_tags(body)
            self._change_site(record, props, plan, config_in, settings)
            answer = self._site_view(record)
            spec = self._spec(record)
        self.runtime.apply(spec)
        return json_response(answer)

    def _change_site(
        self,
        record: Record,
        props: dict[str, Any],
        plan: Record | None,
        config_in: dict[str, Any],
        settings: dict[str, str] | None,
    ) -> None:
        """A PUT or PATCH on an existing site: properties, siteConfig changes, and the
        app settings when given (callers hold the store's transaction)."""
        self._apply_site_properties(record["body"], props, plan)
        if config_in:
            record["private"]["siteConfig"] = _merge_config(
                record["private"]["siteConfig"], config_in
            )
        if settings is not None:
            record["private"]["appSettings"] = settings

    async def delete_site(self, request: Request) -> Response:
        sid, record = self.locate(request, SITE_TYPE, "siteName")
        if record is None:
            return empty_response(204)
        await asyncio.to_thread(self.runtime.remove_site, record["body"]["name"])
        plan_id = str(record["body"]["properties"].get("serverFarmId", ""))
        with self.ctx.store.transaction() as store:
            store.remove_resource(sid)
            if (
                request.query_params.get("deleteEmptyServerFarm", "").lower() == "true"
                and store.resource(plan_id) is not None
                and not self._sites_on_plan(plan_id)
            ):
                store.remove_resource(plan_id)
        return empty_response(200)

    # -- settings and configuration ------------------------------------------------------

    def _settings_resource(self, record: Record) -> dict[str, Any]:
        body = record["body"]
        return {
            "id": body["id"] + "/config/appsettings",
            "name": "appsettings",
            "type": "Microsoft.Web/sites/config",
            "location": body["location"],
            "properties": dict(record["private"]["appSettings"]),
        }

    def _config_resource(self, record: Record) -> dict[str, Any]:
        body = record["body"]
        return {
            "id": body["id"] + "/config/web",
            "name": body["name"],
            "type": "Microsoft.Web/sites/config",
            "location": body["location"],
            "properties": self._shown_config(record),
        }

    async def put_app_settings(self, request: Request) -> Response:
        body = await read_json(request)
        settings = _settings_dict(body.get("properties"))
        self._site_record(request)
        await self._sync_delay(request, "web.config")
        with self.ctx.store.transaction():
            record = self._site_record(request)
            # Azure replaces the whole set: names left out are deleted.
            record["private"]["appSettings"] = settings
            record["body"]["properties"]["lastModifiedTimeUtc"] = _now()
            answer = self._settings_resource(record)
            spec = self._spec(record)
        self.runtime.apply(spec)
        return json_response(answer)

    async def list_app_settings(self, request: Request) -> Response:
        return json_response(self._settings_resource(self._site_record(request)))

    async def get_config(self, request: Request) -> Response:
        return json_response(self._config_resource(self._site_record(request)))

    async def _update_config(self, request: Request) -> Response:
        body = await read_json(request)
        changes = _properties(body)
        settings = (
            _settings_list(changes["appSettings"])
            if changes.get("appSettings") is not None
            else None
        )
        self._site_record(request)
        await self._sync_delay(request, "web.config")
        with self.ctx.store.transaction():
            record = self._site_record(request)
            record["private"]["siteConfig"] = _merge_config(
                record["private"]["siteConfig"], changes
            )
            if settings is not None:
                record["private"]["appSettings"] = settings
            record["body"]["properties"]["lastModifiedTimeUtc"] = _now()
            answer = self._config_resource(record)
            spec = self._spec(record)
        self.runtime.apply(spec)
        return json_response(answer)

    async def put_config(self, request: Request) -> Response:
        return await self._update_config(request)

    async def patch_config(self, request: Request) -> Response:
        return await self._update_config(request)

    # -- control and keys ----------------------------------------------------------------

    async def restart(self, request: Request) -> Response:
        record = self._site_record(request)
        name = record["body"]["name"]
        self.runtime.write_log(name, "INFO", f"Site {name} restart requested.")
        self.runtime.apply(self._spec(record))
        if request.query_params.get("synchronous", "").lower() == "true":
            await asyncio.to_thread(self.runtime.wait, name)
        return empty_response(200)

    async def _set_state(self, request: Request, running: bool) -> Response:
        with self.ctx.store.transaction():
            record = self._site_record(request)
            props = record["body"]["properties"]
            props["state"] = "Running" if running else "Stopped"
            props["lastModifiedTimeUtc"] = _now()
            spec = self._spec(record)
        self.runtime.apply(spec)
        return empty_response(200)

    async def start_site(self, request: Request) -> Response:
        return await self._set_state(request, True)

    async def stop_site(self, request: Request) -> Response:
        return await self._set_state(request, False)

    async def list_host_keys(self, request: Request) -> Response:
        private = self._site_record(request)["private"]
        return json_response(
            {
                "masterKey": private["masterKey"],
                "functionKeys": {"default": private["functionKey"]},
                "systemKeys": {},
            }
        )

    def _function_envelopes(self, record: Record) -> list[dict[str, Any]]:
        """FunctionEnvelope resources for the functions of the package the site runs."""
        body = record["body"]
        name = body["name"]
        functions = self.runtime.functions(name) or []
        prefix = self.runtime.route_prefix(name)
        host = body["properties"]["defaultHostName"]
        base = f"{prefix}/" if prefix else ""
        envelopes = []
        for function in functions:
            trigger: dict[str, Any] = {
                "type": "httpTrigger",
                "direction": "in",
                "name": function.trigger_arg,
                "authLevel": function.auth_level,
                "route": function.route,
            }
            if function.methods:
                trigger["methods"] = [m.lower() for m in function.methods]
            envelopes.append(
                {
                    "id": f"{body['id']}/functions/{function.name}",
                    "name": f"{name}/{function.name}",
                    "type": "Microsoft.Web/sites/functions",
                    "location": body["location"],
                    "properties": {
                        "name": function.name,
                        "function_app_id": body["id"],
                        "script_root_path_href": None,
                        "script_href": None,
                        "config_href": None,
                        "test_data_href": None,
                        "secrets_file_href": None,
                        "href": f"https://{host}/admin/functions/{function.name}",
                        "config": {
                            "bindings": [
                                trigger,
                                {"type": "http", "direction": "out", "name": "$return"},
                            ]
                        },
                        "invoke_url_template": f"https://{host}/{base}{function.route}",
                        "language": "python",
                        "isDisabled": False,
                    },
                }
            )
        return envelopes

    async def list_functions(self, request: Request) -> Response:
        record = self._site_record(request)
        return json_response({"value": self._function_envelopes(record)})

    async def get_function(self, request: Request) -> Response:
        record = self._site_record(request)
        wanted = request.path_params["functionName"]
        for envelope in self._function_envelopes(record):
            if envelope["properties"]["name"].lower() == wanted.lower():
                return json_response(envelope)
        raise ArmError(
            404,
            "NotFound",
            f"Error retrieving function '{wanted}': it does not exist in the running app "
            f"{record['body']['name']}.",
        )

    async def list_function_keys(self, request: Request) -> Response:
        record = self._site_record(request)
        function = request.path_params["functionName"]
        known = self.runtime.functions(record["body"]["name"])
        if known is not None and function.lower() not in {f.name.lower() for f in known}:
            raise ArmError(
                404,
                "NotFound",
                f"Error retrieving function keys: function '{function}' does not exist in "
                f"the running app {record['body']['name']}.",
            )
        # The sandbox host accepts the app's default function key for every function.
        return json_response(
            {
                "id": f"{record['body']['id']}/functions/{function}/keys",
                "name": function,
                "type": "Microsoft.Web/sites/functions/keys",
                "properties": {"default": record["private"]["functionKey"]},
            }
        )

    # -- log stream (Kudu's /api/logstream) ------------------------------------------------

    def _kudu_site(self, request: Request) -> str | Response:
        """The site a Kudu-style request is for, or the 401/404 to answer."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self.ctx.token.encode()
        ):
            return PlainTextResponse(
                "401 Unauthorized: send the sandbox token as a Bearer token.",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        name = request.path_params["siteName"]
        record = self.ctx.store.find_by_name(SITE_TYPE, name)
        if record is None:
            return PlainTextResponse(f"404 Not Found: no site named {name}.", status_code=404)
        return str(record["body"]["name"])

    async def list_log_files(self, request: Request) -> Response:
        site = self._kudu_site(request)
        if isinstance(site, Response):
            return site
        path = self.runtime.log_file(site)
        entries = []
        if path.exists():
            stat = path.stat()
            mtime = datetime.datetime.fromtimestamp(stat.st_mtime, datetime.UTC)
            entries.append(
                {
                    "name": path.name,
                    "size": stat.st_size,
                    "mtime": mtime.isoformat().replace("+00:00", "Z"),
                    "mime": "text/plain",
                    "href": str(request.url).rstrip("/") + "/" + path.name,
                    "path": f"/home/LogFiles/{path.name}",
                }
            )
        return json_response(entries)

    async def get_log_file(self, request: Request) -> Response:
        """One log file; honours `Range: bytes=N-` so a reader can fetch only what is new."""
        site = self._kudu_site(request)
        if isinstance(site, Response):
            return site
        path = self.runtime.log_file(site)
        if request.path_params["fileName"] != path.name or not path.exists():
            return PlainTextResponse("404 Not Found: no such log file.", status_code=404)
        return FileResponse(path, media_type="text/plain; charset=utf-8")

    async def logstream(self, request: Request) -> Response:
        site_name = self._kudu_site(request)
        if isinstance(site_name, Response):
            return site_name
        return StreamingResponse(
            self._follow_log(request, site_name),
            media_type="text/plain; charset=utf-8",
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    async def _follow_log(self, request: Request, name: str) -> AsyncIterator[bytes]:
        path = self.runtime.log_file(name)
        stamp = _now()
        yield f"{stamp}  Welcome, you are now connected to log-streaming service.\n".encode()
        position = 0
        if path.exists():
            size = path.stat().st_size
            position = max(0, size - _LOGSTREAM_BACKLOG_BYTES)
        idle = 0.0
        loop = asyncio.get_running_loop()
        while True:
            if await request.is_disconnected():
                return
            if self.ctx.store.find_by_name(SITE_TYPE, name) is None:
                yield f"{_now()}  The site {name} was deleted; closing the stream.\n".encode()
                return
            chunk, position = await loop.run_in_executor(None, _read_from, path, position)
            if chunk:
                idle = 0.0
                yield chunk
                continue
            await asyncio.sleep(_LOGSTREAM_POLL_SECONDS)
            idle += _LOGSTREAM_POLL_SECONDS
            if idle >= _LOGSTREAM_HEARTBEAT_SECONDS:
                idle = 0.0
                yield f"{_now()}  No new trace in the past 1 min(s).\n".encode()


def _read_from(path: Path, position: int) -> tuple[bytes, int]:
    """New bytes of the log after `position`, and the position after them."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, 2)
            if size < position:
                position = 0  # the log was recreated (site deleted and created again)
            handle.seek(position)
            data = handle.read(1 << 16)
    except OSError:
        return b"", position
    return data, position + len(data)

