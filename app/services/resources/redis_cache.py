"""Azure Cache for Redis (Microsoft.Cache/redis): Basic, Standard and Premium caches.

Everything the product knows about this kind of cache is here: the SKU in ARM's
terms, the global name check, adopt-or-create (a cache whose provisioning
failed is deleted and made again, as Azure advises), the blocked-tenant refusal
turned into an offer to switch to Azure Managed Redis, status, the ARM and az
CLI pieces, and its meter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.errors import BadInput, NotPermitted, Recovery
from app.rules import persistence_frequency
from app.services.arm import (
    SUCCEEDED,
    adoptable,
    enum_text,
    get_or_none,
    require_not_failed,
    state_of,
    wait_lro,
    wait_until_settled,
)
from app.services.cache_migration import (
    BLOCKED_SINCE,
    CLASSIC_KIND,
    RETIREMENT_DATE,
    switch_text,
    switch_to_managed_redis,
)
from app.services.context import DeployContext
from app.services.livecheck import LiveAnswer
from app.services.meters import CLASSIC_PRODUCTS, HOURS_PER_MONTH, REDIS_SERVICE, PriceQuery
from app.services.resources.base import (
    ArmWiring,
    AzCliPart,
    NameAnswer,
    ResourceStatus,
    ResourceStep,
    Shell,
    probe,
    yours,
)
from app.services.resources.storage import arm_storage_connection, storage_connection
from app.services.runner import StepReport, note
from app.spec import DeploymentSpec

if TYPE_CHECKING:
    from app.services.clients import ClientFactory

API_VERSION = "2024-11-01"
ARM_ID = "resourceId('Microsoft.Cache/redis', parameters('cacheName'))"
# redisConfiguration's switch for Microsoft Entra authentication (a string, "true").
ENTRA_SETTING = "aad-enabled"

# What Azure answers today (field reports of `az redis create` and template
# deployments; Microsoft documents no dedicated error code): HTTP 400 with the
# generic code "BadRequest" and this message. The sandbox's fault rule answers
# the same; the error translator recognises it by its message.
BLOCKED_CODE = "BadRequest"
BLOCKED_MESSAGE = (
    "Azure Cache for Redis is retiring, create Azure Managed Redis instance instead. "
    "Learn more: https://aka.ms/AzureCacheForRedisRetirement"
)
SWITCH_ACTION = "switch-to-managed-redis"


def classic_sku(tier: str, size: str) -> tuple[str, str, int]:
    """Spec tier/size → ARM sku name, family and capacity (Standard C1 → Standard, C, 1)."""
    return tier, size[:1].upper(), int(size[1:])


class CacheCreationBlocked(NotPermitted):
    """The tenant may not create Azure Cache for Redis; carries the switch as a recovery."""

    def __init__(self, spec: DeploymentSpec, code: str, azure_message: str) -> None:
        suggested = switch_to_managed_redis(spec)
        super().__init__(
            f"creation of new Azure Cache for Redis instances is blocked for this tenant "
            f"(tenants that had no cache before {BLOCKED_SINCE} cannot create one; the "
            f"service retires on {RETIREMENT_DATE}). Azure said: {azure_message}",
            switch_text(spec),
            code=code,
            recovery=Recovery(SWITCH_ACTION, "Switch to Azure Managed Redis", suggested),
        )
        self.suggested_spec = suggested


def blocked_error(exc: BaseException, spec: DeploymentSpec) -> CacheCreationBlocked | None:
    """`exc` as CacheCreationBlocked when it is Azure's blocked-tenant refusal, else None."""
    from azure.core.exceptions import HttpResponseError

    from app.services.explain import is_cache_blocked

    if not isinstance(exc, HttpResponseError):
        return None
    error = exc.error
    code = (error.code if error is not None else None) or ""
    message = (error.message if error is not None else None) or str(exc.message or "")
    if not is_cache_blocked(code, message):
        return None
    return CacheCreationBlocked(spec, code or BLOCKED_CODE, message)


class RedisCacheStep(ResourceStep):
    name = "cache"
    arm_type = "Microsoft.Cache/redis"
    label = "cache"
    icon = "cache"
    name_kind = "cache"
    depends_on: tuple[str, ...] = ("resource-group",)
    nominal_s = 20.0
    progress_text = "Creating {title} (this takes about 20 minutes on Azure)"
    success_text = "{title} is running"

    def __init__(self, spec: DeploymentSpec) -> None:
        super().__init__(spec)
        cache = spec.cache
        self.title = f"Azure Cache for Redis {cache.name} ({cache.tier} {cache.size})"
        if cache.persistence:
            # Azure writes Premium persistence (RDB/AOF) to a storage account it is
            # given a connection string for; the function's account serves.
            self.depends_on = ("resource-group", "storage")

    def resource_name(self) -> str:
        return self.spec.cache.name

    # -- name, keys, status --------------------------------------------------------
    @classmethod
    def check_name(cls, clients: ClientFactory, name: str, group: str) -> NameAnswer:
        from azure.core.exceptions import HttpResponseError
        from azure.mgmt.redis import models

        redis = clients.redis().redis
        if group and get_or_none(redis.get, group, name) is not None:
            return yours("cache", group)
        try:
            redis.check_name_availability(
                models.CheckNameAvailabilityParameters(name=name, type=cls.arm_type)
            )
        except HttpResponseError as exc:
            # The operation answers 200 when the name is free and an error when not.
            if exc.status_code in (400, 409):
                return NameAnswer("taken", f"The name {name}.redis.cache.windows.net is taken")
            raise
        return NameAnswer("available", f"The name {name}.redis.cache.windows.net is available")

    @staticmethod
    def access_keys(ctx: DeployContext) -> tuple[str | None, str | None]:
        keys = ctx.clients.redis().redis.list_keys(ctx.group, ctx.spec.cache.name)
        return keys.primary_key, keys.secondary_key

    @staticmethod
    def address(ctx: DeployContext) -> tuple[str, str] | None:
        """Host and TLS port as ARM tells them now, while the cache may still be Creating
        (Azure answers both from the first PUT on); None when not known yet."""
        cache = get_or_none(ctx.clients.redis().redis.get, ctx.group, ctx.spec.cache.name)
        if cache is None or not cache.host_name or not cache.ssl_port:
            return None
        return str(cache.host_name), str(cache.ssl_port)

    def probe(self, clients: ClientFactory) -> list[ResourceStatus]:
        group, name = self.spec.resource_group.name, self.spec.cache.name
        return [probe(
            "Azure Cache for Redis", name, lambda: clients.redis().redis.get(group, name),
            lambda c: f"{c.sku.name} {c.sku.family}{c.sku.capacity}, "
                      f"{c.host_name}:{c.ssl_port} (TLS)",
            self.name,
        )]

    def live_check(self, clients: ClientFactory) -> LiveAnswer | None:
        """PING the cache on the host and TLS port ARM reports, with its primary key.

        A cache with Entra authentication has no key to use: only the function's
        identity may connect, and the function's own live check reports the cache."""
        from app.services.livecheck import ping_redis

        if self.spec.cache.auth == "entra":
            return None
        group, name = self.spec.resource_group.name, self.spec.cache.name
        redis = clients.redis().redis
        cache = redis.get(group, name)
        key = redis.list_keys(group, name).primary_key or ""
        return ping_redis(cache.host_name or f"{name}.redis.cache.windows.net",
                          int(cache.ssl_port or 6380), key, clients.target.ca_bundle)

    # -- export --------------------------------------------------------------------
    def arm_id(self) -> str:
        return f"[{ARM_ID}]"

    def arm_parameters(self) -> dict[str, dict[str, Any]]:
        return {"cacheName": {"type": "string", "defaultValue": self.spec.cache.name}}

    def arm_settings(self) -> list[dict[str, str]]:
        settings = [
            {"name": "REDIS_HOST", "value": f"[reference({ARM_ID}).hostName]"},
            {"name": "REDIS_PORT", "value": f"[string(reference({ARM_ID}).sslPort)]"},
        ]
        if self.spec.cache.auth == "access-keys":
            settings.append({"name": "REDIS_KEY",
                             "value": f"[listKeys({ARM_ID}, '{API_VERSION}').primaryKey]"})
        return settings

    def arm_resources(self, wiring: ArmWiring) -> list[dict[str, Any]]:
        cache = self.spec.cache
        sku_name, family, capacity = classic_sku(cache.tier, cache.size)
        properties: dict[str, Any] = {
            "sku": {"name": sku_name, "family": family, "capacity": capacity},
            "enableNonSslPort": cache.non_tls_port,
            "minimumTlsVersion": cache.minimum_tls_version,
            "publicNetworkAccess": "Enabled" if cache.public_network_access else "Disabled",
        }
        if cache.redis_version:
            properties["redisVersion"] = cache.redis_version
        if cache.shards:
            properties["shardCount"] = cache.shards
        if cache.replicas:
            properties["replicasPerMaster"] = cache.replicas
        if cache.update_channel:
            properties["updateChannel"] = cache.update_channel
        # Premium persistence is written to a storage account Azure gets a connection
        # string for: the function's account, its key read at deployment time.
        if cache.persistence == "rdb":
            properties["redisConfiguration"] = {
                "rdb-backup-enabled": "true",
                "rdb-backup-frequency": persistence_frequency(self.spec) or "60",
                "rdb-storage-connection-string": arm_storage_connection(),
            }
        elif cache.persistence == "aof":
            properties["redisConfiguration"] = {
                "aof-backup-enabled": "true",
                "aof-storage-connection-string-0": arm_storage_connection(),
            }
        redis: dict[str, Any] = {
            "type": self.arm_type,
            "apiVersion": API_VERSION,
            "name": "[parameters('cacheName')]",
            "location": "[parameters('location')]",
            "tags": "[parameters('tags')]",
            "properties": properties,
        }
        if cache.auth == "entra":
            properties.setdefault("redisConfiguration", {})[ENTRA_SETTING] = "true"
            properties["disableAccessKeyAuthentication"] = True
        if cache.zones:
            redis["zones"] = list(cache.zones)
        if cache.persistence:
            redis["dependsOn"] = [wiring.ids["storage"]]
        return [redis]

    def azcli(self, sh: Shell) -> AzCliPart:
        cache, q, rg = self.spec.cache, sh.q, sh.rg
        line = (
            f"az redis create --resource-group {rg} --name {q(cache.name)} "
            f"--location {sh.location} --sku {q(cache.tier)} --vm-size {q(cache.size.lower())} "
            f"--minimum-tls-version {q(cache.minimum_tls_version)} --tags {sh.tags}"
        )
        if cache.redis_version:
            line += f" --redis-version {q(cache.redis_version)}"
        if cache.non_tls_port:
            line += " --enable-non-ssl-port"
        if cache.shards:
            line += f" --shard-count {cache.shards}"
        if cache.replicas:
            line += f" --replicas-per-master {cache.replicas}"
        if cache.update_channel:
            line += f" --update-channel {q(cache.update_channel)}"
        if cache.zones:
            line += " --zones " + " ".join(q(z) for z in cache.zones)
        if cache.persistence == "rdb":
            line += (
                " --redis-configuration \"{\\\"rdb-backup-enabled\\\":\\\"true\\\","
                f"\\\"rdb-backup-frequency\\\":\\\"{persistence_frequency(self.spec)}\\\","
                "\\\"rdb-storage-connection-string\\\":\\\"$storage_connection\\\"}\""
            )
        elif cache.persistence == "aof":
            line += (
                " --redis-configuration \"{\\\"aof-backup-enabled\\\":\\\"true\\\","
                "\\\"aof-storage-connection-string-0\\\":\\\"$storage_connection\\\"}\""
            )
        name = q(cache.name)
        return AzCliPart(
            create=[
                "# The cache takes about 20 minutes; everything else is created meanwhile.",
                line + " --no-wait",
            ],
            read=[
                f"az redis wait --resource-group {rg} --name {name} --created",
                f"redis_host=$(az redis show --resource-group {rg} --name {name} "
                "--query hostName -o tsv)",
                f"redis_port=$(az redis show --resource-group {rg} --name {name} "
                "--query sslPort -o tsv)",
                *([f"redis_key=$(az redis list-keys --resource-group {rg} --name {name} "
                   "--query primaryKey -o tsv)"] if cache.auth == "access-keys" else []),
            ],
        )

    def price_queries(self) -> list[PriceQuery]:
        cache = self.spec.cache
        product = CLASSIC_PRODUCTS.get(cache.tier)
        if product is None:
            raise BadInput(f"cache.tier: no Azure Cache for Redis tier {cache.tier!r}")
        # "<size> Cache" is the whole cache (primary + replica on Standard and
        # Premium); a clustered Premium cache bills it once per shard.
        shards = (cache.shards or 1) if cache.tier == "Premium" else 1
        text = f"{shards} shards" if shards > 1 else ""
        if cache.tier == "Premium" and cache.persistence:
            # Persistence files go to the function's storage account, billed by size.
            text = ", ".join(filter(None, [text, "persistence files in storage not included"]))
        queries = [PriceQuery(
            resource=f"Azure Cache for Redis {cache.name}",
            sku=f"{cache.tier} {cache.size}",
            service_name=REDIS_SERVICE, product_name=product, sku_name=cache.size,
            meter_name=f"{cache.size} Cache", unit_of_measure="1 Hour",
            units=HOURS_PER_MONTH * shards, unit_label="hour", note=text,
        )]
        extra = (cache.replicas or 1) - 1 if cache.tier == "Premium" else 0
        if extra > 0:
            # "<size> Cache" is a primary and one replica; each further replica is one
            # more node, billed on the per-node "<size> Cache Instance" meter.
            queries.append(PriceQuery(
                resource=f"Azure Cache for Redis {cache.name}",
                sku=f"{cache.tier} {cache.size}, {extra} more replica(s) per primary",
                service_name=REDIS_SERVICE, product_name=product, sku_name=cache.size,
                meter_name=f"{cache.size} Cache Instance", unit_of_measure="1 Hour",
                units=HOURS_PER_MONTH * shards * extra, unit_label="node-hour",
            ))
        return queries

    # -- deploy --------------------------------------------------------------------
    def _outputs(self, cache: Any) -> dict[str, str]:
        return {
            "name": cache.name,
            "id": cache.id or "",
            "host": cache.host_name or "",
            "ssl_port": str(cache.ssl_port or ""),
            "kind": CLASSIC_KIND,
        }

    def _check_compatible(self, ctx: DeployContext, cache: Any) -> None:
        spec = ctx.spec.cache
        want = classic_sku(spec.tier, spec.size)
        sku = cache.sku
        have = (enum_text(sku.name), enum_text(sku.family), int(sku.capacity))
        if (have[0].lower(), have[1].upper(), have[2]) != (want[0].lower(), want[1], want[2]):
            raise BadInput(
                f"a cache named {spec.name} already exists in {ctx.group} as "
                f"{have[0]} {have[1]}{have[2]}, but the spec asks for {spec.tier} {spec.size}",
                "Choose another cache name, or set cache.tier and cache.size to match it.",
            )
        replicas = int(cache.replicas_per_master or 1)
        if spec.replicas and replicas != spec.replicas:
            # Azure fixes the replica count when the cache is created.
            note(f"cache {spec.name} has {replicas} replica(s) per primary; the spec asks for "
                 f"{spec.replicas}, which only a new cache can have (left as is)")
        if bool(cache.enable_non_ssl_port) != spec.non_tls_port:
            note(
                f"cache {spec.name} has the non-TLS port "
                f"{'enabled' if cache.enable_non_ssl_port else 'disabled'}; the spec asks for it "
                f"{'enabled' if spec.non_tls_port else 'disabled'} (left as is)"
            )

    def find_existing(self, ctx: DeployContext) -> dict[str, str] | None:
        cache = get_or_none(ctx.clients.redis().redis.get, ctx.group, ctx.spec.cache.name)
        if cache is None:
            return None
        self._check_compatible(ctx, cache)
        if adoptable(cache, f"cache {ctx.spec.cache.name}"):
            return self._outputs(cache)
        return None  # still creating, or failed: create() takes it from there

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        try:
            return self._create(ctx, report)
        except Exception as exc:
            blocked = blocked_error(exc, ctx.spec)
            if blocked is None:
                raise
            raise blocked from None

    def _create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        from azure.mgmt.redis import models

        client = ctx.clients.redis()
        spec = ctx.spec.cache
        existing = get_or_none(client.redis.get, ctx.group, spec.name)
        if existing is not None:
            settled = wait_until_settled(
                lambda: get_or_none(client.redis.get, ctx.group, spec.name),
                report,
                ctx.target.polling_interval,
                what=f"cache {spec.name}",
            )
            if settled is not None and state_of(settled).lower() in SUCCEEDED:
                report.log(f"{spec.name} finished creating")
                return self._outputs(settled)
            if settled is not None:
                # A cache whose provisioning failed cannot be repaired in place;
                # Azure's advice is to delete it and create it again.
                report.log(f"{spec.name} is in state {state_of(settled)}; deleting it to retry")
                wait_lro(client.redis.begin_delete(ctx.group, spec.name), report, "Deleting")
        elif self.check_name(ctx.clients, spec.name, "").state == "taken":
            raise BadInput(
                f"the cache name {spec.name} is taken "
                f"({spec.name}.redis.cache.windows.net exists)",
                "Cache names are global across Azure: choose another cache.name.",
            )
        name, family, capacity = classic_sku(spec.tier, spec.size)
        redis_configuration: Any = None
        if spec.persistence == "rdb":
            redis_configuration = models.RedisCommonPropertiesRedisConfiguration(
                rdb_backup_enabled="true",
                rdb_backup_frequency=persistence_frequency(ctx.spec) or "60",
                rdb_storage_connection_string=storage_connection(ctx),
            )
        elif spec.persistence == "aof":
            redis_configuration = models.RedisCommonPropertiesRedisConfiguration(
                aof_backup_enabled="true",
                aof_storage_connection_string0=storage_connection(ctx),
            )
        if spec.auth == "entra":
            redis_configuration = redis_configuration or \
                models.RedisCommonPropertiesRedisConfiguration()
            redis_configuration.aad_enabled = "true"
        parameters = models.RedisCreateParameters(
            location=ctx.spec.location,
            sku=models.Sku(name=name, family=family, capacity=capacity),
            enable_non_ssl_port=spec.non_tls_port,
            minimum_tls_version=spec.minimum_tls_version,
            redis_version=spec.redis_version,
            public_network_access="Enabled",
            shard_count=spec.shards,
            replicas_per_master=spec.replicas,
            update_channel=spec.update_channel,
            zones=list(spec.zones) or None,
            redis_configuration=redis_configuration,
            disable_access_key_authentication=spec.auth == "entra",
            tags=ctx.tags,
        )
        poller = client.redis.begin_create(ctx.group, spec.name, parameters)
        cache = wait_lro(poller, report)
        if state_of(cache).lower() not in SUCCEEDED:
            cache = client.redis.get(ctx.group, spec.name)
        return self._outputs(require_not_failed(cache, f"cache {spec.name}"))


__all__ = [
    "BLOCKED_CODE",
    "BLOCKED_MESSAGE",
    "CacheCreationBlocked",
    "RedisCacheStep",
    "blocked_error",
    "classic_sku",
]
