"""What the sandbox's Entra authority remembers between requests, and its OAuth rules.

Device codes wait for approval, authorization codes for redemption (once, with
the PKCE verifier), refresh tokens for reuse. They are kept in memory and only
as SHA-256 hashes of the secret values, so nothing here (a log line, a dump)
reveals a usable code or token; they end with the sandbox run.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field

from app.sandbox.directory import Tenant

OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
DEVICE_CODE_SECONDS = 900
AUTH_CODE_SECONDS = 600
SIGN_IN_SECONDS = 900
REFRESH_TOKEN_SECONDS = 90 * 24 * 3600


class OAuthError(Exception):
    """An answer in Entra's error shape (400 unless said otherwise)."""

    def __init__(self, error: str, aadsts: int, message: str, status: int = 400) -> None:
        super().__init__(f"{error}: AADSTS{aadsts}")
        self.error = error
        self.aadsts = aadsts
        self.message = message
        self.status = status


@dataclass
class Grant:
    """What a device code, authorization code or refresh request stands for."""

    client_id: str
    tenant: Tenant
    audience: str
    scope: str
    oidc: frozenset[str]
    expires_at: float
    approved: bool = False
    user_code: str = ""
    redirect_uri: str = ""
    code_challenge: str = ""
    challenge_method: str = ""
    nonce: str = ""


@dataclass
class SignInRequest:
    """An authorize request waiting for the sign-in form."""

    params: dict[str, str]
    tenant: Tenant
    audience: str
    scope: str
    oidc: frozenset[str]
    expires_at: float = field(default_factory=lambda: time.time() + SIGN_IN_SECONDS)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def pkce_s256(verifier: str) -> str:
    """RFC 7636's S256 transform: base64url(SHA-256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii", errors="replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def required(form: dict[str, str], name: str) -> str:
    value = form.get(name, "")
    if not value:
        raise OAuthError(
            "invalid_request",
            900144,
            f"The request body must contain the following parameter: '{name}'.",
        )
    return value


def parse_scopes(
    text: str, tenant: Tenant, resources: tuple[str, ...]
) -> tuple[str, str, frozenset[str]]:
    """(audience, granted scope string, OIDC scopes) for a request's `scope`.

    Entra takes one resource per request (`{resource}/.default` or one of its
    permissions) beside the OpenID scopes; it grants `user_impersonation` and
    answers both, which is what MSAL caches the access token under."""
    scopes = text.split()
    oidc = frozenset(s for s in scopes if s in OIDC_SCOPES)
    named = [s for s in scopes if s not in OIDC_SCOPES]
    resources_named = {s.rsplit("/", 1)[0] for s in named}
    if len(resources_named) > 1:
        raise OAuthError(
            "invalid_scope",
            28000,
            "Provided value for the input parameter scope is not valid because it contains "
            "more than one resource.",
        )
    if not named:
        raise OAuthError(
            "invalid_scope",
            70011,
            "The provided request must include a 'scope' input parameter naming a resource "
            "the sandbox serves (e.g. https://management.azure.com/.default).",
        )
    resource = resources_named.pop()
    permissions = {s.rsplit("/", 1)[-1] for s in named}
    if resource not in resources or not permissions <= {".default", "user_impersonation"}:
        raise OAuthError(
            "invalid_resource",
            500011,
            f"The resource principal named {resource} was not found in the tenant named "
            f"{tenant.display_name}. This can happen if the application has not been "
            "installed by the administrator of the tenant or consented to by any user in "
            "the tenant. You might have sent your authentication request to the wrong tenant.",
        )
    return resource, f"{resource}/user_impersonation {resource}/.default", oidc


class GrantBook:
    """Device codes, sign-in requests, authorization codes and refresh tokens in flight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._devices: dict[str, Grant] = {}  # by hash of the device code
        self._user_codes: dict[str, str] = {}  # user code -> hash of the device code
        self._codes: dict[str, Grant] = {}  # by hash of the authorization code
        self._redeemed: set[str] = set()
        self._sign_ins: dict[str, SignInRequest] = {}
        self._refresh: dict[str, tuple[str, float]] = {}  # hash -> (client id, expiry)

    # device codes

    def add_device_code(self, device_code: str, grant: Grant) -> None:
        with self._lock:
            self._devices[secret_hash(device_code)] = grant
            self._user_codes[grant.user_code] = secret_hash(device_code)

    def waiting_device_grant(self, user_code: str) -> Grant | None:
        """The unexpired, not yet redeemed grant a user code names."""
        with self._lock:
            key = self._user_codes.get(user_code)
            grant = self._devices.get(key) if key else None
        if grant is None or grant.expires_at < time.time():
            return None
        return grant

    def approve(self, grant: Grant) -> None:
        with self._lock:
            grant.approved = True

    def redeem_device_code(self, device_code: str, client_id: str) -> Grant:
        key = secret_hash(device_code)
        with self._lock:
            grant = self._devices.get(key)
            if grant is None or grant.client_id != client_id:
                raise OAuthError(
                    "invalid_grant", 70000, "The provided value for the 'device_code' is not valid."
                )
            if grant.expires_at < time.time():
                raise OAuthError(
                    "expired_token",
                    70020,
                    "The provided value for the input parameter 'device_code' is not valid. "
                    "This device code has expired.",
                )
            if not grant.approved:
                raise OAuthError(
                    "authorization_pending",
                    70016,
                    "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                )
            del self._devices[key]
            self._user_codes.pop(grant.user_code, None)
        return grant

    # sign-in requests and authorization codes

    def add_sign_in(self, request_id: str, pending: SignInRequest) -> None:
        with self._lock:
            self._sign_ins[secret_hash(request_id)] = pending

    def sign_in(self, request_id: str) -> SignInRequest | None:
        with self._lock:
            pending = self._sign_ins.get(secret_hash(request_id))
        if pending is None or pending.expires_at < time.time():
            return None
        return pending

    def end_sign_in(self, request_id: str) -> None:
        with self._lock:
            self._sign_ins.pop(secret_hash(request_id), None)

    def add_code(self, code: str, grant: Grant) -> None:
        with self._lock:
            self._codes[secret_hash(code)] = grant

    def redeem_code(self, form: dict[str, str], client_id: str) -> Grant:
        """The grant of an authorization code: once only, same client, same redirect URI,
        and the PKCE verifier that matches the challenge of the authorize request."""
        key = secret_hash(required(form, "code"))
        with self._lock:
            if key in self._redeemed:
                raise OAuthError(
                    "invalid_grant",
                    54005,
                    "OAuth2 Authorization code was already redeemed, please retry with a new "
                    "valid code or use an existing refresh token.",
                )
            grant = self._codes.pop(key, None)
            if grant is not None:
                self._redeemed.add(key)
        if grant is None or grant.client_id != client_id:
            raise OAuthError("invalid_grant", 70000, "The provided authorization code is invalid.")
        if grant.expires_at < time.time():
            raise OAuthError(
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to "
                "inactivity. Send a new interactive authorization request for this user and "
                "resource.",
            )
        if form.get("redirect_uri", "") != grant.redirect_uri:
            raise OAuthError(
                "invalid_grant",
                500112,
                "The reply address does not match the reply address used in the authorization "
                "request.",
            )
        if grant.code_challenge:
            verifier = form.get("code_verifier", "")
            expected = pkce_s256(verifier) if grant.challenge_method == "S256" else verifier
            if not verifier or not hmac.compare_digest(expected, grant.code_challenge):
                raise OAuthError(
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the "
                    "authorization request.",
                )
        return grant

    # refresh tokens

    def add_refresh_token(self, token: str, client_id: str) -> None:
        with self._lock:
            self._refresh[secret_hash(token)] = (client_id, time.time() + REFRESH_TOKEN_SECONDS)

    def check_refresh_token(self, token: str, client_id: str) -> None:
        with self._lock:
            found = self._refresh.get(secret_hash(token))
        if found is not None and found[0] == client_id and found[1] >= time.time():
            return
        raise OAuthError(
            "invalid_grant",
            70008 if found is not None and found[1] < time.time() else 9002313,
            "The refresh token is not valid for this client or no longer known to the sandbox "
            "(it forgets refresh tokens when it stops). Sign in again.",
        )
