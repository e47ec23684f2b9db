"""The storage account the Functions runtime keeps its state in (Microsoft.Storage)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from app.errors import BadInput
from app.services.arm import (
    adoptable,
    enum_text,
    get_or_none,
    require_not_failed,
    settle_existing,
    succeeded,
    wait_lro,
)
from app.services.context import DeployContext
from app.services.meters import (
    STORAGE_ALLOWANCE_GB,
    STORAGE_PRODUCT,
    STORAGE_SERVICE,
    PriceQuery,
)
from app.services.resources.base import (
    ArmWiring,
    AzCliPart,
    NameAnswer,
    ResourceStatus,
    ResourceStep,
    Shell,
    keyless,
    probe,
    yours,
)
from app.services.runner import StepReport
from app.spec import DeploymentSpec

if TYPE_CHECKING:
    from app.services.clients import ClientFactory

STORAGE_API = "2023-05-01"
ARM_ID = "resourceId('Microsoft.Storage/storageAccounts', parameters('storageAccountName'))"


# The identity-based form of AzureWebJobsStorage (Microsoft Learn, "Connecting to host
# storage with an identity"): the account's name, which is not a secret.
STORAGE_ACCOUNT_SETTING = "AzureWebJobsStorage__accountName"


def arm_storage_connection() -> str:
    """The account's connection string as a template expression (key read at deploy time)."""
    return (
        "[format('DefaultEndpointsProtocol=https;AccountName={0};AccountKey={1};"
        "EndpointSuffix={2}', parameters('storageAccountName'), "
        f"listKeys({ARM_ID}, '{STORAGE_API}').keys[0].value, "
        "environment().suffixes.storage)]"
    )


def storage_connection(ctx: DeployContext) -> str:
    """The storage account's connection string (key read from ARM, kept as a secret)."""
    if "storage_connection" in ctx.secrets:
        return ctx.secrets["storage_connection"]
    account = ctx.output("storage", "name")
    keys = ctx.clients.storage().storage_accounts.list_keys(ctx.group, account)
    # The model is a mapping, so its `keys` list is `keys_property` (keys() is the method).
    values = [k.value for k in (keys.keys_property or []) if k.value]
    storage_key = ctx.secret("storage_key", values[0] if values else None)
    blob = ctx.output("storage", "blob_endpoint")
    match = re.match(r"https://[^.]+\.blob\.([^/]+)", blob)
    suffix = match.group(1) if match else "core.windows.net"
    connection = (
        f"DefaultEndpointsProtocol=https;AccountName={account};"
        f"AccountKey={storage_key};EndpointSuffix={suffix}"
    )
    return ctx.secret("storage_connection", connection)


class StorageAccountStep(ResourceStep):
    name = "storage"
    arm_type = "Microsoft.Storage/storageAccounts"
    label = "storage account"
    icon = "storage"
    name_kind = "storage_account"
    depends_on = ("resource-group",)
    nominal_s = 4.0

    def __init__(self, spec: DeploymentSpec) -> None:
        super().__init__(spec)
        self.title = f"storage account {spec.function_app.storage_account}"

    def resource_name(self) -> str:
        return self.spec.function_app.storage_account

    @classmethod
    def check_name(cls, clients: ClientFactory, name: str, group: str) -> NameAnswer:
        from azure.mgmt.storage import models

        accounts = clients.storage().storage_accounts
        if group and get_or_none(accounts.get_properties, group, name) is not None:
            return yours("storage account", group)
        answer = accounts.check_name_availability(
            models.StorageAccountCheckNameAvailabilityParameters(name=name)
        )
        if answer.name_available:
            return NameAnswer("available", f"The name {name} is available")
        return NameAnswer("taken", answer.message or f"The name {name} is taken")

    def probe(self, clients: ClientFactory) -> list[ResourceStatus]:
        group, name = self.spec.resource_group.name, self.spec.function_app.storage_account
        accounts = clients.storage().storage_accounts
        return [probe("storage account", name, lambda: accounts.get_properties(group, name),
                      lambda a: enum_text(a.kind), self.name)]

    def arm_id(self) -> str:
        return f"[{ARM_ID}]"

    def arm_parameters(self) -> dict[str, dict[str, Any]]:
        return {"storageAccountName": {"type": "string",
                                       "defaultValue": self.spec.function_app.storage_account}}

    def arm_settings(self) -> list[dict[str, str]]:
        if keyless(self.spec):
            return [{"name": STORAGE_ACCOUNT_SETTING,
                     "value": "[parameters('storageAccountName')]"}]
        return [{"name": "AzureWebJobsStorage", "value": arm_storage_connection()}]

    def arm_resources(self, wiring: ArmWiring) -> list[dict[str, Any]]:
        return [{
            "type": self.arm_type,
            "apiVersion": STORAGE_API,
            "name": "[parameters('storageAccountName')]",
            "location": "[parameters('location')]",
            "tags": "[parameters('tags')]",
            "sku": {"name": "Standard_LRS"},
            "kind": "StorageV2",
            "properties": {
                "minimumTlsVersion": "TLS1_2",
                "allowBlobPublicAccess": False,
                "supportsHttpsTrafficOnly": True,
            },
        }]

    def azcli(self, sh: Shell) -> AzCliPart:
        name = sh.q(self.spec.function_app.storage_account)
        lines = [
            f"az storage account create --resource-group {sh.rg} --name {name} "
            f"--location {sh.location} --sku Standard_LRS --kind StorageV2 "
            f"--min-tls-version TLS1_2 --allow-blob-public-access false --tags {sh.tags}",
        ]
        if self.spec.cache.persistence and self.spec.cache.kind == "azure-cache-for-redis":
            # Premium persistence writes to this account: the cache reads its connection.
            lines.append(
                f"storage_connection=$(az storage account show-connection-string "
                f"--resource-group {sh.rg} --name {name} --query connectionString -o tsv)"
            )
        return AzCliPart(create=lines)

    def price_queries(self) -> list[PriceQuery]:
        return [PriceQuery(
            resource=f"Storage account {self.spec.function_app.storage_account}",
            sku="Standard_LRS (StorageV2, Hot)", service_name=STORAGE_SERVICE,
            product_name=STORAGE_PRODUCT, sku_name="Hot LRS", meter_name="Hot LRS Data Stored",
            unit_of_measure="1 GB/Month", units=STORAGE_ALLOWANCE_GB, unit_label="GB",
            note=f"allowance of {STORAGE_ALLOWANCE_GB:g} GB stored; transactions not counted",
        )]

    def _outputs(self, account: Any) -> dict[str, str]:
        blob = getattr(getattr(account, "primary_endpoints", None), "blob", None) or ""
        return {"name": account.name, "id": account.id or "", "blob_endpoint": blob}

    def find_existing(self, ctx: DeployContext) -> dict[str, str] | None:
        account = get_or_none(
            ctx.clients.storage().storage_accounts.get_properties,
            ctx.group,
            ctx.spec.function_app.storage_account,
        )
        if account is None:
            return None
        kind = enum_text(account.kind)
        if kind not in ("StorageV2", "Storage"):
            raise BadInput(
                f"storage account {account.name} exists as kind {kind}; the Functions runtime "
                "needs a general-purpose account (StorageV2)",
                "Choose another function_app.storage_account name.",
            )
        if not adoptable(account, f"storage account {account.name}"):
            return None
        return self._outputs(account)

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        from azure.mgmt.storage import models

        client = ctx.clients.storage()
        name = ctx.spec.function_app.storage_account
        existing = settle_existing(
            lambda: get_or_none(client.storage_accounts.get_properties, ctx.group, name),
            report, ctx.target.polling_interval, f"storage account {name}")
        if existing is not None and succeeded(existing):
            return self._outputs(existing)
        if existing is None:
            self.require_name_free(
                ctx, name, "Storage account names are global across Azure: choose another "
                "function_app.storage_account.",
            )
        parameters = models.StorageAccountCreateParameters(
            sku=models.Sku(name="Standard_LRS"),
            kind="StorageV2",
            location=ctx.spec.location,
            tags=ctx.tags,
            properties=models.StorageAccountPropertiesCreateParameters(
                minimum_tls_version="TLS1_2",
                allow_blob_public_access=False,
                enable_https_traffic_only=True,
            ),
        )
        poller = client.storage_accounts.begin_create(ctx.group, name, parameters)
        account = require_not_failed(wait_lro(poller, report), f"storage account {name}")
        if account is None or not getattr(account, "primary_endpoints", None):
            account = client.storage_accounts.get_properties(ctx.group, name)
        return self._outputs(account)
