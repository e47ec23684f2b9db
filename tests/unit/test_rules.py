"""The naming, SKU, feature and tag rules, table by table, boundaries included."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app import rules
from app.rules import check_name, check_tag_name, check_tag_value, validate_spec
from app.spec import CacheSpec, DeploymentSpec, FunctionAppSpec, ImageSpec, ResourceGroupSpec


def valid_spec() -> DeploymentSpec:
    return DeploymentSpec(
        resource_group=ResourceGroupSpec(name="rg-demo"),
        cache=CacheSpec(kind="azure-cache-for-redis", name="demo-cache", tier="Standard",
                        size="C1", redis_version="6", auth="access-keys"),
        image=ImageSpec(reference="demoacr.azurecr.io/scoring:v1"),
        function_app=FunctionAppSpec(
            name="demo-func", plan_name="demo-plan", storage_account="demostore1"
        ),
    )


def fields(spec: DeploymentSpec) -> list[str]:
    return [p.field for p in validate_spec(spec)]


NAME_CASES = [
    # kind, value, expected fragment (None: valid)
    ("cache", "a", None),
    ("cache", "a" * 63, None),
    ("cache", "a" * 64, "at most 63 characters"),
    ("cache", "", "must not be empty"),
    ("cache", "My-Cache-1", None),
    ("cache", "-cache", "must start with a letter or digit"),
    ("cache", "cache-", "must end with a letter or digit"),
    ("cache", "ca--che", "must not contain consecutive hyphens"),
    ("cache", "ca_che", "may contain only letters, digits and hyphens"),
    ("managed_cache", "a" * 60, None),
    ("managed_cache", "a" * 61, "at most 60 characters"),
    ("managed_cache", "1cache", None),
    ("managed_cache", "-cache", "must start with a letter or digit"),
    ("managed_cache", "ca--che", "must not contain consecutive hyphens"),
    ("resource_group", "a", None),
    ("resource_group", "a" * 90, None),
    ("resource_group", "a" * 91, "at most 90 characters"),
    ("resource_group", "rg_(prod)-1.x", None),
    ("resource_group", "rg.", "must not end with a period"),
    ("resource_group", "rg prod", "may contain only"),
    ("resource_group", "rg/prod", "may contain only"),
    ("resource_group", "", "must not be empty"),
    ("storage_account", "abc", None),
    ("storage_account", "ab", "at least 3 characters"),
    ("storage_account", "a" * 24, None),
    ("storage_account", "a" * 25, "at most 24 characters"),
    ("storage_account", "Abc", "lowercase letters and digits"),
    ("storage_account", "ab-c", "lowercase letters and digits"),
    ("function_app", "ab", None),
    ("function_app", "a", "at least 2 characters"),
    ("function_app", "a" * 60, None),
    ("function_app", "a" * 61, "at most 60 characters"),
    ("function_app", "-ab", "must start with a letter or digit"),
    ("function_app", "ab-", "must end with a letter or digit"),
    ("function_app", "a--b", None),
    ("function_app", "a.b", "may contain only letters, digits and hyphens"),
    ("plan", "p", None),
    ("plan", "p" * 60, None),
    ("plan", "p" * 61, "at most 60 characters"),
    ("plan", "plan_1", "may contain only letters, digits and hyphens"),
    ("registry", "abcde", None),
    ("registry", "abcd", "at least 5 characters"),
    ("registry", "a" * 50, None),
    ("registry", "a" * 51, "at most 50 characters"),
    ("registry", "my-acr1", "letters and digits"),
]


@pytest.mark.parametrize(("kind", "value", "expected"), NAME_CASES)
def test_name_rules(kind: str, value: str, expected: str | None) -> None:
    problems = check_name(kind, value)
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), problems


def test_unicode_letters_are_allowed_in_resource_group_names() -> None:
    assert check_name("resource_group", "gruppe-größe") == []


# Azure's documented character classes, independently of the rule table.
AZURE_CLASSES = {
    "cache": re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?!-))*[A-Za-z0-9]|[A-Za-z0-9]"),
    "storage_account": re.compile(r"[a-z0-9]{3,24}"),
    "function_app": re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,58}[A-Za-z0-9]"),
    "plan": re.compile(r"[A-Za-z0-9-]{1,60}"),
    "registry": re.compile(r"[A-Za-z0-9]{5,50}"),
}
ascii_names = st.text(
    alphabet=st.sampled_from("abcXYZ019-_.() /"), min_size=0, max_size=70
)


@pytest.mark.parametrize("kind", sorted(AZURE_CLASSES))
@given(value=ascii_names)
def test_accepted_names_match_azure_character_classes(kind: str, value: str) -> None:
    accepted = check_name(kind, value) == []
    matches = AZURE_CLASSES[kind].fullmatch(value) is not None
    if kind == "cache":
        matches = matches and len(value) <= 63
    assert accepted == matches


@given(value=st.text(max_size=100))
def test_accepted_resource_group_names_match_azure_classes(value: str) -> None:
    if check_name("resource_group", value) == []:
        assert re.fullmatch(r"[\w\-.()]{1,90}", value)
        assert not value.endswith(".")


SIZE_CASES = [
    ("Basic", "C0", True), ("Basic", "C6", True), ("Basic", "C7", False),
    ("Standard", "C3", True), ("Standard", "P1", False),
    ("Premium", "P1", True), ("Premium", "P5", True), ("Premium", "P6", False),
    ("Premium", "C1", False), ("Gold", "C1", False),
]


@pytest.mark.parametrize(("tier", "size", "ok"), SIZE_CASES)
def test_classic_sizes(tier: str, size: str, ok: bool) -> None:
    spec = valid_spec()
    spec.cache.tier, spec.cache.size = tier, size
    bad = {"cache.size", "cache.tier"} & set(fields(spec))
    assert (not bad) == ok


FEATURE_CASES = [
    # tier, size, change, field expected to be flagged (None: accepted)
    ("Premium", "P1", {"shards": 3}, None),
    ("Standard", "C1", {"shards": 3}, "cache.shards"),
    ("Premium", "P1", {"shards": 0}, "cache.shards"),
    ("Premium", "P1", {"shards": 11}, "cache.shards"),
    ("Premium", "P1", {"persistence": "aof"}, None),
    ("Premium", "P1", {"persistence": "snapshot"}, "cache.persistence"),
    ("Standard", "C1", {"persistence": "rdb"}, "cache.persistence"),
    ("Standard", "C1", {"zones": ["1", "2"]}, None),
    ("Premium", "P2", {"zones": ["1", "2", "3"]}, None),
    ("Basic", "C1", {"zones": ["1"]}, "cache.zones"),
    ("Standard", "C1", {"zones": ["4"]}, "cache.zones[0]"),
    ("Standard", "C1", {"zones": ["1", "1"]}, "cache.zones"),
    ("Standard", "C1", {"minimum_tls_version": "1.0"}, "cache.minimum_tls_version"),
    ("Standard", "C1", {"minimum_tls_version": "1.1"}, "cache.minimum_tls_version"),
    ("Standard", "C1", {"redis_version": "4"}, "cache.redis_version"),
    ("Standard", "C1", {"redis_version": None}, None),
    ("Standard", "C1", {"auth": "entra"}, None),
    ("Standard", "C1", {"auth": "password"}, "cache.auth"),
    ("Standard", "C1", {"kind": "memcached"}, "cache.kind"),
]


@pytest.mark.parametrize(("tier", "size", "change", "flagged"), FEATURE_CASES)
def test_sku_features(tier: str, size: str, change: dict, flagged: str | None) -> None:
    spec = valid_spec()
    spec.cache.tier, spec.cache.size = tier, size
    assert_flagged(spec, change, flagged)


def assert_flagged(spec: DeploymentSpec, change: dict, flagged: str | None) -> None:
    """`change` applied to the cache, `flagged` is among the problems (None: none)."""
    for key, value in change.items():
        setattr(spec.cache, key, value)
    found = fields(spec)
    if flagged is None:
        assert found == []
    else:
        assert flagged in found


def test_managed_redis_tiers_and_sizes() -> None:
    spec = valid_spec()
    spec.cache = CacheSpec(kind="azure-managed-redis", name="demo-cache", tier="Balanced",
                           size="B0", redis_version=None)
    assert fields(spec) == []
    spec.cache.size = "M10"
    assert "cache.size" in fields(spec)
    spec.cache.tier, spec.cache.size = "Standard", "C1"
    assert "cache.tier" in fields(spec)
    spec.cache.tier, spec.cache.size, spec.cache.redis_version = "Balanced", "B1", "6"
    assert fields(spec) == ["cache.redis_version"]


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("a", True), ("a" * 128, True), ("a" * 129, False), ("", False),
        ("cost<center", False), ("a>b", False), ("50%", False), ("r&d", False),
        ("back\\slash", False), ("why?", False), ("a/b", False),
        ("microsoftx", False), ("Azure-env", False), ("WINDOWS", False), ("my-azure", True),
    ],
)
def test_tag_names(name: str, ok: bool) -> None:
    assert (check_tag_name(name) == []) == ok


def test_tag_values() -> None:
    assert check_tag_value("v" * 256) == []
    assert check_tag_value("") == []
    assert check_tag_value("v" * 257) != []


def test_tag_count_counts_the_created_by_tag() -> None:
    spec = valid_spec()
    spec.tags = {f"t{i}": "x" for i in range(49)}
    assert fields(spec) == []
    spec.tags["one-more"] = "x"
    assert fields(spec) == ["tags"]
    spec.tags = {f"t{i}": "x" for i in range(49)} | {rules.CREATED_BY_TAG: "mlcache-deploy"}
    assert fields(spec) == []


def test_own_created_by_tag_is_refused_not_replaced() -> None:
    spec = valid_spec()
    spec.tags = {"Created-By": "Alice"}
    [problem] = validate_spec(spec)
    assert problem.field == "tags.Created-By"
    assert "'Alice' would be replaced" in problem.message
    assert "'mlcache-deploy'" in problem.message
    # The tool's own value is what it would write anyway: nothing to say.
    spec.tags = {"created-by": "mlcache-deploy"}
    assert validate_spec(spec) == []


def test_tag_messages_quote_the_name_as_typed() -> None:
    spec = valid_spec()
    spec.tags = {"a<b": "x"}
    [problem] = validate_spec(spec)
    assert problem.message.startswith("tag 'a<b': ")


IMAGE_CASES = [
    (ImageSpec(reference="acr12345.azurecr.io/pkg@sha256:" + "a" * 64), None),
    (ImageSpec(reference="acr12345.azurecr.io/models/digits:v1"), None),
    (ImageSpec(reference="docker.io/library/python:3"), "image.reference"),
    (ImageSpec(), "image"),
    (ImageSpec(reference="acr12345.azurecr.io/a:1", build_from="m"), "image"),
    (ImageSpec(build_from="model", registry="acr12345", repository="digits", tag="v1"), None),
    (ImageSpec(build_from="model", registry="acr", repository="digits", tag="v1"),
     "image.registry"),
    (ImageSpec(build_from="model", registry="acr12345", repository="Digits", tag="v1"),
     "image.repository"),
    (ImageSpec(build_from="model", registry="acr12345", repository="digits", tag=".v1"),
     "image.tag"),
    (ImageSpec(build_from="", registry="acr12345", repository="digits", tag="v1"),
     "image.build_from"),
    (ImageSpec(registry="acr12345", repository="digits", tag="v1"), "image.build_from"),
    (ImageSpec(build_from="model", registry="acr12345", repository="digits", tag="v1",
               builder="acr-tasks"), None),
    (ImageSpec(build_from="model", registry="acr12345", repository="digits", tag="v1",
               builder="layer"), None),
    (ImageSpec(build_from="model", registry="acr12345", repository="digits", tag="v1",
               builder="docker"), "image.builder"),
    (ImageSpec(reference="acr12345.azurecr.io/a:1", builder="layer"), "image.builder"),
]


@pytest.mark.parametrize(("image", "flagged"), IMAGE_CASES)
def test_image_forms(image: ImageSpec, flagged: str | None) -> None:
    spec = valid_spec()
    spec.image = image
    found = fields(spec)
    assert found == [] if flagged is None else flagged in found


def test_a_build_uses_the_layer_builder_unless_it_asks_for_acr_tasks() -> None:
    spec = valid_spec()
    spec.image = ImageSpec(build_from="model", registry="acr12345", repository="d", tag="1")
    assert rules.image_builder(spec) == "layer"
    spec.image.builder = "acr-tasks"
    assert rules.image_builder(spec) == "acr-tasks"


@pytest.mark.parametrize(
    ("change", "flagged"),
    [
        ({"target": "azure"}, "subscription_id"),
        ({"target": "azure", "subscription_id": "not-a-guid"}, "subscription_id"),
        ({"target": "azure", "subscription_id": "12345678-1234-1234-1234-123456789abc"}, None),
        ({"target": "aws"}, "target"),
        ({"location": "West Europe"}, "location"),
        ({"location": ""}, "location"),
    ],
)
def test_target_and_location(change: dict, flagged: str | None) -> None:
    spec = valid_spec()
    for key, value in change.items():
        setattr(spec, key, value)
    found = fields(spec)
    assert found == [] if flagged is None else flagged in found


@pytest.mark.parametrize(("sku", "ok"), [("B1", True), ("P1v3", True), ("EP1", True),
                                         ("Y1", False), ("F1", False)])
def test_plan_skus(sku: str, ok: bool) -> None:
    spec = valid_spec()
    spec.function_app.plan_sku = sku
    assert (fields(spec) == []) == ok


def test_problem_text_names_the_field() -> None:
    spec = valid_spec()
    spec.cache.name = "a--b"
    assert [str(p) for p in validate_spec(spec)] == [
        "cache.name: must not contain consecutive hyphens"
    ]


def test_the_created_by_tag_is_found_whatever_the_case_of_its_key() -> None:
    """ARM keeps tag names case-insensitive, and the portal may show `Created-By`."""
    from app.rules import created_by_us

    assert created_by_us({"Created-By": "mlcache-deploy"})
    assert created_by_us({"created-by": "mlcache-deploy", "owner": "x"})
    assert not created_by_us({"created-by": "someone-else"})
    assert not created_by_us(None)


OPTION_CASES = [
    # kind, tier, change, field expected to be flagged (None: accepted)
    ("azure-cache-for-redis", "Premium", {"persistence": "rdb", "persistence_frequency": "15"},
     None),
    ("azure-cache-for-redis", "Premium", {"persistence": "rdb", "persistence_frequency": "45"},
     "cache.persistence_frequency"),
    ("azure-cache-for-redis", "Premium", {"persistence": "aof", "persistence_frequency": "60"},
     "cache.persistence_frequency"),
    ("azure-cache-for-redis", "Premium", {"persistence_frequency": "60"},
     "cache.persistence_frequency"),
    ("azure-cache-for-redis", "Standard", {"persistence": "rdb"}, "cache.persistence"),
    ("azure-cache-for-redis", "Basic", {"persistence": "aof"}, "cache.persistence"),
    ("azure-cache-for-redis", "Premium", {"replicas": 3}, None),
    ("azure-cache-for-redis", "Premium", {"replicas": 4}, "cache.replicas"),
    ("azure-cache-for-redis", "Premium", {"replicas": 0}, "cache.replicas"),
    ("azure-cache-for-redis", "Standard", {"replicas": 2}, "cache.replicas"),
    ("azure-cache-for-redis", "Premium", {"replicas": 2, "persistence": "aof"},
     "cache.replicas"),
    ("azure-cache-for-redis", "Premium", {"replicas": 2, "persistence": "rdb"}, None),
    ("azure-cache-for-redis", "Basic", {"update_channel": "Preview"}, None),
    ("azure-cache-for-redis", "Basic", {"update_channel": "Beta"}, "cache.update_channel"),
    ("azure-cache-for-redis", "Premium", {"modules": ["RedisJSON"]}, "cache.modules"),
    ("azure-cache-for-redis", "Premium", {"eviction_policy": "NoEviction"},
     "cache.eviction_policy"),
    ("azure-managed-redis", "Balanced", {"replicas": 2}, "cache.replicas"),
    ("azure-managed-redis", "Balanced", {"update_channel": "Preview"}, "cache.update_channel"),
    ("azure-managed-redis", "Balanced", {"persistence": "rdb", "persistence_frequency": "12h"},
     None),
    ("azure-managed-redis", "Balanced", {"persistence": "rdb", "persistence_frequency": "1s"},
     "cache.persistence_frequency"),
    ("azure-managed-redis", "Balanced", {"persistence": "aof", "persistence_frequency": "always"},
     None),
    ("azure-managed-redis", "Balanced", {"persistence_frequency": "1h"},
     "cache.persistence_frequency"),
    ("azure-managed-redis", "Balanced", {"clustering_policy": "NoCluster"}, None),
    ("azure-managed-redis", "Balanced", {"clustering_policy": "OSSCluster"},
     "cache.clustering_policy"),
    ("azure-managed-redis", "Balanced", {"clustering_policy": "Sharded"},
     "cache.clustering_policy"),
    ("azure-managed-redis", "Balanced", {"eviction_policy": "AllKeysLFU"}, None),
    ("azure-managed-redis", "Balanced", {"eviction_policy": "allkeys-lfu"},
     "cache.eviction_policy"),
    ("azure-managed-redis", "Balanced", {"modules": ["RedisBloom", "RedisTimeSeries"]}, None),
    ("azure-managed-redis", "Balanced", {"modules": ["RedisGraph"]}, "cache.modules"),
    ("azure-managed-redis", "Balanced", {"modules": ["RedisJSON", "RedisJSON"]},
     "cache.modules"),
    ("azure-managed-redis", "Balanced", {"modules": ["RediSearch"]}, "cache.eviction_policy"),
    ("azure-managed-redis", "Balanced",
     {"modules": ["RediSearch"], "eviction_policy": "NoEviction"}, None),
    ("azure-managed-redis", "Balanced",
     {"modules": ["RediSearch"], "eviction_policy": "NoEviction",
      "clustering_policy": "NoCluster"}, "cache.clustering_policy"),
]


@pytest.mark.parametrize(("kind", "tier", "change", "flagged"), OPTION_CASES)
def test_portal_options_per_kind_and_tier(kind: str, tier: str, change: dict[str, object],
                                          flagged: str | None) -> None:
    spec = valid_spec()
    size = rules.sizes_for(kind, tier)[0]
    spec.cache.kind, spec.cache.tier, spec.cache.size = kind, tier, size
    spec.cache.redis_version = None if kind == "azure-managed-redis" else "6"
    assert_flagged(spec, change, flagged)


def test_a_refused_option_says_why_in_the_words_the_wizard_shows() -> None:
    spec = valid_spec()
    spec.cache.persistence = "rdb"
    blockers = rules.cache_option_blockers(spec)
    (problem,) = [p for p in validate_spec(spec) if p.field == "cache.persistence"]
    assert problem.message == blockers["persistence"]
    assert "Premium tier" in problem.message and "Standard" in problem.message
    spec.cache.tier, spec.cache.size = "Premium", "P1"
    assert "persistence" not in rules.cache_option_blockers(spec)


def test_default_persistence_frequency_per_kind() -> None:
    spec = valid_spec()
    spec.cache.tier, spec.cache.size, spec.cache.persistence = "Premium", "P1", "rdb"
    assert rules.persistence_frequency(spec) == "60"
    spec.cache.persistence = "aof"
    assert rules.persistence_frequency(spec) is None
    spec.cache.kind = "azure-managed-redis"
    assert rules.persistence_frequency(spec) == "1s"
    spec.cache.persistence = "rdb"
    assert rules.persistence_frequency(spec) == "1h"
    spec.cache.persistence_frequency = "12h"
    assert rules.persistence_frequency(spec) == "12h"


def test_option_tables_are_the_sdks_enums() -> None:
    from azure.mgmt.redis import models as redis_models
    from azure.mgmt.redisenterprise import models as re_models

    assert set(rules.UPDATE_CHANNELS) == {c.value for c in redis_models.UpdateChannel}
    assert set(rules.CLUSTERING_POLICIES) == {c.value for c in re_models.ClusteringPolicy}
    assert set(rules.EVICTION_POLICIES) == {c.value for c in re_models.EvictionPolicy}
    assert set(rules.MANAGED_FREQUENCIES["rdb"]) == {f.value for f in re_models.RdbFrequency}
    assert set(rules.MANAGED_FREQUENCIES["aof"]) == {f.value for f in re_models.AofFrequency}
    assert rules.DEFAULT_EVICTION_POLICY == "VolatileLRU"  # the enum's documented default


def test_the_workspace_named_after_a_long_app_must_fit_azures_length() -> None:
    spec = valid_spec()
    spec.function_app.name = "a" * 58  # "-logs" makes 63: the longest Azure takes
    assert "monitoring.enabled" not in fields(spec)
    spec.function_app.name = "a" * 59
    (problem,) = [p for p in validate_spec(spec) if p.field == "monitoring.enabled"]
    assert "64 characters" in problem.message
    spec.monitoring.enabled = False
    assert "monitoring.enabled" not in fields(spec)
