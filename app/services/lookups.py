"""Lists the wizard offers to pick from: resource groups, registries, repositories, tags.

Resource groups and registries come from ARM (the management clients). Repositories
and tags live on a registry's data plane, which ARM does not serve: the registry's
own loginServer (as ARM names it), reached with an ACR token obtained by exchanging
the signed-in identity's ARM token, on Azure and on the sandbox alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from app.errors import BadInput, NotPermitted, ServiceFailure
from app.rules import Problem, created_by_us
from app.services.clients import ClientFactory
from app.services.explain import plain_request_error
from app.services.redaction import register_secret
from app.services.target import CloudTarget
from app.services.transport import TOKEN_POSTS, retrying_session

# Pages of a data-plane listing followed at most (100 names per page).
MAX_PAGES = 50


@dataclass(frozen=True)
class GroupSummary:
    name: str
    location: str
    created_by_us: bool


@dataclass(frozen=True)
class RegistrySummary:
    name: str
    login_server: str
    resource_group: str
    admin_user_enabled: bool


def list_resource_groups(clients: ClientFactory) -> list[GroupSummary]:
    """The subscription's resource groups, sorted by name (case-insensitive)."""
    out = []
    for group in clients.resources().resource_groups.list():
        out.append(GroupSummary(group.name or "", group.location or "",
                                created_by_us(group.tags)))
    return sorted(out, key=lambda g: g.name.lower())


@dataclass(frozen=True)
class Region:
    """A region as the subscription lists it: ARM's name (what a spec holds) and the
    display name the portal shows."""

    name: str
    display_name: str

    @property
    def label(self) -> str:
        """What a picker shows: "West Europe (westeurope)"."""
        shown = self.display_name or self.name
        return shown if shown == self.name else f"{shown} ({self.name})"


def list_locations(clients: ClientFactory) -> list[Region]:
    """The subscription's physical regions, sorted by display name as the portal lists them.

    Logical entries (geographies like "europe", "unitedstates") cannot host resources."""
    out = []
    subscription = clients.target.subscription_id
    for location in clients.subscriptions().subscriptions.list_locations(subscription):
        region_type = getattr(getattr(location, "metadata", None), "region_type", None)
        if str(getattr(region_type, "value", region_type) or "Physical") != "Physical":
            continue
        if location.name:
            out.append(Region(location.name, location.display_name or location.name))
    return sorted(out, key=lambda r: (r.display_name.lower(), r.name))


def _squeezed(text: str) -> str:
    return text.replace(" ", "").lower()


def location_problems(location: str, regions: list[Region]) -> list[Problem]:
    """What is wrong with `location` once the subscription's regions are known: not
    one of them, or written as a display name ("West Europe") rather than the
    region's name. Empty when `regions` is (the list is unknown)."""
    if not regions or not location or any(r.name == location for r in regions):
        return []
    for region in regions:
        if _squeezed(region.display_name) == _squeezed(location) or \
                region.name == location.lower():
            return [Problem("location", f"write the region's name {region.name!r}, not "
                                        f"{location!r} (specs hold the name, as "
                                        f"az account list-locations shows it)")]
    shown = ", ".join(r.name for r in sorted(regions, key=lambda r: r.name))
    return [Problem("location", f"{location!r} is not a region this subscription offers "
                                f"(it offers {shown})",
                    for_people=f"{location!r} is not a region this subscription offers; "
                               "pick one from the list")]


def list_registries(clients: ClientFactory) -> list[RegistrySummary]:
    """The subscription's container registries, sorted by name."""
    out = []
    for registry in clients.registry().registries.list():
        name = registry.name or ""
        match = re.search(r"/resourceGroups/([^/]+)/", registry.id or "", re.IGNORECASE)
        out.append(RegistrySummary(
            name,
            registry.login_server or "",
            match.group(1) if match else "",
            bool(registry.admin_user_enabled),
        ))
    return sorted(out, key=lambda r: r.name.lower())


def list_repositories(target: CloudTarget, registry: RegistrySummary) -> list[str]:
    """Repositories of `registry` (`GET /v2/_catalog`), sorted."""
    with AcrDataPlane(target, registry.login_server) as plane:
        return sorted(plane.repositories())


def list_tags(target: CloudTarget, registry: RegistrySummary, repository: str) -> list[str]:
    """Tags of one repository (`GET /v2/<repository>/tags/list`), sorted; [] when unknown."""
    with AcrDataPlane(target, registry.login_server) as plane:
        return sorted(plane.tags(repository))


class AcrDataPlane:
    """Catalog and tag listing on an Azure Container Registry (Docker Registry API v2).

    Authentication is ACR's token exchange: the identity's Microsoft Entra token for
    ARM is traded at `/oauth2/exchange` for an ACR refresh token, which
    `/oauth2/token` trades for an access token limited to one scope
    (`registry:catalog:*` or `repository:<name>:pull`). Every token is registered
    for redaction the moment it arrives.

    The sandbox serves the same exchange and listing at each registry's own
    loginServer, so this one path is what the tests run. Every call goes through
    the product's retry policy; the token POSTs may be sent again (`TOKEN_POSTS`).
    """

    def __init__(self, target: CloudTarget, login_server: str, timeout: float = 30.0) -> None:
        self.target = target
        self.server = login_server.lower()
        self.timeout = timeout
        self._refresh_token: str | None = None
        self._session = retrying_session(target, TOKEN_POSTS)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> AcrDataPlane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def repositories(self) -> list[str]:
        return self._list("_catalog", "registry:catalog:*", "repositories")

    def tags(self, repository: str) -> list[str]:
        try:
            return self._list(f"{repository}/tags/list", f"repository:{repository}:pull", "tags")
        except BadInput as exc:
            if "NAME_UNKNOWN" in exc.message:
                return []
            raise

    def _unreachable(self, exc: Exception) -> ServiceFailure:
        return ServiceFailure(f"cannot reach {self.server}: {plain_request_error(exc)}")

    # -- tokens ------------------------------------------
    def _post_token(self, path: str, data: dict[str, str]) -> dict[str, Any]:
        import requests

        try:
            answer = self._session.post(f"https://{self.server}/oauth2/{path}", data=data,
                                        timeout=self.timeout, verify=self.target.verify)
        except requests.RequestException as exc:
            raise self._unreachable(exc) from None
        if answer.status_code in (401, 403):
            raise NotPermitted(
                f"{self.server} refused the sign-in (HTTP {answer.status_code})",
                "You need the AcrPull role (or Reader on the registry) to list its images.",
            )
        if answer.status_code != 200:
            raise ServiceFailure(f"{self.server} answered HTTP {answer.status_code} "
                                 f"to a token request")
        body = answer.json()
        return body if isinstance(body, dict) else {}

    def _access_token(self, scope: str) -> str:
        if self._refresh_token is None:
            aad = self.target.credential.get_token(*self.target.credential_scopes).token
            data = {"grant_type": "access_token", "service": self.server, "access_token": aad}
            if self.target.tenant_id:
                data["tenant"] = self.target.tenant_id
            refresh = str(self._post_token("exchange", data).get("refresh_token") or "")
            if not refresh:
                raise ServiceFailure(f"{self.server} gave no refresh token")
            register_secret(refresh)
            self._refresh_token = refresh
        token = str(self._post_token("token", {
            "grant_type": "refresh_token", "service": self.server, "scope": scope,
            "refresh_token": self._refresh_token,
        }).get("access_token") or "")
        if not token:
            raise ServiceFailure(f"{self.server} gave no access token for {scope}")
        register_secret(token)
        return token

    # -- listing ------------------------------------------
    def _list(self, path: str, scope: str, key: str) -> list[str]:
        import requests

        headers = {"Authorization": f"Bearer {self._access_token(scope)}"}
        url: str | None = f"https://{self.server}/v2/{path}?n=100"
        names: list[str] = []
        for _page in range(MAX_PAGES):
            if url is None:
                break
            try:
                answer = self._session.get(url, headers=headers, timeout=self.timeout,
                                           verify=self.target.verify)
            except requests.RequestException as exc:
                raise self._unreachable(exc) from None
            if answer.status_code == 404:
                raise BadInput(f"{self.server}/{path}: NAME_UNKNOWN")
            if answer.status_code in (401, 403):
                raise NotPermitted(f"{self.server} refused to list {path} "
                                   f"(HTTP {answer.status_code})")
            if answer.status_code != 200:
                raise ServiceFailure(f"{self.server} answered HTTP {answer.status_code} "
                                     f"for {path}")
            body = answer.json()
            names += [str(n) for n in (body.get(key) or [])] if isinstance(body, dict) else []
            following = answer.links.get("next", {}).get("url")
            if following and not following.startswith("https://"):
                following = f"https://{self.server}{following}"
            url = following or None
        return names

    def has_manifest(self, repository: str, reference: str, accept: str) -> bool | None:
        """Whether the registry holds `repository@reference` (None: it did not say)."""
        import requests

        headers = {"Authorization": f"Bearer {self._access_token(f'repository:{repository}:pull')}",
                   "Accept": accept}
        try:
            answer = self._session.head(
                f"https://{self.server}/v2/{repository}/manifests/{reference}",
                headers=headers, timeout=self.timeout, verify=self.target.verify)
        except requests.RequestException as exc:
            raise self._unreachable(exc) from None
        if answer.status_code == 200:
            return True
        if answer.status_code == 404:
            return False
        return None


__all__ = [
    "AcrDataPlane",
    "GroupSummary",
    "Region",
    "RegistrySummary",
    "list_locations",
    "list_registries",
    "list_repositories",
    "list_resource_groups",
    "list_tags",
    "location_problems",
]
