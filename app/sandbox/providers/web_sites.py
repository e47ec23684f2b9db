"""Microsoft.Web/sites: function apps, their names, and their power state.

App Service answers site writes synchronously (200 with the resource), so this
does too, after the latency profile's delay. Every write that changes how the
site runs hands the new `SiteSpec` to the runtime, which restarts the host in
the background. Site names are global across the sandbox, as on Azure.
"""

from __future__ import annotations

import asyncio
import copy
import re
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.sandbox.arm import (
    arm_route,
    empty_response,
    json_response,
    read_json,
    resource_id,
)
from app.sandbox.operations import utc_now
from app.sandbox.ports import free_port, port_free
from app.sandbox.providers.resources import location_of, string_tags
from app.sandbox.providers.web_base import (
    NAMESPACE,
    PLAN_TYPE,
    SITE_TYPE,
    properties_of,
)
from app.sandbox.providers.web_errors import AppServiceError, bad_request, cannot_find, site_exists
from app.sandbox.providers.web_identity import IdentityMixin, identity_type_in
from app.sandbox.providers.web_site_config import (
    DEFAULT_SITE_CONFIG,
    merge_config,
    shown_config,
    site_config_in,
)
from app.sandbox.store import Record

_SITE_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,58}[A-Za-z0-9])?$")


def _new_key() -> str:
    # Functions keys are 56 characters of base64 text ending in '=='.
    return secrets.token_urlsafe(40)[:54] + "=="


class SitesMixin(IdentityMixin):
    """Sites: name checks, create/update/delete, restart/start/stop, and their hosts."""

    def check_name_route(self) -> BaseRoute:
        """`checknameavailability` for site names."""
        sub = "/subscriptions/{subscriptionId}"
        return arm_route(
            sub + f"/providers/{NAMESPACE}/checknameavailability", self.check_name, ["POST"]
        )

    def site_routes(self) -> tuple[str, list[BaseRoute]]:
        """The one-site path (other areas hang their routes below it) and its routes."""
        return self.resource_routes(
            SITE_TYPE,
            "siteName",
            put=self.put_site,
            patch=self.patch_site,
            delete=self.delete_site,
            view=self._site_view,
        )

    def power_routes(self, site: str) -> list[BaseRoute]:
        """restart, start and stop under the one-site path `site`."""
        return [
            arm_route(site + "/restart", self.restart, ["POST"]),
            arm_route(site + "/start", self.start_site, ["POST"]),
            arm_route(site + "/stop", self.stop_site, ["POST"]),
        ]

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Bring every site's host and Kudu back (sandbox restart), keeping their ports
        when free (a site stored before Kudu had its own port gets one now)."""
        for record in self.ctx.store.resources(SITE_TYPE):
            private = record["private"]
            port = int(private["port"])
            scm = int(private.get("scmPort") or 0)
            if not port_free(port, reuse_address=True) or not scm or not port_free(
                scm, reuse_address=True
            ):
                with self.ctx.store.transaction():
                    if not port_free(port, reuse_address=True):
                        port = private["port"] = free_port()
                    if not scm or not port_free(scm, reuse_address=True):
                        scm = private["scmPort"] = free_port()
                    self._set_host_names(record["body"], port, scm)
            self.run_kudu(record)
            self.runtime.apply(self.site_spec(record))

    def stop(self) -> None:
        self.kudu.shutdown()
        self.runtime.shutdown()
        self.access.shutdown()

    def teardown(self, record: Record) -> None:
        if record["body"]["type"].lower() == SITE_TYPE.lower():
            self.kudu.stop(record["body"]["name"])
            self.runtime.remove_site(record["body"]["name"])
            with self.ctx.store.transaction():
                self.drop_identity(record)

    def on_image_pushed(self, registry: str, repository: str, tag: str) -> None:
        """Called by the registry provider after a push (see `RegistryProvider`)."""
        self.runtime.image_pushed(registry, repository, tag)

    # -- ids, views and names -------------------------------------------------

    @staticmethod
    def _site_id(subscription_id: str, group: str, name: str) -> str:
        return resource_id(subscription_id, group, SITE_TYPE, name)

    def _site_view(self, record: Record) -> dict[str, Any]:
        body = copy.deepcopy(record["body"])
        body["properties"]["siteConfig"] = shown_config(record)
        return body

    @staticmethod
    def _set_host_names(body: dict[str, Any], port: int, scm_port: int) -> None:
        """The site's host and its SCM (Kudu) host, where App Service reports them:
        `hostNames` has the site's only, `enabledHostNames` and `hostNameSslStates`
        both (the SCM one with `hostType: Repository`, like `<name>.scm.azurewebsites.net`)."""
        host = f"127.0.0.1:{port}"
        scm = f"127.0.0.1:{scm_port}"
        props = body["properties"]
        props["defaultHostName"] = host
        props["hostNames"] = [host]
        props["enabledHostNames"] = [host, scm]
        props["hostNameSslStates"] = [
            {"name": host, "sslState": "Disabled", "hostType": "Standard"},
            {"name": scm, "sslState": "Disabled", "hostType": "Repository"},
        ]

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
            raise AppServiceError(
                400, "InvalidRequestContent", "The request needs 'name' and 'type' strings."
            )
        if rtype.lower() not in ("site", "microsoft.web/sites"):
            raise AppServiceError(
                400,
                "BadRequest",
                f"The sandbox checks names of type 'Microsoft.Web/sites' only, not '{rtype}'.",
            )
        problem = self._site_name_problem(name)
        if problem is None:
            return json_response({"nameAvailable": True, "reason": None, "message": None})
        reason, message = problem
        return json_response({"nameAvailable": False, "reason": reason, "message": message})

    # -- sites -------------------------------------------------------------------------

    def _resolve_plan(self, plan_id: Any) -> Record:
        if not isinstance(plan_id, str) or not plan_id:
            raise AppServiceError(
                400,
                "BadRequest",
                "properties.serverFarmId is required: sandbox function apps run on an App "
                "Service plan (create one with Microsoft.Web/serverfarms first).",
            )
        plan = self.ctx.store.resource(plan_id)
        if plan is None or plan["body"]["type"].lower() != PLAN_TYPE.lower():
            raise cannot_find("ServerFarm", plan_id.rsplit("/", 1)[-1])
        return plan

    async def put_site(self, request: Request) -> Response:
        sub = self.subscription_matches(request)
        group = request.path_params["resourceGroupName"]
        name = request.path_params["siteName"]
        body = await read_json(request)
        group_record = self.ctx.require_group(sub, group, for_write=True)
        sid = self._site_id(sub, group, name)
        problem = self._site_name_problem(name, sid)
        if problem is not None:
            reason, message = problem
            if reason == "Invalid":
                raise bad_request(message)
            raise site_exists(name)
        location = location_of(body)
        props = properties_of(body)
        plan = self._resolve_plan(props.get("serverFarmId"))
        config_in, settings = site_config_in(props.get("siteConfig"))
        identity = identity_type_in(body)
        await self.sync_delay(request, "web.site")
        with self.ctx.store.transaction() as store:
            record = store.resource(sid)
            if record is None:
                # Checked again under the lock: a concurrent create may have taken the name.
                if self._site_name_problem(name, sid) is not None:
                    raise site_exists(name)
                port, scm_port = free_port(), free_port()
                while scm_port == port:
                    scm_port = free_port()
                record = {
                    "body": self._new_site_body(sid, name, group_record, location, body, plan),
                    "group": group_record["body"]["name"],
                    "private": {
                        "appSettings": settings or {},
                        "siteConfig": merge_config(DEFAULT_SITE_CONFIG, config_in),
                        "port": port,
                        "scmPort": scm_port,
                        "masterKey": _new_key(),
                        "functionKey": _new_key(),
                    },
                }
                self._set_host_names(record["body"], port, scm_port)
                store.put_resource(sid, record)
            else:
                current = record["body"]
                current["kind"] = body.get("kind") or current.get("kind")
                current["tags"] = string_tags(body)
                self._change_site(record, props, plan, config_in, settings)
            self.set_identity(record, identity)
            answer = self._site_view(record)
            spec = self.site_spec(record)
        self.run_kudu(record)
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
        props = properties_of(body)
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
                "lastModifiedTimeUtc": utc_now(),
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
        target["lastModifiedTimeUtc"] = utc_now()

    async def patch_site(self, request: Request) -> Response:
        body = await read_json(request)
        props = properties_of(body)
        record = self.site_record(request)
        plan = self._resolve_plan(props["serverFarmId"]) if props.get("serverFarmId") else None
        config_in, settings = site_config_in(props.get("siteConfig"))
        identity = identity_type_in(body)
        await self.sync_delay(request, "web.site")
        with self.ctx.store.transaction():
            record = self.site_record(request)
            if body.get("tags") is not None:
                record["body"]["tags"] = string_tags(body)
            self._change_site(record, props, plan, config_in, settings)
            self.set_identity(record, identity)
            answer = self._site_view(record)
            spec = self.site_spec(record)
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
            record["private"]["siteConfig"] = merge_config(
                record["private"]["siteConfig"], config_in
            )
        if settings is not None:
            record["private"]["appSettings"] = settings

    async def delete_site(self, request: Request) -> Response:
        sid, record = self.locate(request, SITE_TYPE, "siteName")
        if record is None:
            return empty_response(204)
        self.kudu.stop(record["body"]["name"])
        await asyncio.to_thread(self.runtime.remove_site, record["body"]["name"])
        plan_id = str(record["body"]["properties"].get("serverFarmId", ""))
        with self.ctx.store.transaction() as store:
            self.drop_identity(record)
            store.remove_resource(sid)
            if (
                request.query_params.get("deleteEmptyServerFarm", "").lower() == "true"
                and store.resource(plan_id) is not None
                and not self.sites_on_plan(plan_id)
            ):
                store.remove_resource(plan_id)
        return empty_response(200)

    # -- power ---------------------------------------------------------------------------

    async def restart(self, request: Request) -> Response:
        record = self.site_record(request)
        name = record["body"]["name"]
        self.runtime.write_log(name, "INFO", f"Site {name} restart requested.")
        self.runtime.apply(self.site_spec(record))
        if request.query_params.get("synchronous", "").lower() == "true":
            await asyncio.to_thread(self.runtime.wait, name)
        return empty_response(200)

    async def _set_state(self, request: Request, running: bool) -> Response:
        with self.ctx.store.transaction():
            record = self.site_record(request)
            props = record["body"]["properties"]
            props["state"] = "Running" if running else "Stopped"
            props["lastModifiedTimeUtc"] = utc_now()
            spec = self.site_spec(record)
        self.runtime.apply(spec)
        return empty_response(200)

    async def start_site(self, request: Request) -> Response:
        return await self._set_state(request, True)

    async def stop_site(self, request: Request) -> Response:
        return await self._set_state(request, False)
