"""One small step per resource the deployment creates, and the context they share.

Each step asks ARM first (`find_existing`): a compatible resource is adopted, an
incompatible one stops the step with a message that says what differs. Creates
are create-or-update calls, so running the same spec again resumes where the
last run stopped. Secrets read from ARM go into `ctx.secrets` and the redaction
registry at once; step outputs hold only names, host names and ports.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from app.errors import BadInput, NotPermitted, ServiceFailure
from app.imageref import ImageReference, parse_image_reference
from app.rules import CREATED_BY_TAG, CREATED_BY_VALUE
from app.services.clients import ClientFactory
from app.services.redaction import register_secret
from app.services.runner import RunContext, Step, StepReport, note
from app.services.target import CloudTarget
from app.spec import DeploymentSpec

# provisioningState values after which nothing more will happen by itself.
_SUCCEEDED = {"succeeded", "running"}
_FAILED = {"failed", "canceled", "cancelled"}
# How long the function may take to answer its health route after the settings
# changed (it restarts and loads the model).
HEALTH_TIMEOUT_SANDBOX_S = 90.0
HEALTH_TIMEOUT_AZURE_S = 900.0
DEFAULT_TTL_SECONDS = "3600"
_WAIT_SLICE_S = 0.25
# App settings whose values are secrets, wherever they come from.
_SECRET_SETTING = re.compile(r"KEY|PASSWORD|SECRET|TOKEN|CONNECTION|AzureWebJobsStorage", re.I)


class DeployContext(RunContext):
    """Spec, target and clients for one run, plus what finished steps produced."""

    def __init__(
        self,
        spec: DeploymentSpec,
        target: CloudTarget,
        clients: ClientFactory | None = None,
        spec_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.target = target
        self.clients = clients or ClientFactory(target)
        self.spec_dir = spec_dir or Path.cwd()
        self.tags = {**spec.tags, CREATED_BY_TAG: CREATED_BY_VALUE}

    @property
    def group(self) -> str:
        return self.spec.resource_group.name

    def secret(self, name: str, value: str | None) -> str:
        """Remember a secret for later steps and register it for redaction."""
        if not value:
            raise ServiceFailure(f"Azure returned no {name.replace('_', ' ')}")
        register_secret(value)
        self.secrets[name] = value
        return value

    def resolve_path(self, text: str) -> Path:
        return resolve_spec_path(text, self.spec_dir)


def resolve_spec_path(text: str, spec_dir: Path) -> Path:
    """A path from the spec: absolute; else from the spec's folder, the current
    folder, or (for specs kept in a subfolder of a project) a folder above the spec."""
    path = Path(text).expanduser()
    if path.is_absolute():
        return path
    for base in (spec_dir, Path.cwd(), *spec_dir.resolve().parents):
        if (base / path).exists():
            return (base / path).resolve()
    return (spec_dir / path).resolve()


# --- helpers ----------------------------------------------------------------------


def get_or_none(call: Any, *args: Any, **kwargs: Any) -> Any:
    """`call(*args)`, or None when ARM answers 404 (the resource or its group is missing)."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return call(*args, **kwargs)
    except ResourceNotFoundError:
        return None


def state_of(resource: Any) -> str:
    """A resource's provisioningState as text ('' when it has none)."""
    value = getattr(resource, "provisioning_state", None)
    if value is None:
        props = getattr(resource, "properties", None)
        value = getattr(props, "provisioning_state", None)
    return str(getattr(value, "value", value) or "")


def wait_lro(poller: Any, report: StepReport, state: str = "Creating") -> Any:
    """Wait for an SDK poller, reporting progress and stopping when the run is cancelled."""
    while not poller.done():
        status = str(poller.status() or "")
        report.progress(state if status.lower() in ("", "inprogress", "accepted") else status)
        # The SDK polls at the target's interval in its own thread; waking up
        # in short slices keeps cancel and progress responsive.
        poller.wait(timeout=_WAIT_SLICE_S)
        report.check_cancelled()
    return poller.result()


def wait_until_settled(
    get: Any, report: StepReport, interval: float, state: str = "Creating"
) -> Any:
    """Poll `get()` until the resource's provisioningState is final (resume after cancel)."""
    while True:
        resource = get()
        current = state_of(resource)
        if resource is None or current.lower() in _SUCCEEDED | _FAILED or not current:
            return resource
        report.progress(current or state)
        report.sleep(interval)


def _id_name(resource_id: str | None) -> str:
    return (resource_id or "").rstrip("/").rsplit("/", 1)[-1]


def _enum_text(value: Any) -> str:
    return str(getattr(value, "value", value) or "")


# --- resource group ---------------------------------------------------------------


class ResourceGroupStep(Step):
    name = "resource-group"
    progress_text = "Creating {title}"
    success_text = "Created {title}"

    def __init__(self, spec: DeploymentSpec) -> None:
        self.title = f"resource group {spec.resource_group.name}"

    def find_existing(self, ctx: DeployContext) -> dict[str, str] | None:
        group = get_or_none(ctx.clients.resources().resource_groups.get, ctx.group)
        if group is None:
            if not ctx.spec.resource_group.create:
                raise BadInput(
                    f"resource group {ctx.group} does not exist and resource_group.create is false",
                    "Create it first, or set resource_group.create to true.",
                )
            return None
        if state_of(group).lower() == "deleting":
            raise ServiceFailure(
                f"resource group {ctx.group} is being deleted",
                "Wait until the deletion finishes, then deploy again.",
            )
        return {"name": group.name, "location": group.location or ""}

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        group = ctx.clients.resources().resource_groups.create_or_update(
            ctx.group, {"location": ctx.spec.location, "tags": ctx.tags}
        )
        return {"name": group.name, "location": group.location or ""}


# --- Azure Cache for Redis --------------------------------------------------------


def classic_sku(tier: str, size: str) -> tuple[str, str, int]:
    """Spec tier/size → ARM sku name, family and capacity (Standard C1 → Standard, C, 1)."""
    return tier, size[:1].upper(), int(size[1:])


class RedisCacheStep(Step):
    name = "cache"
    depends_on: tuple[str, ...] = ("resource-group",)
    nominal_s = 20.0
    progress_text = "Creating {title} (this takes about 20 minutes on Azure)"
    success_text = "{title} is running"

    def __init__(self, spec: DeploymentSpec) -> None:
        cache = spec.cache
        self.title = f"Azure Cache for Redis {cache.name} ({cache.tier} {cache.size})"
        if cache.persistence:
            # Azure writes Premium persistence (RDB/AOF) to a storage account it is
            # given a connection string for; the function's account serves.
            self.depends_on = ("resource-group", "storage")

    def _outputs(self, cache: Any) -> dict[str, str]:
        return {
            "name": cache.name,
            "id": cache.id or "",
            "host": cache.host_name or "",
            "ssl_port": str(cache.ssl_port or ""),
            "kind": "azure-cache-for-redis",
        }

    def _check_compatible(self, ctx: DeployContext, cache: Any) -> None:
        spec = ctx.spec.cache
        want = classic_sku(spec.tier, spec.size)
        sku = cache.sku
        have = (_enum_text(sku.name), _enum_text(sku.family), int(sku.capacity))
        if (have[0].lower(), have[1].upper(), have[2]) != (want[0].lower(), want[1], want[2]):
            raise BadInput(
                f"a cache named {spec.name} already exists in {ctx.group} as "
                f"{have[0]} {have[1]}{have[2]}, but the spec asks for {spec.tier} {spec.size}",
                "Choose another cache name, or set cache.tier and cache.size to match it.",
            )
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
        if state_of(cache).lower() in _SUCCEEDED:
            return self._outputs(cache)
        return None  # still creating, or failed: create() takes it from there

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        from azure.mgmt.redis import models

        client = ctx.clients.redis()
        spec = ctx.spec.cache
        existing = get_or_none(client.redis.get, ctx.group, spec.name)
        if existing is not None:
            settled = wait_until_settled(
                lambda: get_or_none(client.redis.get, ctx.group, spec.name),
                report,
                ctx.target.polling_interval,
            )
            if settled is not None and state_of(settled).lower() in _SUCCEEDED:
                report.log(f"{spec.name} finished creating")
                return self._outputs(settled)
            if settled is not None:
                # A cache whose provisioning failed cannot be repaired in place;
                # Azure's advice is to delete it and create it again.
                report.log(f"{spec.name} is in state {state_of(settled)}; deleting it to retry")
                wait_lro(client.redis.begin_delete(ctx.group, spec.name), report, "Deleting")
        else:
            self._check_name(ctx)
        name, family, capacity = classic_sku(spec.tier, spec.size)
        redis_configuration = None
        if spec.persistence == "rdb":
            redis_configuration = models.RedisCommonPropertiesRedisConfiguration(
                rdb_backup_enabled="true",
                rdb_backup_frequency="60",
                rdb_storage_connection_string=storage_connection(ctx),
            )
        elif spec.persistence == "aof":
            redis_configuration = models.RedisCommonPropertiesRedisConfiguration(
                aof_backup_enabled="true",
                aof_storage_connection_string0=storage_connection(ctx),
            )
        parameters = models.RedisCreateParameters(
            location=ctx.spec.location,
            sku=models.Sku(name=name, family=family, capacity=capacity),
            enable_non_ssl_port=spec.non_tls_port,
            minimum_tls_version=spec.minimum_tls_version,
            redis_version=spec.redis_version,
            public_network_access="Enabled",
            shard_count=spec.shards,
            zones=list(spec.zones) or None,
            redis_configuration=redis_configuration,
            tags=ctx.tags,
        )
        poller = client.redis.begin_create(ctx.group, spec.name, parameters)
        cache = wait_lro(poller, report)
        if state_of(cache).lower() not in _SUCCEEDED:
            cache = client.redis.get(ctx.group, spec.name)
        return self._outputs(cache)

    def _check_name(self, ctx: DeployContext) -> None:
        from azure.core.exceptions import HttpResponseError
        from azure.mgmt.redis import models

        name = ctx.spec.cache.name
        try:
            ctx.clients.redis().redis.check_name_availability(
                models.CheckNameAvailabilityParameters(name=name, type="Microsoft.Cache/redis")
            )
        except HttpResponseError as exc:
            if exc.status_code in (400, 409):
                raise BadInput(
                    f"the cache name {name} is taken ({name}.redis.cache.windows.net exists)",
                    "Cache names are global across Azure: choose another cache.name.",
                ) from None
            raise


# --- storage account --------------------------------------------------------------


class StorageAccountStep(Step):
    name = "storage"
    depends_on = ("resource-group",)
    nominal_s = 4.0

    def __init__(self, spec: DeploymentSpec) -> None:
        self.title = f"storage account {spec.function_app.storage_account}"

    def _outputs(self, account: Any) -> dict[str, str]:
        blob = getattr(getattr(account, "primary_endpoints", None), "blob", None) or ""
        return {"name": account.name, "id": account.id or "", "blob_endpoint": blob}

    def find_existing(self, ctx: DeployContext) -> dict[str, str] | None:
        account = get_or_none(
            ctx.clients.storage().storage_accounts.get_properties,
            ctx.group,
            ctx.spec.function_app.storage_account,
        )
        if account is None:
            return None
        kind = _enum_text(account.kind)
        if kind not in ("StorageV2", "Storage"):
            raise BadInput(
                f"storage account {account.name} exists as kind {kind}; the Functions runtime "
                "needs a general-purpose account (StorageV2)",
                "Choose another function_app.storage_account name.",
            )
        if state_of(account).lower() not in _SUCCEEDED:
            return None
        return self._outputs(account)

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        from azure.mgmt.storage import models

        client = ctx.clients.storage()
        name = ctx.spec.function_app.storage_account
        if get_or_none(client.storage_accounts.get_properties, ctx.group, name) is None:
            availability = client.storage_accounts.check_name_availability(
                models.StorageAccountCheckNameAvailabilityParameters(name=name)
            )
            if not availability.name_available:
                raise BadInput(
                    f"the storage account name {name} is not available: "
                    f"{availability.message or availability.reason}",
                    "Storage account names are global across Azure: choose another "
                    "function_app.storage_account.",
                )
        parameters = models.StorageAccountCreateParameters(
            sku=models.Sku(name="Standard_LRS"),
            kind="StorageV2",
            location=ctx.spec.location,
            tags=ctx.tags,
            properties=models.StorageAccountPropertiesCreateParameters(
                minimum_tls_version="TLS1_2",
                allow_blob_public_access=False,
                enable_https_traffic_only=True,
            ),
        )
        poller = client.storage_accounts.begin_create(ctx.group, name, parameters)
        account = wait_lro(poller, report)
        if account is None or not getattr(account, "primary_endpoints", None):
            account = client.storage_accounts.get_properties(ctx.group, name)
        return self._outputs(account)


# --- App Service plan -------------------------------------------------------------

_PLAN_TIERS = {"B": "Basic", "S": "Standard", "P": "PremiumV3", "E": "ElasticPremium"}


def plan_tier(sku: str) -> str:
    if sku.endswith("v2"):
        return "PremiumV2"
    return _PLAN_TIERS.get(sku[:1].upper(), "Basic")


class AppServicePlanStep(Step):
    name = "plan"
    depends_on = ("resource-group",)
    nominal_s = 2.0

    def __init__(self, spec: DeploymentSpec) -> None:
        app = spec.function_app
        self.title = f"App Service plan {app.plan_name} (Linux {app.plan_sku})"

    def _outputs(self, plan: Any) -> dict[str, str]:
        return {"name": plan.name, "id": plan.id or ""}

    def find_existing(self, ctx: DeployContext) -> dict[str, str] | None:
        app = ctx.spec.function_app
        plan = get_or_none(ctx.clients.web().app_service_plans.get, ctx.group, app.plan_name)
        if plan is None:
            return None
        if not plan.reserved:
            raise BadInput(
                f"App Service plan {app.plan_name} exists but is a Windows plan; "
                "a container function app needs a Linux plan",
                "Choose another function_app.plan_name.",
            )
        sku = getattr(getattr(plan, "sku", None), "name", None)
        if sku and sku != app.plan_sku:
            note(f"plan {app.plan_name} runs on {sku}; the spec asks for {app.plan_sku} "
                 "(left as is)")
        return self._outputs(plan)

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        from azure.mgmt.web import models

        app = ctx.spec.function_app
        plan = models.AppServicePlan(
            location=ctx.spec.location,
            kind="linux",
            sku=models.SkuDescription(name=app.plan_sku, tier=plan_tier(app.plan_sku)),
            tags=ctx.tags,
            properties=models.AppServicePlanProperties(reserved=True),
        )
        poller = ctx.clients.web().app_service_plans.begin_create_or_update(
            ctx.group, app.plan_name, plan
        )
        return self._outputs(wait_lro(poller, report))


# --- container registry and image -------------------------------------------------


def image_reference(spec: DeploymentSpec) -> ImageReference:
    image = spec.image
    if image.reference:
        return parse_image_reference(image.reference)
    return ImageReference(
        registry=(image.registry or "").lower(),
        repository=image.repository or "",
        tag=image.tag,
    )


def _registry_outputs(ctx: DeployContext, registry: Any, group: str) -> dict[str, str]:
    credentials = ctx.clients.registry().registries.list_credentials(group, registry.name)
    passwords = credentials.passwords or []
    if not credentials.username or not passwords:
        raise ServiceFailure(f"registry {registry.name} returned no admin credentials")
    ctx.secret("registry_password", passwords[0].value)
    return {
        "name": registry.name,
        "id": registry.id or "",
        "login_server": registry.login_server or f"{registry.name}.azurecr.io",
        "username": credentials.username,
        "resource_group": group,
    }


def _require_admin(registry: Any) -> None:
    if not registry.admin_user_enabled:
        raise NotPermitted(
            f"registry {registry.name} has its admin user disabled, so the function app "
            "cannot pull from it with registry credentials",
            f"Enable it: az acr update -n {registry.name} --admin-enabled true; then deploy again.",
        )


class RegistryCredentialsStep(Step):
    """An existing image: find its registry in the subscription and read pull credentials."""

    name = "registry"
    depends_on = ()
    progress_text = "Reading pull credentials of {title}"
    success_text = "Read pull credentials of {title}"
    adopted_text = "Read pull credentials of {title}"

    def __init__(self, spec: DeploymentSpec) -> None:
        self.title = f"container registry {image_reference(spec).registry}"

    def find_existing(self, ctx: DeployContext) -> dict[str, str] | None:
        wanted = image_reference(ctx.spec).registry
        for registry in ctx.clients.registry().registries.list():
            if (registry.name or "").lower() == wanted:
                _require_admin(registry)
                group = _group_of(registry.id)
                outputs = _registry_outputs(ctx, registry, group)
                outputs["image"] = str(image_reference(ctx.spec))
                check_image_exists(ctx, outputs)
                return outputs
        raise BadInput(
            f"no container registry named {wanted} in subscription {ctx.target.subscription_id}",
            "Check image.reference, or sign in to the subscription that holds the registry.",
        )


_MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)


def check_image_exists(ctx: DeployContext, registry: dict[str, str]) -> None:
    """Ask the registry's data plane for the image before a site is made to pull it.

    Azure would create the site anyway and the failed pull would only show in its
    log after a long wait; a missing tag is better named now, with the tags there are.
    """
    import requests

    image = image_reference(ctx.spec)
    reference = image.digest or image.tag or "latest"
    if ctx.target.is_sandbox:
        from app.sandbox.registry import data_plane_url

        def url(path: str) -> str:
            return data_plane_url(ctx.target.arm_endpoint, image.registry, path)
    else:
        def url(path: str) -> str:
            return f"https://{registry['login_server']}/v2/{path}"

    auth = (registry["username"], ctx.secrets["registry_password"])
    try:
        answer = requests.head(
            url(f"{image.repository}/manifests/{reference}"),
            auth=auth, headers={"Accept": _MANIFEST_TYPES}, timeout=30, verify=ctx.target.verify,
        )
    except requests.RequestException as exc:
        note(f"could not ask {image.login_server} for {image}: {plain_request_error(exc)}")
        return
    if answer.status_code == 200:
        return
    if answer.status_code != 404:
        note(f"{image.login_server} answered HTTP {answer.status_code} for {image}; "
             "the function app will try to pull it anyway")
        return
    tags: list[str] = []
    try:
        listing = requests.get(url(f"{image.repository}/tags/list"), auth=auth, timeout=30,
                               verify=ctx.target.verify)
        if listing.status_code == 200:
            tags = list((listing.json() or {}).get("tags") or [])
    except (requests.RequestException, ValueError):
        pass
    known = f"; tags there: {', '.join(sorted(tags)[:10])}" if tags else ""
    raise BadInput(
        f"image {image} is not in registry {image.registry}{known}",
        "Check image.reference (repository, tag or digest), or push the image first.",
    )


def _group_of(resource_id: str | None) -> str:
    match = re.search(r"/resourceGroups/([^/]+)/", resource_id or "", re.IGNORECASE)
    if not match:
        raise ServiceFailure(f"cannot read the resource group from id {resource_id!r}")
    return match.group(1)


class RegistryStep(Step):
    """For a build: the registry in the spec's group, created (Basic, admin user) if missing."""

    name = "registry"
    depends_on = ("resource-group",)
    nominal_s = 2.0

    def __init__(self, spec: DeploymentSpec) -> None:
        self.title = f"container registry {spec.image.registry} (Basic)"

    def find_existing(self, ctx: DeployContext) -> dict[str, str] | None:
        name = ctx.spec.image.registry or ""
        registry = get_or_none(ctx.clients.registry().registries.get, ctx.group, name)
        if registry is None or state_of(registry).lower() not in _SUCCEEDED:
            return None
        _require_admin(registry)
        return _registry_outputs(ctx, registry, ctx.group)

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        from azure.mgmt.containerregistry import models

        client = ctx.clients.registry()
        name = ctx.spec.image.registry or ""
        if get_or_none(client.registries.get, ctx.group, name) is None:
            result = client.registries.check_name_availability(
                models.RegistryNameCheckRequest(
                    name=name, type="Microsoft.ContainerRegistry/registries"
                )
            )
            if not result.name_available:
                raise BadInput(
                    f"the registry name {name} is not available: {result.message or result.reason}",
                    "Registry names are global across Azure: choose another image.registry.",
                )
        registry = models.Registry(
            location=ctx.spec.location,
            sku=models.Sku(name="Basic"),
            tags=ctx.tags,
            properties=models.RegistryProperties(admin_user_enabled=True),
        )
        created = wait_lro(client.registries.begin_create(ctx.group, name, registry), report)
        return _registry_outputs(ctx, created, ctx.group)


class ImageBuildStep(Step):
    """Build the model folder into a package/image and push it to the registry."""

    name = "image"
    depends_on = ("registry",)
    progress_text = "Building and pushing {title}"
    success_text = "Pushed {title}"

    def __init__(self, spec: DeploymentSpec) -> None:
        self.title = f"image {image_reference(spec)}"

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        from app.services.packaging import build_image_in_acr, build_package

        image = image_reference(ctx.spec)
        model_dir = ctx.resolve_path(ctx.spec.image.build_from or "")
        if not model_dir.is_dir():
            raise BadInput(
                f"image.build_from: {model_dir} is not a folder",
                "Point image.build_from at the model folder (entry script, model files, "
                "requirements.txt); a relative path is read from the spec file's folder.",
            )
        work = Path(tempfile.mkdtemp(prefix="mlcache-build-"))
        try:
            report.progress("Building")
            info = build_package(model_dir, work / "package")
            report.log(f"built the package from {model_dir} (model version {info.model_version})")
            report.check_cancelled()
            username = ctx.output("registry", "username")
            password = ctx.secrets["registry_password"]
            if ctx.target.is_sandbox:
                from app.sandbox.registry import push_package

                report.progress("Pushing")
                pushed = push_package(
                    info.out_dir,
                    image,
                    endpoint=ctx.target.arm_endpoint,
                    ca_cert=ctx.target.ca_bundle or "",
                    username=username,
                    password=password,
                )
                digest = pushed.digest
            else:
                report.progress("Building in ACR")
                result = build_image_in_acr(
                    credential=ctx.target.credential,
                    subscription_id=ctx.target.subscription_id,
                    resource_group=ctx.output("registry", "resource_group"),
                    registry_name=image.registry,
                    package_dir=info.out_dir,
                    repository=image.repository,
                    tag=image.tag or "latest",
                    log_line=report.log,
                    base_url=ctx.target.arm_endpoint,
                )
                digest = result.digest or ""
        finally:
            shutil.rmtree(work, ignore_errors=True)
        report.log(f"pushed {image} ({digest})")
        # The site runs the pushed digest, not the tag: a changed package under the
        # same tag then changes the site's image, so the site pulls it again.
        pinned = f"{image.login_server}/{image.repository}@{digest}" if digest else str(image)
        return {
            "image": pinned,
            "tag": str(image),
            "digest": digest,
            "model_version": info.model_version,
        }


# --- function app -----------------------------------------------------------------


def storage_connection(ctx: DeployContext) -> str:
    """The storage account's connection string (key read from ARM, kept as a secret)."""
    if "storage_connection" in ctx.secrets:
        return ctx.secrets["storage_connection"]
    account = ctx.output("storage", "name")
    keys = ctx.clients.storage().storage_accounts.list_keys(ctx.group, account)
    # The model is a mapping, so its `keys` list is `keys_property` (keys() is the method).
    values = [k.value for k in (keys.keys_property or []) if k.value]
    storage_key = ctx.secret("storage_key", values[0] if values else None)
    blob = ctx.output("storage", "blob_endpoint")
    match = re.match(r"https://[^.]+\.blob\.([^/]+)", blob)
    suffix = match.group(1) if match else "core.windows.net"
    connection = (
        f"DefaultEndpointsProtocol=https;AccountName={account};"
        f"AccountKey={storage_key};EndpointSuffix={suffix}"
    )
    return ctx.secret("storage_connection", connection)


def runtime_settings(ctx: DeployContext) -> dict[str, str]:
    """The Functions runtime's own settings: extension version, storage, registry."""
    connection = storage_connection(ctx)
    login_server = ctx.output("registry", "login_server")
    return {
        "FUNCTIONS_EXTENSION_VERSION": "~4",
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": connection,
        "WEBSITES_ENABLE_APP_SERVICE_STORAGE": "false",
        "DOCKER_REGISTRY_SERVER_URL": f"https://{login_server}",
        "DOCKER_REGISTRY_SERVER_USERNAME": ctx.output("registry", "username"),
        "DOCKER_REGISTRY_SERVER_PASSWORD": ctx.secrets["registry_password"],
    }


def deployed_image(ctx: DeployContext) -> str:
    built = ctx.outputs.get("image", {}).get("image")
    return built or ctx.output("registry", "image")


class FunctionAppStep(Step):
    name = "function-app"
    depends_on: tuple[str, ...] = ("resource-group", "plan", "storage", "registry")
    nominal_s = 6.0

    def __init__(self, spec: DeploymentSpec) -> None:
        self.title = f"function app {spec.function_app.name}"
        if spec.image.build_from:
            self.depends_on = (*self.depends_on, "image")

    def _outputs(self, site: Any) -> dict[str, str]:
        return {
            "name": site.name,
            "id": site.id or "",
            "default_host_name": site.default_host_name or "",
        }

    def find_existing(self, ctx: DeployContext) -> dict[str, str] | None:
        web = ctx.clients.web()
        app = ctx.spec.function_app
        site = get_or_none(web.web_apps.get, ctx.group, app.name)
        if site is None:
            return None
        kind = (site.kind or "").lower()
        if "functionapp" not in kind or "linux" not in kind:
            raise BadInput(
                f"{app.name} already exists in {ctx.group} as a {site.kind or 'web'} app, "
                "not a Linux function app",
                "Choose another function_app.name.",
            )
        if _id_name(site.server_farm_id).lower() != app.plan_name.lower():
            raise BadInput(
                f"function app {app.name} exists on plan {_id_name(site.server_farm_id)}, "
                f"but the spec puts it on {app.plan_name}",
                "Set function_app.plan_name to its plan, or choose another app name.",
            )
        config = web.web_apps.get_configuration(ctx.group, app.name)
        if (config.linux_fx_version or "") != f"DOCKER|{deployed_image(ctx)}":
            return None  # another image: create() updates the site in place
        return self._outputs(site)

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        from azure.mgmt.web import models

        web = ctx.clients.web()
        app = ctx.spec.function_app
        if get_or_none(web.web_apps.get, ctx.group, app.name) is None:
            availability = web.check_name_availability(
                models.ResourceNameAvailabilityRequest(name=app.name, type="Microsoft.Web/sites")
            )
            if not availability.name_available:
                raise BadInput(
                    f"the function app name {app.name} is not available: "
                    f"{availability.message or availability.reason}",
                    "App names are global across Azure (they become <name>.azurewebsites.net): "
                    "choose another function_app.name.",
                )
        settings = runtime_settings(ctx)
        site = models.Site(
            location=ctx.spec.location,
            kind="functionapp,linux,container",
            tags=ctx.tags,
            properties=models.SiteProperties(
                server_farm_id=ctx.output("plan", "id"),
                reserved=True,
                https_only=True,
                site_config=models.SiteConfig(
                    linux_fx_version=f"DOCKER|{deployed_image(ctx)}",
                    app_settings=[
                        models.NameValuePair(name=k, value=v) for k, v in settings.items()
                    ],
                    always_on=not app.plan_sku.upper().startswith("EP"),
                    min_tls_version="1.2",
                    ftps_state="Disabled",
                    http20_enabled=True,
                ),
            ),
        )
        created = wait_lro(web.web_apps.begin_create_or_update(ctx.group, app.name, site), report)
        if created is None or not created.default_host_name:
            created = web.web_apps.get(ctx.group, app.name)
        return self._outputs(created)


# --- app settings that wire the cache ---------------------------------------------


def register_setting_secrets(settings: dict[str, str]) -> None:
    for name, value in settings.items():
        if _SECRET_SETTING.search(name):
            register_secret(value)


class FunctionSettingsStep(Step):
    """Write the cache connection into the function's app settings (the only wait on the cache)."""

    name = "app-settings"
    depends_on = ("function-app", "cache")
    nominal_s = 1.0
    progress_text = "Writing {title}"
    success_text = "Wrote {title}"
    adopted_text = "{title} already up to date"

    def __init__(self, spec: DeploymentSpec) -> None:
        self.title = f"cache settings of {spec.function_app.name}"

    def desired(self, ctx: DeployContext) -> dict[str, str]:
        cache = ctx.spec.cache
        if cache.kind == "azure-managed-redis":
            from app.services.managed_redis import list_access_keys

            primary, secondary = list_access_keys(ctx)
        else:
            keys = ctx.clients.redis().redis.list_keys(ctx.group, cache.name)
            primary, secondary = keys.primary_key, keys.secondary_key
        key = ctx.secret("cache_key", primary)
        if secondary:
            register_secret(secondary)
        wanted = {
            "REDIS_HOST": ctx.output("cache", "host"),
            "REDIS_PORT": ctx.output("cache", "ssl_port"),
            "REDIS_KEY": key,
            "REDIS_AUTH": cache.auth,
            "REDIS_TTL_SECONDS": DEFAULT_TTL_SECONDS,
        }
        if ctx.target.is_sandbox and ctx.target.ca_bundle is not None:
            wanted["REDIS_CA_BUNDLE"] = str(ctx.target.ca_bundle)
        model_version = ctx.outputs.get("image", {}).get("model_version")
        if model_version:
            wanted["MODEL_VERSION"] = model_version
        return wanted

    def _current(self, ctx: DeployContext) -> dict[str, str]:
        current = ctx.clients.web().web_apps.list_application_settings(
            ctx.group, ctx.spec.function_app.name
        )
        settings = dict(current.properties or {})
        register_setting_secrets(settings)
        return settings

    def find_existing(self, ctx: DeployContext) -> dict[str, str] | None:
        wanted = self.desired(ctx)
        current = self._current(ctx)
        if all(current.get(k) == v for k, v in wanted.items()):
            return {"settings": ",".join(sorted(wanted))}
        return None

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        from azure.mgmt.web import models

        wanted = self.desired(ctx)
        merged = {**self._current(ctx), **wanted}
        # Azure replaces the whole set on update, so the runtime settings go along.
        ctx.clients.web().web_apps.update_application_settings(
            ctx.group, ctx.spec.function_app.name, models.StringDictionary(properties=merged)
        )
        report.log(f"set {', '.join(sorted(wanted))} (values of keys are not logged)")
        return {"settings": ",".join(sorted(wanted))}


# --- wait until the function answers ----------------------------------------------


class EndpointCheckStep(Step):
    """GET /api/health until it answers 200: the function runs with its new settings."""

    name = "endpoint"
    depends_on = ("app-settings",)
    progress_text = "Waiting for the {title} route"
    success_text = "The function answers its health route with the cache reachable"
    attempts = 1

    def __init__(self, spec: DeploymentSpec, timeout_s: float | None = None) -> None:
        self.title = f"health of {spec.function_app.name}"
        self.timeout_s = timeout_s

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        import requests

        host = ctx.output("function-app", "default_host_name")
        url = f"https://{host}/api/health"
        # Known when this run built the package; an image built elsewhere has its own.
        wanted_version = ctx.outputs.get("image", {}).get("model_version", "")
        timeout = self.timeout_s or (
            HEALTH_TIMEOUT_SANDBOX_S if ctx.target.is_sandbox else HEALTH_TIMEOUT_AZURE_S
        )
        deadline = time.monotonic() + timeout
        interval = 0.1 if ctx.target.is_sandbox else 5.0
        last = "no answer yet"
        with requests.Session() as session:
            while True:
                report.check_cancelled()
                try:
                    response = session.get(url, timeout=10, verify=ctx.target.verify)
                    cache = _health_field(response, "cache")
                    running = _health_field(response, "model_version")
                    # Until the host restarts with the new settings and image, the
                    # old process answers too: with the cache "not configured" on a
                    # first deploy, with the previous model version on a redeploy.
                    current = not wanted_version or running == wanted_version
                    if response.status_code == 200 and cache == "reachable" and current:
                        return {"url": url, "cache": cache}
                    if response.status_code in (401, 403, 404):
                        # An image packaged elsewhere (e.g. by AzureML) may have no open
                        # health route: the app answers, but cannot tell about the cache.
                        note(f"{url} answered HTTP {response.status_code}: the image has no "
                             "open health route, so the cache connection was not checked")
                        return {"url": url, "cache": "unknown"}
                    last = f"HTTP {response.status_code}, cache {cache or 'unknown'}"
                    if not current:
                        last += f", still model version {running or 'unknown'}"
                except requests.RequestException as exc:
                    last = plain_request_error(exc)
                report.progress("Starting", f"{url}: {last}")
                if time.monotonic() > deadline:
                    self._show_site_log(ctx, report)
                    raise ServiceFailure(
                        f"{url} did not answer within {timeout:.0f} s (last: {last})",
                        "Read the function app's log above (an image pull, a missing "
                        "requirement or a failing init() are the usual causes).",
                    )
                report.sleep(interval)

    def _show_site_log(self, ctx: DeployContext, report: StepReport, lines: int = 12) -> None:
        """The end of the site's log, where a failed pull or start explains itself."""
        from app.services.logstream import tail

        try:
            text, _ = tail(ctx.spec, ctx.target, ctx.clients)
        except Exception as exc:  # best effort: the timeout is the error that matters
            report.log(f"could not read the function app's log: {type(exc).__name__}")
            return
        # Our own health polls fill the log; what explains the failure is elsewhere.
        telling = [line for line in text if "/api/health" not in line]
        for line in telling[-lines:]:
            report.log(f"site log: {line}", level="warning")


def plain_request_error(exc: Exception) -> str:
    """A failed HTTP call in plain words, e.g. while a host is still starting."""
    import requests

    text = str(exc).lower()
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed (certificate not trusted or not ready)"
    if isinstance(exc, requests.exceptions.Timeout):
        return "no answer in time"
    if isinstance(exc, requests.exceptions.ConnectionError):
        if "refused" in text:
            return "not answering yet (connection refused)"
        if "name or service not known" in text or "nameresolution" in text \
                or "getaddrinfo" in text:
            return "host name not known yet (DNS)"
        if "reset" in text or "aborted" in text or "remotedisconnected" in text:
            return "not answering yet (connection closed)"
        return "not answering yet (no connection)"
    return f"request failed ({type(exc).__name__})"


def _health_field(response: Any, name: str) -> str:
    """One field of the health route's JSON answer, or "" when it has none."""
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get(name, "") or "") if isinstance(body, dict) else ""
