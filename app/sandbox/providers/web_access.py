"""What a function app may reach with its identity or its keys: pulls and host storage.

Two Azure checks a site meets when its container starts:

- A pull with `acrUseManagedIdentityCreds` succeeds only when the site's identity
  holds a role with pull rights (AcrPull, AcrPush, Contributor, Owner) at the
  registry or above, and the assignment has taken effect; otherwise the pull fails
  `unauthorized`, as a pull without credentials does.
- The Functions host opens its storage (`AzureWebJobsStorage`) first. A connection
  string must name an existing account with one of its keys, and the account must
  allow shared key access; the identity-based forms (`AzureWebJobsStorage__accountName`,
  or `__blobServiceUri` / `__queueServiceUri` / `__tableServiceUri`) need the site's
  identity to hold Storage Blob Data Owner on the account. Otherwise the host does
  not start and the log says what the Functions host says (`StorageProblem.lines`).
  With no AzureWebJobsStorage setting at all the host starts, as an HTTP-only app can.
"""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from app.sandbox.providers import SandboxContext
from app.sandbox.providers.web_msi import HostIdentity, IdentityEndpoint
from app.sandbox.rbac import HOST_STORAGE_ROLES, PULL_ROLES, holds_role

STORAGE_TYPE = "Microsoft.Storage/storageAccounts"
SETTING = "AzureWebJobsStorage"
_SERVICE_URIS = ("blobServiceUri", "queueServiceUri", "tableServiceUri")


@dataclass(frozen=True)
class StorageProblem:
    """Why the host cannot open its storage; `rights` when a role assignment would fix it."""

    lines: tuple[str, ...]
    rights: bool = False


def _request_failed(status: int, reason: str, code: str) -> StorageProblem:
    request_id = uuid.uuid4()
    return StorageProblem((
        f"A host error has occurred during startup operation '{uuid.uuid4()}'.",
        f"Azure.RequestFailedException: {reason}",
        f"RequestId:{request_id}",
        f"Status: {status} ({reason})",
        f"ErrorCode: {code}",
    ), rights=code == "AuthorizationPermissionMismatch")


def parse_connection_string(text: str) -> dict[str, str]:
    """`Key=Value;...` as Azure Storage connection strings are written (keys as given)."""
    parts = (p.partition("=") for p in text.split(";") if p.strip())
    return {k.strip().lower(): v.strip() for k, _, v in parts}


def identity_storage_account(settings: Mapping[str, str]) -> str | None:
    """The account an identity-based AzureWebJobsStorage names, or None for none."""
    values = {
        k[len(SETTING) + 2:].lower(): v
        for k, v in settings.items()
        if k.lower().startswith(SETTING.lower() + "__") and v.strip()
    }
    if values.get("accountname"):
        return values["accountname"].strip()
    for key in _SERVICE_URIS:
        uri = values.get(key.lower())
        if uri:
            host = urllib.parse.urlparse(uri).hostname or ""
            return host.split(".", 1)[0] or None
    return None


class SiteAccess:
    """The runtime's view of RBAC, storage and identities (see `web_runtime.SiteRuntime`)."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self._endpoint: IdentityEndpoint | None = None

    def identity_environment(
        self, site: str, principal_id: str, tenant_id: str, site_id: str
    ) -> dict[str, str]:
        """IDENTITY_ENDPOINT, IDENTITY_HEADER (a fresh secret), MSI_ENDPOINT, MSI_SECRET."""
        if self._endpoint is None:
            assert self.ctx.tokens is not None, "the sandbox server sets its token issuer"
            self._endpoint = IdentityEndpoint(self.ctx.tokens, self.ctx.request_log)
        return self._endpoint.register(HostIdentity(site, principal_id, tenant_id, site_id))

    def forget_identity(self, site: str) -> None:
        if self._endpoint is not None:
            self._endpoint.forget(site)

    def shutdown(self) -> None:
        if self._endpoint is not None:
            self._endpoint.shutdown()
            self._endpoint = None

    def can_pull(self, principal_id: str, registry_id: str) -> bool:
        return bool(principal_id and registry_id) and holds_role(
            self.ctx.store, principal_id, registry_id, PULL_ROLES
        )

    def host_storage_problem(
        self, settings: Mapping[str, str], principal_id: str
    ) -> StorageProblem | None:
        """None when the host may open its storage, else what its log says."""
        connection = next(
            (v for k, v in settings.items() if k.lower() == SETTING.lower() and v.strip()), None
        )
        if connection is not None:
            return self._key_problem(connection)
        account = identity_storage_account(settings)
        if account is None:
            return None
        record = self.ctx.store.find_by_name(STORAGE_TYPE, account)
        if record is None:
            return _no_such_host(account)
        if not principal_id:
            return StorageProblem((
                f"A host error has occurred during startup operation '{uuid.uuid4()}'.",
                "Azure.Identity.CredentialUnavailableException: ManagedIdentityCredential "
                "authentication unavailable. No Managed Identity endpoint found.",
            ))
        if not holds_role(self.ctx.store, principal_id, record["body"]["id"], HOST_STORAGE_ROLES):
            return _request_failed(
                403, "This request is not authorized to perform this operation using this "
                "permission.", "AuthorizationPermissionMismatch",
            )
        return None

    def _key_problem(self, connection: str) -> StorageProblem | None:
        parts = parse_connection_string(connection)
        if parts.get("usedevelopmentstorage", "").lower() == "true":
            return _no_such_host("127.0.0.1:10000")
        account = parts.get("accountname", "")
        record = self.ctx.store.find_by_name(STORAGE_TYPE, account) if account else None
        if record is None:
            return _no_such_host(account or "(no AccountName)")
        private = record["private"]
        if parts.get("accountkey") not in (private.get("key1"), private.get("key2")):
            return _request_failed(
                403, "Server failed to authenticate the request. Make sure the value of "
                "Authorization header is formed correctly including the signature.",
                "AuthenticationFailed",
            )
        if record["body"]["properties"].get("allowSharedKeyAccess") is False:
            return _request_failed(
                403, "Key based authentication is not permitted on this storage account.",
                "KeyBasedAuthenticationNotPermitted",
            )
        return None


def _no_such_host(account: str) -> StorageProblem:
    host = account if ":" in account else f"{account}.blob.core.windows.net:443"
    return StorageProblem((
        f"A host error has occurred during startup operation '{uuid.uuid4()}'.",
        f"System.Net.Http.HttpRequestException: Name or service not known ({host})",
    ))
