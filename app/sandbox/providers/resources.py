"""Microsoft.Resources: tenants, subscriptions, locations, resource groups, resources.

As ARM does, `GET /subscriptions` lists only the subscriptions of the token's
tenant (the server puts it in `request.state.tenant_id`), while `GET /tenants`
lists every tenant the signed-in user belongs to, guest tenants included.

Resource groups behave as ARM documents them: PUT creates (201) or updates
(200), HEAD answers 204/404, and DELETE answers 202 with a Location to poll
(202 ... 200) while every resource inside is torn down by its own provider
(processes stopped) and the group shows provisioningState Deleting.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.sandbox.arm import (
    ArmError,
    arm_route,
    empty_response,
    group_id,
    group_not_found,
    json_response,
    location_required,
    read_json,
)
from app.sandbox.directory import Subscription
from app.sandbox.operations import OperationKind, OpRecord
from app.sandbox.providers import Provider

# (name, displayName, geographyGroup, geography, physicalLocation, paired region): the
# regions the sandbox offers, with the metadata `az account list-locations` shows for
# them (a table of every physical region's geographyGroup, geography and location,
# as listed in October 2025; UK regions in their own "UK" group since then).
REGIONS: list[tuple[str, str, str, str, str, str]] = [
    ("eastus", "East US", "US", "United States", "Virginia", "westus"),
    ("eastus2", "East US 2", "US", "United States", "Virginia", "centralus"),
    ("centralus", "Central US", "US", "United States", "Iowa", "eastus2"),
    ("westus", "West US", "US", "United States", "California", "eastus"),
    ("westus2", "West US 2", "US", "United States", "Washington", "westcentralus"),
    ("westus3", "West US 3", "US", "United States", "Phoenix", "eastus"),
    ("canadacentral", "Canada Central", "Canada", "Canada", "Toronto", "canadaeast"),
    ("brazilsouth", "Brazil South", "South America", "Brazil", "Sao Paulo State",
     "southcentralus"),
    ("northeurope", "North Europe", "Europe", "Europe", "Ireland", "westeurope"),
    ("westeurope", "West Europe", "Europe", "Europe", "Netherlands", "northeurope"),
    ("uksouth", "UK South", "UK", "United Kingdom", "London", "ukwest"),
    ("francecentral", "France Central", "Europe", "France", "Paris", "francesouth"),
    ("germanywestcentral", "Germany West Central", "Europe", "Germany", "Frankfurt",
     "germanynorth"),
    ("swedencentral", "Sweden Central", "Europe", "Sweden", "G\u00e4vle", "swedensouth"),
    ("switzerlandnorth", "Switzerland North", "Europe", "Switzerland", "Zurich",
     "switzerlandwest"),
    ("japaneast", "Japan East", "Asia Pacific", "Japan", "Tokyo, Saitama", "japanwest"),
    ("koreacentral", "Korea Central", "Asia Pacific", "Korea", "Seoul", "koreasouth"),
    ("southeastasia", "Southeast Asia", "Asia Pacific", "Asia Pacific", "Singapore",
     "eastasia"),
    ("eastasia", "East Asia", "Asia Pacific", "Asia Pacific", "Hong Kong", "southeastasia"),
    ("australiaeast", "Australia East", "Asia Pacific", "Australia", "New South Wales",
     "australiasoutheast"),
    ("centralindia", "Central India", "Asia Pacific", "India", "Pune", "southindia"),
]

# Logical locations the list also holds (geographies: no resource is created in them).
LOGICAL_LOCATIONS: list[tuple[str, str]] = [
    ("europe", "Europe"), ("uk", "United Kingdom"), ("unitedstates", "United States"),
]

# Resource types (and a few api-versions) that providers list for each namespace.
PROVIDER_TYPES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "Microsoft.Resources": (
        ("resourceGroups", ("2024-11-01", "2024-03-01")),
        ("subscriptions", ("2022-12-01",)),
        ("locations", ("2022-12-01",)),
    ),
    "Microsoft.Cache": (
        ("redis", ("2024-11-01", "2024-03-01", "2023-08-01")),
        ("redisEnterprise", ("2025-04-01", "2024-10-01")),
        ("locations/asyncOperations", ("2024-11-01",)),
        ("checkNameAvailability", ("2024-11-01",)),
    ),
    "Microsoft.Storage": (
        ("storageAccounts", ("2025-06-01", "2024-01-01", "2023-05-01")),
        ("checkNameAvailability", ("2025-06-01",)),
        ("locations/asyncoperations", ("2025-06-01",)),
    ),
    "Microsoft.Web": (
        ("sites", ("2024-11-01", "2024-04-01", "2023-12-01")),
        ("serverfarms", ("2024-11-01", "2024-04-01", "2023-12-01")),
        ("checknameavailability", ("2024-11-01",)),
    ),
    "Microsoft.Authorization": (
        ("roleAssignments", ("2022-04-01",)),
        ("roleDefinitions", ("2022-04-01",)),
    ),
    # Application Insights (components_API.json 2020-02-02; actionGroups 2023-01-01),
    # Log Analytics (Workspaces.json 2023-09-01), smart detector rules (2021-04-01).
    "Microsoft.Insights": (
        ("components", ("2020-02-02", "2015-05-01")),
        ("actionGroups", ("2023-01-01", "2022-06-01")),
    ),
    "Microsoft.OperationalInsights": (
        ("workspaces", ("2023-09-01", "2022-10-01")),
    ),
    "Microsoft.AlertsManagement": (
        ("smartDetectorAlertRules", ("2021-04-01", "2019-06-01")),
    ),
    "Microsoft.ContainerRegistry": (
        ("registries", ("2025-04-01", "2023-07-01")),
        ("checkNameAvailability", ("2025-04-01",)),
    ),
}

_REGION_BY_KEY = {name: name for name, *_ in REGIONS} | {
    display.replace(" ", "").lower(): name for name, display, *_ in REGIONS
}

_GROUP_NAME = re.compile(r"^[-\w._()]{1,90}$")


def normalize_location(value: str) -> str | None:
    """'West Europe' / 'westeurope' -> 'westeurope'; None if the sandbox has no such region."""
    return _REGION_BY_KEY.get(value.replace(" ", "").lower())


def region_names() -> list[str]:
    return [name for name, *_ in REGIONS]


def _no_provider_in(location: str) -> ArmError:
    return ArmError(
        400,
        "NoRegisteredProviderFound",
        f"No registered resource provider found for location '{location}'. The supported "
        f"locations are '{', '.join(region_names())}'.",
    )


def _no_group_in(location: str) -> ArmError:
    return ArmError(
        400,
        "LocationNotAvailableForResourceGroup",
        f"The provided location '{location}' is not available for resource group. "
        f"List of available regions is '{','.join(region_names())}'.",
    )


def location_of(
    body: dict[str, Any], unavailable: Callable[[str], ArmError] = _no_provider_in
) -> str:
    """A create body's `location` as a region name, or ARM's 400 (`unavailable(location)`
    for a region the sandbox lacks: by default what App Service and ACR answer)."""
    location = body.get("location")
    if not isinstance(location, str) or not location:
        raise location_required()
    region = normalize_location(location)
    if region is None:
        raise unavailable(location)
    return region


def string_tags(body: dict[str, Any]) -> dict[str, str]:
    """`tags` of an App Service or ACR PUT: ARM checks them before the RP, as for any
    resource, so ARM's limits and codes apply (ARM's error shape, not the RP's)."""
    return _tags(body)


class ResourcesProvider(Provider):
    namespace = "Microsoft.Resources"

    def routes(self) -> list[BaseRoute]:
        sub = "/subscriptions/{subscriptionId}"
        group = sub + "/resourcegroups/{resourceGroupName}"
        return [
            arm_route("/subscriptions", self.list_subscriptions, ["GET"]),
            arm_route("/tenants", self.list_tenants, ["GET"]),
            arm_route(sub + "/providers", self.list_providers, ["GET"]),
            arm_route(sub + "/providers/{namespace}", self.get_provider, ["GET"]),
            arm_route(sub + "/providers/{namespace}/register", self.get_provider, ["POST"]),
            arm_route(sub, self.get_subscription, ["GET"]),
            arm_route(sub + "/locations", self.list_locations, ["GET"]),
            arm_route(sub + "/resourcegroups", self.list_groups, ["GET"]),
            # HEAD (check existence) is answered by the server from this GET: 204/404.
            arm_route(group, self.get_group, ["GET"]),
            arm_route(group, self.put_group, ["PUT"]),
            arm_route(group, self.patch_group, ["PATCH"]),
            arm_route(group, self.delete_group, ["DELETE"]),
            arm_route(group + "/resources", self.list_group_resources, ["GET"]),
            arm_route(sub + "/resources", self.list_all_resources, ["GET"]),
        ]

    def operation_kinds(self) -> dict[str, OperationKind]:
        return {
            "group.delete": OperationKind("group.delete", self._delete_group_work, self._failed)
        }

    # subscriptions

    def _subscription(self, found: Subscription) -> dict[str, Any]:
        sub = found.subscription_id
        return {
            "id": f"/subscriptions/{sub}",
            "authorizationSource": "RoleBased",
            "managedByTenants": [],
            "subscriptionId": sub,
            "tenantId": found.tenant_id,
            "displayName": found.display_name,
            "state": "Enabled",
            "subscriptionPolicies": {
                "locationPlacementId": "Public_2014-09-01",
                "quotaId": self.ctx.offer.quota_id,
                "spendingLimit": self.ctx.offer.spending_limit,
            },
        }

    async def list_subscriptions(self, request: Request) -> Response:
        tenant_id = getattr(request.state, "tenant_id", self.ctx.store.tenant_id)
        subs = [s for s in self.ctx.directory.subscriptions() if s.tenant_id == tenant_id]
        return json_response({"value": [self._subscription(s) for s in subs]})

    async def get_subscription(self, request: Request) -> Response:
        found = self.ctx.directory.subscription(self.subscription_matches(request))
        assert found is not None
        return json_response(self._subscription(found))

    async def list_locations(self, request: Request) -> Response:
        # The shape of azure-rest-api-specs' GetLocations.json (2022-12-01); the
        # availability-zone mappings are left out (the sandbox does not place zones).
        sub = self.subscription_matches(request)
        value: list[dict[str, Any]] = [
            {
                "id": f"/subscriptions/{sub}/locations/{name}",
                "name": name,
                "type": "Region",
                "displayName": display,
                "regionalDisplayName": f"({group}) {display}",
                "metadata": {
                    "regionType": "Physical",
                    "regionCategory": "Recommended",
                    "geography": geography,
                    "geographyGroup": group,
                    "physicalLocation": place,
                    "pairedRegion": [
                        {"name": pair, "id": f"/subscriptions/{sub}/locations/{pair}"}
                    ],
                },
            }
            for name, display, group, geography, place, pair in REGIONS
        ]
        value += [
            {
                "id": f"/subscriptions/{sub}/locations/{name}",
                "name": name,
                "type": "Region",
                "displayName": display,
                "regionalDisplayName": display,
                "metadata": {"regionType": "Logical", "regionCategory": "Other"},
            }
            for name, display in LOGICAL_LOCATIONS
        ]
        return json_response({"value": value})

    async def list_tenants(self, request: Request) -> Response:
        # tenantCategory is "Home" for every directory the user signs in to, guest ones
        # included; ProjectedBy/ManagedBy are Azure Lighthouse delegations.
        return json_response(
            {
                "value": [
                    {
                        "id": f"/tenants/{tenant.tenant_id}",
                        "tenantId": tenant.tenant_id,
                        "tenantCategory": "Home",
                        "displayName": tenant.display_name,
                        "defaultDomain": tenant.default_domain,
                        "domains": [tenant.default_domain],
                        "tenantType": "AAD",
                    }
                    for tenant in self.ctx.directory.tenants
                ]
            }
        )

    # resource providers: every namespace the sandbox serves is registered

    def _provider_body(self, sub: str, namespace: str) -> dict[str, Any]:
        types = PROVIDER_TYPES.get(namespace, ())
        displays = [display for _, display, *_ in REGIONS]
        return {
            "id": f"/subscriptions/{sub}/providers/{namespace}",
            "namespace": namespace,
            "registrationState": "Registered",
            "registrationPolicy": "RegistrationRequired",
            "resourceTypes": [
                {"resourceType": rtype, "locations": displays, "apiVersions": list(versions)}
                for rtype, versions in types
            ],
        }

    def _served_namespaces(self) -> list[str]:
        names = {p.namespace for p in self.ctx.providers if p.namespace}
        return sorted(names)

    async def list_providers(self, request: Request) -> Response:
        sub = self.subscription_matches(request)
        return json_response(
            {"value": [self._provider_body(sub, n) for n in self._served_namespaces()]}
        )

    async def get_provider(self, request: Request) -> Response:
        sub = self.subscription_matches(request)
        wanted = request.path_params["namespace"].lower()
        for namespace in self._served_namespaces():
            if namespace.lower() == wanted:
                return json_response(self._provider_body(sub, namespace))
        raise ArmError(
            404,
            "InvalidResourceNamespace",
            f"The resource namespace '{request.path_params['namespace']}' is invalid.",
        )

    # resource groups

    async def list_groups(self, request: Request) -> Response:
        sub = self.subscription_matches(request)
        bodies = sorted((g["body"] for g in self.ctx.store.groups(sub)), key=lambda b: b["name"])
        return json_response({"value": bodies})

    async def get_group(self, request: Request) -> Response:
        name = request.path_params["resourceGroupName"]
        record = self.ctx.store.group(self.subscription_matches(request), name)
        if record is None:
            raise group_not_found(name)
        return json_response(record["body"])

    async def put_group(self, request: Request) -> Response:
        sub = self.subscription_matches(request)
        name = request.path_params["resourceGroupName"]
        body = await read_json(request)
        if not _GROUP_NAME.match(name) or name.endswith("."):
            raise ArmError(
                400,
                "InvalidResourceGroupName",
                f"Resource group name '{name}' is invalid. It can contain only letters, digits, "
                "underscores, hyphens, periods (not at the end) and parentheses, up to 90 "
                "characters.",
            )
        region = location_of(body, _no_group_in)
        tags = _tags(body)
        with self.ctx.store.transaction() as store:
            existing = store.group(sub, name)
            if existing is not None:
                current = existing["body"]
                if current["properties"]["provisioningState"] == "Deleting":
                    raise ArmError(
                        409,
                        "ResourceGroupBeingDeleted",
                        f"The resource group '{current['name']}' is in deprovisioning state and "
                        "cannot perform this operation.",
                    )
                if current["location"] != region:
                    raise ArmError(
                        409,
                        "InvalidResourceGroupLocation",
                        f"Invalid resource group location '{body['location']}'. The Resource group "
                        f"already exists in location '{current['location']}'.",
                    )
                current["tags"] = tags
                if "managedBy" in body:
                    current["managedBy"] = body["managedBy"]
                return json_response(current, 200)
            group_body: dict[str, Any] = {
                "id": group_id(sub, name),
                "name": name,
                "type": "Microsoft.Resources/resourceGroups",
                "location": region,
                "tags": tags,
                "properties": {"provisioningState": "Succeeded"},
            }
            if body.get("managedBy"):
                group_body["managedBy"] = body["managedBy"]
            store.put_group(sub, name, {"body": group_body})
        return json_response(group_body, 201)

    async def patch_group(self, request: Request) -> Response:
        sub = self.subscription_matches(request)
        name = request.path_params["resourceGroupName"]
        body = await read_json(request)
        with self.ctx.store.transaction():
            record = self.ctx.require_group(sub, name, for_write=True)
            if "tags" in body:
                record["body"]["tags"] = _tags(body)
            if "managedBy" in body:
                record["body"]["managedBy"] = body["managedBy"]
            return json_response(record["body"])

    async def delete_group(self, request: Request) -> Response:
        sub = self.subscription_matches(request)
        name = request.path_params["resourceGroupName"]
        with self.ctx.store.transaction():
            record = self.ctx.require_group(sub, name)
            record["body"]["properties"]["provisioningState"] = "Deleting"
        op = self.delete_operation(
            request, record, "group.delete", location=record["body"]["location"],
            args={"group": name, "subscription": sub},
        )
        return empty_response(
            202, self.ctx.operations.headers(op, async_operation=False, location=True)
        )

    def _delete_group_work(self, op: OpRecord) -> None:
        group = op["args"]["group"]
        sub = self._operation_subscription(op)
        for record in self.ctx.store.resources(group=group, subscription=sub):
            self.ctx.teardown(record)
            with self.ctx.store.transaction() as store:
                store.remove_resource(record["body"]["id"])
        with self.ctx.store.transaction() as store:
            store.remove_group(sub, group)

    def _operation_subscription(self, op: OpRecord) -> str:
        # Deletes recorded by an older sandbox carry no subscription: the home one.
        return str(op["args"].get("subscription") or self.ctx.subscription_id)

    def _failed(self, op: OpRecord, error: ArmError) -> None:
        with self.ctx.store.transaction() as store:
            record = store.group(self._operation_subscription(op), op["args"]["group"])
            if record is not None:
                record["body"]["properties"]["provisioningState"] = "Failed"

    # resources

    async def list_group_resources(self, request: Request) -> Response:
        sub = self.subscription_matches(request)
        name = request.path_params["resourceGroupName"]
        self.ctx.require_group(sub, name)
        records = self.ctx.store.resources(group=name, subscription=sub)
        return json_response({"value": _generic(records)})

    async def list_all_resources(self, request: Request) -> Response:
        sub = self.subscription_matches(request)
        return json_response({"value": _generic(self.ctx.store.resources(subscription=sub))})


def _generic(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The generic resource shape ARM lists: no provider-specific properties."""
    out = []
    for record in records:
        body = record["body"]
        item = {k: body[k] for k in ("id", "name", "type", "location") if k in body}
        item["tags"] = body.get("tags") or {}
        for key in ("kind", "sku", "identity", "managedBy"):
            if body.get(key):
                item[key] = body[key]
        out.append(item)
    return sorted(out, key=lambda item: item["id"].lower())


# ARM's tag limits, checked by ARM itself before any resource provider sees a PUT.
MAX_TAGS = 50
MAX_TAG_NAME = 512
MAX_TAG_VALUE = 256
_RESERVED_TAG_CHARACTERS = "<>%&\\?/"


def _tags(body: dict[str, Any]) -> dict[str, str]:
    """`tags` as ARM checks them, with ARM's codes and words (Fidelity table): names
    map to strings, at most 50 tags, names non-blank, at most 512 characters and free
    of `<>%&\\?/` and control characters, values at most 256 characters."""
    tags = body.get("tags") or {}
    if not isinstance(tags, dict):
        raise ArmError(400, "InvalidRequestContent", "The 'tags' property must be an object.")
    if len(tags) > MAX_TAGS:
        raise ArmError(
            400, "InvalidTags",
            f"Too many tags specified. Requested tag count - '{len(tags)}'. Maximum number of "
            f"tags allowed - '{MAX_TAGS}'.",
        )
    for key, value in tags.items():
        if not isinstance(value, str):
            raise ArmError(
                400, "InvalidRequestContent", f"The value of tag '{key}' must be a string."
            )
        if not key.strip():
            raise ArmError(
                400, "InvalidTagName",
                "The tag name must be non-null, non-empty and non-whitespace only. Please "
                "provide an actual value.",
            )
    reserved = [k for k in tags if any(c in _RESERVED_TAG_CHARACTERS or ord(c) < 32 for c in k)]
    if reserved:
        raise ArmError(
            400, "InvalidTagNameCharacters",
            f"The tag names '{', '.join(reserved)}' have reserved characters "
            "'<,>,%,&,\\,?,/' or control characters.",
        )
    long_names = [k for k in tags if len(k) > MAX_TAG_NAME]
    if long_names:
        raise ArmError(
            400, "InvalidTagName",
            f"Tag key too large. Following tag name '{', '.join(long_names)}' exceeded the "
            f"maximum length. Maximum allowed length for tag name - '{MAX_TAG_NAME}' characters.",
        )
    long_values = [v for v in tags.values() if len(v) > MAX_TAG_VALUE]
    if long_values:
        raise ArmError(
            400, "InvalidTagValueLength",
            f"Tag value too large. Following tag value '{', '.join(long_values)}' exceeded the "
            f"maximum length. Maximum allowed length for tag value - '{MAX_TAG_VALUE}' "
            "characters.",
        )
    return dict(tags)


tags_of = _tags
