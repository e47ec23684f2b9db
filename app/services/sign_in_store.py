"""A sign-in remembered between runs, so the second launch does not ask again.

azure-identity keeps the tokens in its persistent cache (MSAL's, encrypted with the
system keyring where there is one; on Linux without a keyring a file readable only
by the user under `~/.IdentityService/`, as the Azure CLI keeps its tokens) and the
product keeps the *authentication record*: which account signed in at which
authority and tenant. The record holds no secret; it is what lets a credential
look its account up in the cache silently. Each authority (Azure's, a sandbox's)
has a cache and a record of its own.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from app.errors import MlcacheError, NotPermitted, ServiceFailure
from app.paths import user_data_dir

CACHE_NAME = "mlcache-deploy"


def _slug(authority: str) -> str:
    return hashlib.sha256(authority.rstrip("/").lower().encode("utf-8")).hexdigest()[:16]


def record_file(authority: str) -> Path:
    return user_data_dir() / "sign-in" / f"{_slug(authority)}.json"


def cache_options(authority: str) -> Any:
    """azure-identity's persistence options for this authority's token cache."""
    from azure.identity import TokenCachePersistenceOptions

    return TokenCachePersistenceOptions(name=f"{CACHE_NAME}.{_slug(authority)}",
                                        allow_unencrypted_storage=True)


def load_record(authority: str) -> Any | None:
    """The stored authentication record, or None (none yet, or unreadable)."""
    from azure.identity import AuthenticationRecord

    try:
        return AuthenticationRecord.deserialize(record_file(authority).read_text("utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_record(authority: str, record: Any) -> None:
    path = record_file(authority)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(".tmp")
    with os.fdopen(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w",
                   encoding="utf-8") as handle:
        handle.write(record.serialize())
    os.replace(staged, path)


def forget(authority: str) -> bool:
    """Drop the record (sign out of the remembered account); True when there was one."""
    try:
        record_file(authority).unlink()
    except FileNotFoundError:
        return False
    return True


# How azure-identity words a sign-in service it could not reach (urllib3's text inside
# its "Authentication failed: ..."), and the cause in a person's words.
_UNREACHABLE = (
    (re.compile(r"Failed to resolve|Name or service not known|getaddrinfo|"
                r"NameResolutionError|nodename nor servname", re.IGNORECASE),
     "its name could not be resolved (no network connection, or DNS is not answering)"),
    (re.compile(r"Connection refused|ConnectionRefused", re.IGNORECASE),
     "the connection was refused"),
    (re.compile(r"timed out|Timeout", re.IGNORECASE), "it did not answer in time"),
    (re.compile(r"CERTIFICATE_VERIFY_FAILED|SSLError", re.IGNORECASE),
     "its certificate is not trusted"),
)


_CONNECTION = re.compile(r"HTTPS?Connection|NewConnectionError|Max retries exceeded|"
                         r"ConnectionError|Connection aborted")


def _unreachable(message: str) -> ServiceFailure | None:
    """The sign-in service was not reached at all: one sentence with the cause, not
    urllib3's text (and signing in again does not help until the network does)."""
    if not _CONNECTION.search(message):
        return None  # refused by the service (a device code that timed out, say)
    for pattern, cause in _UNREACHABLE:
        if pattern.search(message):
            host = re.search(r"host='([^']+)'", message)
            where = f" at {host.group(1)}" if host else ""
            return ServiceFailure(
                f"could not reach the sign-in service{where}: {cause}",
                "Check the network connection (and the proxy, if one is needed), "
                "then sign in again.",
                code="SignInUnreachable",
            )
    return None


def sign_in_refused(exc: Any) -> MlcacheError:
    """A refused sign-in in words: an unknown tenant is not fixed by signing in again,
    nor a sign-in service that could not be reached."""
    message = str(getattr(exc, "message", "") or exc)
    unreachable = _unreachable(message)
    if unreachable is not None:
        return unreachable
    unknown = re.search(r"Unable to get authority configuration for (\S+?)\.? Authority", message)
    if unknown:
        return NotPermitted(
            f"the sign-in service does not know the tenant in {unknown.group(1)}",
            "Check the tenant (--tenant): a tenant id or domain such as contoso.onmicrosoft.com.",
        )
    return NotPermitted(f"the sign-in was not accepted: {message}", "Sign in again.")
