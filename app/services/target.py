"""Where ARM is and who we are there: one `CloudTarget` for Azure and the sandbox.

The sandbox is a different target, not a different code path: it differs only in
the management endpoint, the credential (a static bearer token), the CA bundle
that verifies its TLS certificate, and how often long-running operations are
polled. Everything above this module treats both the same.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import BadInput
from app.services.logs import get_logger
from app.services.redaction import register_secret

log = get_logger("arm")

AZURE_ARM = "https://management.azure.com"
AZURE_AUTHORITY = "https://login.microsoftonline.com"
# Microsoft Container Registry: where the Azure Functions base images are published.
AZURE_BASE_REGISTRY = "mcr.microsoft.com"
RETAIL_PRICES_URL = "https://prices.azure.com/api/retail/prices"
AZURE_SCOPES = ("https://management.azure.com/.default",)
# The SDK waits 30 s between polls when the server sends no Retry-After; a few
# seconds keeps progress live on Azure without hammering ARM.
AZURE_POLLING_S = 5.0
# The sandbox provisions in well under a second on the `fast` profile.
SANDBOX_POLLING_S = 0.1
AZURE_HEALTH_TIMEOUT_S = 900.0
AZURE_HEALTH_POLL_S = 5.0
SANDBOX_HEALTH_TIMEOUT_S = 90.0
SANDBOX_HEALTH_POLL_S = 0.1
SIGN_IN_METHODS = ("default", "browser", "device-code", "cli", "azd")
# Sign-ins whose account is remembered between runs (sign_in_store).
INTERACTIVE_METHODS = ("browser", "device-code")


@dataclass(frozen=True)
class RetrySettings:
    """Keyword arguments for azure-core's RetryPolicy (it honours Retry-After)."""

    total: int = 10
    backoff_factor: float = 0.8
    backoff_max: float = 60.0

    def as_kwargs(self) -> dict[str, Any]:
        return {
            "retry_total": self.total,
            "retry_backoff_factor": self.backoff_factor,
            "retry_backoff_max": self.backoff_max,
        }


@dataclass
class CloudTarget:
    """Credential + subscription + ARM endpoint + CA bundle + polling interval."""

    kind: str  # "azure" | "sandbox"
    credential: Any  # an azure-core TokenCredential
    subscription_id: str
    arm_endpoint: str = AZURE_ARM
    ca_bundle: Path | None = None
    polling_interval: float = AZURE_POLLING_S
    # How long a function may take to answer its health route after its settings
    # changed (it restarts and loads the model), and how often to ask.
    health_timeout_s: float = AZURE_HEALTH_TIMEOUT_S
    health_poll_s: float = AZURE_HEALTH_POLL_S
    # Where list prices come from, and whether they are a sample table, not Azure's own.
    prices_url: str = RETAIL_PRICES_URL
    sample_prices: bool = False
    credential_scopes: tuple[str, ...] = AZURE_SCOPES
    retry: RetrySettings = field(default_factory=RetrySettings)
    tenant_id: str | None = None
    # The Microsoft Entra ID authority host credentials sign in at, and whether MSAL
    # may ask Microsoft's instance discovery about it (an authority it does not know,
    # such as the sandbox's, must not be looked up there).
    authority: str = AZURE_AUTHORITY
    instance_discovery: bool = True
    # Who the target's own sign-in page knows (the sandbox names its user), for hints.
    sign_in_user: str = ""
    # The public registry the function's base image is imported from (a host name,
    # as ACR's import takes it in `registryUri`).
    base_registry: str = AZURE_BASE_REGISTRY
    state_dir: Path | None = None
    # Called by close(): stops a sandbox this target started in-process.
    _closer: Callable[[], None] | None = None

    @property
    def is_sandbox(self) -> bool:
        return self.kind == "sandbox"

    @property
    def started_here(self) -> bool:
        """True when this target started its sandbox in this process."""
        return self._closer is not None

    @property
    def audience(self) -> str:
        """The resource the credential's tokens are for (ARM), as data-plane clients
        such as azure-containerregistry take it: ACR exchanges an ARM token."""
        return self.credential_scopes[0].removesuffix("/.default")

    @property
    def verify(self) -> str | bool:
        """What to pass as `verify=` to requests (the CA path, or the system store)."""
        return str(self.ca_bundle) if self.ca_bundle else True

    @property
    def signed_in(self) -> bool:
        """True when the credential is a person's sign-in, not the sandbox's own token."""
        return not isinstance(self.credential, StaticTokenCredential)

    def identity_kwargs(self) -> dict[str, Any]:
        """What an azure-identity credential needs to sign in to this cloud: its
        authority, and the CA its HTTP pipeline (MSAL's too) must trust."""
        kwargs: dict[str, Any] = {}
        if self.authority != AZURE_AUTHORITY:
            kwargs["authority"] = self.authority
        if not self.instance_discovery:
            kwargs["disable_instance_discovery"] = True
        if self.ca_bundle:
            kwargs["connection_verify"] = str(self.ca_bundle)
        return kwargs

    def close(self) -> None:
        """Close the credential's HTTP session and stop a sandbox started here."""
        close_credential = getattr(self.credential, "close", None)
        if close_credential is not None:
            close_credential()
        closer, self._closer = self._closer, None
        if closer is not None:
            closer()

    def __enter__(self) -> CloudTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the sandbox ------------------------------------------------------------------


class StaticTokenCredential:
    """The sandbox's bearer token as an azure-core TokenCredential."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)

    def close(self) -> None:
        return None


def sandbox_target_from_connection(
    connection: dict[str, Any], state_dir: Path | None = None
) -> CloudTarget:
    endpoint = connection["endpoint"].rstrip("/")
    # The token and the user's password may sit in connection.json and nowhere else.
    register_secret(connection["token"])
    user = connection.get("user") or {}
    if user.get("password"):
        register_secret(str(user["password"]))
    return CloudTarget(
        kind="sandbox",
        credential=StaticTokenCredential(connection["token"]),
        subscription_id=connection["subscription_id"],
        arm_endpoint=endpoint,
        ca_bundle=Path(connection["ca_cert"]),
        polling_interval=SANDBOX_POLLING_S,
        health_timeout_s=SANDBOX_HEALTH_TIMEOUT_S,
        health_poll_s=SANDBOX_HEALTH_POLL_S,
        # The sandbox serves the Retail Prices API from a sample table (docs/sandbox.md).
        prices_url=f"{endpoint}/retail/prices",
        sample_prices=True,
        credential_scopes=(f"{endpoint}/.default",),
        # Short back-off: the sandbox's faults are short by design and tests wait.
        retry=RetrySettings(total=10, backoff_factor=0.1, backoff_max=2.0),
        tenant_id=str(connection.get("tenant_id") or "") or None,
        # The sandbox is its own Entra authority, unknown to Microsoft's discovery.
        authority=str(connection.get("authority") or endpoint).rstrip("/"),
        instance_discovery=False,
        sign_in_user=str(user.get("username", "")),
        # The sandbox's stand-in for Microsoft Container Registry (docs/sandbox.md).
        base_registry=str(connection.get("base_registry") or AZURE_BASE_REGISTRY),
        state_dir=state_dir,
    )


# --- Azure ------------------------------------------------------------------------


def device_code_callback(show: Callable[[str], None]) -> Callable[[str, str, Any], None]:
    """azure-identity's device-code `prompt_callback`, saying the URL and code in one line."""

    def callback(verification_uri: str, user_code: str, expires_on: Any) -> None:
        until = ""
        if hasattr(expires_on, "astimezone"):
            until = f" (valid until {expires_on.astimezone().strftime('%H:%M')})"
        show(f"To sign in, open {verification_uri} and enter the code {user_code}{until}.")

    return callback


class TenantCredential:
    """A credential whose every token is for one tenant.

    ARM lists and serves only the subscriptions of the token's tenant, so a guest
    subscription in another tenant needs that tenant's token. azure-identity
    credentials take `tenant_id` per request when made with
    `additionally_allowed_tenants`; the az CLI credential inside
    DefaultAzureCredential then passes `--tenant`, where its own tenant setting
    would be ignored.
    """

    def __init__(self, inner: Any, tenant_id: str) -> None:
        self.inner = inner
        self.tenant_id = tenant_id

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        kwargs["tenant_id"] = self.tenant_id
        return self.inner.get_token(*scopes, **kwargs)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


def for_tenant(credential: Any, tenant_id: str | None) -> Any:
    """`credential` pinned to `tenant_id` (as it is when no tenant is named)."""
    if not tenant_id or isinstance(credential, StaticTokenCredential):
        return credential
    if isinstance(credential, TenantCredential):
        credential = credential.inner
    return TenantCredential(credential, tenant_id)


def make_credential(
    method: str = "default",
    tenant_id: str | None = None,
    prompt: Callable[[str], None] | None = None,
    cloud: CloudTarget | None = None,
) -> Any:
    """An azure-identity credential: DefaultAzureCredential, browser or device code
    (remembered between runs, see `sign_in_store`), or the az / azd CLI's sign-in.

    `prompt` receives the device-code sign-in instructions (URL and code) to show.
    Every credential may ask for any tenant's token (the tenant is chosen after
    sign-in, see `for_tenant`); `tenant_id` is the one to sign in to first.
    `cloud` is where to sign in (its authority and CA, see `identity_kwargs`);
    None is Azure's public cloud.
    """
    if method not in SIGN_IN_METHODS:
        raise BadInput(f"sign-in method must be one of {', '.join(SIGN_IN_METHODS)}")
    import azure.identity as identity

    common: dict[str, Any] = {"additionally_allowed_tenants": ["*"]}
    if cloud is not None:
        common.update(cloud.identity_kwargs())
    if method in INTERACTIVE_METHODS:
        return _remembered(method, tenant_id, prompt, cloud, common)
    if method in ("cli", "azd"):
        if cloud is not None and cloud.authority != AZURE_AUTHORITY:
            raise BadInput(f"--auth {method} uses the {method} tool's Azure sign-in, not "
                           f"this target's ({cloud.authority})",
                           "Choose --auth browser or --auth device-code.")
        if method == "cli":
            return identity.AzureCliCredential(tenant_id=tenant_id or "",
                                               additionally_allowed_tenants=["*"])
        return identity.AzureDeveloperCliCredential(tenant_id=tenant_id or "",
                                                    additionally_allowed_tenants=["*"])
    if cloud is not None and cloud.authority != AZURE_AUTHORITY:
        # DefaultAzureCredential reads the authority from AZURE_AUTHORITY_HOST and
        # would ask the developer tools signed in to Azure: not this cloud's sign-in.
        raise BadInput(
            f"this target signs in at {cloud.authority}: choose a browser or device-code "
            "sign-in (--auth browser or --auth device-code)"
        )
    if tenant_id:
        return identity.DefaultAzureCredential(
            interactive_browser_tenant_id=tenant_id, shared_cache_tenant_id=tenant_id,
            visual_studio_code_tenant_id=tenant_id, **common,
        )
    return identity.DefaultAzureCredential(**common)


def _remembered(method: str, tenant_id: str | None, prompt: Callable[[str], None] | None,
                cloud: CloudTarget | None, common: dict[str, Any]) -> Any:
    """A browser or device-code credential on the persistent token cache, with the
    account remembered from an earlier run; on the first run it signs in now and the
    record is stored, so later runs are silent."""
    import azure.identity as identity

    from app.services import sign_in_store

    authority = cloud.authority if cloud is not None else AZURE_AUTHORITY
    record = sign_in_store.load_record(authority)
    kwargs = {**common, "cache_persistence_options": sign_in_store.cache_options(authority)}
    if record is not None:
        # The record names its authority; azure-identity takes it from there.
        kwargs.pop("authority", None)
        kwargs["authentication_record"] = record
        tenant_id = tenant_id or record.tenant_id
    if method == "device-code" and prompt is not None:
        kwargs["prompt_callback"] = device_code_callback(prompt)
    kind = (identity.InteractiveBrowserCredential if method == "browser"
            else identity.DeviceCodeCredential)
    credential = kind(tenant_id=tenant_id, **kwargs)
    if record is not None:
        return credential
    return RememberingCredential(credential, authority)


class RememberingCredential:
    """An interactive credential's first sign-in, kept: the first token request runs
    `authenticate` (the browser or device code, once) and stores the record it
    returns; every later request is the credential's own, silent from its cache."""

    def __init__(self, inner: Any, authority: str) -> None:
        self.inner = inner
        self.authority = authority
        self._remembered = False
        self._lock = threading.Lock()

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.exceptions import ClientAuthenticationError

        from app.services import sign_in_store

        with self._lock:
            if not self._remembered:
                try:
                    record = self.inner.authenticate(scopes=list(scopes),
                                                     tenant_id=kwargs.get("tenant_id"))
                except ClientAuthenticationError as exc:
                    raise sign_in_store.sign_in_refused(exc) from None
                sign_in_store.save_record(self.authority, record)
                self._remembered = True
        return self.inner.get_token(*scopes, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def close(self) -> None:
        self.inner.close()


def sign_in_target(
    cloud: CloudTarget, credential: Any, subscription_id: str, tenant_id: str | None
) -> CloudTarget:
    """`cloud` acting as a signed-in identity: its tokens for `tenant_id`, on that
    subscription. Everything else (endpoints, CA, polls) stays the cloud's.

    The new target takes over stopping a sandbox `cloud` started, so closing the
    profile's own backend does not stop the cloud the new one uses.
    """
    if not subscription_id:
        raise BadInput("choose a subscription (--subscription, or subscription_id in the spec)")
    target = dataclasses.replace(
        cloud,
        credential=for_tenant(credential, tenant_id),
        subscription_id=subscription_id,
        tenant_id=tenant_id or cloud.tenant_id,
    )
    cloud._closer = None
    return target


def azure_target(
    subscription_id: str,
    credential: Any | None = None,
    tenant_id: str | None = None,
    polling_interval: float = AZURE_POLLING_S,
) -> CloudTarget:
    if not subscription_id:
        raise BadInput("an Azure target needs a subscription id (subscription_id in the spec)")
    return CloudTarget(
        kind="azure",
        credential=for_tenant(credential or make_credential("default", tenant_id), tenant_id),
        subscription_id=subscription_id,
        polling_interval=polling_interval,
        tenant_id=tenant_id,
    )


__all__ = [
    "CloudTarget",
    "RetrySettings",
    "StaticTokenCredential",
    "azure_target",
    "device_code_callback",
    "for_tenant",
    "make_credential",
    "sign_in_target",
]
