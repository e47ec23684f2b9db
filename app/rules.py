"""Azure's naming, SKU, feature and tag rules: pure data plus small checks.

Every check returns messages a person understands; `validate_spec` pins them to
field paths. The wizard's live field check, the review page and
`mlcache-deploy validate` all call these same functions. Nothing here touches
the network: global name availability is a separate, remote check in services.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from app.imageref import REPOSITORY_RE, TAG_RE, ImageReferenceError, parse_image_reference
from app.spec import DeploymentSpec

CREATED_BY_TAG = "created-by"
CREATED_BY_VALUE = "mlcache-deploy"


def tags_with_created_by(tags: dict[str, str]) -> dict[str, str]:
    """The tags every created resource carries: the user's, and ours last."""
    return {**tags, CREATED_BY_TAG: CREATED_BY_VALUE}


def created_by_us(tags: dict[str, str] | None) -> bool:
    """Whether a resource carries our created-by tag (ARM keeps tag keys case-insensitive)."""
    return any(
        key.lower() == CREATED_BY_TAG and value == CREATED_BY_VALUE
        for key, value in (tags or {}).items()
    )


@dataclass(frozen=True)
class Problem:
    """A rule broken by one field. `message` is what the CLI prints after the field's
    spec key (it may name other keys); `for_people`, when the message names spec keys,
    is the same thing in the wizard's words (its field labels), which `plain` gives."""

    field: str
    message: str
    for_people: str = ""

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    @property
    def plain(self) -> str:
        return self.for_people or self.message

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


@dataclass(frozen=True)
class NameRule:
    """One Azure resource type's naming rule, as its documentation states it."""

    what: str
    min_len: int
    max_len: int
    allowed: str  # a regex character class body
    allowed_text: str
    start: str | None = None  # character class the first character must match
    start_text: str = ""
    end: str | None = None
    end_text: str = ""
    no_double_hyphen: bool = False
    not_ending_with_period: bool = False


# Sources: "Naming rules and restrictions for Azure resources" (Microsoft Learn),
# per resource provider. `\w` is Unicode-aware, which resource group names allow.
NAME_RULES: dict[str, NameRule] = {
    "cache": NameRule(
        "cache name", 1, 63, r"A-Za-z0-9-", "letters, digits and hyphens",
        start=r"A-Za-z0-9", start_text="a letter or digit",
        end=r"A-Za-z0-9", end_text="a letter or digit", no_double_hyphen=True,
    ),
    # Microsoft.Cache/redisEnterprise: "1-60 characters ... no leading nor
    # trailing nor consecutive hyphens" (the cluster name's API description).
    "managed_cache": NameRule(
        "cache name", 1, 60, r"A-Za-z0-9-", "letters, digits and hyphens",
        start=r"A-Za-z0-9", start_text="a letter or digit",
        end=r"A-Za-z0-9", end_text="a letter or digit", no_double_hyphen=True,
    ),
    "resource_group": NameRule(
        "resource group name", 1, 90, r"\w\-.()",
        "letters, digits, underscores, hyphens, periods and parentheses",
        not_ending_with_period=True,
    ),
    "storage_account": NameRule(
        "storage account name", 3, 24, r"a-z0-9", "lowercase letters and digits"
    ),
    "function_app": NameRule(
        "function app name", 2, 60, r"A-Za-z0-9-", "letters, digits and hyphens",
        start=r"A-Za-z0-9", start_text="a letter or digit",
        end=r"A-Za-z0-9", end_text="a letter or digit",
    ),
    "plan": NameRule("plan name", 1, 60, r"A-Za-z0-9-", "letters, digits and hyphens"),
    "registry": NameRule("registry name", 5, 50, r"A-Za-z0-9", "letters and digits"),
}


def check_name(kind: str, value: str) -> list[str]:
    """Messages for every way `value` breaks the `kind` naming rule (empty: fine)."""
    rule = NAME_RULES[kind]
    if not value:
        return ["must not be empty"]
    problems = []
    if len(value) < rule.min_len:
        problems.append(f"must be at least {rule.min_len} characters (has {len(value)})")
    if len(value) > rule.max_len:
        problems.append(f"must be at most {rule.max_len} characters (has {len(value)})")
    bad = sorted({c for c in value if not re.fullmatch(f"[{rule.allowed}]", c)})
    if bad:
        shown = " ".join(repr(c) for c in bad[:5])
        problems.append(f"may contain only {rule.allowed_text} (not {shown})")
    if rule.start and not re.fullmatch(f"[{rule.start}]", value[0]):
        problems.append(f"must start with {rule.start_text}")
    if rule.end and not re.fullmatch(f"[{rule.end}]", value[-1]):
        problems.append(f"must end with {rule.end_text}")
    if rule.no_double_hyphen and "--" in value:
        problems.append("must not contain consecutive hyphens")
    if rule.not_ending_with_period and value.endswith("."):
        problems.append("must not end with a period")
    return problems


# --- SKUs and features -------------------------------------------------------

CACHE_KINDS = ("azure-cache-for-redis", "azure-managed-redis")
CLASSIC_SIZES = {
    "Basic": tuple(f"C{i}" for i in range(7)),
    "Standard": tuple(f"C{i}" for i in range(7)),
    "Premium": tuple(f"P{i}" for i in range(1, 6)),
}
# Azure Managed Redis (Microsoft.Cache/redisEnterprise) SKUs are `<tier>_<size>`.
MANAGED_SIZES = {
    "Balanced": ("B0", "B1", "B3", "B5", "B10", "B20", "B50", "B100", "B150", "B250",
                 "B350", "B500", "B700", "B1000"),
    "MemoryOptimized": ("M10", "M20", "M50", "M100", "M150", "M250", "M350", "M500",
                        "M700", "M1000", "M1500", "M2000"),
    "ComputeOptimized": ("X3", "X5", "X10", "X20", "X50", "X100", "X150", "X250",
                         "X350", "X500", "X700"),
}
TLS_VERSIONS = ("1.2",)
REDIS_VERSIONS = ("6",)
AUTH_MODES = ("access-keys", "entra")
# How the function app reaches its registry and host storage (docs/spec.md).
FUNCTION_AUTH_MODES = ("managed-identity", "keys")
# How a model folder becomes an image: layers made here and pushed, or ACR Tasks.
IMAGE_BUILDERS = ("layer", "acr-tasks")
DEFAULT_IMAGE_BUILDER = "layer"
PERSISTENCE_MODES = ("rdb", "aof")
# Azure Cache for Redis: `rdb-backup-frequency` in minutes, as the Redis RP's API
# describes it (15, 30, 60, 360, 720, 1440); 60 is what the portal preselects.
CLASSIC_RDB_FREQUENCIES = ("15", "30", "60", "360", "720", "1440")
CLASSIC_RDB_DEFAULT = "60"
# Premium adds up to three replicas per primary (Microsoft Learn, "Add replicas to
# Premium tier Azure Cache for Redis"); AOF persistence is refused above one.
MAX_REPLICAS = 3
UPDATE_CHANNELS = ("Stable", "Preview")  # azure-mgmt-redis UpdateChannel
# Azure Managed Redis, azure-mgmt-redisenterprise 3.1.0 (API 2025-07-01) enums:
# RdbFrequency, AofFrequency, ClusteringPolicy, EvictionPolicy; module names as the
# API takes them. tests/unit/test_rules.py holds these to the SDK's own enums.
MANAGED_FREQUENCIES = {"rdb": ("1h", "6h", "12h"), "aof": ("1s", "always")}
CLUSTERING_POLICIES = ("EnterpriseCluster", "NoCluster", "OSSCluster")
DEFAULT_CLUSTERING_POLICY = "EnterpriseCluster"
EVICTION_POLICIES = ("AllKeysLFU", "AllKeysLRU", "AllKeysRandom", "VolatileLRU",
                     "VolatileLFU", "VolatileTTL", "VolatileRandom", "NoEviction")
DEFAULT_EVICTION_POLICY = "VolatileLRU"
MODULES = ("RediSearch", "RedisJSON", "RedisBloom", "RedisTimeSeries")
# The product's own limit: the scoring function's Redis client is not cluster-aware.
OSS_CLUSTER_REASON = ("OSS clustering needs a cluster-aware client, and the scoring "
                      "function's client speaks the ordinary Redis protocol")
ZONES = ("1", "2", "3")
MAX_SHARDS = 10
# Linux App Service plans that can run a Functions container. Consumption (Y1)
# and Flex Consumption cannot run custom containers.
PLAN_SKUS = ("B1", "B2", "B3", "S1", "S2", "S3", "P0v3", "P1v3", "P2v3", "P3v3",
             "P1v2", "P2v2", "P3v2", "EP1", "EP2", "EP3")
TARGETS = ("sandbox", "azure")

_LOCATION = re.compile(r"[a-z][a-z0-9]*")
_GUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def _one_of(value: object, allowed: Iterable[str]) -> str | None:
    options = list(allowed)
    if value in options:
        return None
    return f"must be one of {', '.join(options)} (got {value!r})"


def sizes_for(kind: str, tier: str) -> tuple[str, ...]:
    table = MANAGED_SIZES if kind == "azure-managed-redis" else CLASSIC_SIZES
    return table.get(tier, ())


def tiers_for(kind: str) -> tuple[str, ...]:
    return tuple(MANAGED_SIZES if kind == "azure-managed-redis" else CLASSIC_SIZES)


def check_cache(spec: DeploymentSpec) -> list[Problem]:
    cache = spec.cache
    out: list[Problem] = []

    def add(path: str, message: str | None) -> None:
        if message:
            out.append(Problem(f"cache.{path}", message))

    add("kind", _one_of(cache.kind, CACHE_KINDS))
    managed = cache.kind == "azure-managed-redis"
    for message in check_name("managed_cache" if managed else "cache", cache.name):
        add("name", message)
    tiers = tiers_for(cache.kind)
    add("tier", _one_of(cache.tier, tiers))
    if cache.tier in tiers and cache.size not in sizes_for(cache.kind, cache.tier):
        add("size", f"a {cache.tier} cache takes sizes "
                    f"{', '.join(sizes_for(cache.kind, cache.tier))} (got {cache.size!r})")
    add("minimum_tls_version", None if cache.minimum_tls_version in TLS_VERSIONS else
        f"must be 1.2; TLS {cache.minimum_tls_version} is retired on Azure's Redis caches")
    if managed:
        if cache.redis_version is not None:
            add("redis_version", "must be left empty: Azure Managed Redis manages the version")
        if cache.shards is not None:
            add("shards", "Azure Managed Redis scales by size, not by a shard count")
        if cache.zones:
            add("zones", "Azure Managed Redis spreads replicas across zones itself")
        if cache.non_tls_port:
            add("non_tls_port", "Azure Managed Redis accepts TLS connections only")
    else:
        if cache.redis_version is not None:
            add("redis_version", _one_of(cache.redis_version, REDIS_VERSIONS))
        premium = cache.tier == "Premium"
        if cache.shards is not None:
            if not premium:
                add("shards", "clustering (a shard count) needs the Premium tier")
            elif not 1 <= cache.shards <= MAX_SHARDS:
                add("shards", f"must be between 1 and {MAX_SHARDS} (got {cache.shards})")
        if cache.zones and cache.tier == "Basic":
            add("zones", "availability zones need the Standard or Premium tier")
    for path, reason in cache_option_blockers(spec).items():
        if getattr(cache, path) not in (None, []):
            add(path, reason)
    if cache.persistence is not None:
        add("persistence", _one_of(cache.persistence, PERSISTENCE_MODES))
    out += _check_cache_options(spec)
    for i, zone in enumerate(cache.zones):
        if zone not in ZONES:
            out.append(Problem(f"cache.zones[{i}]", _one_of(zone, ZONES) or ""))
    if len(set(cache.zones)) != len(cache.zones):
        add("zones", "must not list a zone twice")
    add("auth", _one_of(cache.auth, AUTH_MODES))
    return out


def cache_option_blockers(spec: DeploymentSpec) -> dict[str, str]:
    """Each cache option this kind and tier cannot have, with the reason.

    One table for the rule (a spec that sets the option anyway is refused with the
    reason) and for the wizard (the option is disabled, the reason beside it)."""
    cache = spec.cache
    out: dict[str, str] = {}
    if cache.kind == "azure-managed-redis":
        reason = "applies to Azure Cache for Redis only; Azure Managed Redis {}"
        out["replicas"] = reason.format("replicates through its high availability")
        out["update_channel"] = reason.format("applies Redis updates itself")
        return out
    classic = "applies to Azure Managed Redis only"
    out.update(clustering_policy=classic, eviction_policy=classic, modules=classic)
    if cache.tier != "Premium":
        out["persistence"] = (f"data persistence needs the Premium tier; a {cache.tier} "
                              "cache keeps its data in memory only")
        out["persistence_frequency"] = out["persistence"]
        out["replicas"] = (f"more than one replica needs the Premium tier; a {cache.tier} "
                           "cache has " + ("no replica" if cache.tier == "Basic"
                                           else "one replica"))
    elif cache.persistence != "rdb":
        out["persistence_frequency"] = ("a backup frequency applies to RDB snapshots; "
                                        "AOF writes every second" if cache.persistence
                                        else "needs data persistence")
    return out


def _check_cache_options(spec: DeploymentSpec) -> list[Problem]:
    """The values of the portal's Advanced options, where the kind and tier allow them."""
    cache = spec.cache
    blocked = cache_option_blockers(spec)
    out: list[Problem] = []

    def add(path: str, message: str | None) -> None:
        if message and path not in blocked:
            out.append(Problem(f"cache.{path}", message))

    frequency = cache.persistence_frequency
    if cache.kind == "azure-managed-redis":
        if frequency is not None:
            add("persistence_frequency", "needs data persistence" if not cache.persistence
                else _one_of(frequency, MANAGED_FREQUENCIES.get(cache.persistence, ())))
        if cache.clustering_policy is not None:
            add("clustering_policy", _one_of(cache.clustering_policy, CLUSTERING_POLICIES))
        if cache.clustering_policy == "OSSCluster":
            add("clustering_policy", f"{OSS_CLUSTER_REASON}: choose EnterpriseCluster or "
                "NoCluster")
        if cache.eviction_policy is not None:
            add("eviction_policy", _one_of(cache.eviction_policy, EVICTION_POLICIES))
        for module in cache.modules:
            add("modules", _one_of(module, MODULES))
        if len(set(cache.modules)) != len(cache.modules):
            add("modules", "must not list a module twice")
        if "RediSearch" in cache.modules:
            # Microsoft Learn, "Plan Redis modules": RediSearch requires the Enterprise
            # clustering policy and the NoEviction eviction policy.
            if (cache.clustering_policy or DEFAULT_CLUSTERING_POLICY) != "EnterpriseCluster":
                add("clustering_policy", "RediSearch needs the EnterpriseCluster policy")
            if (cache.eviction_policy or DEFAULT_EVICTION_POLICY) != "NoEviction":
                add("eviction_policy", "RediSearch needs the NoEviction policy (a search "
                    "index cannot lose keys)")
        return out
    if frequency is not None:
        add("persistence_frequency", _one_of(frequency, CLASSIC_RDB_FREQUENCIES))
    if cache.replicas is not None:
        if not 1 <= cache.replicas <= MAX_REPLICAS:
            add("replicas", f"must be between 1 and {MAX_REPLICAS} (got {cache.replicas})")
        elif cache.replicas > 1 and cache.persistence == "aof":
            add("replicas", "AOF persistence cannot be used with more than one replica; "
                "choose RDB snapshots or one replica")
    if cache.update_channel is not None:
        add("update_channel", _one_of(cache.update_channel, UPDATE_CHANNELS))
    return out


def persistence_frequency(spec: DeploymentSpec) -> str | None:
    """The frequency the cache is created with: the spec's, else the kind's default."""
    cache = spec.cache
    if not cache.persistence:
        return None
    if cache.persistence_frequency:
        return cache.persistence_frequency
    if cache.kind == "azure-managed-redis":
        return MANAGED_FREQUENCIES[cache.persistence][0] \
            if cache.persistence in MANAGED_FREQUENCIES else None
    return CLASSIC_RDB_DEFAULT if cache.persistence == "rdb" else None


# --- tags -----------------------------------------------------------------------

MAX_TAGS = 50
# Tags go on every resource the run creates, storage accounts included, whose
# tag names are limited to 128 characters (512 elsewhere).
MAX_TAG_NAME = 128
MAX_TAG_VALUE = 256
TAG_FORBIDDEN = "<>%&\\?/"
TAG_RESERVED_PREFIXES = ("microsoft", "azure", "windows")


def check_tag_name(name: str) -> list[str]:
    problems = []
    if not name:
        problems.append("tag name must not be empty")
    if len(name) > MAX_TAG_NAME:
        problems.append(
            f"tag name must be at most {MAX_TAG_NAME} characters, since storage "
            f"accounts allow no more (has {len(name)})"
        )
    bad = sorted({c for c in name if c in TAG_FORBIDDEN})
    if bad:
        problems.append(f"tag name must not contain {' '.join(bad)}")
    lowered = name.lower()
    for prefix in TAG_RESERVED_PREFIXES:
        if lowered.startswith(prefix):
            problems.append(f"tag name must not start with {prefix!r} (reserved by Azure)")
    return problems


def check_tag_value(value: str) -> list[str]:
    if len(value) > MAX_TAG_VALUE:
        return [f"tag value must be at most {MAX_TAG_VALUE} characters (has {len(value)})"]
    return []


def check_tags(tags: dict[str, str]) -> list[Problem]:
    out = []
    total = len(set(tags) | {CREATED_BY_TAG})
    if total > MAX_TAGS:
        out.append(Problem("tags", f"at most {MAX_TAGS} tags, counting the {CREATED_BY_TAG} "
                                   f"tag this tool adds (has {total})"))
    for name, value in tags.items():
        # The tag's name leads, quoted as typed: a message under the grid that began
        # with the user's own text would have it capitalised.
        for message in check_tag_name(name) + check_tag_value(value):
            out.append(Problem(f"tags.{name}",
                               f"tag {name!r}: {message.removeprefix('tag ')}"))
        if name.lower() == CREATED_BY_TAG and value != CREATED_BY_VALUE:
            out.append(Problem(f"tags.{name}", created_by_taken(value)))
    return out


def created_by_taken(value: str) -> str:
    """Why the user's own created-by tag cannot be kept: the tool writes its own value
    there on everything it creates, and clean up recognises its resources by it."""
    return (f"tag {CREATED_BY_TAG!r}: this tool sets it to {CREATED_BY_VALUE!r} on "
            f"everything it creates (clean up recognises its resources by it), so "
            f"{value!r} would be replaced; name your tag differently, such as 'owner'")


# --- image ----------------------------------------------------------------------

def check_image(spec: DeploymentSpec) -> list[Problem]:
    image = spec.image
    build_fields = (image.build_from, image.registry, image.repository, image.tag)
    has_reference = image.reference is not None
    has_build = any(v is not None for v in build_fields)
    if has_reference and has_build:
        return [Problem("image", "give either reference, or build_from with registry, "
                                 "repository and tag, not both",
                        "choose either an image already in a registry, or a model "
                        "folder to build, not both")]
    if not has_reference and not has_build:
        return [Problem("image", "give either reference (an image in Azure Container "
                                 "Registry) or build_from (a model folder to build)",
                        "choose an image already in Azure Container Registry, or a "
                        "model folder to build")]
    if has_reference and image.builder is not None:
        return [Problem("image.builder", "applies to build_from only; an image reference "
                                         "is deployed as it is",
                        "applies to a model folder to build only; an image already in "
                        "a registry is deployed as it is")]
    if has_reference:
        try:
            parse_image_reference(image.reference or "")
        except ImageReferenceError as exc:
            return [Problem("image.reference", str(exc))]
        return []
    out = []
    if not image.build_from:
        out.append(Problem("image.build_from", "must name the model folder to build from"))
    for message in check_name("registry", image.registry or ""):
        out.append(Problem("image.registry", message))
    if not image.repository:
        out.append(Problem("image.repository", "must not be empty"))
    elif not REPOSITORY_RE.fullmatch(image.repository):
        out.append(Problem("image.repository", "must be lowercase letters and digits, "
                                               "separated by . _ - or /"))
    if not image.tag:
        out.append(Problem("image.tag", "must not be empty"))
    elif not TAG_RE.fullmatch(image.tag):
        out.append(Problem("image.tag", "must be up to 128 letters, digits, _ . or -, "
                                        "not starting with . or -"))
    if image.builder is not None:
        problem = _one_of(image.builder, IMAGE_BUILDERS)
        if problem:
            out.append(Problem("image.builder", problem))
    return out


def image_builder(spec: DeploymentSpec) -> str:
    """The builder a build_from spec uses ("layer" unless it asks for ACR Tasks)."""
    return spec.image.builder or DEFAULT_IMAGE_BUILDER


# --- the whole spec ---------------------------------------------------------------

def _named(path: str, kind: str) -> Callable[[DeploymentSpec, str], list[Problem]]:
    def check(spec: DeploymentSpec, value: str) -> list[Problem]:
        return [Problem(path, m) for m in check_name(kind, value)]

    return check


def check_top(spec: DeploymentSpec) -> list[Problem]:
    out = []
    if (message := _one_of(spec.target, TARGETS)):
        out.append(Problem("target", message))
    if spec.target == "azure":
        if not spec.subscription_id:
            out.append(Problem("subscription_id", "an Azure target needs a subscription id"))
        elif not _GUID.fullmatch(spec.subscription_id):
            out.append(Problem("subscription_id", "must be a subscription id like "
                                                  "00000000-0000-0000-0000-000000000000"))
    if not spec.location:
        out.append(Problem("location", "must not be empty"))
    elif not _LOCATION.fullmatch(spec.location):
        out.append(Problem("location", "must be a region's name such as westeurope "
                                       "(lowercase letters and digits, as az account "
                                       "list-locations names it), not a display name "
                                       "such as West Europe"))
    return out


def check_function_app(spec: DeploymentSpec) -> list[Problem]:
    app = spec.function_app
    out = _named("function_app.name", "function_app")(spec, app.name)
    out += _named("function_app.plan_name", "plan")(spec, app.plan_name)
    out += _named("function_app.storage_account", "storage_account")(spec, app.storage_account)
    if app.plan_sku not in PLAN_SKUS:
        out.append(Problem("function_app.plan_sku",
                           f"must be a Linux plan that runs containers: {', '.join(PLAN_SKUS)} "
                           f"(got {app.plan_sku!r})"))
    problem = _one_of(app.auth, FUNCTION_AUTH_MODES)
    if problem:
        out.append(Problem("function_app.auth", problem))
    return out


# A Log Analytics workspace name is 4-63 characters (Azure's rule); the one made for
# Application Insights is `<function app>-logs`.
WORKSPACE_NAME_MAX = 63
WORKSPACE_SUFFIX = "-logs"


def check_monitoring(spec: DeploymentSpec) -> list[Problem]:
    """The workspace named after the app must fit Azure's workspace name length."""
    name = spec.function_app.name + WORKSPACE_SUFFIX
    if spec.monitoring.enabled and len(name) > WORKSPACE_NAME_MAX:
        return [Problem("monitoring.enabled",
                        f"the Log Analytics workspace {name} would be {len(name)} characters, "
                        f"more than Azure's {WORKSPACE_NAME_MAX}: shorten function_app.name "
                        "or turn monitoring off")]
    return []


def validate_spec(spec: DeploymentSpec) -> list[Problem]:
    """Every rule problem in `spec`, in the order of the wizard's pages."""
    return [
        *check_top(spec),
        *_named("resource_group.name", "resource_group")(spec, spec.resource_group.name),
        *check_cache(spec),
        *check_tags(spec.tags),
        *check_image(spec),
        *check_function_app(spec),
        *check_monitoring(spec),
    ]
