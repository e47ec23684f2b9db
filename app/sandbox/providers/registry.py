"""Microsoft.ContainerRegistry: registries over ARM, and where their data plane listens.

ARM side, as ContainerRegistryManagementClient calls it: checkNameAvailability
(registry names are global), create (201 + `Azure-AsyncOperation`,
provisioningState Creating -> Succeeded), get, list, update (PATCH, e.g.
adminUserEnabled), listCredentials / regenerateCredential for the admin user
(400 UnAuthorizedForCredentialOperations while it is disabled, as Azure
answers), delete (202 + `Location`), which also deletes the registry's packages and
images, and importImage (202 + `Location`, see `registry_import`). The base-image
registry stand-in (`base_registry`) starts with this provider.

Each registry's data plane (`registry_dataplane`) listens on a port of its own
(`registry_hosts`), and `loginServer` says where: `127.0.0.1:<port>`, the port
kept across sandbox restarts while it is free. Images named
`<name>.azurecr.io/...` still resolve to the registry inside the sandbox, and the
older path `/dataplane/registries/<name>/v2/` on the sandbox endpoint still
answers. See docs/sandbox.md.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import re
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.sandbox.arm import (
    ArmError,
    arm_route,
    empty_response,
    json_response,
    read_json,
    resource_id,
)
from app.sandbox.oci import ImageStore
from app.sandbox.operations import OperationKind, OpRecord
from app.sandbox.ports import free_port, port_free
from app.sandbox.providers import Provider, SandboxContext
from app.sandbox.providers.base_registry import BaseRegistry
from app.sandbox.providers.registry_dataplane import LOGIN_SUFFIX, RTYPE, RegistryDataPlane
from app.sandbox.providers.registry_hosts import RegistryHosts
from app.sandbox.providers.registry_import import Importer, parse_import
from app.sandbox.providers.registry_tokens import TokenIssuer
from app.sandbox.providers.resources import location_of, string_tags
from app.sandbox.registry import PackageStore
from app.sandbox.store import Record

log = logging.getLogger("mlcache.sandbox.registry")

NAMESPACE = "Microsoft.ContainerRegistry"
__all__ = [
    "LOGIN_SUFFIX",
    "RTYPE",
    "RegistryProvider",
    "base_registry_host",
    "images_of",
    "login_server_for",
    "packages_of",
    "registry_by_login_server",
]

_NAME = re.compile(r"^[a-zA-Z0-9]{5,50}$")
_SKUS = ("Basic", "Standard", "Premium")


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


def images_of(ctx: SandboxContext) -> ImageStore:
    """The registry images of this sandbox (shared by the web provider's pulls)."""
    for provider in ctx.providers:
        if isinstance(provider, RegistryProvider):
            return provider.images
    return ImageStore(ctx.provider_dir(NAMESPACE) / "images")


def base_registry_host(ctx: SandboxContext) -> str:
    """`127.0.0.1:<port>` of the base-image registry stand-in ("" when not running)."""
    for provider in ctx.providers:
        if isinstance(provider, RegistryProvider):
            return provider.base_registry.host
    return ""


def login_server_for(port: int) -> str:
    """A sandbox registry's `loginServer`: where its own listener is."""
    return f"127.0.0.1:{port}"


def registry_by_login_server(ctx: SandboxContext, host: str) -> Record | None:
    """The registry an image host names: its `loginServer` or `<name>.azurecr.io`."""
    wanted = host.strip().lower()
    if wanted.endswith(LOGIN_SUFFIX):
        return ctx.store.find_by_name(RTYPE, wanted[: -len(LOGIN_SUFFIX)])
    for record in ctx.store.resources(RTYPE):
        if str(record["body"]["properties"].get("loginServer", "")).lower() == wanted:
            return record
    return None


class RegistryProvider(Provider):
    namespace = NAMESPACE

    def __init__(self, ctx: SandboxContext) -> None:
        super().__init__(ctx)
        root = ctx.provider_dir(NAMESPACE)
        self.packages = PackageStore(root / "packages")
        self.images = ImageStore(root / "images")
        self.tokens = TokenIssuer(root / "tokens.key")
        self.data_plane = RegistryDataPlane(
            ctx, self.packages, self.images, self.tokens, self.image_pushed
        )
        self.hosts = RegistryHosts(root / "hosts", ctx.ca, ctx.faults, ctx.request_log)
        self.base_registry = BaseRegistry(ctx, root, self.hosts)
        self.importer = Importer(
            ctx.store, self.images, self.packages, lambda: self.base_registry.host,
            self.image_pushed,
        )

    def image_pushed(self, registry: str, repository: str, tag: str) -> None:
        """A package landed (pushed or built): sites waiting for it start (providers that
        care define `on_image_pushed`)."""
        for provider in self.ctx.providers:
            hook = getattr(provider, "on_image_pushed", None)
            if callable(hook):
                hook(registry, repository, tag)

    def routes(self) -> list[BaseRoute]:
        sub = "/subscriptions/{subscriptionId}"
        registry, crud = self.resource_routes(
            RTYPE,
            "registryName",
            put=self.create,
            patch=self.update,
            delete=self.delete,
        )
        return [
            arm_route(
                sub + f"/providers/{NAMESPACE}/checkNameAvailability", self.check_name, ["POST"]
            ),
            *crud,
            arm_route(registry + "/listCredentials", self.list_credentials, ["POST"]),
            arm_route(registry + "/regenerateCredential", self.regenerate_credential, ["POST"]),
            arm_route(registry + "/importImage", self.import_image, ["POST"]),
            *self.data_plane.legacy_routes(),
        ]

    def operation_kinds(self) -> dict[str, OperationKind]:
        return {
            "registry.create": OperationKind("registry.create", self._created, self.mark_failed),
            "registry.delete": OperationKind(
                "registry.delete", self.remove_after_teardown, self.mark_failed
            ),
            "registry.import": OperationKind(
                "registry.import", self.importer.run, lambda op, error: None
            ),
        }

    def start(self) -> None:
        """Start the base-image stand-in, and bring back every registry's listener, on its
        port when that is still free."""
        self.base_registry.start()
        for record in self.ctx.store.resources(RTYPE):
            if record["body"]["properties"]["provisioningState"] in ("Succeeded", "Updating"):
                self._listen(record)

    def stop(self) -> None:
        self.hosts.stop_all()

    def teardown(self, record: Record) -> None:
        name = record["body"]["name"]
        self.hosts.stop(name)
        self.packages.delete_registry(name)
        self.images.delete_registry(name)
        for provider in self.ctx.providers:
            hook = getattr(provider, "on_registry_deleted", None)
            if callable(hook):
                hook(name)

    def _listen(self, record: Record) -> None:
        """Start the registry's listener; a port taken meanwhile is replaced by a free one
        and `loginServer` follows it."""
        name = record["body"]["name"]
        port = record.get("private", {}).get("port")
        for _attempt in range(5):
            if not isinstance(port, int) or not port_free(port, reuse_address=True):
                port = free_port()
            try:
                self.hosts.start(name, port, self.data_plane.app_for(name))
            except OSError:
                port = None
                continue
            break
        else:
            log.error("registry %s found no port to listen on", name)
            return
        with self.ctx.store.transaction() as store:
            current = store.resource(record["body"]["id"])
            if current is not None:
                current.setdefault("private", {})["port"] = port
                current["body"]["properties"]["loginServer"] = login_server_for(port)

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
            if existing is not None and not self._failed(existing):
                return self._recreate(existing, body)
            registry_body = (
                self._reprovision(existing, body) if existing is not None
                else self._new_registry(body, rid, name, group_record)
            )
        return self._provision(request, rid, registry_body, 201)

    def _provision(self, request: Request, rid: str, registry_body: dict[str, Any],
                   status: int) -> Response:
        """Start the create operation that ends with the registry Succeeded and listening."""
        op = self.ctx.operations.start(
            request,
            "registry.create",
            namespace=NAMESPACE,
            location=registry_body["location"],
            resource_id=rid,
        )
        return json_response(
            registry_body,
            status,
            self.ctx.operations.headers(op, async_operation=True, location=False),
        )

    @staticmethod
    def _failed(record: Record) -> bool:
        return bool(record["body"]["properties"]["provisioningState"] == "Failed")

    def _reprovision(self, existing: Record, body: dict[str, Any]) -> dict[str, Any]:
        """PUT on a registry whose provisioning failed: provision it again (Creating, a new
        operation), as ARM lets a failed create be retried; keeps its keys and port."""
        current = existing["body"]
        current["sku"] = self._sku(body)
        current["tags"] = string_tags(body)
        self._apply_properties(current, body.get("properties") or {})
        current["properties"]["provisioningState"] = "Creating"
        current.setdefault("systemData", {})["lastModifiedAt"] = _now()
        return dict(current)

    def _new_registry(
        self, body: dict[str, Any], rid: str, name: str, group_record: Record
    ) -> dict[str, Any]:
        store = self.ctx.store
        problem = self._name_problem(name)
        if problem is not None:
            reason, message = problem
            if reason == "Invalid":
                raise ArmError(400, "InvalidRegistryName", message)
            raise ArmError(409, "RegistryNameNotAvailable", message)
        location = location_of(body)
        sku = self._sku(body)
        port = free_port()
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
                "loginServer": login_server_for(port),
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
                "private": {"passwords": [_new_password(), _new_password()], "port": port},
            },
        )
        return registry_body

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
        if record is not None:
            self._listen(record)

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

    async def import_image(self, request: Request) -> Response:
        """`importImage`: 202 + Location, the copy runs as an operation (see registry_import)."""
        body = await read_json(request)
        with self.ctx.store.transaction():
            record = self._record(request)
            self.ctx.require_group(
                self.subscription_matches(request), record["group"], for_write=True
            )
            if record["body"]["properties"]["provisioningState"] not in ("Succeeded", "Updating"):
                raise ArmError(
                    409, "OperationNotAllowed",
                    f"The registry '{record['body']['name']}' is not ready; retry when it is.",
                )
            parsed = parse_import(body)
            rid = record["body"]["id"]
            location = record["body"]["location"]
        op = self.ctx.operations.start(
            request,
            "registry.import",
            namespace=NAMESPACE,
            location=location,
            resource_id=rid,
            final_body=False,
            args=parsed.as_args(),
        )
        return json_response(
            None, 202, self.ctx.operations.headers(op, async_operation=False, location=True)
        )

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
