"""Microsoft.Web/serverfarms: App Service plans.

A plan is only a record here (no process backs it), but it decides what its
sites may run: `reserved` marks a Linux plan, and a plan that still hosts sites
cannot be deleted, as App Service refuses it.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.sandbox.arm import empty_response, json_response, read_json, resource_id
from app.sandbox.providers.resources import location_of, string_tags
from app.sandbox.providers.web_base import PLAN_TYPE, WebProviderBase, properties_of
from app.sandbox.providers.web_errors import AppServiceError
from app.sandbox.store import Record

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


class PlansMixin(WebProviderBase):
    """App Service plans: create/update, patch, delete (409 while sites use the plan)."""

    def plan_routes(self) -> list[BaseRoute]:
        """List, get, put, patch and delete of `Microsoft.Web/serverfarms`."""
        _, plans = self.resource_routes(
            PLAN_TYPE,
            "planName",
            put=self.put_plan,
            patch=self.patch_plan,
            delete=self.delete_plan,
            view=self._plan_view,
        )
        return plans

    @staticmethod
    def _plan_id(subscription_id: str, group: str, name: str) -> str:
        return resource_id(subscription_id, group, PLAN_TYPE, name)

    def _plan_record(self, request: Request) -> Record:
        return self.lookup(request, PLAN_TYPE, "planName")[1]

    def _plan_view(self, record: Record) -> dict[str, Any]:
        body = copy.deepcopy(record["body"])
        body["properties"]["numberOfSites"] = len(self.sites_on_plan(body["id"]))
        return body

    # -- plans -------------------------------------------------------------------------

    @staticmethod
    def _plan_sku(body: dict[str, Any]) -> dict[str, Any]:
        sku = body.get("sku")
        if not isinstance(sku, dict) or not isinstance(sku.get("name"), str):
            raise AppServiceError(
                400, "InvalidRequestContent", "The request content is missing the required 'sku'."
            )
        name = sku["name"].upper()
        if name not in _PLAN_SKUS:
            raise AppServiceError(
                400,
                "BadRequest",
                f"The pricing tier '{sku['name']}' is not allowed. Choose one of "
                f"{', '.join(_PLAN_SKUS)}.",
            )
        tier, family, _ = _PLAN_SKUS[name]
        capacity = sku.get("capacity") or 1
        if not isinstance(capacity, int) or capacity < 1:
            raise AppServiceError(400, "BadRequest", "The sku capacity must be a positive integer.")
        canonical = name[:-2] + name[-2:].lower() if name.endswith(("V2", "V3")) else name
        return {
            "name": canonical,
            "tier": tier,
            "size": canonical,
            "family": family,
            "capacity": capacity,
        }

    async def put_plan(self, request: Request) -> Response:
        sub = self.subscription_matches(request)
        group = request.path_params["resourceGroupName"]
        name = request.path_params["planName"]
        body = await read_json(request)
        group_record = self.ctx.require_group(sub, group, for_write=True)
        if not _PLAN_NAME.match(name):
            raise AppServiceError(
                400,
                "BadRequest",
                f"The plan name '{name}' is not valid: 1-60 letters, digits, '-' and '_'.",
            )
        location = location_of(body)
        sku = self._plan_sku(body)
        props = properties_of(body)
        reserved = bool(props.get("reserved", False))
        pid = self._plan_id(sub, group, name)
        existing = self.ctx.store.resource(pid)
        if existing is not None and bool(existing["body"]["properties"]["reserved"]) != reserved:
            raise AppServiceError(
                409,
                "Conflict",
                "The operating system of an App Service plan cannot be changed "
                "(properties.reserved differs from the existing plan).",
            )
        await self.sync_delay(request, "web.plan")
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
        await self.sync_delay(request, "web.plan")
        return json_response(self._plan_view(record))

    async def delete_plan(self, request: Request) -> Response:
        pid, _ = self.locate(request, PLAN_TYPE, "planName")
        with self.ctx.store.transaction() as store:
            record = store.resource(pid)
            if record is None:
                return empty_response(204)
            sites = self.sites_on_plan(pid)
            if sites:
                # App Service refuses to delete a plan that still hosts apps.
                names = ", ".join(sorted(s["body"]["name"] for s in sites))
                raise AppServiceError(
                    409,
                    "Conflict",
                    f"Server farm '{record['body']['name']}' cannot be deleted because it has "
                    f"web app(s) {names} assigned to it.",
                )
            store.remove_resource(pid)
        return empty_response(200)
