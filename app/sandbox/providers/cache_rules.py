"""Azure Cache for Redis's rules for what a request may ask: SKUs, sizes, names, settings.

Kept apart from the provider so the validation reads as the RP documents it:
Basic/Standard take C0-C6 and Premium P1-P5, tiers scale up one step at a time,
and clustering, VNet injection and persistence settings are Premium-only.
"""

from __future__ import annotations

import re
from typing import Any

from azure.mgmt.redis import models as redis_models

from app.sandbox.arm import ArmError, location_required, parse_model

# Azure's memory (GB) and client limits per size; the sandbox divides memory by
# MEMORY_SCALE so a laptop can hold a few "P5" caches.
SIZES: dict[str, tuple[float, int]] = {
    "C0": (0.25, 256),
    "C1": (1, 1000),
    "C2": (2.5, 2000),
    "C3": (6, 5000),
    "C4": (13, 10000),
    "C5": (26, 15000),
    "C6": (53, 20000),
    "P1": (6, 7500),
    "P2": (13, 15000),
    "P3": (26, 30000),
    "P4": (53, 40000),
    "P5": (120, 40000),
}
MEMORY_SCALE = 32
_MAX_SANDBOX_CLIENTS = 1000

CACHE_NAME = re.compile(r"^(?=.{1,63}$)[A-Za-z0-9]([A-Za-z0-9]|-(?!-))*(?<!-)$")
_POLICIES = {
    "volatile-lru",
    "allkeys-lru",
    "volatile-random",
    "allkeys-random",
    "volatile-ttl",
    "noeviction",
    "volatile-lfu",
    "allkeys-lfu",
}
# Settings a client may send in redisConfiguration (Azure refuses others).
_CONFIG_KEYS = {
    "maxmemory-policy",
    "maxmemory-reserved",
    "maxfragmentationmemory-reserved",
    "maxmemory-delta",
    "notify-keyspace-events",
    "maxclients",
    "aad-enabled",
    "authnotrequired",
    "rdb-backup-enabled",
    "rdb-backup-frequency",
    "rdb-backup-max-snapshot-count",
    "rdb-storage-connection-string",
    "aof-backup-enabled",
    "aof-storage-connection-string-0",
    "aof-storage-connection-string-1",
    "preferred-data-persistence-auth-method",
    "preferred-data-archive-auth-method",
    "storage-subscription-id",
    "zonal-configuration",
}
_PREMIUM_ONLY_CONFIG = {
    "rdb-backup-enabled",
    "rdb-backup-frequency",
    "rdb-backup-max-snapshot-count",
    "rdb-storage-connection-string",
    "aof-backup-enabled",
    "aof-storage-connection-string-0",
    "aof-storage-connection-string-1",
}


def invalid_request_body(message: str, target: str | None = None) -> ArmError:
    """The RP's 400 for a request it refuses (code InvalidRequestBody)."""
    return ArmError(400, "InvalidRequestBody", message, target=target)


def memory_limits(sku: dict[str, Any]) -> tuple[int, int]:
    """maxmemory (bytes, scaled down by MEMORY_SCALE) and maxclients for a cache's SKU."""
    gigabytes, clients = SIZES[f"{sku['family']}{sku['capacity']}"]
    return int(gigabytes * 1024**3 / MEMORY_SCALE), min(clients, _MAX_SANDBOX_CLIENTS)


def validate_sku(sku: dict[str, Any]) -> dict[str, Any]:
    """Azure's SKU rules: Basic/Standard take C0-C6, Premium takes P1-P5."""
    name = str(sku.get("name") or "")
    family = str(sku.get("family") or "")
    capacity = sku.get("capacity")
    canonical = {"basic": "Basic", "standard": "Standard", "premium": "Premium"}.get(name.lower())
    if canonical is None:
        raise invalid_request_body(
            f"The value '{name}' of the parameter 'sku.name' is invalid. "
            "Valid values are Basic, Standard and Premium.",
            "sku.name",
        )
    expected_family = "P" if canonical == "Premium" else "C"
    if family.upper() != expected_family:
        raise invalid_request_body(
            f"The SKU family '{family}' is not valid for the '{canonical}' tier; "
            f"the '{canonical}' tier requires family '{expected_family}'.",
            "sku.family",
        )
    if not isinstance(capacity, int) or f"{expected_family}{capacity}" not in SIZES:
        valid = "0-6" if expected_family == "C" else "1-5"
        raise invalid_request_body(
            f"The capacity '{capacity}' is not valid for the SKU '{canonical}' "
            f"(family '{expected_family}'); valid capacities are {valid}.",
            "sku.capacity",
        )
    return {"name": canonical, "family": expected_family, "capacity": capacity}


_TIER_MOVES = {("Basic", "Standard"), ("Standard", "Premium")}


def check_scaling(old: dict[str, Any], new: dict[str, Any]) -> None:
    """Azure's scaling rules: up one tier at a time (Basic -> Standard -> Premium), never down."""
    if old["name"] == new["name"] or (old["name"], new["name"]) in _TIER_MOVES:
        return
    raise invalid_request_body(
        f"A cache cannot be scaled from the '{old['name']}' tier to the '{new['name']}' tier. "
        "Scale Basic to Standard and Standard to Premium; scaling down a tier is not supported.",
        "sku.name",
    )



def aad_enabled(props: dict[str, Any]) -> bool:
    """Whether a cache's `redisConfiguration` turns Microsoft Entra authentication on
    (`aad-enabled` is a string, "true"/"false", in any case)."""
    config = props.get("redisConfiguration") or {}
    return str(config.get("aad-enabled", "false")).lower() == "true"


def check_entra(props: dict[str, Any]) -> None:
    """Azure's rules for Microsoft Entra authentication and access keys on one cache."""
    config = props["redisConfiguration"]
    if str(config.get("aad-enabled", "false")).lower() not in ("true", "false"):
        raise invalid_request_body(
            f"The value '{config['aad-enabled']}' of 'aad-enabled' is invalid; valid values "
            "are 'true' and 'false'.",
            "properties.redisConfiguration.aad-enabled",
        )
    if aad_enabled(props) and props["enableNonSslPort"]:
        # The RP's own words (quoted in Azure/azure-sdk-for-java#47602).
        raise invalid_request_body(
            "Microsoft Entra Authentication cannot be used cache is configured to allow "
            "non-SSL connections.",
            "properties.enableNonSslPort",
        )
    if props.get("disableAccessKeyAuthentication") and not aad_enabled(props):
        raise invalid_request_body(
            "Access key authentication can only be disabled when Microsoft Entra "
            "authentication is enabled ('aad-enabled' is 'true'); otherwise no client could "
            "authenticate.",
            "properties.disableAccessKeyAuthentication",
        )


# `rdb-backup-frequency` in minutes, as the Redis RP's API describes the setting.
RDB_FREQUENCIES = ("15", "30", "60", "360", "720", "1440")
MAX_REPLICAS = 3


def _enabled(config: dict[str, Any], key: str) -> bool:
    return str(config.get(key, "false")).lower() == "true"


def check_persistence(config: dict[str, Any], tier: str) -> None:
    """RDB needs a frequency Azure offers and a storage account; AOF its storage account."""
    if tier != "Premium":
        return
    target = "properties.redisConfiguration"
    if _enabled(config, "rdb-backup-enabled"):
        frequency = config.get("rdb-backup-frequency")
        if frequency is not None and frequency not in RDB_FREQUENCIES:
            raise invalid_request_body(
                f"The value '{frequency}' of 'rdb-backup-frequency' is invalid; valid values "
                f"are {', '.join(RDB_FREQUENCIES)} (minutes).",
                f"{target}.rdb-backup-frequency",
            )
        if not config.get("rdb-storage-connection-string"):
            raise invalid_request_body(
                "RDB persistence needs 'rdb-storage-connection-string', the storage account "
                "the snapshots are written to.",
                f"{target}.rdb-storage-connection-string",
            )
    if _enabled(config, "aof-backup-enabled") and not config.get(
        "aof-storage-connection-string-0"
    ):
        raise invalid_request_body(
            "AOF persistence needs 'aof-storage-connection-string-0', the storage account "
            "the append-only file is written to.",
            f"{target}.aof-storage-connection-string-0",
        )
    if _enabled(config, "rdb-backup-enabled") and _enabled(config, "aof-backup-enabled"):
        raise invalid_request_body(
            "Only one of RDB and AOF persistence can be enabled.", target
        )


def _replicas(
    params: Any, old: dict[str, Any], tier: str, config: dict[str, Any]
) -> int | None:
    """replicasPerMaster (or its newer name replicasPerPrimary): Premium only, 1-3, fixed
    once the cache exists, and at most one with AOF persistence (Microsoft Learn, "Add
    replicas to Premium tier Azure Cache for Redis")."""
    given = getattr(params, "replicas_per_master", None)
    if given is None:
        given = getattr(params, "replicas_per_primary", None)
    target = "properties.replicasPerMaster"
    if given is None:
        return old.get("replicasPerMaster")
    if tier != "Premium" and given != (0 if tier == "Basic" else 1):
        raise invalid_request_body(
            "More than one replica per primary is only available for Premium caches.", target
        )
    if tier == "Premium" and not 1 <= given <= MAX_REPLICAS:
        raise invalid_request_body(
            f"The value '{given}' of 'replicasPerMaster' is invalid; a Premium cache has "
            f"1 to {MAX_REPLICAS} replicas per primary.",
            target,
        )
    if old.get("replicasPerMaster") not in (None, given):
        raise invalid_request_body(
            "The number of replicas cannot be changed after the cache is created.", target
        )
    if given > 1 and _enabled(config, "aof-backup-enabled"):
        raise invalid_request_body(
            "AOF persistence cannot be used with more than one replica per primary.", target
        )
    return given if tier != "Basic" else None


def canonical_channel(value: str) -> str:
    """updateChannel: Stable or Preview, any case on input (azure-mgmt-redis UpdateChannel)."""
    for option in ("Stable", "Preview"):
        if str(value).lower() == option.lower():
            return option
    raise invalid_request_body(
        f"The value '{value}' of 'updateChannel' is invalid; valid values are Stable and "
        "Preview.",
        "properties.updateChannel",
    )


def name_taken(name: str) -> ArmError:
    """The 409 when another cache holds the name (cache names are global, as DNS names)."""
    return ArmError(
        409,
        "NameNotAvailable",
        f"The name '{name}' is not available: a cache with this DNS name already exists.",
    )


def parse_create(body: dict[str, Any]) -> redis_models.RedisCreateParameters:
    """A PUT's body as the SDK model, with the location and SKU the RP requires."""
    params = parse_model(redis_models.RedisCreateParameters.deserialize, body)
    if not params.location:
        raise location_required()
    if params.sku is None:
        raise invalid_request_body("The parameter 'sku' is required.", "sku")
    return params


def validated_properties(
    params: Any, sku: dict[str, Any], previous: dict[str, Any] | None
) -> dict[str, Any]:
    """Checks shared by create and update; returns the settable properties."""
    old = previous or {}
    tier = sku["name"]
    tls = params.minimum_tls_version or old.get("minimumTlsVersion") or "1.2"
    if tls not in ("1.0", "1.1", "1.2"):
        raise invalid_request_body(
            f"The value '{tls}' of 'minimumTlsVersion' is invalid; valid values are 1.0, "
            "1.1 and 1.2.",
            "properties.minimumTlsVersion",
        )
    if tls != "1.2":
        raise invalid_request_body(
            "TLS 1.0 and 1.1 are retired for Azure Cache for Redis; "
            "'minimumTlsVersion' must be 1.2.",
            "properties.minimumTlsVersion",
        )
    access = params.public_network_access or old.get("publicNetworkAccess") or "Enabled"
    if access not in ("Enabled", "Disabled"):
        raise invalid_request_body(
            f"The value '{access}' of 'publicNetworkAccess' is invalid.",
            "properties.publicNetworkAccess",
        )
    shard_count = getattr(params, "shard_count", None)
    if shard_count is not None and tier != "Premium":
        raise invalid_request_body(
            "Clustering (shardCount) is only available for Premium caches.",
            "properties.shardCount",
        )
    if getattr(params, "subnet_id", None) and tier != "Premium":
        raise invalid_request_body(
            "Virtual network injection (subnetId) is only available for Premium caches.",
            "properties.subnetId",
        )
    config = dict(old.get("redisConfiguration") or {})
    if params.redis_configuration is not None:
        given = params.redis_configuration.serialize()
        extra = params.redis_configuration.additional_properties or {}
        given.update({k: v for k, v in extra.items() if v is not None})
        for key, value in given.items():
            if key not in _CONFIG_KEYS:
                raise invalid_request_body(
                    f"The redis configuration setting '{key}' is not supported.",
                    f"properties.redisConfiguration.{key}",
                )
            if key in _PREMIUM_ONLY_CONFIG and tier != "Premium":
                raise invalid_request_body(
                    "Data persistence is only available for Premium caches.",
                    f"properties.redisConfiguration.{key}",
                )
            config[key] = str(value)
    policy = config.get("maxmemory-policy", "volatile-lru")
    if policy not in _POLICIES:
        raise invalid_request_body(
            f"The value '{policy}' of 'maxmemory-policy' is invalid.",
            "properties.redisConfiguration.maxmemory-policy",
        )
    _, clients = SIZES[f"{sku['family']}{sku['capacity']}"]
    defaults = {
        "maxclients": str(clients),
        "maxmemory-reserved": "30",
        "maxfragmentationmemory-reserved": "30",
        "maxmemory-delta": "30",
        "maxmemory-policy": "volatile-lru",
    }
    config = {**defaults, **config}
    config["maxclients"] = str(clients)
    enable_non_ssl = params.enable_non_ssl_port
    if enable_non_ssl is None:
        enable_non_ssl = bool(old.get("enableNonSslPort", False))
    props: dict[str, Any] = {
        "sku": sku,
        "enableNonSslPort": bool(enable_non_ssl),
        "minimumTlsVersion": tls,
        "publicNetworkAccess": access,
        "redisConfiguration": config,
    }
    if shard_count is not None:
        props["shardCount"] = shard_count
    check_persistence(config, tier)
    replicas = _replicas(params, old, tier, config)
    if replicas is not None:
        props["replicasPerMaster"] = replicas
        props["replicasPerPrimary"] = replicas
    props["updateChannel"] = canonical_channel(
        getattr(params, "update_channel", None) or old.get("updateChannel") or "Stable"
    )
    disable_keys = getattr(params, "disable_access_key_authentication", None)
    if disable_keys is None:
        disable_keys = bool(old.get("disableAccessKeyAuthentication", False))
    props["disableAccessKeyAuthentication"] = bool(disable_keys)
    check_entra(props)
    return props
