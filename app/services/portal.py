"""Links into the Azure portal, for the views that show a resource."""

from __future__ import annotations

PORTAL = "https://portal.azure.com"


def portal_url(tenant_id: str | None, resource_id: str) -> str:
    """A resource's page: `https://portal.azure.com/#@<tenant>/resource<resource id>`
    (the tenant makes the portal open the directory the resource is in)."""
    return f"{PORTAL}/#@{tenant_id or ''}/resource{resource_id}"


# Application Insights' own blades. Live metrics is the component's "quickPulse" menu
# item; transaction search opens through the extension's BladeRedirect with the
# tables and time window as its BladeInputs (the form the portal's "Copy link" of
# Transaction search gives).
RECENT_MINUTES = 30


def live_metrics_url(tenant_id: str | None, component_id: str) -> str:
    return portal_url(tenant_id, component_id) + "/quickPulse"


def recent_requests_url(tenant_id: str | None, component_id: str,
                        minutes: int = RECENT_MINUTES) -> str:
    """Transaction search on the component's requests of the last `minutes`."""
    import json
    from urllib.parse import quote

    inputs = {"tables": ["requests"],
              "timeContextWhereClause": f"| where timestamp > ago({minutes}m)",
              "filterWhereClause": "| order by timestamp desc",
              "timeContext": {"durationMs": minutes * 60 * 1000}}
    return (f"{PORTAL}/#@{tenant_id or ''}/blade/AppInsightsExtension/BladeRedirect/"
            f"BladeName/searchV1/ResourceId/{quote(component_id, safe='')}/BladeInputs/"
            f"{quote(json.dumps(inputs, separators=(',', ':')), safe='')}")
