"""Links into the Azure portal, for the views that show a resource."""

from __future__ import annotations

PORTAL = "https://portal.azure.com"


def portal_url(tenant_id: str | None, resource_id: str) -> str:
    """A resource's page: `https://portal.azure.com/#@<tenant>/resource<resource id>`
    (the tenant makes the portal open the directory the resource is in)."""
    return f"{PORTAL}/#@{tenant_id or ''}/resource{resource_id}"
