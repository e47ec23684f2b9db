"""What each resource bills on, in the Retail Prices API's own words.

Resource modules build their `PriceQuery` list from these names; `pricing`
asks the API and does the arithmetic. Where a value comes from is said where
it is defined.
"""

from __future__ import annotations

from dataclasses import dataclass

HOURS_PER_MONTH = 730
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
# The storage account holds the Functions runtime's state (host locks, keys,
# timers): well under a gigabyte. One GB of Hot LRS blob data is the allowance
# counted; transactions are not.
STORAGE_ALLOWANCE_GB = 1.0

REDIS_SERVICE = "Redis Cache"  # the portal says "Azure Cache for Redis"; the API does not
CLASSIC_PRODUCTS = {
    "Basic": "Azure Redis Cache Basic",
    "Standard": "Azure Redis Cache Standard",
    "Premium": "Azure Redis Cache Premium",
}
MANAGED_PRODUCTS = {
    "Balanced": "Azure Managed Redis - Balanced",
    "MemoryOptimized": "Azure Managed Redis - Memory Optimized",
    "ComputeOptimized": "Azure Managed Redis - Compute Optimized",
}
# Azure Managed Redis runs with high availability by default (the deploy step
# leaves it on): a primary and a replica node. Its meter is "<size> Cache
# Instance", which for the classic tiers is the per-node half of "<size>
# Cache"; we read the Managed Redis meter the same way and count two nodes.
# Microsoft does not spell this out for the Managed Redis meters: if the meter
# turns out to be the HA price already, this doubles it (see docs/sandbox.md).
MANAGED_NODES = 2

APP_SERVICE = "Azure App Service"
# Linux plans carry " - Linux"; the Windows products (no suffix) cost more.
PLAN_PRODUCTS = {
    "B": "Azure App Service Basic Plan - Linux",
    "S": "Azure App Service Standard Plan - Linux",
    "v2": "Azure App Service Premium v2 Plan - Linux",
    "v3": "Azure App Service Premium v3 Plan - Linux",
}
# Elastic Premium (EP1–EP3) has no per-SKU meter: it bills vCPU-hours and
# GiB-hours of "Premium Functions", with one instance always allocated.
ELASTIC_PREMIUM = {"EP1": (1, 3.5), "EP2": (2, 7.0), "EP3": (4, 14.0)}
FUNCTIONS_SERVICE = "Functions"
FUNCTIONS_PREMIUM_PRODUCT = "Premium Functions"

STORAGE_SERVICE = "Storage"
# A StorageV2 (general-purpose v2) account's block blobs. Some tooling reads
# LRS prices from "Blob Storage" instead; both list "Hot LRS Data Stored".
STORAGE_PRODUCT = "General Block Blob v2"

REGISTRY_SERVICE = "Container Registry"
REGISTRY_PRODUCT = "Container Registry"


@dataclass(frozen=True)
class PriceQuery:
    """One meter to price: where it is in the API and how many units a month uses."""

    resource: str  # what the user sees: "Azure Cache for Redis digits-cache"
    sku: str  # the SKU in the portal's words: "Standard C1"
    service_name: str
    product_name: str
    sku_name: str
    unit_of_measure: str  # as the API spells it: "1 Hour", "1 GB/Month", "1/Day"
    units: float  # units per month
    unit_label: str  # the unit in words, singular: "hour", "GB", "day", "vCPU-hour"
    meter_name: str | None = None  # None: any meter of the product/SKU
    # False when the API's spelling of skuName is uncertain: filter on the
    # product only and let `select_item` compare without spaces.
    filter_sku: bool = True
    note: str = ""

# Application Insights (workspace-based) bills what its Log Analytics workspace
# ingests: pay-as-you-go per GB, the first 5 GB a month free per billing account
# (Microsoft Learn, "Azure Monitor Logs cost calculations and options"; "Azure Monitor
# pricing"). The Retail Prices API's spelling of this meter is the least certain here
# (the SKU is filtered loosely). A scoring function's requests, traces and dependency
# calls to Redis are about 1 GB a month at a few requests a second: inside the free part.
LOG_ANALYTICS_SERVICE = "Log Analytics"
LOG_ANALYTICS_PRODUCT = "Log Analytics"
LOG_ANALYTICS_SKU = "Pay-as-you-go"
LOG_ANALYTICS_METER = "Pay-as-you-go Data Ingestion"
LOG_ANALYTICS_GB = 1.0
