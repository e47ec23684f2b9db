"""Who the signed-in identity is: the tenants and subscriptions it can see.

Apart from `target` because listing needs the SDK clients, which need a target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.errors import NotPermitted
from app.services.clients import ClientFactory
from app.services.target import CloudTarget


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    name: str
    tenant_id: str
    state: str


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    name: str
    domain: str


def _subscription_client(credential: Any, target: CloudTarget | None) -> Any:
    probe = target or CloudTarget(kind="azure", credential=credential, subscription_id="")
    return ClientFactory(probe).subscriptions()


def list_tenants(credential: Any, target: CloudTarget | None = None) -> list[Tenant]:
    """Tenants the signed-in identity can see."""
    from azure.core.exceptions import ClientAuthenticationError

    client = _subscription_client(credential, target)
    try:
        return [
            Tenant(t.tenant_id or "", t.display_name or t.tenant_id or "", t.default_domain or "")
            for t in client.tenants.list()
        ]
    except ClientAuthenticationError as exc:
        raise NotPermitted(f"sign-in failed: {exc.message}", "Sign in again.") from None


def list_subscriptions(credential: Any, target: CloudTarget | None = None) -> list[Subscription]:
    """Subscriptions the signed-in identity can see, enabled ones first."""
    from azure.core.exceptions import ClientAuthenticationError

    client = _subscription_client(credential, target)
    try:
        subs = [
            Subscription(
                s.subscription_id or "",
                s.display_name or "",
                s.tenant_id or "",
                str(getattr(s.state, "value", s.state) or ""),
            )
            for s in client.subscriptions.list()
        ]
    except ClientAuthenticationError as exc:
        raise NotPermitted(f"sign-in failed: {exc.message}", "Sign in again.") from None
    return sorted(subs, key=lambda s: (s.state != "Enabled", s.name.lower()))
