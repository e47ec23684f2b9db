"""Sample list prices the sandbox's Retail Prices API serves (not a quote, not a charge).

SAMPLE LIST PRICES, USD, modelled on Azure's pay-as-you-go retail prices for
the West Europe region (armRegionName `westeurope`) as of November 2026. They
are rounded and may differ from what Azure lists today; they exist so the cost
estimate can be shown, and its code tested, without a network. Only
`westeurope` is modelled: a query for another region answers no items, as
Azure does for a meter a region does not sell.

Field names and value spellings follow the real API (serviceName "Redis
Cache", Linux plans' "- Linux" products, "P1 v3" but "P0v3", per-node
"Cache Instance" meters next to whole-cache "Cache" meters, reservation rows
next to pay-as-you-go rows), so clients meet the same traps they meet on Azure.
"""

from __future__ import annotations

import hashlib
from typing import Any

TABLE_DATE = "2026-11-01"
REGION = "westeurope"
LOCATION = "EU West"
CURRENCY = "USD"
LABEL = f"Sample list prices, {CURRENCY}, modelled on {REGION} as of {TABLE_DATE}"

# (serviceName, serviceFamily, productName, skuName, meterName, unitOfMeasure, price)
_CLASSIC = {
    "Basic": ("Azure Redis Cache Basic",
              {"C0": 0.022, "C1": 0.055, "C2": 0.091, "C3": 0.182, "C4": 0.212,
               "C5": 0.424, "C6": 0.848}),
    "Standard": ("Azure Redis Cache Standard",
                 {"C0": 0.055, "C1": 0.139, "C2": 0.227, "C3": 0.455, "C4": 0.530,
                  "C5": 1.060, "C6": 2.120}),
    "Premium": ("Azure Redis Cache Premium",
                {"P1": 0.559, "P2": 1.118, "P3": 2.236, "P4": 4.472, "P5": 10.140}),
}
_MANAGED = {
    "Azure Managed Redis - Balanced":
        {"B0": 0.019, "B1": 0.038, "B3": 0.076, "B5": 0.152, "B10": 0.331, "B20": 0.662,
         "B50": 1.324, "B100": 2.648},
    "Azure Managed Redis - Memory Optimized":
        {"M10": 0.235, "M20": 0.470, "M50": 0.940, "M100": 1.880},
    "Azure Managed Redis - Compute Optimized":
        {"X3": 0.330, "X5": 0.660, "X10": 1.320, "X20": 2.640},
}
# (productName, skuName, meterName, price): Linux and, for contrast, Windows.
_PLANS = [
    ("Azure App Service Basic Plan - Linux", "B1", "B1", 0.018),
    ("Azure App Service Basic Plan - Linux", "B2", "B2", 0.035),
    ("Azure App Service Basic Plan - Linux", "B3", "B3", 0.069),
    ("Azure App Service Basic Plan", "B1", "B1 App", 0.075),
    ("Azure App Service Standard Plan - Linux", "S1", "S1 App", 0.095),
    ("Azure App Service Standard Plan - Linux", "S2", "S2 App", 0.190),
    ("Azure App Service Standard Plan - Linux", "S3", "S3 App", 0.380),
    ("Azure App Service Premium v2 Plan - Linux", "P1 v2", "P1 v2 App", 0.169),
    ("Azure App Service Premium v2 Plan - Linux", "P2 v2", "P2 v2 App", 0.338),
    ("Azure App Service Premium v2 Plan - Linux", "P3 v2", "P3 v2 App", 0.676),
    ("Azure App Service Premium v3 Plan - Linux", "P0v3", "P0v3 App", 0.078),
    ("Azure App Service Premium v3 Plan - Linux", "P1 v3", "P1 v3 App", 0.157),
    ("Azure App Service Premium v3 Plan - Linux", "P1mv3", "P1mv3 App", 0.190),
    ("Azure App Service Premium v3 Plan - Linux", "P2 v3", "P2 v3 App", 0.314),
    ("Azure App Service Premium v3 Plan - Linux", "P3 v3", "P3 v3 App", 0.628),
    ("Azure App Service Premium v3 Plan", "P1 v3", "P1 v3 App", 0.283),
]


def _item(service: str, family: str, product: str, sku: str, meter: str, unit: str,
          price: float, **extra: Any) -> dict[str, Any]:
    arm_sku = f"{product}_{sku}".replace(" - ", "_").replace(" ", "_")
    meter_id = hashlib.sha256(f"{product}|{sku}|{meter}".encode()).hexdigest()[:12]
    return {
        "currencyCode": CURRENCY,
        "tierMinimumUnits": 0.0,
        "retailPrice": price,
        "unitPrice": price,
        "armRegionName": REGION,
        "location": LOCATION,
        "effectiveStartDate": f"{TABLE_DATE}T00:00:00Z",
        "meterId": f"sandbox-{meter_id}",
        "meterName": meter,
        "productId": f"SANDBOX-{product.upper().replace(' ', '-')[:24]}",
        "skuId": f"SANDBOX/{sku.replace(' ', '')}",
        "productName": product,
        "skuName": sku,
        "serviceName": service,
        "serviceId": f"SANDBOX-{service.upper().replace(' ', '-')}",
        "serviceFamily": family,
        "unitOfMeasure": unit,
        "type": "Consumption",
        "isPrimaryMeterRegion": True,
        "armSkuName": extra.pop("armSkuName", arm_sku),
        **extra,
    }


def build_items() -> list[dict[str, Any]]:
    """Every row of the sample table, in the API's item shape."""
    items: list[dict[str, Any]] = []
    for product, sizes in _CLASSIC.values():
        for size, price in sizes.items():
            items.append(_item("Redis Cache", "Databases", product, size, f"{size} Cache",
                               "1 Hour", price))
            if not product.endswith("Basic"):
                # The per-node meter: half of the whole (primary + replica) cache.
                items.append(_item("Redis Cache", "Databases", product, size,
                                   f"{size} Cache Instance", "1 Hour", round(price / 2, 4)))
            if product.endswith("Premium"):
                items.append(_item("Redis Cache", "Databases", product, size,
                                   f"{size} Cache Instance", "1 Hour",
                                   round(price / 2 * 8760 * 0.64, 2), type="Reservation",
                                   reservationTerm="1 Year"))
    for product, sizes in _MANAGED.items():
        for size, price in sizes.items():
            items.append(_item("Redis Cache", "Databases", product, size,
                               f"{size} Cache Instance", "1 Hour", price))
            items.append(_item("Redis Cache", "Databases", product, size,
                               f"{size} Cache Instance", "1 Hour",
                               round(price * 8760 * 0.67, 2), type="Reservation",
                               reservationTerm="1 Year"))
    for product, sku, meter, price in _PLANS:
        items.append(_item("Azure App Service", "Compute", product, sku, meter, "1 Hour", price))
    items.append(_item("Azure App Service", "Compute", "Azure App Service Premium v3 Plan - Linux",
                       "P1 v3", "P1 v3 App", "1 Hour", 0.118, type="DevTestConsumption"))
    items += [
        _item("Functions", "Compute", "Premium Functions", "Premium", "Premium vCPU Duration",
              "1 Hour", 0.1789),
        _item("Functions", "Compute", "Premium Functions", "Premium", "Premium Memory Duration",
              "1 GiB Hour", 0.0127),
        _item("Storage", "Storage", "General Block Blob v2", "Hot LRS", "Hot LRS Data Stored",
              "1 GB/Month", 0.0196),
        _item("Storage", "Storage", "General Block Blob v2", "Hot LRS", "Hot LRS Data Stored",
              "1 GB/Month", 0.0188, tierMinimumUnits=51200.0),
        _item("Storage", "Storage", "General Block Blob v2", "Hot LRS", "Hot LRS Write Operations",
              "10K", 0.0572),
        _item("Storage", "Storage", "General Block Blob v2", "Cool LRS", "Cool LRS Data Stored",
              "1 GB/Month", 0.0107),
        # Log Analytics ingestion: the first 5 GB a month free (a 0.0 row at tier 0, as the
        # API lists free allowances), then per GB.
        _item("Log Analytics", "Management and Governance", "Log Analytics", "Pay-as-you-go",
              "Pay-as-you-go Data Ingestion", "1 GB", 0.0),
        _item("Log Analytics", "Management and Governance", "Log Analytics", "Pay-as-you-go",
              "Pay-as-you-go Data Ingestion", "1 GB", 2.99, tierMinimumUnits=5.0),
        _item("Container Registry", "Containers", "Container Registry", "Basic",
              "Basic Registry Unit", "1/Day", 0.1666),
        _item("Container Registry", "Containers", "Container Registry", "Standard",
              "Standard Registry Unit", "1/Day", 0.6666),
        _item("Container Registry", "Containers", "Container Registry", "Premium",
              "Premium Registry Unit", "1/Day", 1.6666),
    ]
    return items


ITEMS: list[dict[str, Any]] = build_items()
