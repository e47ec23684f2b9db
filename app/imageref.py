"""Container image references in Azure Container Registry form.

Accepts what a person pastes: `<registry>.azurecr.io/<repository>:<tag>` or the
AzureML package-location form `<registry>.azurecr.io/<repository>@sha256:<digest>`.
Pure: no network, no SDK.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LOGIN_SUFFIX = ".azurecr.io"

# Registry names are 5-50 alphanumerics; ACR lowercases the login server.
_REGISTRY = r"(?P<registry>[A-Za-z0-9]{5,50})"
# OCI distribution spec: path components of lowercase alphanumerics joined by separators.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = rf"(?P<repository>{_COMPONENT}(?:/{_COMPONENT})*)"
_TAG = r"(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})"
_DIGEST = r"(?P<digest>sha256:[a-fA-F0-9]{64})"
# Reused by the rules for the build form of a spec's image (repository, tag).
REPOSITORY_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_PATTERN = re.compile(
    rf"^{_REGISTRY}(?i:\.azurecr\.io)/{_REPOSITORY}(?::{_TAG})?(?:@{_DIGEST})?$"
)


class ImageReferenceError(ValueError):
    """The text is not an ACR image reference; the message says which part is wrong."""


@dataclass(frozen=True)
class ImageReference:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def login_server(self) -> str:
        return f"{self.registry}{LOGIN_SUFFIX}"

    def __str__(self) -> str:
        return self.at(self.login_server)

    def at(self, login_server: str) -> str:
        """The reference on the registry's loginServer as ARM answers it (a spec names
        `<name>.azurecr.io`; another cloud, or the sandbox, serves it elsewhere)."""
        text = f"{login_server}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_image_reference(text: str) -> ImageReference:
    """Parse `text`, or raise ImageReferenceError saying what is wrong with it."""
    value = text.strip()
    if not value:
        raise ImageReferenceError("must not be empty")
    host, _, rest = value.partition("/")
    if not host.lower().endswith(LOGIN_SUFFIX):
        raise ImageReferenceError(
            f"must start with a registry login server like myregistry{LOGIN_SUFFIX}/"
        )
    registry = host[: -len(LOGIN_SUFFIX)]
    if not re.fullmatch(r"[A-Za-z0-9]{5,50}", registry):
        raise ImageReferenceError("registry name must be 5-50 letters and digits")
    if not rest:
        raise ImageReferenceError("must name a repository after the registry")
    match = _PATTERN.match(value)
    if match is None:
        if "@" in rest and not re.search(r"@sha256:[a-f0-9]{64}$", rest, re.IGNORECASE):
            raise ImageReferenceError("digest must be sha256: followed by 64 hex digits")
        raise ImageReferenceError(
            "repository must be lowercase letters, digits and . _ - / separators, "
            "optionally followed by :tag or @sha256:digest"
        )
    if not match["tag"] and not match["digest"]:
        raise ImageReferenceError("must end with :tag or @sha256:digest")
    return ImageReference(
        registry=match["registry"].lower(),
        repository=match["repository"],
        tag=match["tag"],
        digest=match["digest"].lower() if match["digest"] else None,
    )
