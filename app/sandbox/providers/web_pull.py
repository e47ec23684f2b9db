"""Pulling a site's image: which registry, with which credentials, which manifest.

Split from `web_runtime` (which starts the hosts): the answers here are what App
Service's container log says when a pull is refused or finds nothing.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from app.imageref import ImageReference
from app.sandbox.base_images import oci_architecture
from app.sandbox.oci import IMAGE_MANIFESTS, INDEX_MANIFESTS, ImageStore, StoredManifest

if TYPE_CHECKING:
    from app.sandbox.providers.web_access import SiteAccess


class PullingSite(Protocol):
    """What a pull reads of the site (`web_runtime.SiteSpec`)."""

    @property
    def app_settings(self) -> Mapping[str, str]: ...

    @property
    def acr_managed_identity(self) -> bool: ...

    @property
    def principal_id(self) -> str: ...


@dataclass(frozen=True)
class RegistryAccess:
    """What a pull needs to know about a sandbox registry resource."""

    name: str
    admin_enabled: bool
    passwords: tuple[str, ...]
    anonymous_pull: bool = False
    # ARM's `loginServer` (`127.0.0.1:<port>`); `<name>.azurecr.io` names it too.
    login_server: str = ""
    # The registry's resource id: the scope a pull role is checked at.
    resource_id: str = ""

    @property
    def hosts(self) -> tuple[str, ...]:
        """Every host an image or DOCKER_REGISTRY_SERVER_URL may name this registry by."""
        alias = f"{self.name.lower()}.azurecr.io"
        return (alias, self.login_server.lower()) if self.login_server else (alias,)


@dataclass(frozen=True)
class Pulled:
    """What a pull found: a package folder, or an image manifest (never both)."""

    digest: str
    package: Path | None = None
    image: StoredManifest | None = None


class PullError(Exception):
    """The image cannot be pulled; the message is what Azure's log would say.

    `missing` names the (registry, repository) when the image is simply not there
    yet, so a later push can start the site.
    """

    def __init__(
        self, message: str, missing: tuple[str, str] | None = None, rights: bool = False
    ) -> None:
        super().__init__(message)
        self.missing = missing
        self.rights = rights


def find_image(images: ImageStore | None, image: ImageReference) -> StoredManifest | None:
    """The image manifest a reference names (a digest wins over the tag), choosing
    this machine's platform from an index or manifest list; None if it names none."""
    reference = image.digest or image.tag
    if images is None or reference is None:
        return None
    found = images.resolve(image.registry, image.repository, reference)
    if found is None or found.media_type in IMAGE_MANIFESTS:
        return found
    if found.media_type not in INDEX_MANIFESTS:
        return None
    entries = [e for e in found.document().get("manifests") or [] if isinstance(e, dict)]
    arch = oci_architecture()
    entries.sort(key=lambda e: (e.get("platform") or {}).get("architecture") != arch)
    for entry in entries:
        child = images.resolve(image.registry, image.repository, str(entry.get("digest")))
        if child is not None and child.media_type in IMAGE_MANIFESTS:
            return StoredManifest(child.registry, child.repository, found.digest,
                                  child.media_type, child.body, child.created)
    return None


def check_pull_credentials(
    spec: PullingSite, image: ImageReference, registry: RegistryAccess, access: SiteAccess | None
) -> None:
    """Refuse a pull the site's credentials would not get: the identity's role, or the
    admin user's name and password for this very registry, as App Service pulls."""
    settings = spec.app_settings
    server = settings.get("DOCKER_REGISTRY_SERVER_URL", "").strip()
    username = settings.get("DOCKER_REGISTRY_SERVER_USERNAME", "")
    password = settings.get("DOCKER_REGISTRY_SERVER_PASSWORD", "")
    unauthorized = PullError(
        f'Head "https://{image.login_server}/v2/{image.repository}/manifests/'
        f'{image.digest or image.tag}": unauthorized: authentication required'
    )
    if spec.acr_managed_identity:
        # The site's identity pulls: it needs a pull role at the registry or above.
        if access is not None and access.can_pull(
            spec.principal_id, registry.resource_id
        ):
            return
        raise PullError(str(unauthorized), rights=bool(spec.principal_id))
    if not (username and password):
        if registry.anonymous_pull:
            return
        raise unauthorized
    parsed = urllib.parse.urlparse(server if "://" in server else f"https://{server}")
    named = {(parsed.hostname or "").lower(), parsed.netloc.lower()}
    if not named & set(registry.hosts):
        # Credentials for another registry are not sent to this one.
        raise unauthorized
    if not registry.admin_enabled:
        raise unauthorized
    if username.lower() != registry.name.lower() or password not in registry.passwords:
        raise unauthorized
