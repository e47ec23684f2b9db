"""Who an ARM request comes from: the bearer token, and the tenant it may act in.

ARM accepts a token when its signature, issuer, lifetime and audience are right,
then refuses it (401 InvalidAuthenticationTokenTenant) on a subscription of
another tenant. The sandbox accepts two kinds of bearer token:

- the static token of `connection.json`, which acts in the home tenant (what
  tests and the product's sandbox target use without signing in);
- tokens its own Entra authority issued (`app.sandbox.entra`), checked as ARM
  checks Entra's, with Azure's error codes and messages, where the issuer names
  the sandbox authority instead of `https://sts.windows.net`.
"""

from __future__ import annotations

import datetime
import hmac
import re
import time

from starlette.requests import Request

from app.sandbox.arm import ArmError
from app.sandbox.entra_tokens import ARM_AUDIENCES, TokenIssuer, TokenRejected
from app.sandbox.providers import SandboxContext

_SUBSCRIPTION_PATH = re.compile(r"^/subscriptions/([^/]+)", re.IGNORECASE)


def _arm_time(epoch: float) -> str:
    """A time as ARM's messages print it: '6/15/2026 8:22:51 AM' (UTC)."""
    d = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    hour = d.hour % 12 or 12
    half = "AM" if d.hour < 12 else "PM"
    return f"{d.month}/{d.day}/{d.year} {hour}:{d.minute:02}:{d.second:02} {half}"


def _invalid_token() -> ArmError:
    return ArmError(
        401,
        "InvalidAuthenticationToken",
        "The access token is invalid.",
        {"WWW-Authenticate": 'Bearer error="invalid_token", error_description="The access '
         'token is invalid."'},
    )


def authenticate(ctx: SandboxContext, tokens: TokenIssuer, request: Request) -> str:
    """The tenant id the request's bearer token acts in, or ARM's 401."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if not header:
        raise ArmError(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        )
    if scheme.lower() != "bearer" or not token:
        raise ArmError(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid "
            "format.",
        )
    return verify_bearer(ctx, tokens, token)


def verify_bearer(ctx: SandboxContext, tokens: TokenIssuer, token: str) -> str:
    """The tenant a bearer token for ARM acts in (the sandbox's own token, or one its
    Entra authority issued for ARM's audience), or ARM's 401. ACR's token exchange
    takes the same tokens."""
    if hmac.compare_digest(token.encode(), ctx.token.encode()):
        return ctx.store.tenant_id
    if token.count(".") != 2:
        raise ArmError(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid "
            "format or the token is not valid for this sandbox.",
        )
    try:
        claims = tokens.verify(token)
    except TokenRejected:
        raise _invalid_token() from None
    tenant_id = str(claims.get("tid", ""))
    if ctx.directory.tenant(tenant_id) is None or claims.get("iss") != tokens.v1_issuer(tenant_id):
        raise _invalid_token()
    now = time.time()
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp < now:
        raise ArmError(
            401,
            "ExpiredAuthenticationToken",
            f"The access token expiry UTC time '{_arm_time(float(exp or 0))}' is earlier than "
            f"current UTC time '{_arm_time(now)}'.",
        )
    allowed = (*ARM_AUDIENCES, ctx.endpoint + "/", ctx.endpoint)
    audience = claims.get("aud")
    if audience not in allowed:
        listed = ",".join(f"'{a}'" for a in allowed)
        raise ArmError(
            401,
            "InvalidAuthenticationTokenAudience",
            f"The access token has been obtained for wrong audience or resource '{audience}'. "
            f"It should exactly match with one of the allowed audiences {listed}.",
        )
    return tenant_id


def check_subscription(ctx: SandboxContext, tokens: TokenIssuer, path: str, tenant_id: str) -> None:
    """404 for a subscription the sandbox lacks; 401 for one of another tenant than the
    token's, with ARM's message (issuer and authority URLs are the sandbox's)."""
    match = _SUBSCRIPTION_PATH.match(path)
    if not match:
        return
    sub = ctx.directory.subscription(match.group(1))
    if sub is None:
        raise ArmError(
            404,
            "SubscriptionNotFound",
            f"The subscription '{match.group(1)}' could not be found.",
        )
    if sub.tenant_id == tenant_id:
        return
    authority = f"{tokens.authority}/{sub.tenant_id}"
    raise ArmError(
        401,
        "InvalidAuthenticationTokenTenant",
        f"The access token is from the wrong issuer '{tokens.v1_issuer(tenant_id)}'. It must "
        f"match the tenant '{tokens.v1_issuer(sub.tenant_id)}' associated with this "
        f"subscription. Please use the authority (URL) '{authority}' to get the token. Note, "
        "if the subscription is transferred to another tenant there is no impact to the "
        "services, but information about new tenant could take time to propagate (up to an "
        "hour). If you just transferred your subscription and see this error message, please "
        "try back later.",
        {
            "WWW-Authenticate": f'Bearer authorization_uri="{authority}", error="invalid_token", '
            'error_description="The access token is from the wrong issuer."'
        },
    )
