"""The tokens the sandbox's Entra authority issues, and their signature check.

Entra signs its tokens (JWTs) with RS256 and publishes the public keys at the
`jwks_uri` of its OpenID configuration; resource servers such as ARM verify the
signature, the issuer, the audience and the lifetime. The sandbox does the same
with one RSA key made at every start (tokens, like the static token, last as
long as the sandbox runs; nothing secret is written to disk for them).

Claims follow what Entra puts in tokens for a user signed in to a public client:
access tokens for ARM are v1 tokens (ARM's registration asks for v1), id tokens
are v2. Issuers name the sandbox authority where Entra names its own hosts:
`{authority}/{tenant}/` where Azure writes `https://sts.windows.net/{tenant}/`,
`{authority}/{tenant}/v2.0` where it writes
`https://login.microsoftonline.com/{tenant}/v2.0`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from app.sandbox.directory import Directory, Tenant

log = logging.getLogger("mlcache.sandbox.entra")

ACCESS_TOKEN_SECONDS = 3600
# Told of every token the issuer signs: (token, claims). Data planes that accept
# Entra tokens without asking the authority (Redis) learn of them this way.
TokenListener = Callable[[str, dict[str, Any]], None]
# Managed identity tokens live 24 hours (the platform caches them that long).
MANAGED_IDENTITY_TOKEN_SECONDS = 24 * 3600
# Namespace of the application ids the sandbox gives managed identities: an id
# derived from the object id, so every part names the same app without a lookup.
_APP_ID_NAMESPACE = uuid.UUID("6f1c1b0e-8a52-4c77-9a3e-0d5c2b7e4a11")
# What ARM accepts as `aud`, exactly as its 401 lists them.
ARM_AUDIENCES = (
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
    "https://management.azure.com/",
    "https://management.azure.com",
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class TokenRejected(Exception):
    """A bearer token that is not one of this sandbox's (malformed or badly signed)."""


@dataclass(frozen=True)
class SignedInUser:
    """Who a token is for, in the tenant it was issued in."""

    tenant: Tenant
    home: Tenant
    username: str
    display_name: str


class TokenIssuer:
    """Signs and verifies the authority's JWTs with this run's RSA key."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = self._key.public_key().public_numbers()
        self.key_id = b64url(hashlib.sha256(_uint(public.n).encode()).digest()[:20])
        self._jwk = {
            "kty": "RSA",
            "use": "sig",
            "kid": self.key_id,
            "x5t": self.key_id,
            "n": _uint(public.n),
            "e": _uint(public.e),
        }
        self.authority = ""  # set once the server listens
        self._listeners: list[TokenListener] = []
        self._listeners_lock = threading.Lock()

    # who hears of signed tokens

    def add_listener(self, listener: TokenListener) -> None:
        """Call `listener(token, claims)` after every token this issuer signs, in the
        signing thread, before `sign` returns (so a client holding the token finds the
        data plane ready). A listener that raises is logged and does not fail signing."""
        with self._listeners_lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: TokenListener) -> None:
        with self._listeners_lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    # the keys document

    def jwks(self, issuer: str) -> dict[str, Any]:
        return {"keys": [{**self._jwk, "issuer": issuer}]}

    # signing

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"typ": "JWT", "alg": "RS256", "kid": self.key_id, "x5t": self.key_id}
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        token = signing_input + "." + b64url(signature)
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(token, dict(claims))
            except Exception:
                log.exception("a token listener failed")
        return token

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a token this sandbox signed; TokenRejected otherwise (expiry and
        audience are the resource's to judge, as ARM reports them with their own codes)."""
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenRejected("not a JWT")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            signature = b64url_decode(parts[2])
        except (ValueError, UnicodeDecodeError) as exc:
            raise TokenRejected("malformed JWT") from exc
        if not isinstance(header, dict) or header.get("alg") != "RS256":
            raise TokenRejected("unexpected algorithm")
        try:
            self._key.public_key().verify(
                signature,
                f"{parts[0]}.{parts[1]}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature as exc:
            raise TokenRejected("bad signature") from exc
        if not isinstance(claims, dict):
            raise TokenRejected("claims are not an object")
        return claims

    # issuers

    def v1_issuer(self, tenant_id: str) -> str:
        return f"{self.authority}/{tenant_id}/"

    def v2_issuer(self, tenant_id: str) -> str:
        return f"{self.authority}/{tenant_id}/v2.0"

    # tokens

    def user(self, tenant: Tenant) -> SignedInUser:
        user = self.directory.user
        return SignedInUser(tenant, self.directory.home, user.username, user.display_name)

    def access_token(self, who: SignedInUser, audience: str, client_id: str) -> str:
        now = int(time.time())
        tenant = who.tenant
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": self.v1_issuer(tenant.tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now + ACCESS_TOKEN_SECONDS,
            "acr": "1",
            "amr": ["pwd"],
            "appid": client_id,
            "appidacr": "0",
            "idtyp": "user",
            "name": who.display_name,
            "oid": tenant.user_object_id,
            "puid": tenant.user_object_id.replace("-", "")[:16].upper(),
            "scp": "user_impersonation",
            "sub": _pairwise(tenant.user_object_id, audience),
            "tid": tenant.tenant_id,
            "unique_name": who.username,
            "upn": who.username,
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
        }
        if tenant.guest:
            # A guest's token names the directory it really comes from.
            claims["acct"] = 1
            claims["idp"] = self.v1_issuer(who.home.tenant_id)
            del claims["upn"]
        else:
            claims["acct"] = 0
        return self.sign(claims)

    def managed_identity_token(
        self, principal_id: str, tenant_id: str, audience: str, *, resource_id: str = ""
    ) -> tuple[str, int]:
        """An access token for a managed identity (a service principal), as the platform's
        token service hands it out, and its `expires_on` (epoch seconds).

        Claims as Entra puts them in a managed identity's v1 token: `oid` and `sub` are
        both the principal's object id, `appid` its application (client) id, `idtyp`
        `app`, `idp` the tenant's issuer, `appidacr` 2, and `xms_mirid` the resource the
        identity belongs to. No `scp` or `roles` (no app roles are granted here)."""
        now = int(time.time())
        expires = now + MANAGED_IDENTITY_TOKEN_SECONDS
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": self.v1_issuer(tenant_id),
            "iat": now,
            "nbf": now,
            "exp": expires,
            "aio": secrets.token_urlsafe(24),
            "appid": managed_identity_app_id(principal_id),
            "appidacr": "2",
            "idp": self.v1_issuer(tenant_id),
            "idtyp": "app",
            "oid": principal_id,
            "rh": secrets.token_urlsafe(12),
            "sub": principal_id,
            "tid": tenant_id,
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
        }
        if resource_id:
            claims["xms_mirid"] = resource_id
        return self.sign(claims), expires

    def id_token(self, who: SignedInUser, client_id: str, nonce: str | None) -> str:
        now = int(time.time())
        tenant = who.tenant
        claims: dict[str, Any] = {
            "aud": client_id,
            "iss": self.v2_issuer(tenant.tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now + ACCESS_TOKEN_SECONDS,
            "name": who.display_name,
            "oid": tenant.user_object_id,
            "preferred_username": who.username,
            "rh": secrets.token_urlsafe(12),
            "sub": _pairwise(tenant.user_object_id, client_id),
            "tid": tenant.tenant_id,
            "uti": secrets.token_urlsafe(16),
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        return self.sign(claims)

    def client_info(self, who: SignedInUser) -> str:
        """Entra's `client_info`: the user's home object id and home tenant, which MSAL
        joins into the account's `home_account_id` (the same in every tenant)."""
        info = {"uid": who.home.user_object_id, "utid": who.home.tenant_id}
        return b64url(json.dumps(info, separators=(",", ":")).encode())


def _pairwise(object_id: str, audience: str) -> str:
    """Entra's `sub` is pairwise: stable per user and application, differing between apps."""
    return b64url(hashlib.sha256(f"{object_id}|{audience}".encode()).digest())[:43]


def managed_identity_app_id(principal_id: str) -> str:
    """The application (client) id of the managed identity whose object id is given."""
    return str(uuid.uuid5(_APP_ID_NAMESPACE, principal_id.lower()))


def new_code() -> str:
    """An opaque, unguessable value (authorization codes, device codes, refresh tokens)."""
    return secrets.token_urlsafe(48)


def correlation() -> str:
    return str(uuid.uuid4())
