"""The Linux App Service plan the function app runs on (Microsoft.Web/serverfarms)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.errors import BadInput
from app.services.arm import (
    adoptable,
    get_or_none,
    require_not_failed,
    settle_existing,
    succeeded,
    wait_lro,
)
from app.services.context import DeployContext
from app.services.meters import (
    APP_SERVICE,
    ELASTIC_PREMIUM,
    FUNCTIONS_PREMIUM_PRODUCT,
    FUNCTIONS_SERVICE,
    HOURS_PER_MONTH,
    PLAN_PRODUCTS,
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

WEB_API = "2024-04-01"
ARM_ID = "resourceId('Microsoft.Web/serverfarms', parameters('planName'))"
_PLAN_TIERS = {"B": "Basic", "S": "Standard", "P": "PremiumV3", "E": "ElasticPremium"}


def plan_tier(sku: str) -> str:
    if sku.endswith("v2"):
        return "PremiumV2"
    return _PLAN_TIERS.get(sku[:1].upper(), "Basic")


def _plan_product(sku: str) -> str | None:
    upper = sku.upper()
    if upper.endswith("V3"):
        return PLAN_PRODUCTS["v3"]
    if upper.endswith("V2"):
        return PLAN_PRODUCTS["v2"]
    return PLAN_PRODUCTS.get(upper[:1])


class AppServicePlanStep(ResourceStep):
    name = "plan"
    arm_type = "Microsoft.Web/serverfarms"
    label = "plan"
    icon = "plan"
    name_kind = "plan"
    depends_on = ("resource-group",)
    nominal_s = 2.0

    def __init__(self, spec: DeploymentSpec) -> None:
        super().__init__(spec)
        app = spec.function_app
        self.title = f"App Service plan {app.plan_name} (Linux {app.plan_sku})"

    def resource_name(self) -> str:
        return self.spec.function_app.plan_name

    @classmethod
    def check_name(cls, clients: ClientFactory, name: str, group: str) -> NameAnswer:
        if group and get_or_none(clients.web().app_service_plans.get, group, name) is not None:
            return yours("plan", group)
        return NameAnswer("available", "Plan names only need to be unique in the resource group.")

    def probe(self, clients: ClientFactory) -> list[ResourceStatus]:
        group, name = self.spec.resource_group.name, self.spec.function_app.plan_name
        return [probe(
            "App Service plan", name, lambda: clients.web().app_service_plans.get(group, name),
            lambda p: f"{getattr(p.sku, 'name', '')}, {'Linux' if p.reserved else 'Windows'}",
            self.name,
        )]

    def arm_id(self) -> str:
        return f"[{ARM_ID}]"

    def arm_parameters(self) -> dict[str, dict[str, Any]]:
        return {"planName": {"type": "string", "defaultValue": self.spec.function_app.plan_name}}

    def arm_resources(self, wiring: ArmWiring) -> list[dict[str, Any]]:
        sku = self.spec.function_app.plan_sku
        return [{
            "type": self.arm_type,
            "apiVersion": WEB_API,
            "name": "[parameters('planName')]",
            "location": "[parameters('location')]",
            "tags": "[parameters('tags')]",
            "kind": "linux",
            "sku": {"name": sku, "tier": plan_tier(sku)},
            "properties": {"reserved": True},
        }]

    def azcli(self, sh: Shell) -> AzCliPart:
        app = self.spec.function_app
        return AzCliPart(create=[
            f"az appservice plan create --resource-group {sh.rg} --name {sh.q(app.plan_name)} "
            f"--location {sh.location} --is-linux --sku {sh.q(app.plan_sku)} --tags {sh.tags}",
        ])

    def price_queries(self) -> list[PriceQuery]:
        app = self.spec.function_app
        sku = app.plan_sku
        resource = f"App Service plan {app.plan_name}"
        if sku.upper() in ELASTIC_PREMIUM:
            vcpus, gib = ELASTIC_PREMIUM[sku.upper()]
            return [
                PriceQuery(
                    resource=resource, sku=f"Elastic Premium {sku} (Linux)",
                    service_name=FUNCTIONS_SERVICE, product_name=FUNCTIONS_PREMIUM_PRODUCT,
                    sku_name="Premium", meter_name="Premium vCPU Duration",
                    unit_of_measure="1 Hour", units=vcpus * HOURS_PER_MONTH,
                    unit_label="vCPU-hour", note=f"{vcpus} vCPU, one instance always ready",
                ),
                PriceQuery(
                    resource=resource, sku=f"Elastic Premium {sku} (Linux)",
                    service_name=FUNCTIONS_SERVICE, product_name=FUNCTIONS_PREMIUM_PRODUCT,
                    sku_name="Premium", meter_name="Premium Memory Duration",
                    unit_of_measure="1 GiB Hour", units=gib * HOURS_PER_MONTH,
                    unit_label="GiB-hour", note=f"{gib:g} GiB, one instance always ready",
                ),
            ]
        product = _plan_product(sku)
        if product is None:
            raise BadInput(f"function_app.plan_sku: no price mapping for plan SKU {sku!r}")
        # The Linux meter names vary by tier ("B1", "S1 App", "P1 v3 App") and the
        # skuName spelling too ("P1 v3" but "P0v3"): match product + SKU + unit.
        return [PriceQuery(
            resource=resource, sku=f"{sku} (Linux)", service_name=APP_SERVICE,
            product_name=product, sku_name=sku, unit_of_measure="1 Hour",
            units=HOURS_PER_MONTH, unit_label="hour", filter_sku=False,
            note="one instance",
        )]

    def _outputs(self, plan: Any) -> dict[str, str]:
        return {"name": plan.name, "id": plan.id or ""}

    def find_existing(self, ctx: DeployContext) -> dict[str, str] | None:
        app = ctx.spec.function_app
        plan = get_or_none(ctx.clients.web().app_service_plans.get, ctx.group, app.plan_name)
        if plan is None or not adoptable(plan, f"App Service plan {app.plan_name}"):
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
        web = ctx.clients.web()
        existing = settle_existing(
            lambda: get_or_none(web.app_service_plans.get, ctx.group, app.plan_name),
            report, ctx.target.polling_interval, f"App Service plan {app.plan_name}")
        if existing is not None and succeeded(existing) and existing.reserved:
            return self._outputs(existing)
        plan = models.AppServicePlan(
            location=ctx.spec.location,
            kind="linux",
            sku=models.SkuDescription(name=app.plan_sku, tier=plan_tier(app.plan_sku)),
            tags=ctx.tags,
            properties=models.AppServicePlanProperties(reserved=True),
        )
        poller = web.app_service_plans.begin_create_or_update(
            ctx.group, app.plan_name, plan
        )
        return self._outputs(
            require_not_failed(wait_lro(poller, report), f"App Service plan {app.plan_name}"))
