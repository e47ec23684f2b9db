"""The plan as something Azure tools run: an ARM template, or an az CLI script.

Neither holds a secret: the template reads keys with `listKeys()` at deployment
time and the script reads them into shell variables with `az ... list-keys`, so
the files can be committed and reviewed. A model folder cannot be built by a
template; the script builds it with `az acr build` and the template expects the
image to exist.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from app.rules import CREATED_BY_TAG, CREATED_BY_VALUE
from app.services.managed_redis import KIND as MANAGED_KIND
from app.services.managed_redis import arm_cache_parts, azcli_cache_lines
from app.services.steps import DEFAULT_TTL_SECONDS, classic_sku, image_reference, plan_tier
from app.spec import DeploymentSpec

API = {
    "redis": "2024-11-01",
    "storage": "2023-05-01",
    "web": "2024-04-01",
    "registry": "2023-07-01",
}
FORMATS = ("arm", "azcli")


def _tags(spec: DeploymentSpec) -> dict[str, str]:
    return {**spec.tags, CREATED_BY_TAG: CREATED_BY_VALUE}


def arm_template(spec: DeploymentSpec) -> dict[str, Any]:
    """A resource-group template (`az deployment group create`) for the whole plan."""
    cache = spec.cache
    app = spec.function_app
    image = image_reference(spec)
    sku_name, family, capacity = classic_sku(cache.tier, cache.size)
    cache_id = "[resourceId('Microsoft.Cache/redis', parameters('cacheName'))]"
    storage_id = (
        "[resourceId('Microsoft.Storage/storageAccounts', parameters('storageAccountName'))]"
    )
    plan_id = "[resourceId('Microsoft.Web/serverfarms', parameters('planName'))]"
    registry_id = (
        "[resourceId(parameters('registryResourceGroup'), "
        "'Microsoft.ContainerRegistry/registries', parameters('registryName'))]"
    )
    cache_properties: dict[str, Any] = {
        "sku": {"name": sku_name, "family": family, "capacity": capacity},
        "enableNonSslPort": cache.non_tls_port,
        "minimumTlsVersion": cache.minimum_tls_version,
        "publicNetworkAccess": "Enabled" if cache.public_network_access else "Disabled",
    }
    if cache.redis_version:
        cache_properties["redisVersion"] = cache.redis_version
    if cache.shards:
        cache_properties["shardCount"] = cache.shards
    # Premium persistence is written to a storage account Azure gets a connection
    # string for: the function's account, its key read at deployment time.
    persistence_connection = (
        "[format('DefaultEndpointsProtocol=https;AccountName={0};AccountKey={1};"
        "EndpointSuffix={2}', parameters('storageAccountName'), "
        f"listKeys({storage_id[1:-1]}, '{API['storage']}').keys[0].value, "
        "environment().suffixes.storage)]"
    )
    if cache.persistence == "rdb":
        cache_properties["redisConfiguration"] = {
            "rdb-backup-enabled": "true",
            "rdb-backup-frequency": "60",
            "rdb-storage-connection-string": persistence_connection,
        }
    elif cache.persistence == "aof":
        cache_properties["redisConfiguration"] = {
            "aof-backup-enabled": "true",
            "aof-storage-connection-string-0": persistence_connection,
        }
    redis: dict[str, Any] = {
        "type": "Microsoft.Cache/redis",
        "apiVersion": API["redis"],
        "name": "[parameters('cacheName')]",
        "location": "[parameters('location')]",
        "tags": "[parameters('tags')]",
        "properties": cache_properties,
    }
    if cache.zones:
        redis["zones"] = list(cache.zones)
    if cache.persistence:
        redis["dependsOn"] = [storage_id]
    storage = {
        "type": "Microsoft.Storage/storageAccounts",
        "apiVersion": API["storage"],
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
    }
    plan = {
        "type": "Microsoft.Web/serverfarms",
        "apiVersion": API["web"],
        "name": "[parameters('planName')]",
        "location": "[parameters('location')]",
        "tags": "[parameters('tags')]",
        "kind": "linux",
        "sku": {"name": app.plan_sku, "tier": plan_tier(app.plan_sku)},
        "properties": {"reserved": True},
    }
    storage_connection = (
        "[format('DefaultEndpointsProtocol=https;AccountName={0};AccountKey={1};"
        "EndpointSuffix={2}', parameters('storageAccountName'), "
        f"listKeys({storage_id[1:-1]}, '{API['storage']}').keys[0].value, "
        "environment().suffixes.storage)]"
    )
    cache_settings = [
        {"name": "REDIS_HOST", "value": f"[reference({cache_id[1:-1]}).hostName]"},
        {"name": "REDIS_PORT", "value": f"[string(reference({cache_id[1:-1]}).sslPort)]"},
        {"name": "REDIS_KEY",
         "value": f"[listKeys({cache_id[1:-1]}, '{API['redis']}').primaryKey]"},
    ]
    cache_resources: list[dict[str, Any]] = [redis]
    if cache.kind == MANAGED_KIND:
        cache_resources, cache_settings, cache_id = arm_cache_parts(spec)
    settings = [
        {"name": "FUNCTIONS_EXTENSION_VERSION", "value": "~4"},
        {"name": "FUNCTIONS_WORKER_RUNTIME", "value": "python"},
        {"name": "AzureWebJobsStorage", "value": storage_connection},
        {"name": "WEBSITES_ENABLE_APP_SERVICE_STORAGE", "value": "false"},
        {"name": "DOCKER_REGISTRY_SERVER_URL",
         "value": "[format('https://{0}', reference(" + registry_id[1:-1] + ", '"
                  + API["registry"] + "').loginServer)]"},
        {"name": "DOCKER_REGISTRY_SERVER_USERNAME",
         "value": f"[listCredentials({registry_id[1:-1]}, '{API['registry']}').username]"},
        {"name": "DOCKER_REGISTRY_SERVER_PASSWORD",
         "value": f"[listCredentials({registry_id[1:-1]}, '{API['registry']}')"
                  ".passwords[0].value]"},
        *cache_settings,
        {"name": "REDIS_AUTH", "value": cache.auth},
        {"name": "REDIS_TTL_SECONDS", "value": DEFAULT_TTL_SECONDS},
    ]
    site = {
        "type": "Microsoft.Web/sites",
        "apiVersion": API["web"],
        "name": "[parameters('functionAppName')]",
        "location": "[parameters('location')]",
        "tags": "[parameters('tags')]",
        "kind": "functionapp,linux,container",
        "dependsOn": [plan_id, storage_id, cache_id],
        "properties": {
            "serverFarmId": plan_id,
            "reserved": True,
            "httpsOnly": True,
            "siteConfig": {
                "linuxFxVersion": "[format('DOCKER|{0}', parameters('image'))]",
                "alwaysOn": not app.plan_sku.upper().startswith("EP"),
                "minTlsVersion": "1.2",
                "ftpsState": "Disabled",
                "http20Enabled": True,
                "appSettings": settings,
            },
        },
    }
    resources: list[dict[str, Any]] = [*cache_resources, storage, plan]
    registry_group = "[resourceGroup().name]"
    if spec.image.build_from:
        resources.append(
            {
                "type": "Microsoft.ContainerRegistry/registries",
                "apiVersion": API["registry"],
                "name": "[parameters('registryName')]",
                "location": "[parameters('location')]",
                "tags": "[parameters('tags')]",
                "sku": {"name": "Basic"},
                "properties": {"adminUserEnabled": True},
            }
        )
        site["dependsOn"].append(  # type: ignore[attr-defined]
            "[resourceId('Microsoft.ContainerRegistry/registries', parameters('registryName'))]"
        )
    resources.append(site)
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/"
        "deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "metadata": {
            "generator": "mlcache-deploy",
            "note": "Holds no secrets: keys are read with listKeys()/listCredentials() "
            "when Azure deploys it."
            + (
                " Build and push the image first (see the az CLI export)."
                if spec.image.build_from
                else ""
            ),
        },
        "parameters": {
            "location": {"type": "string", "defaultValue": spec.location},
            "cacheName": {"type": "string", "defaultValue": cache.name},
            "storageAccountName": {"type": "string", "defaultValue": app.storage_account},
            "planName": {"type": "string", "defaultValue": app.plan_name},
            "functionAppName": {"type": "string", "defaultValue": app.name},
            "registryName": {"type": "string", "defaultValue": image.registry},
            "registryResourceGroup": {"type": "string", "defaultValue": registry_group},
            "image": {"type": "string", "defaultValue": str(image)},
            "tags": {"type": "object", "defaultValue": _tags(spec)},
        },
        "resources": resources,
        "outputs": {
            "functionHostName": {
                "type": "string",
                "value": "[reference(resourceId('Microsoft.Web/sites', "
                "parameters('functionAppName'))).defaultHostName]",
            },
        },
    }


def azcli_script(spec: DeploymentSpec) -> str:
    """A bash script of `az` commands creating the same resources; keys stay in variables."""
    cache = spec.cache
    app = spec.function_app
    image = image_reference(spec)
    q = shlex.quote
    rg = q(spec.resource_group.name)
    tag_args = " ".join(q(f"{k}={v}") for k, v in _tags(spec).items())
    lines = [
        "#!/usr/bin/env bash",
        "# Generated by mlcache-deploy: creates what the spec describes.",
        "# It holds no secrets; keys are read into shell variables when it runs.",
        "set -euo pipefail",
        "",
    ]
    if spec.subscription_id:
        lines.append(f"az account set --subscription {q(spec.subscription_id)}")
    lines += [
        f"az group create --name {rg} --location {q(spec.location)} --tags {tag_args}",
        "",
        "# The cache takes about 20 minutes; everything else is created meanwhile.",
    ]
    redis = (
        f"az redis create --resource-group {rg} --name {q(cache.name)} "
        f"--location {q(spec.location)} --sku {q(cache.tier)} --vm-size {q(cache.size.lower())} "
        f"--minimum-tls-version {q(cache.minimum_tls_version)} --tags {tag_args}"
    )
    if cache.redis_version:
        redis += f" --redis-version {q(cache.redis_version)}"
    if cache.non_tls_port:
        redis += " --enable-non-ssl-port"
    if cache.shards:
        redis += f" --shard-count {cache.shards}"
    if cache.zones:
        redis += " --zones " + " ".join(q(z) for z in cache.zones)
    storage_create = (
        f"az storage account create --resource-group {rg} --name {q(app.storage_account)} "
        f"--location {q(spec.location)} --sku Standard_LRS --kind StorageV2 "
        f"--min-tls-version TLS1_2 --allow-blob-public-access false --tags {tag_args}"
    )
    if cache.persistence:
        # Premium persistence writes to the storage account, so it comes first.
        lines += [
            storage_create,
            f"storage_connection=$(az storage account show-connection-string --resource-group "
            f"{rg} --name {q(app.storage_account)} --query connectionString -o tsv)",
        ]
        storage_create = ""
    if cache.persistence == "rdb":
        redis += (
            " --redis-configuration \"{\\\"rdb-backup-enabled\\\":\\\"true\\\","
            "\\\"rdb-storage-connection-string\\\":\\\"$storage_connection\\\"}\""
        )
    elif cache.persistence == "aof":
        redis += (
            " --redis-configuration \"{\\\"aof-backup-enabled\\\":\\\"true\\\","
            "\\\"aof-storage-connection-string-0\\\":\\\"$storage_connection\\\"}\""
        )
    redis_read = [
        f"az redis wait --resource-group {rg} --name {q(cache.name)} --created",
        f"redis_host=$(az redis show --resource-group {rg} --name {q(cache.name)} "
        "--query hostName -o tsv)",
        f"redis_port=$(az redis show --resource-group {rg} --name {q(cache.name)} "
        "--query sslPort -o tsv)",
        f"redis_key=$(az redis list-keys --resource-group {rg} --name {q(cache.name)} "
        "--query primaryKey -o tsv)",
    ]
    redis += " --no-wait"
    if cache.kind == MANAGED_KIND:
        redis, redis_read = azcli_cache_lines(spec, rg, tag_args)
    lines += [
        redis,
        "",
        *([storage_create] if storage_create else []),
        f"az appservice plan create --resource-group {rg} --name {q(app.plan_name)} "
        f"--location {q(spec.location)} --is-linux --sku {q(app.plan_sku)} --tags {tag_args}",
    ]
    registry = q(image.registry)
    if spec.image.build_from:
        lines += [
            f"az acr create --resource-group {rg} --name {registry} --location "
            f"{q(spec.location)} --sku Basic --admin-enabled true --tags {tag_args}",
            "# Build the package first: mlcache-deploy package build MODEL_DIR --out build/package",
            f"az acr build --registry {registry} --image {q(f'{image.repository}:{image.tag}')} "
            "build/package",
        ]
    lines += [
        "",
        f"acr_user=$(az acr credential show --name {registry} --query username -o tsv)",
        f"acr_password=$(az acr credential show --name {registry} "
        "--query 'passwords[0].value' -o tsv)",
        f"az functionapp create --resource-group {rg} --name {q(app.name)} "
        f"--plan {q(app.plan_name)} --storage-account {q(app.storage_account)} "
        f"--functions-version 4 --os-type Linux --image {q(str(image))} "
        "--registry-username \"$acr_user\" --registry-password \"$acr_password\" "
        f"--https-only true --tags {tag_args}",
        "",
        *redis_read,
        f"az functionapp config appsettings set --resource-group {rg} --name {q(app.name)} "
        "--settings REDIS_HOST=\"$redis_host\" REDIS_PORT=\"$redis_port\" "
        f"REDIS_KEY=\"$redis_key\" REDIS_AUTH={q(cache.auth)} "
        f"REDIS_TTL_SECONDS={DEFAULT_TTL_SECONDS} --output none",
        "",
        f"echo \"https://$(az functionapp show --resource-group {rg} --name {q(app.name)} "
        "--query defaultHostName -o tsv)/api/score\"",
        "",
    ]
    return "\n".join(lines)


def export_text(spec: DeploymentSpec, fmt: str) -> str:
    if fmt == "arm":
        return json.dumps(arm_template(spec), indent=2) + "\n"
    if fmt == "azcli":
        return azcli_script(spec)
    raise ValueError(f"unknown export format {fmt!r}")
