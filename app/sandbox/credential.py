"""The sandbox's own credential: its token, for every scope, as clients ask for one."""

from __future__ import annotations

import time
from typing import Any

from azure.core.credentials import AccessToken


class SandboxCredential:
    """An azure.core TokenCredential that yields the sandbox's bearer token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 24 * 3600)

    def close(self) -> None:
        pass

    def __enter__(self) -> SandboxCredential:
        return self

    def __exit__(self, *exc: object) -> None:
        pass
