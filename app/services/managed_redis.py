"""Azure Managed Redis: its deployment steps, and the way out of a blocked Azure Cache for Redis.

Azure Managed Redis (Microsoft.Cache/redisEnterprise) is a cluster, whose SKU is
`<tier>_<size>` (Balanced_B0 ...), holding one database named `default`, which
owns the port, the client protocol and the access keys. Two steps create them:
`ManagedRedisClusterStep` ("cache-cluster") and `ManagedRedisDatabaseStep`
("cache", the name the app-settings step waits for). The database step's
outputs carry the host (from the cluster) and the TLS port read from the
database resource — 10000 on Azure, a local port on the sandbox — so the
function's settings are wired the same way for either kind of cache.

Since 2026-04-01 a tenant that never had an Azure Cache for Redis cannot create
one. `suggest_managed_redis` and `switch_to_managed_redis` are pure (the wizard
and the CLI use them too): Microsoft's published SKU mapping, and the spec with
the cache switched over. `BlockAwareRedisCacheStep` turns Azure's refusal into
a plain message that offers exactly that switch.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from app.errors import BadInput, NotPermitted
from app.rules import check_name
from app.services.logs import get_logger
from app.services.runner import Step, StepReport
from app.services.steps import (
    _FAILED,
    _SUCCEEDED,
    DeployContext,
    RedisCacheStep,
    get_or_none,
    state_of,
    wait_lro,
    wait_until_settled,
)
from app.spec import DeploymentSpec

log = get_logger("arm")

KIND = "azure-managed-redis"
CLASSIC_KIND = "azure-cache-for-redis"
DATABASE = "default"
# What the database is asked for on Azure; the port actually used is always read
# back from the database resource (the sandbox answers a free local port).
AZURE_PORT = 10000
# One endpoint and the ordinary (non-cluster) Redis API, which is what the
# scoring function's client speaks; OSSCluster would need a cluster-aware client.
CLUSTERING_POLICY = "EnterpriseCluster"
EVICTION_POLICY = "VolatileLRU"
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


# --- the blocked tenant -----------------------------------------------------------

# What Azure answers today (field reports of `az redis create` and template
# deployments; Microsoft documents no dedicated error code): HTTP 400 with the
# generic code "BadRequest" and this message. The sandbox's fault rule answers
# the same; `app.services.hints.hint_for` recognises it by its message.
BLOCKED_CODE = "BadRequest"
BLOCKED_MESSAGE = (
    "Azure Cache for Redis is retiring, create Azure Managed Redis instance instead. "
    "Learn more: https://aka.ms/AzureCacheForRedisRetirement"
)


class CacheCreationBlocked(NotPermitted):
    """The tenant may not create Azure Cache for Redis; carries the suggested spec."""

    def __init__(self, spec: DeploymentSpec, code: str, azure_message: str) -> None:
        super().__init__(
            f"creation of new Azure Cache for Redis instances is blocked for this tenant "
            f"(tenants that had no cache before {BLOCKED_SINCE} cannot create one; the "
            f"service retires on {RETIREMENT_DATE}). Azure said: {azure_message}",
            switch_text(spec),
        )
        self.code = code
        self.suggested_spec = switch_to_managed_redis(spec)


def blocked_error(exc: BaseException, spec: DeploymentSpec) -> CacheCreationBlocked | None:
    """`exc` as CacheCreationBlocked when it is Azure's blocked-tenant refusal, else None."""
    from azure.core.exceptions import HttpResponseError

    from app.services.hints import is_cache_blocked

    if not isinstance(exc, HttpResponseError):
        return None
    error = exc.error
    code = (error.code if error is not None else None) or ""
    message = (error.message if error is not None else None) or str(exc.message or "")
    if not is_cache_blocked(code, message):
        return None
    return CacheCreationBlocked(spec, code or BLOCKED_CODE, message)


class BlockAwareRedisCacheStep(RedisCacheStep):
    """Azure Cache for Redis, explaining a blocked tenant and offering Azure Managed Redis."""

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        try:
            return super().create(ctx, report)
        except Exception as exc:
            blocked = blocked_error(exc, ctx.spec)
            if blocked is None:
                raise
            raise blocked from None


# --- steps ------------------------------------------------------------------------


def _text(value: Any) -> str:
    return str(getattr(value, "value", value) or "")


def _names(ctx: DeployContext) -> tuple[str, str]:
    """Resource group and cluster name."""
    return ctx.group, ctx.spec.cache.name


class ManagedRedisClusterStep(Step):
    """The Microsoft.Cache/redisEnterprise cluster: SKU, TLS 1.2, network access, tags."""

    name = "cache-cluster"
    depends_on = ("resource-group",)
    nominal_s = 20.0
    progress_text = "Creating {title} (this takes several minutes on Azure)"
    success_text = "{title} is running"

    def __init__(self, spec: DeploymentSpec) -> None:
        cache = spec.cache
        self.sku = managed_sku(cache.tier, cache.size)
        self.title = f"Azure Managed Redis {cache.name} ({self.sku})"

    def _outputs(self, cluster: Any) -> dict[str, str]:
        return {
            "name": cluster.name,
            "id": cluster.id or "",
            "host": cluster.host_name or "",
            "sku": _text(cluster.sku.name),
        }

    def _check_compatible(self, ctx: DeployContext, cluster: Any) -> None:
        have = _text(cluster.sku.name)
        if have.lower() != self.sku.lower():
            raise BadInput(
                f"an Azure Managed Redis named {cluster.name} already exists in {ctx.group} "
                f"as {have}, but the spec asks for {self.sku}",
                "Choose another cache.name, or set cache.tier and cache.size to match it.",
            )

    def find_existing(self, ctx: DeployContext) -> dict[str, str] | None:
        group, cluster_name = _names(ctx)
        cluster = get_or_none(ctx.clients.redis_enterprise().redis_enterprise.get, group,
                              cluster_name)
        if cluster is None:
            return None
        self._check_compatible(ctx, cluster)
        if state_of(cluster).lower() in _SUCCEEDED:
            return self._outputs(cluster)
        return None

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        from azure.mgmt.redisenterprise import models

        client = ctx.clients.redis_enterprise().redis_enterprise
        group, cluster_name = _names(ctx)
        spec = ctx.spec.cache
        existing = get_or_none(client.get, group, cluster_name)
        if existing is not None:
            settled = wait_until_settled(
                lambda: get_or_none(client.get, group, cluster_name), report,
                ctx.target.polling_interval,
            )
            if settled is not None and state_of(settled).lower() in _SUCCEEDED:
                self._check_compatible(ctx, settled)
                report.log(f"{cluster_name} finished creating")
                return self._outputs(settled)
            if settled is not None and state_of(settled).lower() in _FAILED:
                report.log(f"{cluster_name} is in state {state_of(settled)}; deleting it to retry")
                wait_lro(client.begin_delete(group, cluster_name), report, "Deleting")
        cluster = models.Cluster(
            location=ctx.spec.location,
            sku=models.Sku(name=self.sku),
            minimum_tls_version=spec.minimum_tls_version,
            public_network_access="Enabled" if spec.public_network_access else "Disabled",
            tags=ctx.tags,
        )
        created = wait_lro(client.begin_create(group, cluster_name, cluster), report)
        if created is None or state_of(created).lower() not in _SUCCEEDED:
            created = client.get(group, cluster_name)
        return self._outputs(created)


class ManagedRedisDatabaseStep(Step):
    """The cluster's `default` database: TLS only, access keys, eviction, persistence."""

    name = "cache"
    depends_on = ("cache-cluster",)
    nominal_s = 1.0
    progress_text = "Creating {title}"
    success_text = "{title} accepts TLS connections"

    def __init__(self, spec: DeploymentSpec) -> None:
        self.title = f"database {DATABASE} of {spec.cache.name}"

    def _outputs(self, ctx: DeployContext, database: Any) -> dict[str, str]:
        return {
            "name": ctx.spec.cache.name,
            "database": database.name or DATABASE,
            "id": database.id or "",
            "host": ctx.output("cache-cluster", "host"),
            "ssl_port": str(database.port or ""),
            "kind": KIND,
        }

    def _check_compatible(self, ctx: DeployContext, database: Any) -> None:
        protocol = _text(database.client_protocol) or "Encrypted"
        policy = _text(database.clustering_policy)
        problems = []
        if protocol != "Encrypted":
            problems.append(f"accepts {protocol} connections (the function connects over TLS)")
        if policy == "OSSCluster":
            problems.append("uses OSS clustering (the function's client needs one endpoint: "
                            "EnterpriseCluster or NoCluster)")
        if problems:
            raise BadInput(
                f"the database {DATABASE} of {ctx.spec.cache.name} " + " and ".join(problems),
                "Choose another cache.name, or recreate that database with client protocol "
                f"Encrypted and clustering policy {CLUSTERING_POLICY}.",
            )

    def _keys_ready(self, database: Any) -> bool:
        return _text(database.access_keys_authentication) == "Enabled"

    def find_existing(self, ctx: DeployContext) -> dict[str, str] | None:
        group, cluster_name = _names(ctx)
        database = get_or_none(ctx.clients.redis_enterprise().databases.get, group, cluster_name,
                               DATABASE)
        if database is None:
            return None
        self._check_compatible(ctx, database)
        if state_of(database).lower() in _SUCCEEDED and self._keys_ready(database):
            return self._outputs(ctx, database)
        return None  # creating, failed, or keys disabled: create() settles it

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        from azure.mgmt.redisenterprise import models

        client = ctx.clients.redis_enterprise().databases
        group, cluster_name = _names(ctx)
        existing = get_or_none(client.get, group, cluster_name, DATABASE)
        if existing is not None:
            settled = wait_until_settled(
                lambda: get_or_none(client.get, group, cluster_name, DATABASE), report,
                ctx.target.polling_interval,
            )
            if settled is not None and state_of(settled).lower() in _SUCCEEDED:
                self._check_compatible(ctx, settled)
                if not self._keys_ready(settled):
                    report.log(f"enabling access keys on the database {DATABASE}")
                    settled = wait_lro(
                        client.begin_update(
                            group, cluster_name, DATABASE,
                            models.DatabaseUpdate(access_keys_authentication="Enabled"),
                        ),
                        report, "Updating",
                    )
                return self._outputs(ctx, settled)
            if settled is not None and state_of(settled).lower() in _FAILED:
                report.log(f"the database is in state {state_of(settled)}; deleting it to retry")
                wait_lro(client.begin_delete(group, cluster_name, DATABASE), report, "Deleting")
        persistence = None
        if ctx.spec.cache.persistence == "rdb":
            persistence = models.Persistence(rdb_enabled=True, rdb_frequency="1h")
        elif ctx.spec.cache.persistence == "aof":
            persistence = models.Persistence(aof_enabled=True, aof_frequency="1s")
        database = models.Database(
            client_protocol="Encrypted",
            port=AZURE_PORT,
            clustering_policy=CLUSTERING_POLICY,
            eviction_policy=EVICTION_POLICY,
            persistence=persistence,
            # Azure's default is Disabled (Entra only); the function uses a key.
            access_keys_authentication="Enabled",
        )
        created = wait_lro(client.begin_create(group, cluster_name, DATABASE, database), report)
        if created is None or not created.port:
            created = client.get(group, cluster_name, DATABASE)
        return self._outputs(ctx, created)


def managed_redis_steps(spec: DeploymentSpec) -> list[Step]:
    """The plan's cache steps for an Azure Managed Redis spec."""
    return [ManagedRedisClusterStep(spec), ManagedRedisDatabaseStep(spec)]


def list_access_keys(ctx: DeployContext) -> tuple[str | None, str | None]:
    """The default database's primary and secondary keys (listKeys on the database)."""
    keys = ctx.clients.redis_enterprise().databases.list_keys(
        ctx.group, ctx.spec.cache.name, DATABASE
    )
    return keys.primary_key, keys.secondary_key


# --- export ---------------------------------------------------------------------

API_VERSION = "2025-07-01"


def _persistence_body(spec: DeploymentSpec) -> dict[str, Any] | None:
    if spec.cache.persistence == "rdb":
        return {"rdbEnabled": True, "rdbFrequency": "1h"}
    if spec.cache.persistence == "aof":
        return {"aofEnabled": True, "aofFrequency": "1s"}
    return None


def arm_cache_parts(spec: DeploymentSpec) -> tuple[list[dict[str, Any]], list[dict[str, str]], str]:
    """ARM template resources, app settings and the id the site waits for (no secrets:
    the key is read with listKeys() on the database when Azure deploys it)."""
    cache = spec.cache
    cluster_id = "resourceId('Microsoft.Cache/redisEnterprise', parameters('cacheName'))"
    database_id = (
        "resourceId('Microsoft.Cache/redisEnterprise/databases', parameters('cacheName'), "
        f"'{DATABASE}')"
    )
    database_properties: dict[str, Any] = {
        "clientProtocol": "Encrypted",
        "port": AZURE_PORT,
        "clusteringPolicy": CLUSTERING_POLICY,
        "evictionPolicy": EVICTION_POLICY,
        "accessKeysAuthentication": "Enabled",
    }
    persistence = _persistence_body(spec)
    if persistence:
        database_properties["persistence"] = persistence
    resources = [
        {
            "type": "Microsoft.Cache/redisEnterprise",
            "apiVersion": API_VERSION,
            "name": "[parameters('cacheName')]",
            "location": "[parameters('location')]",
            "tags": "[parameters('tags')]",
            "sku": {"name": managed_sku(cache.tier, cache.size)},
            "properties": {
                "minimumTlsVersion": cache.minimum_tls_version,
                "publicNetworkAccess": "Enabled" if cache.public_network_access else "Disabled",
            },
        },
        {
            "type": "Microsoft.Cache/redisEnterprise/databases",
            "apiVersion": API_VERSION,
            "name": f"[format('{{0}}/{DATABASE}', parameters('cacheName'))]",
            "dependsOn": [f"[{cluster_id}]"],
            "properties": database_properties,
        },
    ]
    settings = [
        {"name": "REDIS_HOST", "value": f"[reference({cluster_id}, '{API_VERSION}').hostName]"},
        {"name": "REDIS_PORT",
         "value": f"[string(reference({database_id}, '{API_VERSION}').port)]"},
        {"name": "REDIS_KEY", "value": f"[listKeys({database_id}, '{API_VERSION}').primaryKey]"},
    ]
    return resources, settings, f"[{database_id}]"


def azcli_cache_lines(spec: DeploymentSpec, rg: str, tag_args: str) -> tuple[str, list[str]]:
    """The `az redisenterprise create` line (cluster + default database, --no-wait) and the
    lines that wait for it and read host, port and key into shell variables."""
    import shlex

    q = shlex.quote
    cache = spec.cache
    name = q(cache.name)
    create = (
        f"az redisenterprise create --resource-group {rg} --cluster-name {name} "
        f"--location {q(spec.location)} --sku {q(managed_sku(cache.tier, cache.size))} "
        f"--minimum-tls-version {q(cache.minimum_tls_version)} "
        f"--public-network-access {'Enabled' if cache.public_network_access else 'Disabled'} "
        f"--client-protocol Encrypted --port {AZURE_PORT} "
        f"--clustering-policy {CLUSTERING_POLICY} --eviction-policy {EVICTION_POLICY} "
        "--access-keys-auth Enabled"
    )
    persistence = _persistence_body(spec)
    if persistence:
        create += " --persistence " + " ".join(
            f"{'aof' if 'aofEnabled' in persistence else 'rdb'}-{key}" for key in (
                "enabled=true",
                f"frequency={persistence.get('aofFrequency') or persistence.get('rdbFrequency')}",
            )
        )
    create += f" --tags {tag_args} --no-wait"
    read = [
        f"az redisenterprise wait --resource-group {rg} --cluster-name {name} --created",
        f"az redisenterprise database wait --resource-group {rg} --cluster-name {name} "
        "--created",
        f"redis_host=$(az redisenterprise show --resource-group {rg} --cluster-name {name} "
        "--query hostName -o tsv)",
        f"redis_port=$(az redisenterprise database show --resource-group {rg} "
        f"--cluster-name {name} --query port -o tsv)",
        f"redis_key=$(az redisenterprise database list-keys --resource-group {rg} "
        f"--cluster-name {name} --query primaryKey -o tsv)",
    ]
    return create, read


__all__ = [
    "BLOCKED_CODE",
    "BLOCKED_MESSAGE",
    "SKU_MAPPING",
    "BlockAwareRedisCacheStep",
    "CacheCreationBlocked",
    "ManagedRedisClusterStep",
    "ManagedRedisDatabaseStep",
    "arm_cache_parts",
    "azcli_cache_lines",
    "blocked_error",
    "list_access_keys",
    "managed_redis_options",
    "managed_redis_steps",
    "managed_sku",
    "spec_changes",
    "suggest_managed_redis",
    "switch_text",
    "switch_to_managed_redis",
]
