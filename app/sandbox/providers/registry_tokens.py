"""ACR's own tokens: the refresh and access tokens of its OAuth2 token exchange.

A registry does not take a Microsoft Entra token on its data plane; a client
trades one at `POST /oauth2/exchange` for an ACR *refresh token* (bound to the
registry's login server), then trades that at `POST /oauth2/token` for an
*access token* limited to the scopes it asks for (`repository:<repo>:pull,push`,
`registry:catalog:*`). Both are JWTs signed by the registry; this module makes
and checks them with an HMAC key kept in the state directory, so tokens handed
out before a sandbox restart still work after it, as ACR's do for their lifetime.

The claims are written so that their base64url text never holds `-` or `_`
and needs no padding: azure-containerregistry reads a refresh token's `exp`
with plain `base64.b64decode`, which would silently drop those characters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ISSUER = "Azure Container Registry"
REFRESH_LIFETIME = 3 * 3600  # ACR refresh tokens live three hours
ACCESS_LIFETIME = 75 * 60  # access tokens 75 minutes
_HEADER = {"alg": "HS256", "typ": "JWT"}


@dataclass(frozen=True)
class Scope:
    """One `type:name:actions` scope (`repository:ml/score:pull,push`)."""

    type: str
    name: str
    actions: tuple[str, ...]

    def as_claim(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


@dataclass(frozen=True)
class Claims:
    """What a checked token says: its kind, audience, expiry and granted access."""

    kind: str  # "refresh" or "access"
    audience: str
    expires: int
    access: tuple[Scope, ...] = field(default_factory=tuple)

    def allows(self, rtype: str, name: str, action: str) -> bool:
        """Whether the token grants `action` on `rtype:name` (`*` grants every action)."""
        for scope in self.access:
            if (scope.type, scope.name) == (rtype, name) and (
                action in scope.actions or "*" in scope.actions
            ):
                return True
        return False


def parse_scopes(text: str) -> list[Scope]:
    """Scopes as the token endpoint receives them: space-separated `type:name:actions`.

    The name may itself hold colons (a repository never does, but ACR splits
    on the first and the last); anything malformed is left out.
    """
    scopes = []
    for part in text.split():
        rtype, sep, rest = part.partition(":")
        name, sep2, actions = rest.rpartition(":")
        if not (sep and sep2 and rtype and name):
            continue
        wanted = tuple(a for a in actions.split(",") if a)
        if wanted:
            scopes.append(Scope(rtype, name, wanted))
    return scopes


def _segment(data: dict[str, Any]) -> str:
    """base64url of compact JSON, padded with spaces to a multiple of 3 bytes.

    ASCII text without `>`, `?`, `~` never yields the sextets 62 and 63, so the
    encoding has no `-`/`_` and, being whole groups of 3 bytes, no `=`.
    """
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=True)
    for unsafe in "<>?~":
        raw = raw.replace(unsafe, f"\\u{ord(unsafe):04x}")
    raw += " " * (-len(raw) % 3)
    return base64.urlsafe_b64encode(raw.encode("ascii")).decode("ascii")


def _decode(segment: str) -> dict[str, Any] | None:
    try:
        padded = segment + "=" * (-len(segment) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


class TokenIssuer:
    """Signs and checks the refresh and access tokens of every sandbox registry."""

    def __init__(self, key_file: Path) -> None:
        self._key = self._load_key(key_file)

    @staticmethod
    def _load_key(path: Path) -> bytes:
        try:
            key = path.read_bytes()
            if len(key) >= 32:
                return key
        except OSError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        return key

    def _sign(self, claims: dict[str, Any]) -> str:
        body = f"{_segment(_HEADER)}.{_segment(claims)}"
        mac = hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest()
        return f"{body}.{base64.urlsafe_b64encode(mac).decode('ascii').rstrip('=')}"

    def _base_claims(self, audience: str, lifetime: int, kind: str) -> dict[str, Any]:
        now = int(time.time())
        return {
            "jti": uuid.uuid4().hex,
            "sub": "sandbox",
            "nbf": now - 5,
            "exp": now + lifetime,
            "iat": now,
            "iss": ISSUER,
            "aud": audience,
            "version": "1.0",
            "grant_type": "refresh_token" if kind == "refresh" else "access_token",
            "kind": kind,
        }

    def refresh_token(self, audience: str, tenant: str | None = None) -> str:
        claims = self._base_claims(audience, REFRESH_LIFETIME, "refresh")
        if tenant:
            claims["tenant"] = tenant
        return self._sign(claims)

    def access_token(self, audience: str, scopes: list[Scope]) -> str:
        claims = self._base_claims(audience, ACCESS_LIFETIME, "access")
        claims["access"] = [scope.as_claim() for scope in scopes]
        return self._sign(claims)

    def check(self, token: str, audience: str, kind: str) -> Claims | None:
        """The claims of a token this issuer signed for `audience`, still valid; else None."""
        parts = token.strip().split(".")
        if len(parts) != 3:
            return None
        body = f"{parts[0]}.{parts[1]}"
        expected = hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest()
        try:
            given = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
        except ValueError:
            return None
        if not hmac.compare_digest(expected, given):
            return None
        claims = _decode(parts[1])
        if claims is None or claims.get("kind") != kind:
            return None
        if str(claims.get("aud", "")).lower() != audience.lower():
            return None
        expires = int(claims.get("exp", 0))
        if expires < time.time():
            return None
        access = tuple(
            Scope(str(a.get("type")), str(a.get("name")), tuple(a.get("actions") or ()))
            for a in claims.get("access") or []
            if isinstance(a, dict)
        )
        return Claims(kind, audience, expires, access)
