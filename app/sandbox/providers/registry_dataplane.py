"""A sandbox registry's data plane, answered as ACR answers it.

Each registry serves it on its own HTTPS port (its `loginServer` is
`127.0.0.1:<port>`, see `registry_hosts`), with ACR's authentication:

- `Authorization: Basic` with the admin user, only while it is enabled (or the
  user `00000000-0000-0000-0000-000000000000` with an ACR refresh token as the
  password, as `az acr login --expose-token` hands out);
- `Authorization: Bearer <access token>` from the token exchange:
  `POST /oauth2/exchange` (an Entra token the sandbox accepts -> refresh token),
  then `POST /oauth2/token` (refresh token + scope -> access token);
- no credentials, or not enough: 401 with
  `WWW-Authenticate: Bearer realm="https://<loginServer>/oauth2/token",service="<loginServer>"`
  plus the `scope` the request needs, which is what azure-containerregistry
  reads to run the exchange by itself.

Served: Docker Registry v2 (`/v2/`, `_catalog`, `tags/list`, manifests as
package archives or OCI/Docker image manifests, blob uploads and mounts: see
`registry_images`) and ACR's own API (`/acr/v1/_catalog`, `/acr/v1/<repo>/_tags[/<tag>]`,
`/acr/v1/<repo>/_manifests/<digest>`, `DELETE /acr/v1/<repo>`) that
`ContainerRegistryClient` calls. The same handlers
also answer the older path `/dataplane/registries/<name>/v2/` on the sandbox
endpoint, where the sandbox token itself is still taken as a bearer token.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hmac
import json
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from app.sandbox.arm import ArmError
from app.sandbox.arm_auth import verify_bearer
from app.sandbox.oci import ImageStore, StoredManifest, TagInfo
from app.sandbox.providers import DATA_PLANE_ROOT, SandboxContext
from app.sandbox.providers.registry_errors import DataPlaneError
from app.sandbox.providers.registry_images import ImageHandlers, is_image_media_type
from app.sandbox.providers.registry_tokens import Scope, TokenIssuer, parse_scopes
from app.sandbox.registry import PACKAGE_MEDIA_TYPE, PackageError, PackageStore, pack_package
from app.sandbox.store import Record

RTYPE = "Microsoft.ContainerRegistry/registries"
LOGIN_SUFFIX = ".azurecr.io"
# The user name ACR takes with a refresh token as the password.
TOKEN_USER = "00000000-0000-0000-0000-000000000000"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_UPLOAD_LIMIT = 512 * 1024 * 1024
_AUTH_MESSAGE = (
    "authentication required, visit https://aka.ms/acr/authorization for more information."
)
# What a scope check needs: (type, name, action), e.g. ("registry", "catalog", "*").
Need = tuple[str, str, str]
PushHook = Callable[[str, str, str], None]


def login_server_of(record: Record) -> str:
    return str(record["body"]["properties"].get("loginServer") or "").lower()


class RegistryDataPlane:
    """Data-plane handlers shared by every registry's own port and the older path."""

    def __init__(
        self, ctx: SandboxContext, packages: PackageStore, images: ImageStore,
        tokens: TokenIssuer, on_push: PushHook,
    ) -> None:
        self.ctx = ctx
        self.packages = packages
        self.images = images
        self.tokens = tokens
        self._on_push = on_push
        self.oci = ImageHandlers(self, images)

    # -- routing -------------------------------------------------------------

    def legacy_routes(self) -> list[BaseRoute]:
        """`/dataplane/registries/<name>/v2/...` on the sandbox endpoint."""
        base = DATA_PLANE_ROOT + "registries/{registryName}/v2"

        def by_path(request: Request) -> str:
            return str(request.path_params["registryName"])

        return self._v2_routes(base, by_path, legacy=True)

    def app_for(self, name: str) -> Starlette:
        """The ASGI app a registry's own port serves."""

        def fixed(request: Request) -> str:
            return name

        routes = [
            *self._v2_routes("/v2", fixed, legacy=False),
            Route("/acr/v1/_catalog", self._wrap(self.acr_catalog, fixed), methods=["GET"]),
            Route(
                "/acr/v1/{repository:path}/_tags",
                self._wrap(self.acr_tags, fixed),
                methods=["GET"],
            ),
            Route(
                "/acr/v1/{repository:path}/_tags/{reference}",
                self._wrap(self.acr_tag, fixed),
                methods=["GET"],
            ),
            Route(
                "/acr/v1/{repository:path}/_manifests/{digest}",
                self._wrap(self.acr_manifest, fixed),
                methods=["GET"],
            ),
            Route(
                "/acr/v1/{repository:path}",
                self._wrap(self.acr_delete_repository, fixed),
                methods=["DELETE"],
            ),
            Route("/oauth2/exchange", self._wrap(self.exchange, fixed), methods=["POST"]),
            Route("/oauth2/token", self._wrap(self.token, fixed), methods=["POST"]),
        ]
        return Starlette(routes=routes)

    def _v2_routes(
        self, base: str, name_of: Callable[[Request], str], *, legacy: bool
    ) -> list[BaseRoute]:
        manifests = base + "/{repository:path}/manifests/{reference}"
        uploads = base + "/{repository:path}/blobs/uploads/"
        session = uploads + "{session}"
        oci = self.oci
        return [
            Route(uploads, self._wrap(oci.start_upload, name_of, legacy), methods=["POST"]),
            Route(session, self._wrap(oci.patch_upload, name_of, legacy), methods=["PATCH"]),
            Route(session, self._wrap(oci.put_upload, name_of, legacy), methods=["PUT"]),
            Route(session, self._wrap(oci.upload_status, name_of, legacy),
                  methods=["GET", "DELETE"]),
            Route(base + "/{repository:path}/blobs/{digest}",
                  self._wrap(oci.get_blob, name_of, legacy), methods=["GET", "HEAD"]),
            Route(base + "/", self._wrap(self.base, name_of, legacy), methods=["GET"]),
            Route(base + "/_catalog", self._wrap(self.catalog, name_of, legacy), methods=["GET"]),
            Route(
                base + "/{repository:path}/tags/list",
                self._wrap(self.tags, name_of, legacy),
                methods=["GET"],
            ),
            Route(
                manifests, self._wrap(self.get_manifest, name_of, legacy), methods=["GET", "HEAD"]
            ),
            Route(manifests, self._wrap(self.put_manifest, name_of, legacy), methods=["PUT"]),
        ]

    def _wrap(
        self, handler: Callable[..., Any], name_of: Callable[[Request], str], legacy: bool = False
    ) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                record = self._registry(name_of(request))
                response: Response = await handler(request, record, legacy)
                return response
            except DataPlaneError as exc:
                return exc.response()

        return endpoint

    def _registry(self, name: str) -> Record:
        record = self.ctx.store.find_by_name(RTYPE, name)
        if record is None or record["body"]["properties"]["provisioningState"] not in (
            "Succeeded",
            "Updating",
        ):
            raise DataPlaneError(
                404, "NAME_UNKNOWN", f"registry {name.lower()}{LOGIN_SUFFIX} is not known"
            )
        return record

    # -- authentication ------------------------------------------------------

    def authorise(
        self, request: Request, record: Record, need: Need | list[Need] | None, legacy: bool
    ) -> None:
        """Let the request through, or raise ACR's 401 naming what it needs.

        A need's action may list several (`pull,push`): the token must grant each. A
        list of needs (a mount: push here, pull from the source) must all be granted."""
        needs = [] if need is None else need if isinstance(need, list) else [need]
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        scheme, value = scheme.lower(), value.strip()
        error = ""
        if scheme == "basic" and self._basic_ok(value, record):
            return
        if scheme == "bearer":
            if legacy and hmac.compare_digest(value.encode(), self.ctx.token.encode()):
                return
            claims = self.tokens.check(value, login_server_of(record), "access")
            if claims is not None and all(
                claims.allows(rtype, name, action)
                for rtype, name, actions in needs
                for action in actions.split(",")
            ):
                return
            error = "invalid_token" if claims is None else "insufficient_scope"
        raise self._challenge(record, needs, legacy, error)

    def _basic_ok(self, value: str, record: Record) -> bool:
        try:
            username, _, password = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        if username == TOKEN_USER:
            return self.tokens.check(password, login_server_of(record), "refresh") is not None
        body = record["body"]
        if not body["properties"].get("adminUserEnabled"):
            return False
        if username.lower() != body["name"].lower():
            return False
        return any(
            hmac.compare_digest(password.encode(), known.encode())
            for known in record["private"]["passwords"]
        )

    def _challenge(
        self, record: Record, needs: list[Need], legacy: bool, error: str
    ) -> DataPlaneError:
        name = record["body"]["name"].lower()
        if legacy:
            challenge = f'Basic realm="https://{name}{LOGIN_SUFFIX}"'
        else:
            server = login_server_of(record)
            challenge = f'Bearer realm="https://{server}/oauth2/token",service="{server}"'
            if needs:
                scope = " ".join(f"{t}:{n}:{a}" for t, n, a in needs)
                challenge += f',scope="{scope}"'
            if error:
                challenge += f',error="{error}"'
        detail = None
        if needs:
            # ACR lists each action on its own (`pull`, then `push`).
            detail = [
                {"Type": t, "Name": n, "Action": action}
                for t, n, actions in needs
                for action in actions.split(",")
            ]
        return DataPlaneError(
            401, "UNAUTHORIZED", _AUTH_MESSAGE, {"WWW-Authenticate": challenge}, detail
        )

    # -- token exchange ------------------------------------------------------

    @staticmethod
    async def _form(request: Request) -> dict[str, str]:
        raw = (await request.body()).decode("utf-8", errors="replace")
        parsed = urllib.parse.parse_qs(raw)
        form = {k: v[-1] for k, v in parsed.items()}
        # Docker's token protocol repeats `scope` for several repositories (a mount).
        if "scope" in parsed:
            form["scope"] = " ".join(parsed["scope"])
        return form

    def _check_service(self, form: dict[str, str], record: Record) -> None:
        service = form.get("service", "")
        if service.lower() != login_server_of(record):
            raise DataPlaneError(
                400,
                "UNSUPPORTED",
                f"the service '{service}' is not this registry; use "
                f"'{login_server_of(record)}' (its loginServer)",
            )

    async def exchange(self, request: Request, record: Record, legacy: bool) -> Response:
        """`POST /oauth2/exchange`: an Entra access token for an ACR refresh token."""
        form = await self._form(request)
        grant = form.get("grant_type", "")
        if grant != "access_token":
            raise DataPlaneError(
                400,
                "UNSUPPORTED",
                f"grant_type '{grant}' is not supported here; use access_token",
            )
        self._check_service(form, record)
        offered = form.get("access_token", "")
        if not offered:
            raise DataPlaneError(401, "UNAUTHORIZED", "the access token is not valid")
        # The sandbox's own token, or a signed-in identity's Entra token for ARM, as
        # ACR takes it (https://aka.ms/acr/authorization).
        if hmac.compare_digest(offered.encode(), self.ctx.token.encode()):
            acting = self.ctx.store.tenant_id
        elif self.ctx.tokens is None:
            raise DataPlaneError(401, "UNAUTHORIZED", "the access token is not valid")
        else:
            try:
                acting = verify_bearer(self.ctx, self.ctx.tokens, offered)
            except ArmError:
                raise DataPlaneError(401, "UNAUTHORIZED",
                                     "the access token is not valid") from None
        tenant = form.get("tenant") or None
        if tenant and tenant.lower() != acting.lower():
            raise DataPlaneError(401, "UNAUTHORIZED", f"the tenant '{tenant}' is not valid")
        refresh = self.tokens.refresh_token(login_server_of(record), tenant)
        return JSONResponse({"refresh_token": refresh})

    async def token(self, request: Request, record: Record, legacy: bool) -> Response:
        """`POST /oauth2/token`: a refresh token (or nothing, for anonymous pull) for an
        access token to the scopes asked for."""
        form = await self._form(request)
        self._check_service(form, record)
        scopes = parse_scopes(form.get("scope", ""))
        grant = form.get("grant_type", "")
        if grant == "refresh_token":
            server = login_server_of(record)
            if self.tokens.check(form.get("refresh_token", ""), server, "refresh") is None:
                raise DataPlaneError(401, "UNAUTHORIZED", "the refresh token is not valid")
        elif grant == "password" and record["body"]["properties"].get("anonymousPullEnabled"):
            # Anonymous pull: read access only, as ACR grants it.
            scopes = [
                Scope(s.type, s.name, tuple(a for a in s.actions if a == "pull"))
                for s in scopes
                if s.type == "repository"
            ]
        else:
            raise DataPlaneError(
                400, "UNSUPPORTED", f"grant_type '{grant}' is not supported here"
            )
        access = self.tokens.access_token(login_server_of(record), scopes)
        return JSONResponse({"access_token": access})

    # -- Docker Registry v2 ----------------------------------------------------

    async def base(self, request: Request, record: Record, legacy: bool) -> Response:
        self.authorise(request, record, None, legacy)
        return JSONResponse({}, headers={"Docker-Distribution-API-Version": "registry/2.0"})

    async def catalog(self, request: Request, record: Record, legacy: bool) -> Response:
        self.authorise(request, record, ("registry", "catalog", "*"), legacy)
        return self._catalog_page(request, record, "/v2/_catalog")

    def _catalog_page(self, request: Request, record: Record, path: str) -> Response:
        registry = record["body"]["name"]
        names = sorted(
            set(self.packages.repositories(registry)) | set(self.images.repositories(registry))
        )
        last = request.query_params.get("last")
        if last:
            names = [n for n in names if n > last]
        headers = {"Docker-Distribution-API-Version": "registry/2.0"}
        count = request.query_params.get("n", "")
        if count.isdigit() and 0 < int(count) < len(names):
            names = names[: int(count)]
            query = urllib.parse.urlencode({"last": names[-1], "n": count})
            headers["Link"] = f'<{path}?{query}>; rel="next"'
        return JSONResponse({"repositories": names}, headers=headers)

    def _repository(self, request: Request) -> str:
        return str(request.path_params["repository"])

    def _unknown_repository(self, repository: str) -> DataPlaneError:
        return DataPlaneError(
            404,
            "NAME_UNKNOWN",
            f"repository name not known to registry: {repository}",
            detail={"name": repository},
        )

    async def tags(self, request: Request, record: Record, legacy: bool) -> Response:
        repository = self._repository(request)
        self.authorise(request, record, ("repository", repository, "pull"), legacy)
        listed = self._tag_list(record["body"]["name"], repository)
        if listed is None:
            raise self._unknown_repository(repository)
        return JSONResponse({"name": repository, "tags": [t.name for t in listed]})

    def _tag_list(self, registry: str, repository: str) -> list[TagInfo] | None:
        """Every tag of the repository, packages' and images' alike; None if unknown."""
        package_tags = self.packages.tags(registry, repository)
        image_tags = self.images.tags(registry, repository)
        if package_tags is None and image_tags is None:
            return None
        found = {t.name: t for t in image_tags or []}
        for tag in package_tags or []:
            package = self.packages.resolve(registry, repository, tag)
            if package is None:
                continue
            stamp = datetime.datetime.fromtimestamp(package.path.stat().st_mtime, datetime.UTC)
            when = stamp.isoformat().replace("+00:00", "Z")
            found[tag] = TagInfo(tag, package.digest, when, when)
        return [found[name] for name in sorted(found)]

    async def get_manifest(self, request: Request, record: Record, legacy: bool) -> Response:
        repository = self._repository(request)
        self.authorise(request, record, ("repository", repository, "pull"), legacy)
        reference = request.path_params["reference"]
        image = self.oci.find_manifest(record, repository, reference)
        if image is not None:
            return self.oci.manifest_response(request, image)
        found = self.packages.resolve(record["body"]["name"], repository, reference)
        if found is None:
            raise DataPlaneError(
                404, "MANIFEST_UNKNOWN", f'manifest tagged by "{reference}" is not found'
            )
        data = await asyncio.to_thread(pack_package, found.path)
        headers = {"Docker-Content-Digest": found.digest, "Content-Length": str(len(data))}
        if request.method == "HEAD":
            return Response(status_code=200, headers=headers, media_type=PACKAGE_MEDIA_TYPE)
        return Response(data, headers=headers, media_type=PACKAGE_MEDIA_TYPE)

    def check_repository_name(self, repository: str) -> None:
        if not _REPOSITORY.match(repository):
            raise DataPlaneError(400, "NAME_INVALID", f"invalid repository name: {repository}")

    async def put_manifest(self, request: Request, record: Record, legacy: bool) -> Response:
        repository = self._repository(request)
        tag = request.path_params["reference"]
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        if is_image_media_type(content_type):
            return await self._put_image_manifest(request, record, legacy, content_type)
        self.authorise(request, record, ("repository", repository, "push"), legacy)
        self.check_repository_name(repository)
        if not _TAG.match(tag):
            raise DataPlaneError(
                400, "TAG_INVALID", f"invalid tag {tag!r}: push by tag, the digest is computed"
            )
        if content_type != PACKAGE_MEDIA_TYPE:
            raise DataPlaneError(
                415,
                "MANIFEST_INVALID",
                f"unsupported manifest media type {content_type!r}: send an OCI or Docker "
                f"image manifest, index or list, or a package ({PACKAGE_MEDIA_TYPE})",
            )
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > _UPLOAD_LIMIT:
            raise DataPlaneError(413, "SIZE_INVALID", "package archive too large")
        data = await request.body()
        name = record["body"]["name"]
        try:
            digest = await asyncio.to_thread(
                self.packages.push_archive, name, repository, tag, data
            )
        except PackageError as exc:
            raise DataPlaneError(400, "MANIFEST_INVALID", str(exc)) from None
        self.images.untag(name, repository, tag)
        self._on_push(name, repository, tag)
        prefix = f"{DATA_PLANE_ROOT}registries/{name.lower()}/v2" if legacy else "/v2"
        return Response(
            status_code=201,
            headers={
                "Docker-Content-Digest": digest,
                "Location": f"{prefix}/{repository}/manifests/{digest}",
            },
        )

    async def _put_image_manifest(
        self, request: Request, record: Record, legacy: bool, media_type: str
    ) -> Response:
        repository = self._repository(request)
        reference = str(request.path_params["reference"])
        self.authorise(request, record, ("repository", repository, "pull,push"), legacy)
        self.check_repository_name(repository)
        if not reference.startswith("sha256:") and not _TAG.match(reference):
            raise DataPlaneError(400, "TAG_INVALID", f"invalid tag {reference!r}")
        response = await self.oci.put_manifest(request, record, legacy, media_type)
        if not reference.startswith("sha256:"):
            name = record["body"]["name"]
            await asyncio.to_thread(self.packages.untag, name, repository, reference)
            self._on_push(name, repository, reference)
        return response

    # -- ACR's listing API -----------------------------------------------------

    async def acr_catalog(self, request: Request, record: Record, legacy: bool) -> Response:
        self.authorise(request, record, ("registry", "catalog", "*"), legacy)
        return self._catalog_page(request, record, "/acr/v1/_catalog")

    async def acr_tags(self, request: Request, record: Record, legacy: bool) -> Response:
        repository = self._repository(request)
        self.authorise(request, record, ("repository", repository, "metadata_read"), legacy)
        tags = self._tag_list(record["body"]["name"], repository)
        if tags is None:
            raise self._unknown_repository(repository)
        return JSONResponse(
            {
                "registry": login_server_of(record),
                "imageName": repository,
                "tags": [self._tag_body(t) for t in tags],
            }
        )

    @staticmethod
    def _attributes() -> dict[str, bool]:
        return {"deleteEnabled": True, "writeEnabled": True, "readEnabled": True,
                "listEnabled": True}

    def _tag_body(self, tag: TagInfo) -> dict[str, Any]:
        return {
            "name": tag.name,
            "digest": tag.digest,
            "createdTime": tag.created,
            "lastUpdateTime": tag.updated,
            "signed": False,
            "changeableAttributes": self._attributes(),
        }

    async def acr_tag(self, request: Request, record: Record, legacy: bool) -> Response:
        """`GET /acr/v1/<repo>/_tags/<tag>` (what the SDK reads a tag's digest with)."""
        repository = self._repository(request)
        self.authorise(request, record, ("repository", repository, "metadata_read"), legacy)
        tags = self._tag_list(record["body"]["name"], repository)
        if tags is None:
            raise self._unknown_repository(repository)
        wanted = request.path_params["reference"]
        tag = next((t for t in tags if t.name == wanted), None)
        if tag is None:
            raise DataPlaneError(404, "TAG_UNKNOWN", f"the specified tag does not exist: {wanted}")
        return JSONResponse(
            {"registry": login_server_of(record), "imageName": repository,
             "tag": self._tag_body(tag)}
        )

    async def acr_manifest(self, request: Request, record: Record, legacy: bool) -> Response:
        """`GET /acr/v1/<repo>/_manifests/<digest>`: an image manifest's properties."""
        repository = self._repository(request)
        self.authorise(request, record, ("repository", repository, "metadata_read"), legacy)
        digest = str(request.path_params["digest"])
        name = record["body"]["name"]
        found = self.images.resolve(name, repository, digest)
        if found is None:
            raise DataPlaneError(
                404, "MANIFEST_UNKNOWN", f"manifest sha256:{digest} is not found"
                if not digest.startswith("sha256:") else f"manifest {digest} is not found"
            )
        body = await asyncio.to_thread(self._manifest_body, name, found)
        return JSONResponse(
            {"registry": login_server_of(record), "imageName": repository, "manifest": body}
        )

    def _manifest_body(self, registry: str, found: StoredManifest) -> dict[str, Any]:
        document = found.document()
        body: dict[str, Any] = {
            "digest": found.digest,
            "imageSize": len(found.body) + sum(
                int(d.get("size", 0)) for d in document.get("layers", []) if isinstance(d, dict)
            ),
            "createdTime": found.created,
            "lastUpdateTime": found.created,
            "mediaType": found.media_type,
            "tags": self.images.manifest_tags(registry, found.repository, found.digest),
            "changeableAttributes": {**self._attributes(), "quarantineState": "Passed"},
        }
        config = document.get("config")
        if isinstance(config, dict):
            body["configMediaType"] = config.get("mediaType")
            path = self.images.blob_path(registry, str(config.get("digest")))
            try:
                image_config = json.loads(path.read_bytes())
                body["architecture"] = image_config.get("architecture")
                body["os"] = image_config.get("os")
            except (OSError, ValueError, AttributeError):
                pass
        return body

    async def acr_delete_repository(
        self, request: Request, record: Record, legacy: bool
    ) -> Response:
        """`DELETE /acr/v1/<repo>`: the repository's packages and images go (202)."""
        repository = self._repository(request)
        self.authorise(request, record, ("repository", repository, "delete"), legacy)
        name = record["body"]["name"]
        package_tags = self.packages.tags(name, repository)
        manifests, tags = await asyncio.to_thread(self.images.delete_repository, name, repository)
        packages = await asyncio.to_thread(self.packages.delete_repository, name, repository)
        if package_tags is None and not manifests:
            raise self._unknown_repository(repository)
        return JSONResponse(
            {"manifestsDeleted": sorted(set(manifests) | set(packages)),
             "tagsDeleted": sorted(set(tags) | set(package_tags or []))},
            status_code=202,
        )

