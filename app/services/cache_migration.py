"""From Azure Cache for Redis to Azure Managed Redis: Microsoft's SKU mapping and the switch.

Since 2026-04-01 a tenant that never had an Azure Cache for Redis cannot create
one. `suggest_managed_redis` and `switch_to_managed_redis` are pure (the wizard,
the CLI and the cache step's blocked-tenant error use them): Microsoft's
published SKU mapping, and the spec with the cache switched over.
"""

from __future__ import annotations

import copy
import json

from app.errors import BadInput
from app.rules import check_name
from app.spec import DeploymentSpec

KIND = "azure-managed-redis"
CLASSIC_KIND = "azure-cache-for-redis"
RETIREMENT_DATE = "2028-09-30"
BLOCKED_SINCE = "2026-04-01"

# Microsoft's mapping from Azure Cache for Redis to Azure Managed Redis
# ("Migrate from Basic, Standard, Premium, and Enterprise tiers to Azure Managed
# Redis", learn.microsoft.com/azure/redis/migrate/migrate-overview, table
# "Migrate your Basic, Standard, or Premium cache to Azure Managed Redis").
# Where Microsoft lists two options, the first keeps at least as much memory
# (the "abundant memory" option, listed first here) and is the suggestion; the
# second is the "cost efficiency" one for caches whose peak use fits in it.
# Basic caches map to the same SKU without high availability, which this tool
# does not set: the suggestion keeps Azure's default (high availability on).
SKU_MAPPING: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    **{
        (tier, size): options
        for tier in ("Basic", "Standard")
        for size, options in {
            "C0": (("Balanced", "B0"),),
            "C1": (("Balanced", "B1"),),
            "C2": (("Balanced", "B3"),),
            "C3": (("Balanced", "B5"),),
            "C4": (("MemoryOptimized", "M20"), ("MemoryOptimized", "M10")),
            "C5": (("MemoryOptimized", "M50"), ("MemoryOptimized", "M20")),
            "C6": (("MemoryOptimized", "M50"),),
        }.items()
    },
    ("Premium", "P1"): (("Balanced", "B5"),),
    ("Premium", "P2"): (("Balanced", "B20"), ("Balanced", "B10")),
    ("Premium", "P3"): (("Balanced", "B50"), ("Balanced", "B20")),
    ("Premium", "P4"): (("Balanced", "B50"),),
    ("Premium", "P5"): (("Balanced", "B100"),),
}


def managed_sku(tier: str, size: str) -> str:
    """Spec tier/size → ARM SKU name (Balanced, B0 → Balanced_B0)."""
    return f"{tier}_{size}"


def suggest_managed_redis(tier: str, size: str) -> tuple[str, str]:
    """Microsoft's suggested Azure Managed Redis (tier, size) for a classic tier and size.

    Raises BadInput for a tier/size Azure Cache for Redis does not have.
    """
    options = SKU_MAPPING.get((tier, size.upper()))
    if options is None:
        raise BadInput(
            f"{tier} {size} is not an Azure Cache for Redis size",
            "Basic and Standard take C0-C6, Premium takes P1-P5.",
        )
    return options[0]


def managed_redis_options(tier: str, size: str) -> tuple[tuple[str, str], ...]:
    """Every mapping Microsoft lists for a classic size (suggestion first)."""
    suggest_managed_redis(tier, size)
    return SKU_MAPPING[(tier, size.upper())]


def _managed_name(name: str) -> str:
    """Classic names allow 63 characters, Managed Redis cluster names 60."""
    if not check_name("managed_cache", name):
        return name
    return name[:60].rstrip("-")


def switch_to_managed_redis(spec: DeploymentSpec) -> DeploymentSpec:
    """A copy of `spec` whose cache is the Azure Managed Redis Microsoft maps it to.

    Options Azure Managed Redis does not have (a Redis version to pick, shards,
    zones, the non-TLS port) are cleared; name, TLS, auth, network access and
    persistence carry over. A spec already on Azure Managed Redis is returned
    as a copy, unchanged.
    """
    new = copy.deepcopy(spec)
    if spec.cache.kind == KIND:
        return new
    cache = new.cache
    cache.tier, cache.size = suggest_managed_redis(spec.cache.tier, spec.cache.size)
    cache.kind = KIND
    cache.name = _managed_name(cache.name)
    cache.redis_version = None
    cache.shards = None
    cache.zones = []
    cache.non_tls_port = False
    cache.replicas = None
    cache.update_channel = None
    # Classic RDB frequencies are minutes; Azure Managed Redis takes 1h/6h/12h.
    cache.persistence_frequency = None
    return new


def spec_changes(old: DeploymentSpec, new: DeploymentSpec) -> list[str]:
    """The cache fields that differ, as `cache.field = value` lines (JSON values)."""
    lines = []
    for field in ("kind", "name", "tier", "size", "redis_version", "shards", "zones",
                  "non_tls_port"):
        before, after = getattr(old.cache, field), getattr(new.cache, field)
        if before != after:
            lines.append(f"cache.{field} = {json.dumps(after)}")
    return lines


def switch_text(spec: DeploymentSpec) -> str:
    """The one-line recommendation naming the exact spec change."""
    new = switch_to_managed_redis(spec)
    return (
        f"Switch the spec to Azure Managed Redis, Microsoft's successor "
        f"({spec.cache.tier} {spec.cache.size} maps to "
        f"{managed_sku(new.cache.tier, new.cache.size)}): set "
        + ", ".join(spec_changes(spec, new))
        + "; then deploy again."
    )
