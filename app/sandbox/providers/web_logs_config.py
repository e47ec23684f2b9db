"""A site's diagnostic logs configuration, `config/logs`, and the container logging it turns on.

`web_apps.get_diagnostic_logs_configuration` / `update_diagnostic_logs_config`
read and write `SiteLogsConfig`: `applicationLogs`, `httpLogs`,
`failedRequestsTracing`, `detailedErrorMessages`. On Linux, App Service writes the
container's output to `LogFiles/*_default_docker.log` only while
`httpLogs.fileSystem.enabled` is true: that is the property
`az webapp log config --docker-container-logging filesystem` sets (with
`retentionInMb: 100, retentionInDays: 3`, azure-cli appservice `_config_diagnostics`).
Switching it on starts a segment of the site's log that the container log files
are made of (`web_container_logs`); switching it off ends it.

A PUT replaces the sections it names and keeps the others, as App Service does for
the partial configs azure-cli sends; `retentionInMb` must be 25-100 (the API's range).
"""

from __future__ import annotations

import copy
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.sandbox.arm import arm_route, json_response, read_json
from app.sandbox.operations import utc_now
from app.sandbox.providers.web_base import WebProviderBase, properties_of
from app.sandbox.providers.web_container_logs import close_segment, new_segment
from app.sandbox.providers.web_errors import bad_request
from app.sandbox.store import Record

# What GET config/logs shows for a new Linux function app (everything off).
DEFAULT_LOGS_CONFIG: dict[str, Any] = {
    "applicationLogs": {
        "fileSystem": {"level": "Off"},
        "azureTableStorage": None,
        "azureBlobStorage": {"level": "Off", "sasUrl": None, "retentionInDays": None},
    },
    "httpLogs": {
        "fileSystem": {"retentionInMb": 35, "retentionInDays": None, "enabled": False},
        "azureBlobStorage": {"sasUrl": None, "retentionInDays": None, "enabled": False},
    },
    "failedRequestsTracing": {"enabled": False},
    "detailedErrorMessages": {"enabled": False},
}
_SECTIONS = tuple(DEFAULT_LOGS_CONFIG)
_LEVELS = ("Off", "Verbose", "Information", "Warning", "Error")


def logs_config(record: Record) -> dict[str, Any]:
    """The site's SiteLogsConfig properties (the defaults until a PUT changed them)."""
    return copy.deepcopy(record["private"].get("logsConfig") or DEFAULT_LOGS_CONFIG)


def container_logging_on(config: dict[str, Any]) -> bool:
    """Whether App Service writes the container's output to `*_default_docker.log`."""
    file_system = (config.get("httpLogs") or {}).get("fileSystem") or {}
    return bool(file_system.get("enabled"))


def _validated(changes: dict[str, Any]) -> dict[str, Any]:
    """The sections a PUT sets, checked; App Service's 400 for what it refuses."""
    sections: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in _SECTIONS:
            continue
        if value is not None and not isinstance(value, dict):
            raise bad_request(f"The logs configuration section '{key}' must be an object.")
        if value is not None:
            sections[key] = value
    file_system = (sections.get("httpLogs") or {}).get("fileSystem") or {}
    retention = file_system.get("retentionInMb")
    if retention is not None and (
        isinstance(retention, bool) or not isinstance(retention, int) or not 25 <= retention <= 100
    ):
        raise bad_request(
            f"The value of httpLogs.fileSystem.retentionInMb must be between 25 and 100, "
            f"not {retention!r}."
        )
    level = ((sections.get("applicationLogs") or {}).get("fileSystem") or {}).get("level")
    if level is not None and str(level).lower() not in (v.lower() for v in _LEVELS):
        raise bad_request(
            f"The application log level '{level}' is not one of {', '.join(_LEVELS)}."
        )
    return sections


def _merged(current: dict[str, Any], sections: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(current)
    for key, value in sections.items():
        target = merged.setdefault(key, {}) or {}
        for part, settings in value.items():
            if isinstance(settings, dict) and isinstance(target.get(part), dict):
                target[part] = {**target[part], **settings}
            else:
                target[part] = settings
        merged[key] = target
    return merged


class LogsConfigMixin(WebProviderBase):
    """GET/PUT config/logs; container logging follows httpLogs.fileSystem.enabled."""

    def logs_config_routes(self, site: str) -> list[BaseRoute]:
        """Routes under the one-site path `site`."""
        return [
            arm_route(site + "/config/logs", self.get_logs_config, ["GET"]),
            arm_route(site + "/config/logs", self.put_logs_config, ["PUT"]),
        ]

    def _logs_resource(self, record: Record) -> dict[str, Any]:
        body = record["body"]
        return {
            "id": body["id"] + "/config/logs",
            "name": "logs",
            "type": "Microsoft.Web/sites/config",
            "location": body["location"],
            "properties": logs_config(record),
        }

    async def get_logs_config(self, request: Request) -> Response:
        return json_response(self._logs_resource(self.site_record(request)))

    async def put_logs_config(self, request: Request) -> Response:
        body = await read_json(request)
        sections = _validated(properties_of(body))
        self.site_record(request)
        await self.sync_delay(request, "web.config")
        with self.ctx.store.transaction():
            record = self.site_record(request)
            before = logs_config(record)
            after = _merged(before, sections)
            record["private"]["logsConfig"] = after
            segments = record["private"].setdefault("containerLogs", [])
            site_log = self.runtime.log_file(record["body"]["name"])
            if container_logging_on(after) and not container_logging_on(before):
                segments.append(new_segment(site_log))
            elif container_logging_on(before) and not container_logging_on(after):
                close_segment(segments, site_log)
            record["body"]["properties"]["lastModifiedTimeUtc"] = utc_now()
            answer = self._logs_resource(record)
        return json_response(answer)
