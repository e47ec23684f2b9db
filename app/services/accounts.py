"""Who the signed-in identity is: the tenants and subscriptions it can see.

Apart from `target` because listing needs the SDK clients, which need a target.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from app.services.clients import ClientFactory
from app.services.sign_in_store import sign_in_refused
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


def _subscription_client(credential: Any, cloud: CloudTarget | None) -> Any:
    """A SubscriptionClient on `cloud` (None: Azure) that acts with `credential`."""
    if cloud is None:
        probe = CloudTarget(kind="azure", credential=credential, subscription_id="")
    else:
        probe = dataclasses.replace(cloud, credential=credential, _closer=None)
    return ClientFactory(probe).subscriptions()


def list_tenants(credential: Any, cloud: CloudTarget | None = None) -> list[Tenant]:
    """Tenants the signed-in identity can see."""
    from azure.core.exceptions import ClientAuthenticationError

    client = _subscription_client(credential, cloud)
    try:
        return [
            Tenant(t.tenant_id or "", t.display_name or t.tenant_id or "", t.default_domain or "")
            for t in client.tenants.list()
        ]
    except ClientAuthenticationError as exc:
        raise sign_in_refused(exc) from None


def list_subscriptions(credential: Any, cloud: CloudTarget | None = None) -> list[Subscription]:
    """Subscriptions the signed-in identity can see, enabled ones first."""
    from azure.core.exceptions import ClientAuthenticationError

    client = _subscription_client(credential, cloud)
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
        raise sign_in_refused(exc) from None
    return sorted(subs, key=lambda s: (s.state != "Enabled", s.name.lower()))


@dataclass(frozen=True)
class IdentityInUse:
    """Who a target acts as, by name (never a token or a secret); `who` is empty when
    the token names no one (not a JWT)."""

    who: str
    tenant_id: str
    subscription_id: str

    def describe(self) -> str:
        if not self.who:
            return f"subscription {self.subscription_id}"
        return f"{self.who} (tenant {self.tenant_id}), subscription {self.subscription_id}"


def identity_in_use(target: CloudTarget) -> IdentityInUse:
    """Who the target's credential is and which tenant its tokens are for.

    Read from the claims of an ARM token the credential issues (not verified here:
    ARM verifies it; this only names it). Raises what the credential raises when
    sign-in fails, so a bad sign-in shows before anything else is asked.
    """
    import base64
    import json

    token = target.credential.get_token(*target.credential_scopes).token
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return IdentityInUse("", target.tenant_id or "", target.subscription_id)
    who = (claims.get("upn") or claims.get("preferred_username") or claims.get("unique_name")
           or claims.get("appid") or claims.get("oid") or "an identity")
    return IdentityInUse(str(who), str(claims.get("tid", "?")), target.subscription_id)


def signed_in_as(target: CloudTarget) -> str:
    """`identity_in_use` in words, as the CLI prints it before it acts."""
    return identity_in_use(target).describe()
