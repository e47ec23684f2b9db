"""The app settings that wire the cache into the function (Microsoft.Web/sites/config),
and Application Insights when monitoring is on (`resources.monitoring`).

This step is the only one that waits on the cache: everything else about the
site is made while the cache is still being created. Which cache kind it reads
keys from is given by the plan (`keys`), so this module knows no cache kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from app.services.context import DeployContext
from app.services.redaction import register_secret
from app.services.resources.base import AzCliPart, ResourceStep, Shell
from app.services.runner import StepReport
from app.spec import DeploymentSpec

DEFAULT_TTL_SECONDS = "3600"
# App settings whose values are secrets, wherever they come from.
_SECRET_SETTING = re.compile(r"KEY|PASSWORD|SECRET|TOKEN|CONNECTION|AzureWebJobsStorage", re.I)

AccessKeys = Callable[[DeployContext], tuple[str | None, str | None]]
Address = Callable[[DeployContext], "tuple[str, str] | None"]
# The runtime settings that carry a password or key, left out of a keyless function.
KEYED_RUNTIME_SETTINGS = ("AzureWebJobsStorage", "DOCKER_REGISTRY_SERVER_USERNAME",
                          "DOCKER_REGISTRY_SERVER_PASSWORD")


def register_setting_secrets(settings: dict[str, str]) -> None:
    for name, value in settings.items():
        if _SECRET_SETTING.search(name):
            register_secret(value)


class FunctionSettingsStep(ResourceStep):
    """Write the cache connection into the function's app settings."""

    name = "app-settings"
    arm_type = "Microsoft.Web/sites/config"
    label = "app settings"
    icon = "settings"
    depends_on: tuple[str, ...] = ("function-app", "cache")
    nominal_s = 1.0
    progress_text = "Writing {title}"
    success_text = "Wrote {title}"
    adopted_text = "{title} already up to date"

    def __init__(self, spec: DeploymentSpec, keys: AccessKeys, address: Address,
                 after: tuple[str, ...] = ()) -> None:
        """`keys`/`address`: the cache kind's key and host/port readers (from the plan);
        `after`: the steps granting the identity its rights."""
        super().__init__(spec)
        self.keys = keys
        self.address = address
        self.depends_on = (*self.depends_on, *after)
        what = "cache and monitoring" if spec.monitoring.enabled else "cache"
        self.title = f"{what} settings of {spec.function_app.name}"

    def resource_name(self) -> str:
        return f"{self.spec.function_app.name} settings"

    def arm_settings(self) -> list[dict[str, str]]:
        settings = [
            {"name": "REDIS_AUTH", "value": self.spec.cache.auth},
            {"name": "REDIS_TTL_SECONDS", "value": DEFAULT_TTL_SECONDS},
        ]
        return settings

    def azcli(self, sh: Shell) -> AzCliPart:
        app = self.spec.function_app
        who = "" if self.spec.cache.auth == "entra" else "REDIS_KEY=\"$redis_key\" "
        return AzCliPart(read=[
            f"az functionapp config appsettings set --resource-group {sh.rg} "
            f"--name {sh.q(app.name)} "
            "--settings REDIS_HOST=\"$redis_host\" REDIS_PORT=\"$redis_port\" "
            f"{who}REDIS_AUTH={sh.q(self.spec.cache.auth)} "
            f"REDIS_TTL_SECONDS={DEFAULT_TTL_SECONDS} --output none",
        ])

    def _who(self, ctx: DeployContext) -> dict[str, str]:
        """How the function signs in to Redis: as its identity (the template names the
        user by the token's object id), or with the key."""
        if ctx.spec.cache.auth == "entra":
            return {}
        primary, secondary = self.keys(ctx)
        key = ctx.secret("cache_key", primary)
        if secondary:
            register_secret(secondary)
        return {"REDIS_KEY": key}

    def early(self, ctx: DeployContext) -> dict[str, str]:
        """The settings the function app can be created with, before the cache is ready:
        keyless, nothing is waited for but the cache's address, which Azure gives out
        while it is still Creating. So the function starts while the cache provisions,
        and this step later finds them in place (no second restart). {} with keys."""
        if ctx.spec.cache.auth != "entra":
            return {}
        address = self.address(ctx)
        return self._settings(ctx, *address) if address else {}

    def desired(self, ctx: DeployContext) -> dict[str, str]:
        return self._settings(ctx, ctx.output("cache", "host"), ctx.output("cache", "ssl_port"))

    def _settings(self, ctx: DeployContext, host: str, port: str) -> dict[str, str]:
        wanted = {
            "REDIS_HOST": host,
            "REDIS_PORT": port,
            **self._who(ctx),
            "REDIS_AUTH": ctx.spec.cache.auth,
            "REDIS_TTL_SECONDS": DEFAULT_TTL_SECONDS,
        }
        if ctx.target.ca_bundle is not None:
            # A cloud whose hosts a private CA signs (the sandbox's profile names one).
            wanted["REDIS_CA_BUNDLE"] = str(ctx.target.ca_bundle)
        model_version = ctx.outputs.get("image", {}).get("model_version")
        if model_version:
            wanted["MODEL_VERSION"] = model_version
        if ctx.spec.monitoring.enabled and "insights" in ctx.outputs:
            from app.services.resources.monitoring import insights_settings

            wanted.update(insights_settings(ctx))
        return wanted

    def _current(self, ctx: DeployContext) -> dict[str, str]:
        current = ctx.clients.web().web_apps.list_application_settings(
            ctx.group, ctx.spec.function_app.name
        )
        settings = dict(current.properties or {})
        register_setting_secrets(settings)
        return settings

    def stale(self, ctx: DeployContext) -> set[str]:
        """Settings an earlier way of signing in left, which must not stay behind."""
        gone = {"REDIS_USERNAME"} if ctx.spec.cache.auth == "access-keys" else {"REDIS_KEY"}
        if ctx.spec.function_app.auth == "managed-identity":
            gone |= set(KEYED_RUNTIME_SETTINGS)
        from app.services.resources.monitoring import stale_insights_settings

        return gone | stale_insights_settings(ctx.spec)

    def find_existing(self, ctx: DeployContext) -> dict[str, str] | None:
        wanted = self.desired(ctx)
        current = self._current(ctx)
        if all(current.get(k) == v for k, v in wanted.items()) and \
                not self.stale(ctx) & set(current):
            return {"settings": ",".join(sorted(wanted))}
        return None

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        from azure.mgmt.web import models

        wanted = self.desired(ctx)
        stale = self.stale(ctx)
        merged = {k: v for k, v in {**self._current(ctx), **wanted}.items() if k not in stale}
        # Azure replaces the whole set on update, so the runtime settings go along.
        ctx.clients.web().web_apps.update_application_settings(
            ctx.group, ctx.spec.function_app.name, models.StringDictionary(properties=merged)
        )
        report.log(f"set {', '.join(sorted(wanted))} (values of keys are not logged)")
        return {"settings": ",".join(sorted(wanted))}
