"""Microsoft.Storage/storageAccounts: the control plane the Functions runtime needs.

Create answers the way the Storage RP does: 202 with an empty body and a
`Location: .../providers/Microsoft.Storage/locations/{loc}/asyncoperations/{id}?monitor=true`
that answers 202 while provisioning and then 200 with the account. Names are
global (3-24 lower-case letters and digits); checkNameAvailability answers
`nameAvailable` / `reason` (AccountNameInvalid, AlreadyExists) / `message`.
There is no blob/queue data plane behind the account: the endpoints it lists
are Azure's names and nothing in the sandbox dials them.
"""

from __future__ import annotations

import re
from typing import Any

from azure.mgmt.storage import models as storage_models
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.sandbox.arm import (
    ArmError,
    arm_route,
    empty_response,
    json_response,
    location_not_available,
    location_required,
    read_json,
)
from app.sandbox.operations import OperationKind, OpRecord, utc_now
from app.sandbox.providers import Provider, new_access_key
from app.sandbox.providers.resources import normalize_location, tags_of
from app.sandbox.store import Record

RTYPE = "Microsoft.Storage/storageAccounts"

_NAME = re.compile(r"^[a-z0-9]{3,24}$")
SKUS = {
    "Standard_LRS",
    "Standard_GRS",
    "Standard_RAGRS",
    "Standard_ZRS",
    "Premium_LRS",
    "Premium_ZRS",
    "Standard_GZRS",
    "Standard_RAGZRS",
}
KINDS = {"Storage", "StorageV2", "BlobStorage", "FileStorage", "BlockBlobStorage"}


def name_problem(name: str) -> str | None:
    if not _NAME.match(name):
        return (
            f"{name} is not a valid storage account name. Storage account name must be between "
            "3 and 24 characters in length and use numbers and lower-case letters only."
        )
    return None


class StorageProvider(Provider):
    namespace = "Microsoft.Storage"

    def routes(self) -> list[BaseRoute]:
        one, crud = self.resource_routes(
            RTYPE,
            "accountName",
            put=self.put,
            patch=self.patch,
            delete=self.delete,
        )
        return [
            arm_route(
                "/subscriptions/{subscriptionId}/providers/Microsoft.Storage/checkNameAvailability",
                self.check_name,
                ["POST"],
            ),
            *crud,
            arm_route(one + "/listKeys", self.list_keys, ["POST"]),
            arm_route(one + "/regenerateKey", self.regenerate_key, ["POST"]),
        ]

    def operation_kinds(self) -> dict[str, OperationKind]:
        return {
            "storage.create": OperationKind("storage.create", self._create_work, self.mark_failed)
        }

    def _lookup(self, request: Request) -> tuple[str, Record]:
        return self.lookup(request, RTYPE, "accountName")

    async def check_name(self, request: Request) -> Response:
        body = await read_json(request)
        try:
            params = storage_models.StorageAccountCheckNameAvailabilityParameters(body)
            name, rtype = params.name, params.type
        except Exception as exc:
            raise ArmError(
                400, "InvalidRequestContent", f"The request was invalid: {exc}"
            ) from None
        if not isinstance(name, str) or str(rtype).lower() != RTYPE.lower():
            raise ArmError(
                400,
                "InvalidRequestContent",
                f"'name' is required and 'type' must be '{RTYPE}'.",
            )
        problem = name_problem(name)
        if problem:
            answer = {"nameAvailable": False, "reason": "AccountNameInvalid", "message": problem}
        elif self.ctx.store.find_by_name(RTYPE, name) is not None:
            answer = {
                "nameAvailable": False,
                "reason": "AlreadyExists",
                "message": f"The storage account named {name} is already taken.",
            }
        else:
            answer = {"nameAvailable": True}
        return json_response(answer)

    def _parse(self, body: dict[str, Any], create: bool) -> dict[str, Any]:
        """Validated settable fields of a create (or PATCH) body."""
        try:
            model: Any = (
                storage_models.StorageAccountCreateParameters(body)
                if create
                else storage_models.StorageAccountUpdateParameters(body)
            )
            sku = model.sku.name if model.sku else None
            kind = model.kind
            props = model.properties
            fields = {
                "location": getattr(model, "location", None),
                "sku": sku,
                "kind": kind,
                "tls": props.minimum_tls_version if props else None,
                "https_only": props.enable_https_traffic_only if props else None,
                "public_blob": props.allow_blob_public_access if props else None,
                "access_tier": props.access_tier if props else None,
                "shared_key": props.allow_shared_key_access if props else None,
            }
        except Exception as exc:
            raise ArmError(
                400, "InvalidRequestContent", f"The request content was invalid: {exc}"
            ) from None
        if create:
            if not fields["location"]:
                raise location_required()
            if not fields["sku"]:
                raise ArmError(400, "InvalidRequestContent", "The 'sku' property is required.")
            if not fields["kind"]:
                raise ArmError(400, "InvalidRequestContent", "The 'kind' property is required.")
        if fields["sku"] is not None and fields["sku"] not in SKUS:
            raise ArmError(
                400,
                "InvalidRequestPropertyValue",
                f"The value '{fields['sku']}' is not valid for property 'sku.name'.",
            )
        if fields["kind"] is not None and fields["kind"] not in KINDS:
            raise ArmError(
                400,
                "InvalidRequestPropertyValue",
                f"The value '{fields['kind']}' is not valid for property 'kind'.",
            )
        if fields["tls"] is not None and fields["tls"] not in (
            "TLS1_0",
            "TLS1_1",
            "TLS1_2",
            "TLS1_3",
        ):
            raise ArmError(
                400,
                "InvalidRequestPropertyValue",
                f"The value '{fields['tls']}' is not valid for property 'minimumTlsVersion'.",
            )
        return fields

    async def put(self, request: Request) -> Response:
        name = request.path_params["accountName"]
        body = await read_json(request)
        group_record, rid = self.write_target(request, RTYPE, "accountName")
        fields = self._parse(body, create=True)
        existing = self.ctx.store.resource(rid)
        if existing is not None:
            with self.ctx.store.transaction():
                self._apply(existing, fields, body)
                failed = existing["body"]["properties"]["provisioningState"] == "Failed"
                if failed:
                    existing["body"]["properties"]["provisioningState"] = "Creating"
            if failed:
                # A PUT on an account whose provisioning failed provisions it again.
                return self._accepted(request, existing)
            return json_response(existing["body"], 200)
        problem = name_problem(name)
        if problem:
            raise ArmError(400, "AccountNameInvalid", problem)
        location = normalize_location(fields["location"])
        if location is None:
            raise location_not_available(fields["location"], RTYPE)
        now = utc_now()
        tier = fields["sku"].split("_", 1)[0]
        endpoints = {
            service: f"https://{name}.{service}.core.windows.net/"
            for service in ("blob", "queue", "table", "file", "dfs")
        }
        endpoints["web"] = f"https://{name}.z6.web.core.windows.net/"
        account: dict[str, Any] = {
            "id": rid,
            "name": name,
            "type": RTYPE,
            "location": location,
            "tags": tags_of(body),
            "sku": {"name": fields["sku"], "tier": tier},
            "kind": fields["kind"],
            "properties": {
                "provisioningState": "Creating",
                "creationTime": now,
                "keyCreationTime": {"key1": now, "key2": now},
                "primaryEndpoints": endpoints,
                "primaryLocation": location,
                "statusOfPrimary": "available",
                "supportsHttpsTrafficOnly": True,
                "minimumTlsVersion": "TLS1_2",
                "allowBlobPublicAccess": False,
                "allowSharedKeyAccess": True,
                "encryption": {
                    "keySource": "Microsoft.Storage",
                    "services": {
                        "blob": {"enabled": True, "keyType": "Account", "lastEnabledTime": now},
                        "file": {"enabled": True, "keyType": "Account", "lastEnabledTime": now},
                    },
                },
                "networkAcls": {
                    "bypass": "AzureServices",
                    "virtualNetworkRules": [],
                    "ipRules": [],
                    "defaultAction": "Allow",
                },
            },
        }
        if fields["kind"] in ("StorageV2", "BlobStorage"):
            account["properties"]["accessTier"] = "Hot"
        record: Record = {
            "body": account,
            "private": {"key1": new_access_key(64), "key2": new_access_key(64)},
            "group": group_record["body"]["name"],
        }
        self._apply(record, fields, body)
        self.put_new(
            rid,
            record,
            ArmError(
                409,
                "StorageAccountAlreadyTaken",
                f"The storage account named {name} is already taken.",
            ),
        )
        return self._accepted(request, record)

    def _accepted(self, request: Request, record: Record) -> Response:
        """Start the create operation and answer 202 the way the Storage RP does."""
        op = self.ctx.operations.start(
            request,
            "storage.create",
            namespace=self.namespace,
            location=record["body"]["location"],
            resource_id=record["body"]["id"],
        )
        # The Storage RP's Location is its asyncoperations URL with monitor=true.
        headers = self.ctx.operations.headers(op, async_operation=False, location=False)
        headers["Location"] = self.ctx.operations.async_operation_url(op) + "&monitor=true"
        return empty_response(202, headers)

    def _apply(self, record: Record, fields: dict[str, Any], body: dict[str, Any]) -> None:
        """Change a record in place; callers hold the store's transaction."""
        account = record["body"]
        props = account["properties"]
        if fields["sku"]:
            account["sku"] = {"name": fields["sku"], "tier": fields["sku"].split("_", 1)[0]}
        if fields["tls"]:
            props["minimumTlsVersion"] = fields["tls"]
        if fields["https_only"] is not None:
            props["supportsHttpsTrafficOnly"] = bool(fields["https_only"])
        if fields["public_blob"] is not None:
            props["allowBlobPublicAccess"] = bool(fields["public_blob"])
        if fields["shared_key"] is not None:
            props["allowSharedKeyAccess"] = bool(fields["shared_key"])
        if fields["access_tier"]:
            props["accessTier"] = fields["access_tier"]
        if "tags" in body:
            account["tags"] = tags_of(body)

    async def patch(self, request: Request) -> Response:
        _, record = self._lookup(request)
        body = await read_json(request)
        fields = self._parse(body, create=False)
        with self.ctx.store.transaction():
            self._apply(record, fields, body)
        return json_response(record["body"])

    async def delete(self, request: Request) -> Response:
        rid, _ = self.locate(request, RTYPE, "accountName")
        with self.ctx.store.transaction() as store:
            if store.resource(rid) is None:
                return empty_response(204)
            store.remove_resource(rid)
        return empty_response(200)

    def _keys(self, record: Record) -> dict[str, Any]:
        created = record["body"]["properties"]["keyCreationTime"]
        return {
            "keys": [
                {
                    "keyName": name,
                    "value": record["private"][name],
                    "permissions": "FULL",
                    "creationTime": created[name],
                }
                for name in ("key1", "key2")
            ]
        }

    async def list_keys(self, request: Request) -> Response:
        _, record = self._lookup(request)
        return json_response(self._keys(record))

    async def regenerate_key(self, request: Request) -> Response:
        _, record = self._lookup(request)
        body = await read_json(request)
        key_name = body.get("keyName")
        if key_name not in ("key1", "key2"):
            raise ArmError(
                400,
                "InvalidRequestPropertyValue",
                f"The value '{key_name}' is not valid for property 'keyName'; use key1 or key2.",
            )
        with self.ctx.store.transaction():
            record["private"][key_name] = new_access_key(64)
            record["body"]["properties"]["keyCreationTime"][key_name] = utc_now()
        return json_response(self._keys(record))

    def _create_work(self, op: OpRecord) -> None:
        record = self.ctx.store.resource(op["resourceId"])
        if record is None:
            raise ArmError(404, "ResourceNotFound", "The account was deleted while being created.")
        with self.ctx.store.transaction():
            record["body"]["properties"]["provisioningState"] = "Succeeded"
