"""Who signs in to the sandbox and where: its tenants, their subscriptions, its one user.

Azure keeps every subscription in exactly one Microsoft Entra tenant, and a user
can belong to several tenants: as a member of the home tenant and as a guest
(B2B) elsewhere. ARM then answers per tenant: a token of tenant A lists A's
subscriptions and is refused on B's. The sandbox emulates the smallest setup that
shows this: a home tenant holding the first subscription, and a partner tenant,
where the sandbox user is a guest, holding a second one.

The tenants and subscriptions are persisted in the store (their ids must survive
a restart, since resources live under them); the user's password is not: it
changes at every start, like the static token, and is handed out only through
`connection.json`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

HOME_DOMAIN = "sandbox.onmicrosoft.com"
PARTNER_DOMAIN = "sandboxpartner.onmicrosoft.com"
USER_NAME = f"sandbox.user@{HOME_DOMAIN}"
USER_DISPLAY_NAME = "Sandbox User"

# Tenant path segments that are not one tenant but "the user's own" (Entra's
# multi-tenant authorities): tokens asked for there are issued in the home tenant.
MULTI_TENANT_ALIASES = ("organizations", "common")


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    display_name: str
    tenant_id: str


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    display_name: str
    default_domain: str
    # The sandbox user's object id in this tenant: a guest has its own object in
    # every tenant it was invited to, so `oid` differs per tenant, as in Entra.
    user_object_id: str
    guest: bool
    subscriptions: tuple[Subscription, ...]


@dataclass(frozen=True)
class SandboxUser:
    username: str
    display_name: str
    password: str


def default_tenants(home_tenant_id: str, home_subscription_id: str) -> list[dict[str, Any]]:
    """The store's `tenants` entry for a new (or older, single-tenant) state directory."""
    partner_tenant_id = str(uuid.uuid4())
    return [
        {
            "tenantId": home_tenant_id,
            "displayName": "Sandbox tenant",
            "defaultDomain": HOME_DOMAIN,
            "userObjectId": str(uuid.uuid4()),
            "guest": False,
            "subscriptions": [
                {"subscriptionId": home_subscription_id, "displayName": "Sandbox subscription"}
            ],
        },
        {
            "tenantId": partner_tenant_id,
            "displayName": "Sandbox partner tenant",
            "defaultDomain": PARTNER_DOMAIN,
            "userObjectId": str(uuid.uuid4()),
            "guest": True,
            "subscriptions": [
                {
                    "subscriptionId": str(uuid.uuid4()),
                    "displayName": "Sandbox partner subscription",
                }
            ],
        },
    ]


class Directory:
    """Read-only view of the tenants (from the store) and the user (this run's password)."""

    def __init__(self, tenants: list[dict[str, Any]], password: str) -> None:
        self.tenants: tuple[Tenant, ...] = tuple(
            Tenant(
                tenant_id=t["tenantId"],
                display_name=t["displayName"],
                default_domain=t["defaultDomain"],
                user_object_id=t["userObjectId"],
                guest=bool(t["guest"]),
                subscriptions=tuple(
                    Subscription(s["subscriptionId"], s["displayName"], t["tenantId"])
                    for s in t["subscriptions"]
                ),
            )
            for t in tenants
        )
        self.user = SandboxUser(USER_NAME, USER_DISPLAY_NAME, password)

    @property
    def home(self) -> Tenant:
        return next(t for t in self.tenants if not t.guest)

    def tenant(self, key: str) -> Tenant | None:
        """The tenant a path segment names: its id, its domain, or a multi-tenant alias
        (the user's home tenant); None when the sandbox has no such tenant."""
        wanted = key.lower()
        if wanted in MULTI_TENANT_ALIASES:
            return self.home
        for tenant in self.tenants:
            if wanted in (tenant.tenant_id.lower(), tenant.default_domain.lower()):
                return tenant
        return None

    def subscription(self, subscription_id: str) -> Subscription | None:
        wanted = subscription_id.lower()
        for tenant in self.tenants:
            for sub in tenant.subscriptions:
                if sub.subscription_id.lower() == wanted:
                    return sub
        return None

    def subscriptions(self) -> list[Subscription]:
        return [sub for tenant in self.tenants for sub in tenant.subscriptions]
