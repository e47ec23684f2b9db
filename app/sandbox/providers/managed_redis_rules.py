"""What Azure Managed Redis accepts: SKUs and their memory, names, enum values, TLS, persistence.

Azure's enums are case-insensitive on input and canonical on output, so every
value a request sets goes through `canonical`; the refusals are the RP's 400
BadRequest with the offending property as target.
"""

from __future__ import annotations

import re
from typing import Any

from azure.mgmt.redisenterprise import models as re_models

from app.sandbox.arm import ArmError, location_required, parse_model

AZURE_PORT = 10000
# Azure Managed Redis serves exactly one database per cluster, named `default`.
DATABASE_NAME = "default"

# Memory (GB) per size, as Microsoft's tier tables list it. The sandbox divides
# by MEMORY_SCALE and caps the result, like the classic cache provider.
_SIZE_GB: dict[str, float] = {
    "B0": 0.5,
    "B1": 1,
    "B3": 3,
    "B5": 6,
    "B10": 12,
    "B20": 24,
    "B50": 60,
    "B100": 120,
    "B150": 180,
    "B250": 240,
    "B350": 360,
    "B500": 480,
    "B700": 720,
    "B1000": 960,
    "M10": 12,
    "M20": 24,
    "M50": 60,
    "M100": 120,
    "M150": 180,
    "M250": 240,
    "M350": 360,
    "M500": 480,
    "M700": 720,
    "M1000": 960,
    "M1500": 1440,
    "M2000": 1920,
    "X3": 3,
    "X5": 6,
    "X10": 12,
    "X20": 24,
    "X50": 60,
    "X100": 120,
    "X150": 180,
    "X250": 240,
    "X350": 360,
    "X500": 480,
    "X700": 720,
    "A250": 256,
    "A500": 512,
    "A700": 720,
    "A1000": 1024,
    "A1500": 1536,
    "A2000": 2048,
    "A4500": 4608,
}
MEMORY_SCALE = 32
_MAX_SANDBOX_BYTES = 4 * 1024**3
MAX_CLIENTS = 1000

# Cluster and database names: the API's own pattern.
NAME_PATTERN = re.compile(r"^(?=.{1,60}$)[A-Za-z0-9]+(-[A-Za-z0-9]+)*$")
_SKUS = {s.value.lower(): s.value for s in re_models.SkuName}
EVICTION_POLICIES = {
    "AllKeysLFU": "allkeys-lfu",
    "AllKeysLRU": "allkeys-lru",
    "AllKeysRandom": "allkeys-random",
    "VolatileLRU": "volatile-lru",
    "VolatileLFU": "volatile-lfu",
    "VolatileTTL": "volatile-ttl",
    "VolatileRandom": "volatile-random",
    "NoEviction": "noeviction",
}
CLUSTERING_POLICIES = ("EnterpriseCluster", "OSSCluster", "NoCluster")
BUSY_STATES = ("Creating", "Updating", "Deleting")


def bad_request(message: str, target: str | None = None) -> ArmError:
    """The RP's 400 for a value it refuses."""
    return ArmError(400, "BadRequest", message, target=target)


def canonical(value: Any, allowed: tuple[str, ...] | list[str], what: str) -> str:
    """Azure's enums are case-insensitive on input and canonical on output."""
    for option in allowed:
        if str(value).lower() == option.lower():
            return option
    raise bad_request(
        f"The value '{value}' of '{what}' is invalid; valid values are {', '.join(allowed)}.", what
    )


def validate_sku(name: str) -> str:
    """The canonical SKU name, or Azure's refusal."""
    canonical = _SKUS.get(name.lower())
    if canonical is None:
        raise bad_request(f"The SKU '{name}' is not a valid Azure Managed Redis SKU.", "sku.name")
    if canonical.startswith("Enterprise"):
        raise bad_request(
            "Creation of new Azure Cache for Redis Enterprise resources is no longer "
            "supported. Create an Azure Managed Redis instance (e.g. Balanced_B0) instead.",
            "sku.name",
        )
    return canonical


def memory_bytes(sku: str) -> int:
    size = sku.split("_", 1)[-1]
    gigabytes = _SIZE_GB.get(size, 1.0)
    return min(int(gigabytes * 1024**3 / MEMORY_SCALE), _MAX_SANDBOX_BYTES)


def parse_cluster(body: dict[str, Any]) -> re_models.Cluster:
    """A cluster PUT's body as the SDK model, with the location and SKU it requires."""
    cluster = parse_model(re_models.Cluster.deserialize, body)
    if not cluster.location:
        raise location_required()
    if cluster.sku is None or not cluster.sku.name:
        raise bad_request("The parameter 'sku' is required.", "sku")
    return cluster


def minimum_tls(value: Any, old: str | None) -> str:
    """The cluster's `minimumTlsVersion`: 1.2, the only version Azure still allows."""
    tls = str(value or old or "1.2")
    if tls not in ("1.0", "1.1", "1.2"):
        raise bad_request(
            f"The value '{tls}' of 'minimumTlsVersion' is invalid.", "properties.minimumTlsVersion"
        )
    if tls != "1.2":
        raise bad_request(
            "TLS 1.0 and 1.1 are obsolete; 'minimumTlsVersion' must be 1.2.",
            "properties.minimumTlsVersion",
        )
    return tls


def persistence(value: re_models.Persistence | None, old: dict[str, Any]) -> dict[str, Any]:
    """A database's `persistence` (recorded, not run): AOF or RDB, not both."""
    if value is None:
        return old or {"aofEnabled": False, "rdbEnabled": False}
    result: dict[str, Any] = {
        "aofEnabled": bool(value.aof_enabled),
        "rdbEnabled": bool(value.rdb_enabled),
    }
    if result["aofEnabled"] and result["rdbEnabled"]:
        raise bad_request(
            "Only one of AOF and RDB persistence can be enabled.", "properties.persistence"
        )
    if value.aof_frequency:
        result["aofFrequency"] = canonical(
            value.aof_frequency, ("1s", "always"), "properties.persistence.aofFrequency"
        )
    if value.rdb_frequency:
        result["rdbFrequency"] = canonical(
            value.rdb_frequency, ("1h", "6h", "12h"), "properties.persistence.rdbFrequency"
        )
    return result


# Module names as the API takes them, and what RediSearch requires of its database
# (Microsoft Learn, "Plan Redis modules": Enterprise clustering, NoEviction).
MODULES = ("RediSearch", "RedisJSON", "RedisBloom", "RedisTimeSeries")


def modules(value: list[re_models.Module] | None, clustering: str, eviction: str) -> list[
        dict[str, Any]]:
    """A database's `modules`, canonical names, each at most once; RediSearch's needs."""
    result: list[dict[str, Any]] = []
    for i, module in enumerate(value or []):
        name = canonical(module.name, MODULES, f"properties.modules[{i}].name")
        if any(m["name"] == name for m in result):
            raise bad_request(f"The module '{name}' is listed more than once.",
                              "properties.modules")
        entry: dict[str, Any] = {"name": name}
        if module.args:
            entry["args"] = module.args
        result.append(entry)
    if any(m["name"] == "RediSearch" for m in result):
        if clustering != "EnterpriseCluster":
            raise bad_request(
                "The RediSearch module requires the EnterpriseCluster clustering policy.",
                "properties.clusteringPolicy",
            )
        if eviction != "NoEviction":
            raise bad_request(
                "The RediSearch module requires the NoEviction eviction policy.",
                "properties.evictionPolicy",
            )
    return result
