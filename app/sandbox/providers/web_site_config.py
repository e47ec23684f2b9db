"""A site's app settings and site config (`config/appsettings`, `config/web`).

The store keeps both beside the site's body (`private.appSettings`,
`private.siteConfig`), since ARM shows them only through these routes: a site's
own GET has `appSettings` and `connectionStrings` set to null.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.sandbox.arm import arm_route, json_response, read_json
from app.sandbox.operations import utc_now
from app.sandbox.providers.web_base import WebProviderBase, properties_of
from app.sandbox.providers.web_errors import AppServiceError
from app.sandbox.store import Record

# What GET .../config/web shows for a new Linux function app.
DEFAULT_SITE_CONFIG: dict[str, Any] = {
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


def _settings_list(value: Any) -> dict[str, str]:
    """siteConfig.appSettings ([{name, value}]) as a dict, or ARM's 400."""
    shapeless = AppServiceError(
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
        raise AppServiceError(
            400, "InvalidRequestContent", "The request needs 'properties': {name: value, ...}."
        )
    settings: dict[str, str] = {}
    for key, raw in value.items():
        if raw is not None and not isinstance(raw, str | int | float | bool):
            raise AppServiceError(
                400, "InvalidRequestContent", f"The value of app setting '{key}' must be a string."
            )
        settings[str(key)] = "" if raw is None else str(raw)
    return settings


def site_config_in(value: Any) -> tuple[dict[str, Any], dict[str, str] | None]:
    """A request's siteConfig, and its appSettings as a dict (None when not given)."""
    if value is None:
        return {}, None
    if not isinstance(value, dict):
        raise AppServiceError(400, "InvalidRequestContent", "'siteConfig' must be an object.")
    settings = value.get("appSettings")
    return value, (_settings_list(settings) if settings is not None else None)


def merge_config(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(current)
    for key, value in changes.items():
        if key in _CONFIG_EXCLUDED:
            continue
        if value is not None:
            merged[key] = value
    return merged


def shown_config(record: Record) -> dict[str, Any]:
    """siteConfig as ARM shows it: settings and connection strings have their own APIs."""
    config = dict(record["private"]["siteConfig"])
    config["appSettings"] = None
    config["connectionStrings"] = None
    return config


class SiteConfigMixin(WebProviderBase):
    """PUT config/appsettings (replaces the set), POST .../list, GET/PUT/PATCH config/web."""

    def site_config_routes(self, site: str) -> list[BaseRoute]:
        """Routes under the one-site path `site`."""
        return [
            arm_route(site + "/config/appsettings", self.put_app_settings, ["PUT"]),
            arm_route(site + "/config/appsettings/list", self.list_app_settings, ["POST"]),
            arm_route(site + "/config/web", self.get_config, ["GET"]),
            arm_route(site + "/config/web", self.put_config, ["PUT"]),
            arm_route(site + "/config/web", self.patch_config, ["PATCH"]),
        ]

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
            "properties": shown_config(record),
        }

    async def put_app_settings(self, request: Request) -> Response:
        body = await read_json(request)
        settings = _settings_dict(body.get("properties"))
        self.site_record(request)
        await self.sync_delay(request, "web.config")
        with self.ctx.store.transaction():
            record = self.site_record(request)
            # Azure replaces the whole set: names left out are deleted.
            record["private"]["appSettings"] = settings
            record["body"]["properties"]["lastModifiedTimeUtc"] = utc_now()
            answer = self._settings_resource(record)
            spec = self.site_spec(record)
        self.runtime.apply(spec)
        return json_response(answer)

    async def list_app_settings(self, request: Request) -> Response:
        return json_response(self._settings_resource(self.site_record(request)))

    async def get_config(self, request: Request) -> Response:
        return json_response(self._config_resource(self.site_record(request)))

    async def _update_config(self, request: Request) -> Response:
        body = await read_json(request)
        changes = properties_of(body)
        settings = (
            _settings_list(changes["appSettings"])
            if changes.get("appSettings") is not None
            else None
        )
        self.site_record(request)
        await self.sync_delay(request, "web.config")
        with self.ctx.store.transaction():
            record = self.site_record(request)
            record["private"]["siteConfig"] = merge_config(
                record["private"]["siteConfig"], changes
            )
            if settings is not None:
                record["private"]["appSettings"] = settings
            record["body"]["properties"]["lastModifiedTimeUtc"] = utc_now()
            answer = self._config_resource(record)
            spec = self.site_spec(record)
        self.runtime.apply(spec)
        return json_response(answer)

    async def put_config(self, request: Request) -> Response:
        return await self._update_config(request)

    async def patch_config(self, request: Request) -> Response:
        return await self._update_config(request)
