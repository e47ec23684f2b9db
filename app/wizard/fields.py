"""Which page owns which spec field, and what a person calls each field.

Problems from app.rules carry field paths (`cache.name`, `tags.env`,
`cache.zones[0]`); this table turns them into a page to jump to and a label.
"""

from __future__ import annotations

# Page keys in the order of the step list.
CONFIG_PAGES = ("basics", "networking", "advanced", "tags", "image", "function_app")
ALL_PAGES = (*CONFIG_PAGES, "review", "deploy", "test")

PAGE_TITLES = {
    "basics": "Basics",
    "networking": "Networking",
    "advanced": "Advanced",
    "tags": "Tags",
    "image": "Model image",
    "function_app": "Function app",
    "review": "Review + create",
    "deploy": "Deploy",
    "test": "Test",
}

# The first matching prefix wins: a field listed before its parent (function_app.auth)
# belongs to another page than the rest of it.
FIELD_OWNERS: dict[str, str] = {
    "target": "basics",
    "subscription_id": "basics",
    "location": "basics",
    "resource_group": "basics",
    "cache.kind": "basics",
    "cache.name": "basics",
    "cache.tier": "basics",
    "cache.size": "basics",
    "cache.public_network_access": "networking",
    "cache.non_tls_port": "advanced",
    "cache.minimum_tls_version": "advanced",
    "cache.redis_version": "advanced",
    "cache.auth": "advanced",
    "function_app.auth": "advanced",
    "cache.shards": "advanced",
    "cache.persistence": "advanced",
    "cache.persistence_frequency": "advanced",
    "cache.replicas": "advanced",
    "cache.update_channel": "advanced",
    "cache.clustering_policy": "advanced",
    "cache.eviction_policy": "advanced",
    "cache.modules": "advanced",
    "cache.zones": "advanced",
    "tags": "tags",
    "image": "image",
    "function_app": "function_app",
}

FIELD_LABELS: dict[str, str] = {
    "target": "Target",
    "subscription_id": "Subscription",
    "location": "Region",
    "resource_group.name": "Resource group",
    "cache.kind": "Cache type",
    "cache.name": "DNS name",
    "cache.tier": "Cache type",
    "cache.size": "Cache size",
    "cache.public_network_access": "Connectivity method",
    "cache.non_tls_port": "Non-TLS port",
    "cache.minimum_tls_version": "Minimum TLS version",
    "cache.redis_version": "Redis version",
    "cache.auth": "Cache authentication",
    "function_app.auth": "Registry and storage access",
    "cache.shards": "Shard count",
    "cache.persistence": "Data persistence",
    "cache.persistence_frequency": "Persistence frequency",
    "cache.replicas": "Replicas per primary",
    "cache.update_channel": "Update channel",
    "cache.clustering_policy": "Clustering policy",
    "cache.eviction_policy": "Eviction policy",
    "cache.modules": "Modules",
    "cache.zones": "Availability zones",
    "tags": "Tags",
    "image": "Model image",
    "image.reference": "Image reference",
    "image.build_from": "Model folder",
    "image.registry": "Registry",
    "image.repository": "Repository",
    "image.tag": "Tag",
    "function_app.name": "Function app name",
    "function_app.plan_name": "App Service plan",
    "function_app.plan_sku": "Pricing plan",
    "function_app.storage_account": "Storage account",
}


def _matches(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith((prefix + ".", prefix + "["))


def owner_of(path: str) -> str:
    """The page key that edits `path` (basics when nothing matches)."""
    for prefix, page in FIELD_OWNERS.items():
        if _matches(path, prefix):
            return page
    return "basics"


def owned_by(page: str, path: str) -> bool:
    return owner_of(path) == page


def label_of(path: str) -> str:
    if path in FIELD_LABELS:
        return FIELD_LABELS[path]
    if path.startswith("tags."):
        return f"Tag {path[5:]!r}"
    base = path.split("[", 1)[0]
    return FIELD_LABELS.get(base, path)


def sentence(message: str) -> str:
    """Rule messages start lower-case ("must not be empty"); under a field they lead."""
    return message[:1].upper() + message[1:] if message else message
