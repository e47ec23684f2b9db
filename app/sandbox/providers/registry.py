"""Microsoft.ContainerRegistry: registries over ARM, and their data plane.

ARM side, as ContainerRegistryManagementClient calls it: checkNameAvailability
(registry names are global), create (201 + `Azure-AsyncOperation`,
provisioningState Creating -> Succeeded), get, list, update (PATCH, e.g.
adminUserEnabled), listCredentials / regenerateCredential for the admin user
(400 UnAuthorizedForCredentialOperations while it is disabled, as Azure
answers), delete (202 + `Location`), which also deletes the registry's packages.

Data plane, under `/dataplane/registries/<name>/v2/` on the sandbox endpoint
(the sandbox resolves `<name>.azurecr.io` itself; there is no DNS): the Docker
Registry v2 subset a deployer needs (`_catalog`, `<repo>/tags/list`) plus
`PUT <repo>/manifests/<tag>` carrying a package archive, which is how
`mlcache-deploy sandbox push` stores a package. It accepts the sandbox token
(Bearer) or the registry's admin user (Basic), like ACR accepts an Entra token
or the admin user. See docs/sandbox.md.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hmac
import re
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from app.sandbox.arm import (
    ArmError,
    arm_route,
    empty_response,
    json_response,
    read_json,
    resource_id,
)
from app.sandbox.operations import OperationKind, OpRecord
from app.sandbox.providers import DATA_PLANE_ROOT, Provider, SandboxContext
from app.sandbox.providers.resources import location_of, string_tags
from app.sandbox.registry import PACKAGE_MEDIA_TYPE, PackageError, PackageStore, pack_package
from app.sandbox.store import Record

RTYPE = "Microsoft.ContainerRegistry/registries"
NAMESPACE = "Microsoft.ContainerRegistry"
LOGIN_SUFFIX = ".azurecr.io"

_NAME = re.compile(r"^[a-zA-Z0-9]{5,50}$")
_SKUS = ("Basic", "Standard", "Premium")
# Data-plane repository names: the OCI distribution grammar, as app.imageref checks it.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_UPLOAD_LIMIT = 512 * 1024 * 1024


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


def _new_password() -> str:
    # ACR admin passwords are 52 characters of base64-like text.
    return secrets.token_urlsafe(39)[:52]


def packages_of(ctx: SandboxContext) -> PackageStore:
    """The registry packages of this sandbox (shared by the web provider's pulls)."""
    for provider in ctx.providers:
        if isinstance(provider, RegistryProvider):
            return provider.packages
    return PackageStore(ctx.provider_dir(NAMESPACE) / "packages")


class RegistryProvider(Provider):
    namespace = NAMESPACE

    def __init__(self, ctx: SandboxContext) -> None:
        super().__init__(ctx)
        self.packages = PackageStore(ctx.provider_dir(NAMESPACE) / "packages")

    def routes(self) -> list[BaseRoute]:
        sub = "/subscriptions/{subscriptionId}"
        registry, crud = self.resource_routes(
            RTYPE,
            "registryName",
            put=self.create,
            patch=self.update,
            delete=self.delete,
        )
        data = DATA_PLANE_ROOT + "registries/{registryName}/v2"
        return [
            arm_route(
                sub + f"/providers/{NAMESPACE}/checkNameAvailability", self.check_name, ["POST"]
            ),
            *crud,
            arm_route(registry + "/listCredentials", self.list_credentials, ["POST"]),
            arm_route(registry + "/regenerateCredential", self.regenerate_credential, ["POST"]),
            Route(data + "/", self.dp_base, methods=["GET"]),
            Route(data + "/_catalog", self.dp_catalog, methods=["GET"]),
            Route(data + "/{repository:path}/tags/list", self.dp_tags, methods=["GET"]),
            Route(
                data + "/{repository:path}/manifests/{reference}",
                self.dp_get_manifest,
                methods=["GET", "HEAD"],
            ),
            Route(
                data + "/{repository:path}/manifests/{reference}",
                self.dp_put_manifest,
                methods=["PUT"],
            ),
        ]

    def operation_kinds(self) -> dict[str, OperationKind]:
        return {
            "registry.create": OperationKind("registry.create", self._created, self.mark_failed),
            "registry.delete": OperationKind(
                "registry.delete", self.remove_after_teardown, self.mark_failed
            ),
        }

    def teardown(self, record: Record) -> None:
        self.packages.delete_registry(record["body"]["name"])

    # -- helpers -------------------------------------------------------------

    @staticmethod
    def _id(subscription_id: str, group: str, name: str) -> str:
        return resource_id(subscription_id, group, RTYPE, name)

    def _record(self, request: Request) -> Record:
        return self.lookup(request, RTYPE, "registryName")[1]

    @staticmethod
    def _sku(body: dict[str, Any]) -> dict[str, str]:
        sku = body.get("sku")
        if not isinstance(sku, dict) or not isinstance(sku.get("name"), str):
            raise ArmError(
                400, "InvalidRequestContent", "The request content is missing the required 'sku'."
            )
        for known in _SKUS:
            if sku["name"].lower() == known.lower():
                return {"name": known, "tier": known}
        raise ArmError(
            400,
            "InvalidSkuName",
            f"The SKU '{sku['name']}' is not valid. Valid SKUs are {', '.join(_SKUS)}.",
        )

    def _name_problem(self, name: str) -> tuple[str, str] | None:
        if not _NAME.match(name):
            return (
                "Invalid",
                "Registry names may contain only alpha numeric characters and must be between "
                "5 and 50 characters.",
            )
        if self.ctx.store.find_by_name(RTYPE, name) is not None:
            return ("AlreadyExists", f"The registry {name} is already in use.")
        return None

    # -- ARM -----------------------------------------------------------------

    async def check_name(self, request: Request) -> Response:
        self.subscription_matches(request)
        body = await read_json(request)
        name = body.get("name")
        rtype = body.get("type")
        if not isinstance(name, str) or not name:
            raise ArmError(400, "InvalidRequestContent", "The 'name' property is required.")
        if not isinstance(rtype, str) or rtype.lower() != RTYPE.lower():
            raise ArmError(
                400,
                "InvalidResourceType",
                f"The resource type '{rtype}' is not supported; use '{RTYPE}'.",
            )
        problem = self._name_problem(name)
        if problem is None:
            return json_response({"nameAvailable": True})
        reason, message = problem
        return json_response({"nameAvailable": False, "reason": reason, "message": message})

    async def create(self, request: Request) -> Response:
        sub = self.subscription_matches(request)
        group = request.path_params["resourceGroupName"]
        name = request.path_params["registryName"]
        body = await read_json(request)
        rid = self._id(sub, group, name)
        with self.ctx.store.transaction() as store:
            group_record = self.ctx.require_group(sub, group, for_write=True)
            existing = store.resource(rid)
            if existing is not None:
                return self._recreate(existing, body)
            problem = self._name_problem(name)
            if problem is not None:
                reason, message = problem
                if reason == "Invalid":
                    raise ArmError(400, "InvalidRegistryName", message)
                raise ArmError(409, "RegistryNameNotAvailable", message)
            location = location_of(body)
            sku = self._sku(body)
            props_in = body.get("properties") or {}
            if not isinstance(props_in, dict):
                raise ArmError(400, "InvalidRequestContent", "'properties' must be an object.")
            registry_body: dict[str, Any] = {
                "id": rid,
                "name": name,
                "type": RTYPE,
                "location": location,
                "tags": string_tags(body),
                "sku": sku,
                "systemData": {
                    "createdAt": _now(),
                    "createdByType": "User",
                    "lastModifiedAt": _now(),
                    "lastModifiedByType": "User",
                },
                "properties": {
                    "loginServer": f"{name.lower()}{LOGIN_SUFFIX}",
                    "creationDate": _now(),
                    "provisioningState": "Creating",
                    "adminUserEnabled": bool(props_in.get("adminUserEnabled", False)),
                    "networkRuleSet": {"defaultAction": "Allow", "ipRules": []},
                    "policies": {
                        "quarantinePolicy": {"status": "disabled"},
                        "trustPolicy": {"type": "Notary", "status": "disabled"},
                        "retentionPolicy": {"days": 7, "status": "disabled"},
                        "exportPolicy": {"status": "enabled"},
                    },
                    "encryption": {"status": "disabled"},
                    "dataEndpointEnabled": False,
                    "dataEndpointHostNames": [],
                    "privateEndpointConnections": [],
                    "publicNetworkAccess": props_in.get("publicNetworkAccess", "Enabled"),
                    "networkRuleBypassOptions": "AzureServices",
                    "zoneRedundancy": props_in.get("zoneRedundancy", "Disabled"),
                    "anonymousPullEnabled": bool(props_in.get("anonymousPullEnabled", False)),
                },
            }
            store.put_resource(
                rid,
                {
                    "body": registry_body,
                    "group": group_record["body"]["name"],
                    "private": {"passwords": [_new_password(), _new_password()]},
                },
            )
        op = self.ctx.operations.start(
            request,
            "registry.create",
            namespace=NAMESPACE,
            location=location,
            resource_id=rid,
        )
        return json_response(
            registry_body,
            201,
            self.ctx.operations.headers(op, async_operation=True, location=False),
        )

    def _recreate(self, existing: Record, body: dict[str, Any]) -> Response:
        """PUT on an existing registry: update in place (200), as ARM's create-or-update."""
        current = existing["body"]
        if current["properties"]["provisioningState"] in ("Creating", "Deleting"):
            raise ArmError(
                409,
                "OperationNotAllowed",
                f"The registry '{current['name']}' is "
                f"{current['properties']['provisioningState'].lower()}; retry when it is done.",
            )
        current["sku"] = self._sku(body)
        current["tags"] = string_tags(body)
        self._apply_properties(current, body.get("properties") or {})
        return json_response(current, 200)

    @staticmethod
    def _apply_properties(current: dict[str, Any], props: Any) -> None:
        if not isinstance(props, dict):
            raise ArmError(400, "InvalidRequestContent", "'properties' must be an object.")
        for key in ("adminUserEnabled", "anonymousPullEnabled"):
            if key in props and props[key] is not None:
                current["properties"][key] = bool(props[key])
        for key in ("publicNetworkAccess", "zoneRedundancy"):
            if isinstance(props.get(key), str):
                current["properties"][key] = props[key]
        current.setdefault("systemData", {})["lastModifiedAt"] = _now()

    async def update(self, request: Request) -> Response:
        body = await read_json(request)
        with self.ctx.store.transaction():
            record = self._record(request)
            self.ctx.require_group(
                self.subscription_matches(request), record["group"], for_write=True
            )
            current = record["body"]
            if "sku" in body and body["sku"] is not None:
                current["sku"] = self._sku(body)
            if "tags" in body and body["tags"] is not None:
                current["tags"] = string_tags(body)
            self._apply_properties(current, body.get("properties") or {})
            answer = dict(current)
        await asyncio.sleep(self.ctx.latency.seconds("registry.update"))
        return json_response(answer, 200)

    async def delete(self, request: Request) -> Response:
        rid, _ = self.locate(request, RTYPE, "registryName")
        with self.ctx.store.transaction() as store:
            record = store.resource(rid)
            if record is None:
                return empty_response(204)
            record["body"]["properties"]["provisioningState"] = "Deleting"
            location = record["body"]["location"]
        op = self.ctx.operations.start(
            request,
            "registry.delete",
            namespace=NAMESPACE,
            location=location,
            resource_id=rid,
            final_body=False,
        )
        return empty_response(
            202, self.ctx.operations.headers(op, async_operation=False, location=True)
        )

    def _created(self, op: OpRecord) -> None:
        with self.ctx.store.transaction() as store:
            record = store.resource(op["resourceId"])
            if record is not None:
                record["body"]["properties"]["provisioningState"] = "Succeeded"


    def _credentials(self, record: Record) -> dict[str, Any]:
        body = record["body"]
        if not body["properties"].get("adminUserEnabled"):
            raise ArmError(
                400,
                "UnAuthorizedForCredentialOperations",
                f"Cannot perform credential operations for {body['id']} as admin user is "
                "disabled. Kindly enable admin user as per docs: "
                "https://docs.microsoft.com/en-us/azure/container-registry/"
                "container-registry-authentication#admin-account",
            )
        passwords = record["private"]["passwords"]
        return {
            "username": body["name"],
            "passwords": [
                {"name": "password", "value": passwords[0]},
                {"name": "password2", "value": passwords[1]},
            ],
        }

    async def list_credentials(self, request: Request) -> Response:
        return json_response(self._credentials(self._record(request)))

    async def regenerate_credential(self, request: Request) -> Response:
        body = await read_json(request)
        which = body.get("name")
        if which not in ("password", "password2"):
            raise ArmError(
                400,
                "InvalidRequestContent",
                "The 'name' property must be 'password' or 'password2'.",
            )
        with self.ctx.store.transaction():
            record = self._record(request)
            self._credentials(record)  # refuses while the admin user is disabled
            index = 0 if which == "password" else 1
            record["private"]["passwords"][index] = _new_password()
            answer = self._credentials(record)
        return json_response(answer)

    # -- data plane ----------------------------------------------------------

    def _dp_registry(self, request: Request) -> Record:
        """The registry this data-plane request is for, after checking its credentials."""
        name = request.path_params["registryName"]
        record = self.ctx.store.find_by_name(RTYPE, name)
        if record is None or record["body"]["properties"]["provisioningState"] not in (
            "Succeeded",
            "Updating",
        ):
            raise _DataPlaneError(
                404, "NAME_UNKNOWN", f"registry {name.lower()}{LOGIN_SUFFIX} is not known"
            )
        if not self._dp_authorised(request, record):
            raise _DataPlaneError(
                401,
                "UNAUTHORIZED",
                "authentication required, visit https://aka.ms/acr/authorization for more "
                "information.",
                {"WWW-Authenticate": f'Basic realm="https://{name.lower()}{LOGIN_SUFFIX}"'},
            )
        return record

    def _dp_authorised(self, request: Request, record: Record) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return hmac.compare_digest(value.strip().encode(), self.ctx.token.encode())
        if scheme.lower() != "basic":
            return False
        try:
            username, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        body = record["body"]
        if not body["properties"].get("adminUserEnabled"):
            return False
        if username.lower() != body["name"].lower():
            return False
        return any(
            hmac.compare_digest(password.encode(), known.encode())
            for known in record["private"]["passwords"]
        )

    async def dp_base(self, request: Request) -> Response:
        try:
            self._dp_registry(request)
        except _DataPlaneError as exc:
            return exc.response()
        return JSONResponse({}, headers={"Docker-Distribution-API-Version": "registry/2.0"})

    async def dp_catalog(self, request: Request) -> Response:
        try:
            record = self._dp_registry(request)
        except _DataPlaneError as exc:
            return exc.response()
        return JSONResponse({"repositories": self.packages.repositories(record["body"]["name"])})

    async def dp_tags(self, request: Request) -> Response:
        try:
            record = self._dp_registry(request)
        except _DataPlaneError as exc:
            return exc.response()
        repository = request.path_params["repository"]
        tags = self.packages.tags(record["body"]["name"], repository)
        if tags is None:
            return _DataPlaneError(
                404, "NAME_UNKNOWN", f"repository name not known to registry: {repository}"
            ).response()
        return JSONResponse({"name": repository, "tags": tags})

    async def dp_get_manifest(self, request: Request) -> Response:
        try:
            record = self._dp_registry(request)
        except _DataPlaneError as exc:
            return exc.response()
        repository = request.path_params["repository"]
        reference = request.path_params["reference"]
        found = self.packages.resolve(record["body"]["name"], repository, reference)
        if found is None:
            return _DataPlaneError(
                404, "MANIFEST_UNKNOWN", f'manifest tagged by "{reference}" is not found'
            ).response()
        data = await asyncio.to_thread(pack_package, found.path)
        headers = {"Docker-Content-Digest": found.digest, "Content-Length": str(len(data))}
        if request.method == "HEAD":
            return Response(status_code=200, headers=headers, media_type=PACKAGE_MEDIA_TYPE)
        return Response(data, headers=headers, media_type=PACKAGE_MEDIA_TYPE)

    async def dp_put_manifest(self, request: Request) -> Response:
        try:
            record = self._dp_registry(request)
        except _DataPlaneError as exc:
            return exc.response()
        repository = request.path_params["repository"]
        tag = request.path_params["reference"]
        if not _REPOSITORY.match(repository):
            return _DataPlaneError(
                400, "NAME_INVALID", f"invalid repository name: {repository}"
            ).response()
        if not _TAG.match(tag):
            return _DataPlaneError(
                400, "TAG_INVALID", f"invalid tag {tag!r}: push by tag, the digest is computed"
            ).response()
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        if content_type != PACKAGE_MEDIA_TYPE:
            return _DataPlaneError(
                415,
                "MANIFEST_INVALID",
                f"the sandbox registry stores packages; send {PACKAGE_MEDIA_TYPE}",
            ).response()
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > _UPLOAD_LIMIT:
            return _DataPlaneError(413, "SIZE_INVALID", "package archive too large").response()
        data = await request.body()
        name = record["body"]["name"]
        try:
            digest = await asyncio.to_thread(
                self.packages.push_archive, name, repository, tag, data
            )
        except PackageError as exc:
            return _DataPlaneError(400, "MANIFEST_INVALID", str(exc)).response()
        # Sites waiting for this image start now (providers that care define the hook).
        for provider in self.ctx.providers:
            hook = getattr(provider, "on_image_pushed", None)
            if callable(hook):
                hook(name, repository, tag)
        location = f"{DATA_PLANE_ROOT}registries/{name.lower()}/v2/{repository}/manifests/{digest}"
        return Response(
            status_code=201,
            headers={"Docker-Content-Digest": digest, "Location": location},
        )


class _DataPlaneError(Exception):
    """A registry data-plane failure in the Docker Registry v2 error shape."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def response(self) -> Response:
        return JSONResponse(
            {"errors": [{"code": self.code, "message": self.message, "detail": None}]},
            status_code=self.status,
            headers=self.headers,
        )


