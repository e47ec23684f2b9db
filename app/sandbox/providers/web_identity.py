"""A site's system-assigned managed identity: its service principal, on and off.

`identity: {"type": "SystemAssigned"}` on a site PUT or PATCH gives the site a
service principal in its subscription's tenant; the answer (and every GET) shows
`identity.principalId` and `identity.tenantId`. The principal stays the same while
the identity stays on; `type: "None"` (or deleting the site) deletes it, as Entra
deletes a system-assigned identity with its resource, and turning it on again makes
a new one. Principals are kept in the store, so they survive restarts, and the
Authorization provider knows them (`PrincipalNotFound` otherwise). User-assigned
identities are not emulated (no Microsoft.ManagedIdentity provider): 400.
"""

from __future__ import annotations

import uuid
from typing import Any

from app.sandbox.entra_tokens import managed_identity_app_id
from app.sandbox.operations import utc_now
from app.sandbox.providers.web_base import WebProviderBase
from app.sandbox.providers.web_errors import bad_request
from app.sandbox.store import Record

_KNOWN = {"none": "None", "systemassigned": "SystemAssigned"}


def identity_type_in(body: dict[str, Any]) -> str | None:
    """The identity type a PUT/PATCH body asks for (`None`, `SystemAssigned`), or None
    when the body does not name one (the site keeps what it has)."""
    identity = body.get("identity")
    if identity is None:
        return None
    if not isinstance(identity, dict):
        raise bad_request("'identity' must be an object.")
    wanted = str(identity.get("type") or "None").replace(" ", "").lower()
    if wanted in _KNOWN:
        return _KNOWN[wanted]
    if "userassigned" in wanted:
        raise bad_request(
            "User-assigned managed identities are not emulated by the sandbox; use "
            "'SystemAssigned'."
        )
    raise bad_request(f"The identity type '{identity.get('type')}' is not valid.")


class IdentityMixin(WebProviderBase):
    """Creates and removes sites' service principals; hears of new role assignments."""

    def set_identity(self, record: Record, wanted: str | None) -> None:
        """Apply the identity type asked for (callers hold the store's transaction)."""
        body = record["body"]
        current = body.get("identity") or {}
        if wanted is None:
            return
        if wanted == "None":
            self.drop_identity(record)
            return
        if current.get("principalId"):
            return
        sub = str(body["id"]).split("/")[2]
        found = self.ctx.directory.subscription(sub)
        tenant_id = found.tenant_id if found is not None else self.ctx.store.tenant_id
        principal_id = str(uuid.uuid4())
        self.ctx.store.put_service_principal(principal_id, {
            "objectId": principal_id,
            "appId": managed_identity_app_id(principal_id),
            "tenantId": tenant_id,
            "displayName": body["name"],
            "servicePrincipalType": "ManagedIdentity",
            "alternativeNames": ["isExplicit=False", body["id"]],
            "createdDateTime": utc_now(),
        })
        body["identity"] = {
            "type": "SystemAssigned", "tenantId": tenant_id, "principalId": principal_id
        }

    def drop_identity(self, record: Record) -> None:
        """The site's identity goes: its principal leaves the directory, its host's
        token secret stops working (callers hold the store's transaction)."""
        identity = record["body"].pop("identity", None) or {}
        if identity.get("principalId"):
            self.ctx.store.remove_service_principal(str(identity["principalId"]))
        self.access.forget_identity(str(record["body"]["name"]))

    def on_role_assignment(self, principal_id: str) -> None:
        self.runtime.rights_changed(principal_id)
