"""The one translator from what Azure (or the network) answered to what a person should do.

One table maps ARM error codes to a class of `app.errors` (who is at fault) and
a one-line recommendation; `describe()` turns any exception into that triple,
`as_error()` into the `MlcacheError` the CLI and the GUI both show, and
`plain_request_error()` says a failed HTTP call in plain words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.errors import (
    BadInput,
    MlcacheError,
    NotPermitted,
    QuotaOrRegion,
    ServiceFailure,
)
from app.services.redaction import redact

MANAGED_REDIS_SUGGESTION = (
    "Azure no longer lets this tenant create Azure Cache for Redis (Basic/Standard/Premium); "
    "set cache.kind to \"azure-managed-redis\" (e.g. tier Balanced, size B0 for a Standard C0) "
    "and deploy again."
)


@dataclass(frozen=True)
class Hint:
    error_class: type[MlcacheError]
    recommendation: str


_NAME_TAKEN = Hint(
    BadInput, "The name is taken (names are global across Azure); choose another one."
)
_QUOTA = Hint(
    QuotaOrRegion,
    "The subscription's quota is used up here: pick a smaller size or another region, "
    "or request a quota increase in the portal (Subscriptions > Usage + quotas).",
)
_SKU_REGION = Hint(
    QuotaOrRegion,
    "This size or tier is not offered in the chosen region for this subscription: "
    "pick another region or size.",
)
_AUTH = Hint(
    NotPermitted,
    "The signed-in identity lacks permission: ask for the Contributor role on the "
    "subscription or resource group, or sign in with another account.",
)
_SIGN_IN = Hint(
    NotPermitted, "Sign in again: the credential was rejected or has expired."
)
_BAD_REQUEST = Hint(
    BadInput, "Azure refused the settings: fix the value the message names and deploy again."
)
_TRANSIENT = Hint(
    ServiceFailure, "A temporary Azure failure: deploy again; finished resources are kept."
)
_BLOCKED = Hint(QuotaOrRegion, MANAGED_REDIS_SUGGESTION)
_NO_CAPACITY = Hint(
    QuotaOrRegion,
    "Azure has no capacity for this in the chosen region right now; a smaller size rarely "
    "helps. Set location to another region near your users (e.g. northeurope for "
    "westeurope, eastus for eastus2) and deploy again: the failed resource is replaced, "
    "finished ones are kept.",
)
_APP_SERVICE_QUOTA = Hint(
    QuotaOrRegion,
    "The subscription has no App Service quota left for this plan size in this region (the "
    "message gives the current limit and the new limit to ask for): pick another region or "
    "plan size, or ask for more with a support request (Help + support > Create a support "
    "request > Service and subscription limits (quotas) > App Service).",
)

HINTS: dict[str, Hint] = {
    # Names
    "NameNotAvailable": _NAME_TAKEN,
    "NameAlreadyExists": _NAME_TAKEN,
    "StorageAccountAlreadyTaken": _NAME_TAKEN,
    "StorageAccountAlreadyExists": _NAME_TAKEN,
    "AlreadyExists": _NAME_TAKEN,
    "RegistryNameNotAvailable": _NAME_TAKEN,
    "WebsiteAlreadyExists": _NAME_TAKEN,
    "SiteNameNotAvailable": _NAME_TAKEN,
    "ReservedResourceName": Hint(
        BadInput, "The name contains a reserved word or trademark; choose another one."
    ),
    "AccountNameInvalid": Hint(
        BadInput, "Storage account names are 3-24 lowercase letters and digits."
    ),
    "InvalidResourceName": Hint(BadInput, "Fix the name as the message says and deploy again."),
    # Quota, SKU and region
    "QuotaExceeded": _QUOTA,
    "SubscriptionQuotaExceeded": _QUOTA,
    "OperationNotAllowed": _QUOTA,
    "Unauthorized.QuotaExceeded": _QUOTA,
    "ResourceQuotaExceeded": _QUOTA,
    "SkuNotAvailable": _SKU_REGION,
    "LocationNotAvailableForResourceType": _SKU_REGION,
    "NoRegisteredProviderFound": _SKU_REGION,
    "InvalidLocation": _SKU_REGION,
    "RegionCapacityUnavailable": _SKU_REGION,
    # Azure Managed Redis accepts the cluster, then ends it Failed when the region has no
    # room; it is the region, not the size (langchain-ai/terraform#258, 2026).
    "InsufficientCapacity": _NO_CAPACITY,
    "AllocationFailed": _NO_CAPACITY,
    "ZonesNotSupported": Hint(
        QuotaOrRegion, "Availability zones are not offered for this region or tier: turn them off."
    ),
    # Azure Cache for Redis blocked for tenants that had none before 2026-04-01.
    # Microsoft documents no code of its own for it. What Azure is reported to
    # answer (az redis create, template deployments) is 400 with the generic
    # "BadRequest" and the message "Azure Cache for Redis is retiring, create
    # Azure Managed Redis instance instead. Learn more: https://aka.ms/
    # AzureCacheForRedisRetirement", so `hint_for` recognises it by its message
    # (`_BLOCKED_TEXT`); the codes below are plausible names kept in case a
    # dedicated code appears, not codes seen from Azure.
    "CacheCreationBlocked": _BLOCKED,
    "RedisCacheCreationBlocked": _BLOCKED,
    "AzureCacheForRedisCreationBlocked": _BLOCKED,
    "NewCacheCreationBlocked": _BLOCKED,
    "FeatureNotAvailableForTenant": _BLOCKED,
    # Permissions and policy
    "AuthorizationFailed": _AUTH,
    "LinkedAuthorizationFailed": _AUTH,
    "Forbidden": _AUTH,
    "AuthenticationFailed": _SIGN_IN,
    "Unauthorized": _SIGN_IN,
    "InvalidAuthenticationToken": _SIGN_IN,
    "ExpiredAuthenticationToken": _SIGN_IN,
    "InvalidAuthenticationTokenTenant": Hint(
        NotPermitted,
        "The subscription belongs to another tenant: choose that tenant when signing in.",
    ),
    "ScopeLocked": Hint(
        NotPermitted,
        "A lock on the resource group or subscription forbids this; remove the lock "
        "(Settings > Locks) or ask its owner, then try again.",
    ),
    "RequestDisallowedByPolicy": Hint(
        NotPermitted,
        "An Azure Policy assignment forbids this configuration; the message names the policy: "
        "change the setting it asks for or ask the policy owner for an exemption.",
    ),
    # ACR Tasks refused (400 on scheduleRun); Azure says to file a support request, but
    # the cause on free-trial and free-credit subscriptions is the offer itself.
    "TasksOperationsNotAllowed": Hint(
        NotPermitted,
        "This subscription may not run ACR Tasks builds (free-trial and free-credit "
        "subscriptions cannot): set image.builder to \"layer\" (built on this machine, no "
        "ACR Tasks needed), or build and push the image elsewhere and set image.reference, "
        "or use a pay-as-you-go subscription. Deploying again will not help.",
    ),
    "MissingSubscriptionRegistration": Hint(
        NotPermitted,
        "The subscription is not registered for this resource provider: "
        "run `az provider register --namespace <provider>` or ask an owner to.",
    ),
    "SubscriptionNotFound": Hint(
        BadInput, "The subscription does not exist or this account cannot see it: choose another."
    ),
    "DisallowedOperation": Hint(
        NotPermitted, "This subscription type (e.g. a free trial) does not allow this resource."
    ),
    # Bad request bodies
    "InvalidRequestContent": _BAD_REQUEST,
    "InvalidRequestFormat": _BAD_REQUEST,
    "InvalidParameter": _BAD_REQUEST,
    "BadRequest": _BAD_REQUEST,
    "LinkedInvalidPropertyId": _BAD_REQUEST,
    "InvalidTemplate": _BAD_REQUEST,
    "MissingApiVersionParameter": _BAD_REQUEST,
    # Missing things
    "ResourceGroupNotFound": Hint(
        BadInput, "The resource group does not exist (or was deleted): deploy creates it again."
    ),
    "ResourceNotFound": Hint(
        ServiceFailure, "The resource vanished while working on it: deploy again to recreate it."
    ),
    "ResourceGroupBeingDeleted": Hint(
        ServiceFailure, "The resource group is being deleted: wait until it is gone, then deploy."
    ),
    # Image
    "ImageNotFound": Hint(
        BadInput,
        "The image is not in the registry: check image.reference, or build it (image.build_from).",
    ),
    # Transient
    "Conflict": Hint(
        ServiceFailure, "Another operation on this resource is still running: wait and try again."
    ),
    "AnotherOperationInProgress": Hint(
        ServiceFailure, "Another operation on this resource is still running: wait and try again."
    ),
    "TooManyRequests": Hint(
        ServiceFailure, "Azure is throttling requests: wait a minute and deploy again."
    ),
    "InternalServerError": _TRANSIENT,
    "ServiceUnavailable": _TRANSIENT,
    "GatewayTimeout": _TRANSIENT,
    "ProvisioningFailed": _TRANSIENT,
    "Failed": _TRANSIENT,
}

# Not any mention of Azure Managed Redis: its own errors name it too.
_BLOCKED_TEXT = re.compile(
    r"creat\w*.{0,80}(blocked|no longer (allowed|available|supported))"
    r"|azure cache for redis is retiring|(use|create|switch to) (an )?azure managed redis",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Explained:
    """An error as a person should read it: ARM code, message, and what to do."""

    code: str
    message: str
    hint: str
    error_class: type[MlcacheError]


_GENERIC_CODES = frozenset(
    {"Conflict", "BadRequest", "InvalidParameter", "HTTP409", "Unauthorized"}
)
# App Service refuses a plan for quota with HTTP 401 "Unauthorized": the words say which.
_APP_SERVICE_QUOTA_TEXT = re.compile(r"without additional quota", re.IGNORECASE)
_NAME_TAKEN_TEXT = re.compile(
    r"name .{0,120}(already (exists|taken|in use)|is not available|is already)"
    r"|already exists",
    re.IGNORECASE,
)

_QUOTA_TEXT = re.compile(r"quota|exceed(s|ed|ing)? .{0,40}limit", re.IGNORECASE)
_SKU_TEXT = re.compile(
    r"(sku|size|tier|capacity).{0,80}not (available|supported|offered)"
    r"|not available in (the )?(location|region)",
    re.IGNORECASE,
)


def hint_for(code: str, message: str = "") -> Hint:
    # Azure answers the blocked-tenant refusal with a generic code on some API
    # versions; the message is what identifies it, so it is checked first.
    if _BLOCKED_TEXT.search(message) and "redis" in message.lower():
        return _BLOCKED
    if _APP_SERVICE_QUOTA_TEXT.search(message):
        return _APP_SERVICE_QUOTA
    # App Service answers a taken site name with a bare 409 "Conflict" ("Website with
    # given name ... already exists"); the message tells it from a busy resource.
    if code in _GENERIC_CODES and _NAME_TAKEN_TEXT.search(message):
        return _NAME_TAKEN
    # Region and quota refusals also come as a plain 400/409 on some providers.
    if code in _GENERIC_CODES and _QUOTA_TEXT.search(message):
        return _QUOTA
    if code in _GENERIC_CODES and _SKU_TEXT.search(message):
        return _SKU_REGION
    hint = HINTS.get(code)
    if hint is None and "." in code:
        hint = HINTS.get(code.split(".")[0])
    if hint is None:
        hint = Hint(ServiceFailure, "Look at the message above; deploy again to retry this step.")
    return hint


def is_cache_blocked(code: str, message: str) -> bool:
    return hint_for(code, message) is _BLOCKED


def describe(exc: BaseException) -> Explained:
    """Classify any exception a step may raise: SDK errors, ours, network, anything else."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(exc, MlcacheError):
        code = exc.code or type(exc).__name__
        return Explained(code, redact(exc.message), redact(exc.recommendation), type(exc))
    # A credential that fails raises ClientAuthenticationError with no response. The
    # generated SDK code raises it too for any HTTP 401 (its error_map), and App
    # Service answers a plan over quota with 401 "Unauthorized": an answer with a
    # body is read like any other, so its words, not the status, decide.
    if isinstance(exc, ClientAuthenticationError) and exc.response is None:
        hint = HINTS["AuthenticationFailed"]
        return Explained("AuthenticationFailed", _message(exc), hint.recommendation, NotPermitted)
    if isinstance(exc, HttpResponseError):
        error = exc.error
        found: tuple[str, str] | None = (error.code or "", error.message or "") \
            if error is not None else None
        if found is None or not all(found):
            # Microsoft.Web answers in its own shape, which azure-core cannot parse.
            found = app_service_error(exc) or found
        code = (found[0] if found else "") or _status_code(exc.status_code)
        message = (found[1] if found else "") or _message(exc)
        hint = hint_for(code, message)
        return Explained(code, redact(_one_line(message)), hint.recommendation,
                         hint.error_class)
    if isinstance(exc, ServiceRequestError | ServiceResponseError | ConnectionError | TimeoutError):
        return Explained(
            "ConnectionFailed",
            _message(exc),
            "The management endpoint could not be reached: check the network (or that the "
            "sandbox runs) and deploy again.",
            ServiceFailure,
        )
    return Explained(
        type(exc).__name__,
        _message(exc),
        "An unexpected error; the deployment log holds the details.",
        ServiceFailure,
    )


def app_service_error(exc: BaseException) -> tuple[str, str] | None:
    """(code, message) from an App Service error body, None when it is not one.

    Microsoft.Web answers `{"Code": "...", "Message": "...", "Details": [{"Message"},
    {"Code"}, {"ErrorEntity": {"ExtendedCode", "Code", "Message", ...}}]}`: PascalCase
    and without ARM's `error` wrapper (seen in azure-cli's appservice recordings and in
    issues quoting live answers, e.g. a plan refused for quota with HTTP 401).
    """
    import json

    response = getattr(exc, "response", None)
    try:
        body = json.loads(response.text()) if response is not None else None
    except (ValueError, TypeError, AttributeError):
        return None
    if not isinstance(body, dict):
        return None
    fields = {str(k).lower(): v for k, v in body.items()}
    if "error" in fields or "message" not in fields:
        return None
    code, message = str(fields.get("code") or ""), str(fields.get("message") or "")
    for detail in fields.get("details") or []:
        entity = detail.get("ErrorEntity") if isinstance(detail, dict) else None
        if isinstance(entity, dict):
            code = str(entity.get("Code") or code)
            message = str(entity.get("Message") or message)
    return (code, message) if message else None


def _one_line(text: str) -> str:
    """Azure's multi-line messages ("...quota. \\r\\nAdditional details - ...") joined."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def as_error(exc: BaseException, prefix: str = "", again: str = "deploy") -> MlcacheError:
    """The `app.errors` error to raise for `exc`, message prefixed and redacted.

    `again` is what the person runs to retry ("deploy", "run cleanup"), so a failed
    cleanup does not advise deploying again.
    """
    if isinstance(exc, MlcacheError):
        return exc
    explained = describe(exc)
    text = f"{prefix}{explained.message}" if prefix else explained.message
    if explained.code and explained.code not in text:
        text = f"{text} ({explained.code})"
    hint = explained.hint
    if again != "deploy":
        hint = hint.replace("deploy again", f"{again} again").replace(
            "Deploy again", f"{again[:1].upper()}{again[1:]} again")
    return explained.error_class(text, hint, code=explained.code)


def plain_request_error(exc: Exception) -> str:
    """A failed HTTP call in plain words, e.g. while a host is still starting."""
    import requests

    text = str(exc).lower()
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed (certificate not trusted or not ready)"
    if isinstance(exc, requests.exceptions.Timeout):
        return "no answer in time"
    if isinstance(exc, requests.exceptions.ConnectionError):
        if "refused" in text:
            return "not answering yet (connection refused)"
        if "name or service not known" in text or "nameresolution" in text \
                or "getaddrinfo" in text:
            return "host name not known yet (DNS)"
        if "reset" in text or "aborted" in text or "remotedisconnected" in text:
            return "not answering yet (connection closed)"
        return "not answering yet (no connection)"
    return f"request failed ({type(exc).__name__})"


def _status_code(status: int | None) -> str:
    return {
        400: "BadRequest",
        401: "AuthenticationFailed",
        403: "AuthorizationFailed",
        404: "ResourceNotFound",
        409: "Conflict",
        429: "TooManyRequests",
        500: "InternalServerError",
        503: "ServiceUnavailable",
        504: "GatewayTimeout",
    }.get(status or 0, f"HTTP{status}" if status else "Unknown")


def _message(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    # The SDK's str() repeats "Code:/Message:" lines; the first line is the sentence.
    first = str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__
    return redact(first)


__all__ = [
    "HINTS",
    "MANAGED_REDIS_SUGGESTION",
    "Explained",
    "Hint",
    "as_error",
    "describe",
    "hint_for",
    "is_cache_blocked",
    "plain_request_error",
]
