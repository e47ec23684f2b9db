"""Azure Managed Redis (Microsoft.Cache/redisEnterprise): a cluster and its `default` database.

The cluster's SKU is `<tier>_<size>` (Balanced_B0 ...); the database owns the
port, the client protocol and the access keys. Two steps create them:
`ManagedRedisClusterStep` ("cache-cluster") and `ManagedRedisDatabaseStep`
("cache", the name the app-settings step waits for). The database step's
outputs carry the host (from the cluster) and the TLS port read from the
database resource, so the function's settings are wired the same way for
either kind of cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.errors import BadInput
from app.rules import DEFAULT_CLUSTERING_POLICY, DEFAULT_EVICTION_POLICY, persistence_frequency
from app.services.arm import (
    FAILED,
    SUCCEEDED,
    adoptable,
    enum_text,
    get_or_none,
    require_not_failed,
    state_of,
    wait_lro,
    wait_until_settled,
)
from app.services.cache_migration import KIND, managed_sku
from app.services.context import DeployContext
from app.services.meters import (
    HOURS_PER_MONTH,
    MANAGED_NODES,
    MANAGED_PRODUCTS,
    REDIS_SERVICE,
    PriceQuery,
)
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
from app.services.runner import StepReport, note
from app.spec import DeploymentSpec

if TYPE_CHECKING:
    from app.services.clients import ClientFactory

API_VERSION = "2025-07-01"
DATABASE = "default"
# What the database is asked for on Azure; the port actually used is always read
# back from the database resource (the sandbox answers a free local port).
AZURE_PORT = 10000
# One endpoint and the ordinary (non-cluster) Redis API, which is what the
# scoring function's client speaks; OSSCluster would need a cluster-aware client.
CLUSTERING_POLICY = DEFAULT_CLUSTERING_POLICY
EVICTION_POLICY = DEFAULT_EVICTION_POLICY
CLUSTER_ID = "resourceId('Microsoft.Cache/redisEnterprise', parameters('cacheName'))"
DATABASE_ID = (
    "resourceId('Microsoft.Cache/redisEnterprise/databases', parameters('cacheName'), "
    f"'{DATABASE}')"
)


def _persistence_body(spec: DeploymentSpec) -> dict[str, Any] | None:
    frequency = persistence_frequency(spec)
    if spec.cache.persistence == "rdb":
        return {"rdbEnabled": True, "rdbFrequency": frequency}
    if spec.cache.persistence == "aof":
        return {"aofEnabled": True, "aofFrequency": frequency}
    return None


def _policies(spec: DeploymentSpec) -> tuple[str, str]:
    """The database's clustering and eviction policies: the spec's, else ours."""
    cache = spec.cache
    return (cache.clustering_policy or CLUSTERING_POLICY,
            cache.eviction_policy or EVICTION_POLICY)



def _note_policy_differences(ctx: DeployContext, database: Any) -> None:
    """An adopted database keeps its own eviction policy and persistence: say so."""
    want = _policies(ctx.spec)[1]
    have = enum_text(database.eviction_policy) or EVICTION_POLICY
    if have.lower() != want.lower():
        note(f"the database {DATABASE} of {ctx.spec.cache.name} evicts with {have}; the spec "
             f"asks for {want} (left as is)")


def _names(ctx: DeployContext) -> tuple[str, str]:
    """Resource group and cluster name."""
    return ctx.group, ctx.spec.cache.name


class ManagedRedisClusterStep(ResourceStep):
    """The Microsoft.Cache/redisEnterprise cluster: SKU, TLS 1.2, network access, tags."""

    name = "cache-cluster"
    arm_type = "Microsoft.Cache/redisEnterprise"
    label = "cache"
    icon = "cache"
    name_kind = "managed_cache"
    depends_on = ("resource-group",)
    nominal_s = 20.0
    progress_text = "Creating {title} (this takes several minutes on Azure)"
    success_text = "{title} is running"

    def __init__(self, spec: DeploymentSpec) -> None:
        super().__init__(spec)
        cache = spec.cache
        self.sku = managed_sku(cache.tier, cache.size)
        self.title = f"Azure Managed Redis {cache.name} ({self.sku})"

    def resource_name(self) -> str:
        return self.spec.cache.name

    @classmethod
    def check_name(cls, clients: ClientFactory, name: str, group: str) -> NameAnswer:
        enterprise = clients.redis_enterprise().redis_enterprise
        if group and get_or_none(enterprise.get, group, name) is not None:
            return yours("cache", group)
        # Azure Managed Redis has no global name-availability operation; the
        # create call reports a conflict.
        return NameAnswer("unknown", "Azure checks Azure Managed Redis names when creating.")

    def probe(self, clients: ClientFactory) -> list[ResourceStatus]:
        group, name = self.spec.resource_group.name, self.spec.cache.name
        enterprise = clients.redis_enterprise()
        return [probe("Azure Managed Redis", name,
                      lambda: enterprise.redis_enterprise.get(group, name),
                      lambda c: f"{getattr(c.sku, 'name', '')}, {c.host_name}", self.name)]

    def arm_parameters(self) -> dict[str, dict[str, Any]]:
        return {"cacheName": {"type": "string", "defaultValue": self.spec.cache.name}}

    def arm_resources(self, wiring: ArmWiring) -> list[dict[str, Any]]:
        cache = self.spec.cache
        return [{
            "type": self.arm_type,
            "apiVersion": API_VERSION,
            "name": "[parameters('cacheName')]",
            "location": "[parameters('location')]",
            "tags": "[parameters('tags')]",
            "sku": {"name": managed_sku(cache.tier, cache.size)},
            "properties": {
                "minimumTlsVersion": cache.minimum_tls_version,
                "publicNetworkAccess": "Enabled" if cache.public_network_access else "Disabled",
            },
        }]

    def azcli(self, sh: Shell) -> AzCliPart:
        """One `az redisenterprise create` makes the cluster and its default database."""
        cache, q = self.spec.cache, sh.q
        line = (
            f"az redisenterprise create --resource-group {sh.rg} --cluster-name {q(cache.name)} "
            f"--location {sh.location} --sku {q(managed_sku(cache.tier, cache.size))} "
            f"--minimum-tls-version {q(cache.minimum_tls_version)} "
            f"--public-network-access {'Enabled' if cache.public_network_access else 'Disabled'} "
            f"--client-protocol Encrypted --port {AZURE_PORT} "
            f"--clustering-policy {_policies(self.spec)[0]} "
            f"--eviction-policy {_policies(self.spec)[1]} "
            "--access-keys-auth Enabled"
        )
        if cache.modules:
            # One --modules per module, as `az redisenterprise create --help` shows.
            line += "".join(f" --modules name={q(m)}" for m in cache.modules)
        persistence = _persistence_body(self.spec)
        if persistence:
            kind = "aof" if "aofEnabled" in persistence else "rdb"
            frequency = persistence.get("aofFrequency") or persistence.get("rdbFrequency")
            line += f" --persistence {kind}-enabled=true {kind}-frequency={frequency}"
        return AzCliPart(create=[
            "# The cache takes several minutes; everything else is created meanwhile.",
            line + f" --tags {sh.tags} --no-wait",
        ])

    def price_queries(self) -> list[PriceQuery]:
        cache = self.spec.cache
        product = MANAGED_PRODUCTS.get(cache.tier)
        if product is None:
            raise BadInput(f"cache.tier: no Azure Managed Redis tier {cache.tier!r}")
        return [PriceQuery(
            resource=f"Azure Managed Redis {cache.name}",
            sku=f"{cache.tier} {cache.size}",
            service_name=REDIS_SERVICE, product_name=product, sku_name=cache.size,
            meter_name=f"{cache.size} Cache Instance", unit_of_measure="1 Hour",
            units=HOURS_PER_MONTH * MANAGED_NODES, unit_label="node-hour",
            note="high availability: 2 nodes",
        )]

    def _outputs(self, cluster: Any) -> dict[str, str]:
        return {
            "name": cluster.name,
            "id": cluster.id or "",
            "host": cluster.host_name or "",
            "sku": enum_text(cluster.sku.name),
        }

    def _check_compatible(self, ctx: DeployContext, cluster: Any) -> None:
        have = enum_text(cluster.sku.name)
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
        if adoptable(cluster, f"Azure Managed Redis {cluster_name}"):
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
                ctx.target.polling_interval, what=f"Azure Managed Redis {cluster_name}",
            )
            if settled is not None and state_of(settled).lower() in SUCCEEDED:
                self._check_compatible(ctx, settled)
                report.log(f"{cluster_name} finished creating")
                return self._outputs(settled)
            if settled is not None and state_of(settled).lower() in FAILED:
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
        if created is None or state_of(created).lower() not in SUCCEEDED:
            created = client.get(group, cluster_name)
        return self._outputs(require_not_failed(created, f"Azure Managed Redis {cluster_name}"))


class ManagedRedisDatabaseStep(ResourceStep):
    """The cluster's `default` database: TLS only, access keys, eviction, persistence."""

    name = "cache"
    arm_type = "Microsoft.Cache/redisEnterprise/databases"
    label = "database"
    icon = "cache"
    depends_on = ("cache-cluster",)
    probe_needs = ("resource-group", "cache-cluster")
    nominal_s = 1.0
    progress_text = "Creating {title}"
    success_text = "{title} accepts TLS connections"

    def __init__(self, spec: DeploymentSpec) -> None:
        super().__init__(spec)
        self.title = f"database {DATABASE} of {spec.cache.name}"

    def resource_name(self) -> str:
        return f"{self.spec.cache.name}/{DATABASE}"

    @staticmethod
    def access_keys(ctx: DeployContext) -> tuple[str | None, str | None]:
        """The default database's primary and secondary keys (listKeys on the database)."""
        keys = ctx.clients.redis_enterprise().databases.list_keys(
            ctx.group, ctx.spec.cache.name, DATABASE
        )
        return keys.primary_key, keys.secondary_key

    @staticmethod
    def address(ctx: DeployContext) -> tuple[str, str] | None:
        """The cluster's host and the database's port as ARM tells them now (while still
        Creating); None when either is not known yet."""
        client = ctx.clients.redis_enterprise()
        group, name = _names(ctx)
        cluster = get_or_none(client.redis_enterprise.get, group, name)
        database = get_or_none(client.databases.get, group, name, DATABASE)
        if cluster is None or database is None or not cluster.host_name or not database.port:
            return None
        return str(cluster.host_name), str(database.port)

    def probe(self, clients: ClientFactory) -> list[ResourceStatus]:
        group, name = self.spec.resource_group.name, self.spec.cache.name
        databases = clients.redis_enterprise().databases
        return [probe("Azure Managed Redis database", f"{name}/{DATABASE}",
                      lambda: databases.get(group, name, DATABASE),
                      lambda d: f"port {d.port} (TLS)", self.name)]

    def arm_id(self) -> str:
        return f"[{DATABASE_ID}]"

    def arm_settings(self) -> list[dict[str, str]]:
        """Host from the cluster, port from the database; the key (read by listKeys() at
        deploy) only when the spec keeps access keys."""
        settings = [
            {"name": "REDIS_HOST", "value": f"[reference({CLUSTER_ID}, '{API_VERSION}').hostName]"},
            {"name": "REDIS_PORT",
             "value": f"[string(reference({DATABASE_ID}, '{API_VERSION}').port)]"},
        ]
        if self.spec.cache.auth == "access-keys":
            settings.append({"name": "REDIS_KEY",
                             "value": f"[listKeys({DATABASE_ID}, '{API_VERSION}').primaryKey]"})
        return settings

    def arm_resources(self, wiring: ArmWiring) -> list[dict[str, Any]]:
        properties: dict[str, Any] = {
            "clientProtocol": "Encrypted",
            "port": AZURE_PORT,
            "clusteringPolicy": _policies(self.spec)[0],
            "evictionPolicy": _policies(self.spec)[1],
            "accessKeysAuthentication": self._wanted_keys(),
        }
        if self.spec.cache.modules:
            properties["modules"] = [{"name": m} for m in self.spec.cache.modules]
        persistence = _persistence_body(self.spec)
        if persistence:
            properties["persistence"] = persistence
        return [{
            "type": self.arm_type,
            "apiVersion": API_VERSION,
            "name": f"[format('{{0}}/{DATABASE}', parameters('cacheName'))]",
            "dependsOn": [f"[{CLUSTER_ID}]"],
            "properties": properties,
        }]

    def azcli(self, sh: Shell) -> AzCliPart:
        rg, name = sh.rg, sh.q(self.spec.cache.name)
        return AzCliPart(read=[
            f"az redisenterprise wait --resource-group {rg} --cluster-name {name} --created",
            f"az redisenterprise database wait --resource-group {rg} --cluster-name {name} "
            "--created",
            f"redis_host=$(az redisenterprise show --resource-group {rg} --cluster-name {name} "
            "--query hostName -o tsv)",
            f"redis_port=$(az redisenterprise database show --resource-group {rg} "
            f"--cluster-name {name} --query port -o tsv)",
            *([f"redis_key=$(az redisenterprise database list-keys --resource-group {rg} "
               f"--cluster-name {name} --query primaryKey -o tsv)"]
              if self.spec.cache.auth == "access-keys" else []),
        ])

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
        protocol = enum_text(database.client_protocol) or "Encrypted"
        policy = enum_text(database.clustering_policy)
        problems = []
        if protocol != "Encrypted":
            problems.append(f"accepts {protocol} connections (the function connects over TLS)")
        if policy == "OSSCluster":
            problems.append("uses OSS clustering (the function's client needs one endpoint: "
                            "EnterpriseCluster or NoCluster)")
        have = {str(m.name).lower() for m in database.modules or []}
        missing = [m for m in ctx.spec.cache.modules if m.lower() not in have]
        if missing:
            # Modules are chosen when a database is created and cannot be added later.
            problems.append(f"has no {', '.join(missing)} module (modules can only be added "
                            "when a database is created)")
        if problems:
            raise BadInput(
                f"the database {DATABASE} of {ctx.spec.cache.name} " + " and ".join(problems),
                "Choose another cache.name, or recreate that database with client protocol "
                f"Encrypted and clustering policy {CLUSTERING_POLICY}.",
            )

    def _wanted_keys(self) -> str:
        """Access keys on only when the spec asks for them (Azure's default is off)."""
        return "Enabled" if self.spec.cache.auth == "access-keys" else "Disabled"

    def _keys_ready(self, database: Any) -> bool:
        return (enum_text(database.access_keys_authentication) or "Disabled") == \
            self._wanted_keys()

    def find_existing(self, ctx: DeployContext) -> dict[str, str] | None:
        group, cluster_name = _names(ctx)
        database = get_or_none(ctx.clients.redis_enterprise().databases.get, group, cluster_name,
                               DATABASE)
        if database is None:
            return None
        self._check_compatible(ctx, database)
        if adoptable(database, f"database {DATABASE} of {cluster_name}") and \
                self._keys_ready(database):
            _note_policy_differences(ctx, database)
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
                ctx.target.polling_interval, what=f"database {DATABASE} of {cluster_name}",
            )
            if settled is not None and state_of(settled).lower() in SUCCEEDED:
                self._check_compatible(ctx, settled)
                _note_policy_differences(ctx, settled)
                if not self._keys_ready(settled):
                    wanted = self._wanted_keys()
                    report.log(f"turning access keys {'on' if wanted == 'Enabled' else 'off'} "
                               f"on the database {DATABASE}")
                    settled = wait_lro(
                        client.begin_update(
                            group, cluster_name, DATABASE,
                            models.DatabaseUpdate(access_keys_authentication=wanted),
                        ),
                        report, "Updating",
                    )
                return self._outputs(ctx, settled)
            if settled is not None and state_of(settled).lower() in FAILED:
                report.log(f"the database is in state {state_of(settled)}; deleting it to retry")
                wait_lro(client.begin_delete(group, cluster_name, DATABASE), report, "Deleting")
        body = _persistence_body(ctx.spec)
        persistence = models.Persistence.from_dict(body) if body else None
        clustering, eviction = _policies(ctx.spec)
        database = models.Database(
            client_protocol="Encrypted",
            port=AZURE_PORT,
            clustering_policy=clustering,
            eviction_policy=eviction,
            persistence=persistence,
            modules=[models.Module(name=m) for m in ctx.spec.cache.modules] or None,
            # Azure's default is Disabled (Entra only); keys only when the spec asks.
            access_keys_authentication=self._wanted_keys(),
        )
        created = wait_lro(client.begin_create(group, cluster_name, DATABASE, database), report)
        if created is None or not created.port:
            created = client.get(group, cluster_name, DATABASE)
        return self._outputs(ctx, created)
