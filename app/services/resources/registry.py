"""The container registry the function app pulls its image from (Microsoft.ContainerRegistry).

Two steps share the name "registry": `RegistryStep` creates (or adopts) the
registry a build pushes to, in the spec's group; `RegistryCredentialsStep` finds
the registry of an image built elsewhere anywhere in the subscription. Both
read the pull credentials the function app's settings carry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.errors import BadInput, NotPermitted, ServiceFailure
from app.imageref import ImageReference, parse_image_reference
from app.services.arm import (
    adoptable,
    get_or_none,
    group_of,
    require_not_failed,
    settle_existing,
    succeeded,
    wait_lro,
)
from app.services.context import DeployContext
from app.services.meters import (
    DAYS_PER_MONTH,
    REGISTRY_PRODUCT,
    REGISTRY_SERVICE,
    PriceQuery,
)
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
from app.services.runner import StepReport, note
from app.services.transport import retrying_session
from app.spec import DeploymentSpec

if TYPE_CHECKING:
    from app.services.clients import ClientFactory

REGISTRY_API = "2023-07-01"
ARM_ID = (
    "resourceId(parameters('registryResourceGroup'), "
    "'Microsoft.ContainerRegistry/registries', parameters('registryName'))"
)
_MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)


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
    if keyless(ctx.spec):
        return {
            "name": registry.name,
            "id": registry.id or "",
            "login_server": _login_server(registry),
            "resource_group": group,
        }
    credentials = ctx.clients.registry().registries.list_credentials(group, registry.name)
    passwords = credentials.passwords or []
    if not credentials.username or not passwords:
        raise ServiceFailure(f"registry {registry.name} returned no admin credentials")
    ctx.secret("registry_password", passwords[0].value)
    return {
        "name": registry.name,
        "id": registry.id or "",
        "login_server": _login_server(registry),
        "username": credentials.username,
        "resource_group": group,
    }


def _login_server(registry: Any) -> str:
    if not registry.login_server:
        raise ServiceFailure(f"registry {registry.name} has no loginServer yet")
    return str(registry.login_server)


def _require_admin(registry: Any) -> None:
    if not registry.admin_user_enabled:
        raise NotPermitted(
            f"registry {registry.name} has its admin user disabled, so the function app "
            "cannot pull from it with registry credentials",
            f"Enable it: az acr update -n {registry.name} --admin-enabled true; then deploy again.",
        )


class _PullCredentials(ResourceStep):
    """What both registry steps give the function app: the pull settings."""

    name = "registry"
    arm_type = "Microsoft.ContainerRegistry/registries"
    label = "registry"
    icon = "registry"
    name_kind = "registry"

    @classmethod
    def check_name(cls, clients: ClientFactory, name: str, group: str) -> NameAnswer:
        from azure.mgmt.containerregistry import models

        registries = clients.registry().registries
        if group and get_or_none(registries.get, group, name) is not None:
            return yours("registry", group)
        answer = registries.check_name_availability(
            models.RegistryNameCheckRequest(name=name, type=cls.arm_type)
        )
        if answer.name_available:
            return NameAnswer("available", f"The name {name}.azurecr.io is available")
        return NameAnswer("taken", answer.message or f"The name {name}.azurecr.io is taken")

    def resource_name(self) -> str:
        return image_reference(self.spec).registry

    def arm_parameters(self) -> dict[str, dict[str, Any]]:
        return {
            "registryName": {"type": "string",
                             "defaultValue": image_reference(self.spec).registry},
            "registryResourceGroup": {"type": "string", "defaultValue": "[resourceGroup().name]"},
        }

    def arm_settings(self) -> list[dict[str, str]]:
        url = {"name": "DOCKER_REGISTRY_SERVER_URL",
               "value": f"[format('https://{{0}}', reference({ARM_ID}, '{REGISTRY_API}')"
                        ".loginServer)]"}
        if keyless(self.spec):
            return [url]
        return [
            url,
            {"name": "DOCKER_REGISTRY_SERVER_USERNAME",
             "value": f"[listCredentials({ARM_ID}, '{REGISTRY_API}').username]"},
            {"name": "DOCKER_REGISTRY_SERVER_PASSWORD",
             "value": f"[listCredentials({ARM_ID}, '{REGISTRY_API}').passwords[0].value]"},
        ]

    def azcli(self, sh: Shell) -> AzCliPart:
        registry = sh.q(image_reference(self.spec).registry)
        if keyless(self.spec):
            return AzCliPart()
        return AzCliPart(create=[
            f"acr_user=$(az acr credential show --name {registry} --query username -o tsv)",
            f"acr_password=$(az acr credential show --name {registry} "
            "--query 'passwords[0].value' -o tsv)",
        ])


class RegistryCredentialsStep(_PullCredentials):
    """An existing image: find its registry in the subscription and read pull credentials."""

    depends_on = ()
    progress_text = "Reading pull credentials of {title}"
    success_text = "Read pull credentials of {title}"
    adopted_text = "Read pull credentials of {title}"

    def __init__(self, spec: DeploymentSpec) -> None:
        super().__init__(spec)
        self.title = f"container registry {image_reference(spec).registry}"

    def resource_name(self) -> str:
        if not self.spec.image.registry and self.spec.image.reference:
            return self.spec.image.reference.split(".", 1)[0]
        return self.spec.image.registry or ""

    def find_existing(self, ctx: DeployContext) -> dict[str, str] | None:
        wanted = image_reference(ctx.spec).registry
        for registry in ctx.clients.registry().registries.list():
            if (registry.name or "").lower() == wanted:
                if not keyless(ctx.spec):
                    _require_admin(registry)
                group = group_of(registry.id)
                outputs = _registry_outputs(ctx, registry, group)
                outputs["image"] = image_reference(ctx.spec).at(outputs["login_server"])
                check_image_exists(ctx, outputs)
                return outputs
        raise BadInput(
            f"no container registry named {wanted} in subscription {ctx.target.subscription_id}",
            "Check image.reference, or sign in to the subscription that holds the registry.",
        )


def check_image_exists(ctx: DeployContext, registry: dict[str, str]) -> None:
    """Ask the registry's data plane for the image before a site is made to pull it.

    Azure would create the site anyway and the failed pull would only show in its
    log after a long wait; a missing tag is better named now, with the tags there are.
    """
    import requests

    from app.services.explain import plain_request_error

    image = image_reference(ctx.spec)
    reference = image.digest or image.tag or "latest"

    def url(path: str) -> str:
        # The data plane is at the registry's loginServer, as ARM answers it.
        return f"https://{registry['login_server']}/v2/{path}"

    if keyless(ctx.spec):
        _check_image_with_token(ctx, registry)
        return
    auth = (registry["username"], ctx.secrets["registry_password"])
    with retrying_session(ctx.target) as session:
        try:
            answer = session.head(
                url(f"{image.repository}/manifests/{reference}"), auth=auth,
                headers={"Accept": _MANIFEST_TYPES}, timeout=30, verify=ctx.target.verify,
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
            listing = session.get(url(f"{image.repository}/tags/list"), auth=auth, timeout=30,
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


def _check_image_with_token(ctx: DeployContext, registry: dict[str, str]) -> None:
    """The same question asked with the signed-in identity (ACR's token exchange)."""
    from app.services.lookups import AcrDataPlane

    image = image_reference(ctx.spec)
    reference = image.digest or image.tag or "latest"
    try:
        with AcrDataPlane(ctx.target, registry["login_server"]) as plane:
            found = plane.has_manifest(image.repository, reference, _MANIFEST_TYPES)
            tags = [] if found is not False else plane.tags(image.repository)
    except (BadInput, NotPermitted, ServiceFailure) as exc:
        note(f"could not ask {image.login_server} for {image}: {exc.message}")
        return
    if found is not False:
        return
    known = f"; tags there: {', '.join(sorted(tags)[:10])}" if tags else ""
    raise BadInput(
        f"image {image} is not in registry {image.registry}{known}",
        "Check image.reference (repository, tag or digest), or push the image first.",
    )


class RegistryStep(_PullCredentials):
    """For a build: the registry in the spec's group, created (Basic) if missing; its admin
    user is on only when the spec keeps keys (`function_app.auth = "keys"`)."""

    depends_on = ("resource-group",)
    nominal_s = 2.0

    def __init__(self, spec: DeploymentSpec) -> None:
        super().__init__(spec)
        self.title = f"container registry {spec.image.registry} (Basic)"

    def resource_name(self) -> str:
        return self.spec.image.registry or ""

    def probe(self, clients: ClientFactory) -> list[ResourceStatus]:
        group, name = self.spec.resource_group.name, image_reference(self.spec).registry
        return [probe("container registry", name,
                      lambda: clients.registry().registries.get(group, name),
                      lambda r: r.login_server or "", self.name)]

    def arm_id(self) -> str:
        return ("[resourceId('Microsoft.ContainerRegistry/registries', "
                "parameters('registryName'))]")

    def arm_resources(self, wiring: ArmWiring) -> list[dict[str, Any]]:
        return [{
            "type": self.arm_type,
            "apiVersion": REGISTRY_API,
            "name": "[parameters('registryName')]",
            "location": "[parameters('location')]",
            "tags": "[parameters('tags')]",
            "sku": {"name": "Basic"},
            "properties": {"adminUserEnabled": not keyless(self.spec)},
        }]

    def azcli(self, sh: Shell) -> AzCliPart:
        registry = sh.q(image_reference(self.spec).registry)
        part = super().azcli(sh)
        part.create[:0] = [
            f"az acr create --resource-group {sh.rg} --name {registry} --location "
            f"{sh.location} --sku Basic --admin-enabled "
            f"{'false' if keyless(self.spec) else 'true'} --tags {sh.tags}",
        ]
        return part

    def price_queries(self) -> list[PriceQuery]:
        return [PriceQuery(
            resource=f"Container registry {self.spec.image.registry}", sku="Basic",
            service_name=REGISTRY_SERVICE, product_name=REGISTRY_PRODUCT, sku_name="Basic",
            meter_name="Basic Registry Unit", unit_of_measure="1/Day",
            units=round(DAYS_PER_MONTH, 4), unit_label="day",
            note="includes 10 GB of image storage",
        )]

    def find_existing(self, ctx: DeployContext) -> dict[str, str] | None:
        name = ctx.spec.image.registry or ""
        registry = get_or_none(ctx.clients.registry().registries.get, ctx.group, name)
        if registry is None or not adoptable(registry, f"container registry {name}"):
            return None
        if not keyless(ctx.spec):
            _require_admin(registry)
        return _registry_outputs(ctx, registry, ctx.group)

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        from azure.mgmt.containerregistry import models

        client = ctx.clients.registry()
        name = ctx.spec.image.registry or ""
        existing = settle_existing(lambda: get_or_none(client.registries.get, ctx.group, name),
                                   report, ctx.target.polling_interval,
                                   f"container registry {name}")
        if existing is not None and succeeded(existing):
            if not keyless(ctx.spec):
                _require_admin(existing)
            return _registry_outputs(ctx, existing, ctx.group)
        if existing is None:
            self.require_name_free(
                ctx, name, "Registry names are global across Azure: choose another image.registry."
            )
        registry = models.Registry(
            location=ctx.spec.location,
            sku=models.Sku(name="Basic"),
            tags=ctx.tags,
            properties=models.RegistryProperties(admin_user_enabled=not keyless(ctx.spec)),
        )
        created = require_not_failed(
            wait_lro(client.registries.begin_create(ctx.group, name, registry), report),
            f"container registry {name}")
        return _registry_outputs(ctx, created, ctx.group)
