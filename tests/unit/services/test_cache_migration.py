"""Azure Managed Redis: Microsoft's SKU mapping, the spec switch, the plan, the blocked tenant."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError

from app.errors import BadInput, NotPermitted
from app.rules import CLASSIC_SIZES, MANAGED_SIZES, validate_spec
from app.services.cache_migration import (
    SKU_MAPPING,
    managed_redis_options,
    spec_changes,
    suggest_managed_redis,
    switch_text,
    switch_to_managed_redis,
)
from app.services.explain import describe, is_cache_blocked
from app.services.plan import build_plan, preflight
from app.services.resources.redis_cache import (
    BLOCKED_CODE,
    BLOCKED_MESSAGE,
    CacheCreationBlocked,
    blocked_error,
)
from app.spec import DeploymentSpec, load_spec
from tests.unit.services.test_explain import arm_error

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.fixture
def classic() -> DeploymentSpec:
    spec = load_spec(EXAMPLES / "digits-classic-sandbox.json")
    spec.cache.kind = "azure-cache-for-redis"
    spec.cache.tier, spec.cache.size = "Standard", "C0"
    return spec


@pytest.mark.parametrize(
    ("tier", "size", "expected"),
    [
        ("Basic", "C0", ("Balanced", "B0")),
        ("Standard", "C0", ("Balanced", "B0")),
        ("Standard", "C1", ("Balanced", "B1")),
        ("Standard", "C2", ("Balanced", "B3")),
        ("Basic", "C3", ("Balanced", "B5")),
        ("Standard", "C4", ("MemoryOptimized", "M20")),
        ("Standard", "C5", ("MemoryOptimized", "M50")),
        ("Standard", "C6", ("MemoryOptimized", "M50")),
        ("Premium", "P1", ("Balanced", "B5")),
        ("Premium", "P2", ("Balanced", "B20")),
        ("Premium", "P3", ("Balanced", "B50")),
        ("Premium", "P4", ("Balanced", "B50")),
        ("Premium", "P5", ("Balanced", "B100")),
    ],
)
def test_microsofts_mapping(tier: str, size: str, expected: tuple[str, str]) -> None:
    assert suggest_managed_redis(tier, size) == expected


def test_mapping_covers_every_classic_size_with_valid_managed_skus() -> None:
    for tier, sizes in CLASSIC_SIZES.items():
        for size in sizes:
            for managed_tier, managed_size in managed_redis_options(tier, size):
                assert managed_size in MANAGED_SIZES[managed_tier], (tier, size)
    assert len(SKU_MAPPING) == sum(len(s) for s in CLASSIC_SIZES.values())
    # The cost-efficient alternatives Microsoft lists come second.
    assert managed_redis_options("Standard", "C4") == (
        ("MemoryOptimized", "M20"), ("MemoryOptimized", "M10"),
    )


@pytest.mark.parametrize(("tier", "size"), [("Premium", "C1"), ("Basic", "P1"), ("Gold", "C0")])
def test_unknown_classic_sizes_are_bad_input(tier: str, size: str) -> None:
    with pytest.raises(BadInput):
        suggest_managed_redis(tier, size)


def test_switch_is_pure_and_yields_a_valid_spec(classic: DeploymentSpec) -> None:
    classic.cache.tier, classic.cache.size = "Premium", "P2"
    classic.cache.shards = 2
    classic.cache.zones = ["1", "2"]
    classic.cache.persistence = "rdb"
    classic.cache.persistence_frequency, classic.cache.replicas = "15", 3
    classic.cache.update_channel = "Preview"
    classic.cache.name = "a" * 63
    before = copy.deepcopy(classic)
    switched = switch_to_managed_redis(classic)
    assert classic == before
    cache = switched.cache
    assert (cache.kind, cache.tier, cache.size) == ("azure-managed-redis", "Balanced", "B20")
    assert cache.redis_version is None and cache.shards is None and cache.zones == []
    assert cache.persistence == "rdb" and cache.name == "a" * 60
    # Options Azure Managed Redis has not, or has in other units, are cleared.
    assert (cache.replicas, cache.update_channel, cache.persistence_frequency) == (
        None, None, None)
    assert validate_spec(switched) == []
    assert switch_to_managed_redis(switched) == switched


def test_the_switch_text_names_the_exact_change(classic: DeploymentSpec) -> None:
    switched = switch_to_managed_redis(classic)
    assert spec_changes(classic, switched) == [
        'cache.kind = "azure-managed-redis"',
        'cache.tier = "Balanced"',
        'cache.size = "B0"',
        "cache.redis_version = null",
    ]
    text = switch_text(classic)
    assert "Standard C0 maps to Balanced_B0" in text
    assert 'cache.kind = "azure-managed-redis", cache.tier = "Balanced"' in text


def test_plan_for_managed_redis(classic: DeploymentSpec) -> None:
    spec = switch_to_managed_redis(classic)
    preflight(spec)
    steps = {s.name: s for s in build_plan(spec)}
    assert steps["cache-cluster"].depends_on == ("resource-group",)
    assert steps["cache"].depends_on == ("cache-cluster",)
    assert "cache" in steps["app-settings"].depends_on
    assert "Balanced_B0" in steps["cache-cluster"].title
    entra = copy.deepcopy(spec)
    entra.cache.auth = "entra"
    preflight(entra)
    entra_steps = {s.name: s for s in build_plan(entra)}
    # The function's identity is granted the database before its settings are written.
    assert entra_steps["cache-access"].depends_on == ("cache", "function-app")
    assert "cache-access" in entra_steps["app-settings"].depends_on


def test_azures_refusal_becomes_a_plain_message_with_the_switch(classic: DeploymentSpec) -> None:
    exc = arm_error(400, BLOCKED_CODE, BLOCKED_MESSAGE)
    assert is_cache_blocked(BLOCKED_CODE, BLOCKED_MESSAGE)
    blocked = blocked_error(exc, classic)
    assert isinstance(blocked, CacheCreationBlocked) and isinstance(blocked, NotPermitted)
    assert "blocked for this tenant" in blocked.message and "2026-04-01" in blocked.message
    assert 'cache.kind = "azure-managed-redis"' in blocked.recommendation
    assert 'cache.size = "B0"' in blocked.recommendation
    assert blocked.suggested_spec.cache.kind == "azure-managed-redis"
    explained = describe(blocked)
    assert explained.code == "BadRequest" and explained.hint == blocked.recommendation
    assert is_cache_blocked(explained.code, explained.message)


def test_other_refusals_are_left_alone(classic: DeploymentSpec) -> None:
    assert blocked_error(arm_error(400, "BadRequest", "P3 is not valid for Basic"), classic) is None
    assert blocked_error(ValueError("no"), classic) is None
    assert blocked_error(HttpResponseError(message="boom"), classic) is None
    # Azure Managed Redis's own errors name it without being the blocked tenant.
    taken = "an Azure Managed Redis cluster with this name already exists."
    assert not is_cache_blocked("NameNotAvailable", taken)
    assert blocked_error(arm_error(409, "NameNotAvailable", taken), classic) is None



def test_arm_template_for_managed_redis(classic: DeploymentSpec) -> None:
    from app.services.export import arm_template

    spec = switch_to_managed_redis(classic)
    spec.cache.persistence = "aof"
    template = arm_template(spec)
    by_type = {r["type"]: r for r in template["resources"]}
    assert "Microsoft.Cache/redis" not in by_type
    cluster = by_type["Microsoft.Cache/redisEnterprise"]
    assert cluster["sku"] == {"name": "Balanced_B0"}
    assert cluster["properties"] == {"minimumTlsVersion": "1.2", "publicNetworkAccess": "Enabled"}
    database = by_type["Microsoft.Cache/redisEnterprise/databases"]
    assert database["name"] == "[format('{0}/default', parameters('cacheName'))]"
    assert database["properties"]["accessKeysAuthentication"] == "Enabled"
    assert database["properties"]["clientProtocol"] == "Encrypted"
    assert database["properties"]["persistence"] == {"aofEnabled": True, "aofFrequency": "1s"}
    site = by_type["Microsoft.Web/sites"]
    settings = {s["name"]: s["value"] for s in site["properties"]["siteConfig"]["appSettings"]}
    assert ".port)]" in settings["REDIS_PORT"] and "databases" in settings["REDIS_PORT"]
    assert settings["REDIS_KEY"].startswith("[listKeys(resourceId('Microsoft.Cache/"
                                            "redisEnterprise/databases'")
    assert any("redisEnterprise/databases" in d for d in site["dependsOn"])


def test_azcli_script_for_managed_redis(classic: DeploymentSpec) -> None:
    from app.services.export import azcli_script

    script = azcli_script(switch_to_managed_redis(classic))
    assert "az redis create" not in script and "az redis wait" not in script
    create = next(line for line in script.splitlines() if "az redisenterprise create" in line)
    for part in ("--sku Balanced_B0", "--access-keys-auth Enabled", "--client-protocol Encrypted",
                 "--public-network-access Enabled", "--minimum-tls-version 1.2", "--no-wait"):
        assert part in create
    assert "az redisenterprise database show" in script and "--query port" in script
    assert "az redisenterprise database list-keys" in script
