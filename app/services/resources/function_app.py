"""The Linux container function app that serves the model (Microsoft.Web/sites)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.errors import BadInput
from app.services.arm import get_or_none, id_name, require_not_failed, wait_lro
from app.services.context import DeployContext
from app.services.livecheck import LiveAnswer
from app.services.resources.app_service_plan import WEB_API
from app.services.resources.base import (
    ArmWiring,
    AzCliPart,
    NameAnswer,
    ResourceStatus,
    ResourceStep,
    Shell,
    keyless,
    probe,
    yours,
)
from app.services.resources.registry import image_reference
from app.services.resources.storage import STORAGE_ACCOUNT_SETTING, storage_connection
from app.services.runner import StepReport
from app.spec import DeploymentSpec

if TYPE_CHECKING:
    from app.services.clients import ClientFactory

# The settings every Functions container needs, before those other resources give it.
_RUNTIME_SETTINGS = (
    {"name": "FUNCTIONS_EXTENSION_VERSION", "value": "~4"},
    {"name": "FUNCTIONS_WORKER_RUNTIME", "value": "python"},
)
# `az functionapp create` makes an Application Insights component of its own unless
# told not to; the plan's own component (when monitoring is on) is wired in instead.
_NO_AUTO_INSIGHTS = "--disable-app-insights true "
_NO_APP_SERVICE_STORAGE = {"name": "WEBSITES_ENABLE_APP_SERVICE_STORAGE", "value": "false"}


def runtime_settings(ctx: DeployContext) -> dict[str, str]:
    """The Functions runtime's own settings: extension version, storage, registry.

    Keyless (the default), storage is named, not keyed: the host reaches it with the
    site's identity (Microsoft Learn, "Connecting to host storage with an identity"),
    and the registry is pulled from with `acrUseManagedIdentityCreds`; no password
    is written.
    """
    login_server = ctx.output("registry", "login_server")
    settings = {s["name"]: s["value"] for s in _RUNTIME_SETTINGS}
    if keyless(ctx.spec):
        settings[STORAGE_ACCOUNT_SETTING] = ctx.output("storage", "name")
    else:
        settings["AzureWebJobsStorage"] = storage_connection(ctx)
    settings[_NO_APP_SERVICE_STORAGE["name"]] = _NO_APP_SERVICE_STORAGE["value"]
    settings["DOCKER_REGISTRY_SERVER_URL"] = f"https://{login_server}"
    if not keyless(ctx.spec):
        settings["DOCKER_REGISTRY_SERVER_USERNAME"] = ctx.output("registry", "username")
        settings["DOCKER_REGISTRY_SERVER_PASSWORD"] = ctx.secrets["registry_password"]
    settings["WEBSITES_CONTAINER_START_TIME_LIMIT"] = str(start_time_limit(model_bytes(ctx)))
    return settings


def model_bytes(ctx: DeployContext) -> int | None:
    """The size of the model files this run built into the image (None: not built here)."""
    built = ctx.outputs.get("image", {}).get("model_bytes")
    return int(built) if built else None


# App Service stops a container that has not answered within 230 s (its default)
# unless WEBSITES_CONTAINER_START_TIME_LIMIT allows more, up to 1800 s (Microsoft
# Learn, "Configure a custom container for Azure App Service"). The model is read
# by init() before the host answers: a minute more per 256 MiB of model files, and
# 10 minutes for an image built elsewhere, whose size is not known here.
START_LIMIT_DEFAULT_S = 230
START_LIMIT_MAX_S = 1800
START_LIMIT_UNKNOWN_S = 600
_START_STEP_BYTES = 256 * 1024 * 1024


def start_time_limit(model_bytes: int | None) -> int:
    """Seconds App Service waits for the container to start, for a model of this size."""
    if model_bytes is None:
        return START_LIMIT_UNKNOWN_S
    steps = -(-max(0, model_bytes) // _START_STEP_BYTES)
    return min(START_LIMIT_MAX_S, START_LIMIT_DEFAULT_S + 60 * steps)


def deployed_image(ctx: DeployContext) -> str:
    built = ctx.outputs.get("image", {}).get("image")
    return built or ctx.output("registry", "image")


def always_on(plan_sku: str) -> bool:
    """Elastic Premium plans scale by themselves and refuse Always On."""
    return not plan_sku.upper().startswith("EP")


def enable_container_logging(ctx: DeployContext) -> None:
    """Have App Service keep the container's output in LogFiles/*_default_docker.log.

    Linux App Service writes those files only with container logging on; this is
    what `az webapp log config --docker-container-logging filesystem` sets (100 MB,
    3 days, as azure-cli and the portal hard-code), and what `test`'s log tail and a
    failed start's diagnosis read.
    """
    from azure.mgmt.web import models

    config = models.SiteLogsConfig(properties=models.SiteLogsConfigProperties(
        http_logs=models.HttpLogsConfig(file_system=models.FileSystemHttpLogsConfig(
            retention_in_mb=100, retention_in_days=3, enabled=True))))
    ctx.clients.web().web_apps.update_diagnostic_logs_config(
        ctx.group, ctx.spec.function_app.name, config)


# How long `status` waits for a starting host before saying it does not answer.
STARTING_WAIT_S = 30.0


class FunctionAppStep(ResourceStep):
    name = "function-app"
    arm_type = "Microsoft.Web/sites"
    label = "function app"
    icon = "function"
    name_kind = "function_app"
    depends_on: tuple[str, ...] = ("resource-group", "plan", "storage", "registry")
    nominal_s = 6.0

    def __init__(self, spec: DeploymentSpec,
                 early_settings: Callable[[DeployContext], dict[str, str]] | None = None,
                 ) -> None:
        """`early_settings`: cache settings the site can start with (keyless: known before
        the cache is ready), so the settings step finds them in place."""
        super().__init__(spec)
        self.early_settings = early_settings
        self.title = f"function app {spec.function_app.name}"
        if spec.image.build_from:
            self.depends_on = (*self.depends_on, "image")

    def resource_name(self) -> str:
        return self.spec.function_app.name

    @classmethod
    def check_name(cls, clients: ClientFactory, name: str, group: str) -> NameAnswer:
        from azure.mgmt.web import models

        web = clients.web()
        if group and get_or_none(web.web_apps.get, group, name) is not None:
            return yours("function app", group)
        answer = web.check_name_availability(
            models.ResourceNameAvailabilityRequest(name=name, type=cls.arm_type)
        )
        if answer.name_available:
            return NameAnswer("available", f"The name {name}.azurewebsites.net is available")
        return NameAnswer("taken", answer.message or f"The name {name}.azurewebsites.net is taken")

    def probe(self, clients: ClientFactory) -> list[ResourceStatus]:
        group, name = self.spec.resource_group.name, self.spec.function_app.name
        return [probe("function app", name, lambda: clients.web().web_apps.get(group, name),
                      lambda s: f"https://{s.default_host_name} ({s.state or 'unknown'})",
                      self.name)]

    def live_check(self, clients: ClientFactory) -> LiveAnswer:
        """One GET of the health route: the host is up, and its own view of the cache
        (a function holding an old cache port answers "unreachable")."""
        from app.services.resources.endpoint import NO_HEALTH_ROUTE, HealthAnswer, wait_for_health

        group, name = self.spec.resource_group.name, self.spec.function_app.name
        site = clients.web().web_apps.get(group, name)
        url = f"https://{site.default_host_name}/api/health"
        answers: list[HealthAnswer] = []

        def settled(seen: HealthAnswer) -> bool:
            answers.append(seen)
            return seen.status not in (0, 503)

        # A host that is starting (just restarted, or a sandbox just started) refuses
        # or answers 503 for a while: give it a bounded moment before calling it down.
        target = clients.target
        wait_for_health(url, target.verify, min(target.health_timeout_s, STARTING_WAIT_S),
                        target.health_poll_s, good=settled)
        answer = answers[-1]
        if answer.status in NO_HEALTH_ROUTE:
            return LiveAnswer(True, f"{url} answered HTTP {answer.status} (no open health "
                                    "route: the cache connection was not checked)")
        ok = answer.status == 200 and answer.cache in ("reachable", "")
        text = f"{url}: {answer.describe()}"
        if answer.status == 200 and answer.cache == "unreachable":
            text += " (the function cannot reach its cache: deploy again to rewrite settings)"
        return LiveAnswer(ok, text)

    # -- export --------------------------------------------------------------------
    def arm_parameters(self) -> dict[str, dict[str, Any]]:
        return {
            "functionAppName": {"type": "string", "defaultValue": self.spec.function_app.name},
            "image": {"type": "string", "defaultValue": str(image_reference(self.spec))},
        }

    def arm_resources(self, wiring: ArmWiring) -> list[dict[str, Any]]:
        settings = [
            *_RUNTIME_SETTINGS,
            *wiring.settings.get("storage", []),
            _NO_APP_SERVICE_STORAGE,
            *wiring.settings.get("registry", []),
            {"name": "WEBSITES_CONTAINER_START_TIME_LIMIT",
             "value": str(start_time_limit(None))},
            *wiring.settings.get("cache", []),
            *wiring.settings.get("insights", []),
            *wiring.settings.get("app-settings", []),
        ]
        waits = [wiring.ids[n] for n in ("plan", "storage", "cache", "registry", "insights")
                 if n in wiring.ids]
        return [{
            "type": self.arm_type,
            "apiVersion": WEB_API,
            "name": "[parameters('functionAppName')]",
            "location": "[parameters('location')]",
            "tags": "[parameters('tags')]",
            "kind": "functionapp,linux,container",
            "identity": {"type": "SystemAssigned"},
            "dependsOn": waits,
            "properties": {
                "serverFarmId": wiring.ids["plan"],
                "reserved": True,
                "httpsOnly": True,
                "siteConfig": {
                    "linuxFxVersion": "[format('DOCKER|{0}', parameters('image'))]",
                    "acrUseManagedIdentityCreds": keyless(self.spec),
                    "alwaysOn": always_on(self.spec.function_app.plan_sku),
                    "minTlsVersion": "1.2",
                    "ftpsState": "Disabled",
                    "http20Enabled": True,
                    "appSettings": [dict(s) for s in settings],
                },
            },
        }]

    def azcli(self, sh: Shell) -> AzCliPart:
        app = self.spec.function_app
        name, image = sh.q(app.name), sh.q(str(image_reference(self.spec)))
        if not keyless(self.spec):
            return AzCliPart(create=[
                f"az functionapp create --resource-group {sh.rg} --name {name} "
                f"--plan {sh.q(app.plan_name)} --storage-account {sh.q(app.storage_account)} "
                "--functions-version 4 --os-type Linux "
                f"--image {image} "
                "--registry-username \"$acr_user\" --registry-password \"$acr_password\" "
                f"--https-only true --assign-identity '[system]' {_NO_AUTO_INSIGHTS}"
                f"--tags {sh.tags}",
                f"principal_id=$(az functionapp identity show --resource-group {sh.rg} "
                f"--name {name} --query principalId --output tsv)",
            ])
        # Created without an image first: the identity must hold AcrPull before a pull.
        return AzCliPart(create=[
            f"az functionapp create --resource-group {sh.rg} --name {name} "
            f"--plan {sh.q(app.plan_name)} --storage-account {sh.q(app.storage_account)} "
            "--functions-version 4 --os-type Linux --runtime python "
            f"--https-only true --assign-identity '[system]' {_NO_AUTO_INSIGHTS}--tags {sh.tags}",
            f"principal_id=$(az functionapp identity show --resource-group {sh.rg} "
            f"--name {name} --query principalId --output tsv)",
        ], read=[
            f"az functionapp config appsettings delete --resource-group {sh.rg} --name {name} "
            "--setting-names AzureWebJobsStorage --output none",
            f"az functionapp config appsettings set --resource-group {sh.rg} --name {name} "
            f"--settings {STORAGE_ACCOUNT_SETTING}={sh.q(app.storage_account)} --output none",
            f"az resource update --resource-group {sh.rg} --name {name}/config/web "
            "--resource-type Microsoft.Web/sites/config "
            "--set properties.acrUseManagedIdentityCreds=true --output none",
            f"az functionapp config container set --resource-group {sh.rg} --name {name} "
            f"--image {image} --output none",
        ])

    # -- deploy --------------------------------------------------------------------
    def _outputs(self, site: Any) -> dict[str, str]:
        identity = site.identity
        return {
            "name": site.name,
            "id": site.id or "",
            "default_host_name": site.default_host_name or "",
            "principal_id": (identity.principal_id or "") if identity else "",
            "tenant_id": (identity.tenant_id or "") if identity else "",
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
        if id_name(site.server_farm_id).lower() != app.plan_name.lower():
            raise BadInput(
                f"function app {app.name} exists on plan {id_name(site.server_farm_id)}, "
                f"but the spec puts it on {app.plan_name}",
                "Set function_app.plan_name to its plan, or choose another app name.",
            )
        if site.identity is None or not site.identity.principal_id:
            return None  # no managed identity yet: create() gives it one
        config = web.web_apps.get_configuration(ctx.group, app.name)
        if (config.linux_fx_version or "") != f"DOCKER|{deployed_image(ctx)}":
            return None  # another image: create() updates the site in place
        if bool(config.acr_use_managed_identity_creds) != keyless(ctx.spec):
            return None
        return self._outputs(site)

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        from azure.mgmt.web import models

        web = ctx.clients.web()
        app = ctx.spec.function_app
        if get_or_none(web.web_apps.get, ctx.group, app.name) is None:
            self.require_name_free(
                ctx, app.name, "App names are global across Azure (they become "
                "<name>.azurewebsites.net): choose another function_app.name.",
            )
        settings = runtime_settings(ctx)
        if self.early_settings is not None:
            early = self.early_settings(ctx)
            if early:
                report.log(f"the cache's address is known: {', '.join(sorted(early))} "
                           "written now, so the function starts while the cache is created")
            settings.update(early)
        site = models.Site(
            location=ctx.spec.location,
            kind="functionapp,linux,container",
            tags=ctx.tags,
            identity=models.ManagedServiceIdentity(type="SystemAssigned"),
            properties=models.SiteProperties(
                server_farm_id=ctx.output("plan", "id"),
                reserved=True,
                https_only=True,
                site_config=models.SiteConfig(
                    linux_fx_version=f"DOCKER|{deployed_image(ctx)}",
                    app_settings=[
                        models.NameValuePair(name=k, value=v) for k, v in settings.items()
                    ],
                    always_on=always_on(app.plan_sku),
                    acr_use_managed_identity_creds=keyless(ctx.spec),
                    min_tls_version="1.2",
                    ftps_state="Disabled",
                    http20_enabled=True,
                ),
            ),
        )
        created = require_not_failed(
            wait_lro(web.web_apps.begin_create_or_update(ctx.group, app.name, site), report),
            f"function app {app.name}")
        if created is None or not created.default_host_name or created.identity is None:
            created = web.web_apps.get(ctx.group, app.name)
        enable_container_logging(ctx)
        return self._outputs(created)
