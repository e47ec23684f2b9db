"""Application Insights' ingestion endpoint (Breeze) for the sandbox's components.

A component's connection string names this endpoint as its `IngestionEndpoint`, so
an Azure Monitor exporter in a site (the azure-monitor-opentelemetry distro) sends
its telemetry here: `POST {IngestionEndpoint}v2.1/track` with a JSON array of
envelopes (gzip when `Content-Encoding: gzip`), each naming its component by `iKey`.
The answer is the exporter's `TrackResponse` (`itemsReceived`, `itemsAccepted`,
`errors` of `{index, statusCode, message}`): 200 when every item was taken, 206 with
the refused items' errors otherwise, 400 when none was.

Keyless (the exporter's `credential`, for APPLICATIONINSIGHTS_AUTHENTICATION_STRING
`Authorization=AAD`): the bearer token must be one the sandbox's Entra authority
signed for `https://monitor.azure.com`, unexpired, and its principal must hold
Monitoring Metrics Publisher on the component (401 and 403 otherwise, the two codes
the exporter tells apart). Without a token the instrumentation key alone is enough,
as with local authentication on Azure.

Taken items are kept on the component's record (the last `KEPT_ITEMS`), read by
tests with `received_telemetry`.
"""

from __future__ import annotations

import gzip
import json
import time
import zlib
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from app.sandbox.entra_tokens import TokenRejected
from app.sandbox.providers import DATA_PLANE_ROOT, Provider
from app.sandbox.rbac import holds_role
from app.sandbox.store import Record, Store

COMPONENT_TYPE = "Microsoft.Insights/components"
INGESTION_PREFIX = f"{DATA_PLANE_ROOT}insights/"
# Live metrics (QuickPulse) is not emulated: nothing answers under this prefix.
LIVE_PREFIX = f"{DATA_PLANE_ROOT}insights-live/"
# The exporter asks for `https://monitor.azure.com//.default`; a managed identity's
# token names the resource with or without its slash.
MONITOR_AUDIENCES = ("https://monitor.azure.com", "https://monitor.azure.com/")
PUBLISHER_ROLE = "Monitoring Metrics Publisher"
KEPT_ITEMS = 500
# Set in every site's container (unless its settings say otherwise) so the Azure
# Monitor SDK sends nothing beyond the component's (sandbox) endpoints: no
# statsbeat to Microsoft's own ingestion, no remote configuration from
# settings.sdk.monitor.azure.com, no VM metadata (IMDS) lookup for the resource.
CONTAINER_ENVIRONMENT = {
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
    "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "azure_app_service",
}
MAX_BODY_BYTES = 16 * 1024 * 1024


def ingestion_endpoint(sandbox_endpoint: str, location: str) -> str:
    """The `IngestionEndpoint` of a component in `location` (ends with a slash, as
    Azure's do)."""
    return f"{sandbox_endpoint}{INGESTION_PREFIX}{location}/"


def received_telemetry(store: Store, component_id: str) -> list[dict[str, Any]]:
    """The envelopes the component has taken, oldest first (tests read these)."""
    record = store.resource(component_id)
    if record is None:
        return []
    return list(record.get("telemetry") or [])


def _track_answer(status: int, received: int, accepted: int,
                  errors: list[dict[str, Any]]) -> Response:
    return JSONResponse({"itemsReceived": received, "itemsAccepted": accepted,
                         "errors": errors}, status_code=status)


def _all_refused(received: int, status: int, message: str) -> Response:
    return _track_answer(status, received, 0, [
        {"index": i, "statusCode": status, "message": message} for i in range(received)])


class InsightsIngestionProvider(Provider):
    """`POST /dataplane/insights/{location}/v2.1/track`: no ARM token; the exporter's own."""

    namespace = ""  # not an ARM resource provider
    data_plane_prefixes: ClassVar[tuple[str, ...]] = (INGESTION_PREFIX,)

    def routes(self) -> list[BaseRoute]:
        # The exporter joins the endpoint's trailing slash and `/v2.1/track` as they
        # are (`...azure.com//v2.1/track`), which Azure's ingestion takes.
        return [Route(INGESTION_PREFIX + "{location}" + slashes + "v2.1/track", self.track,
                      methods=["POST"]) for slashes in ("/", "//")]

    async def track(self, request: Request) -> Response:
        items = await self._envelopes(request)
        if isinstance(items, Response):
            return items
        components = {str(r["body"]["properties"].get("InstrumentationKey", "")).lower(): r
                      for r in self.ctx.store.resources(COMPONENT_TYPE)}
        principal = self._principal(request, len(items))
        if isinstance(principal, Response):
            return principal
        taken: dict[str, list[dict[str, Any]]] = {}
        errors: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            key = str(item.get("iKey", "")).lower() if isinstance(item, dict) else ""
            record = components.get(key)
            if record is None:
                errors.append({"index": index, "statusCode": 400,
                               "message": "Invalid instrumentation key"})
                continue
            if principal and not holds_role(self.ctx.store, principal, record["body"]["id"],
                                            (PUBLISHER_ROLE,)):
                errors.append({"index": index, "statusCode": 403,
                               "message": "The identity is not authorized to publish "
                                          "telemetry to this component."})
                continue
            taken.setdefault(record["body"]["id"], []).append(item)
        if taken:
            with self.ctx.store.transaction() as store:
                for component_id, envelopes in taken.items():
                    kept = store.resource(component_id)
                    if kept is not None:
                        _keep(kept, envelopes)
        accepted = sum(len(v) for v in taken.values())
        if not accepted:
            status = 403 if errors and all(e["statusCode"] == 403 for e in errors) else 400
            return _track_answer(status, len(items), 0, errors)
        return _track_answer(206 if errors else 200, len(items), accepted, errors)

    async def _envelopes(self, request: Request) -> list[Any] | Response:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _all_refused(0, 413, "The request body is too large.")
        if request.headers.get("content-encoding", "").lower() == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError, zlib.error):
                return _all_refused(0, 400, "The request body is not valid gzip.")
        try:
            items = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _all_refused(0, 400, "The request body is not a JSON array of items.")
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list):
            return _all_refused(0, 400, "The request body is not a JSON array of items.")
        return items

    def _principal(self, request: Request, received: int) -> str | Response:
        """The token's principal object id; "" without a token; 401 for a bad one."""
        header = request.headers.get("authorization", "")
        if not header:
            return ""
        scheme, _, token = header.partition(" ")
        refused = _all_refused(received, 401, "The access token is not valid for "
                               "Application Insights ingestion.")
        if scheme.lower() != "bearer" or self.ctx.tokens is None:
            return refused
        try:
            claims = self.ctx.tokens.verify(token.strip())
        except TokenRejected:
            return refused
        exp = claims.get("exp")
        if (claims.get("aud") not in MONITOR_AUDIENCES or not isinstance(exp, int | float)
                or exp < time.time() or not isinstance(claims.get("oid"), str)):
            return refused
        return str(claims["oid"])


def _keep(record: Record, envelopes: list[dict[str, Any]]) -> None:
    kept = [*(record.get("telemetry") or []), *envelopes]
    record["telemetry"] = kept[-KEPT_ITEMS:]
