"""The model image a build makes from a model folder and pushes to the registry.

Not an ARM resource: a repository and tag in the registry the "registry" step
made. Two builders (`image.builder`): `layer` imports the Functions base image
into the registry and pushes the model's own layers made on this machine
(`image_layers`, `image_push`); `acr-tasks` runs a Docker build in the cloud
(`acr_build`). Either way the site then runs the pushed digest, so a changed
model changes the site and an unchanged one leaves it alone.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from app.errors import BadInput
from app.rules import image_builder
from app.services.context import DeployContext
from app.services.packaging import PackageInfo
from app.services.resources.base import AzCliPart, ResourceStep, Shell
from app.services.resources.registry import image_reference
from app.services.runner import StepReport
from app.spec import DeploymentSpec

# pip lines worth showing in the deployment log; the rest is noise to a user.
_PIP_LINES = ("Collecting ", "Successfully installed", "ERROR", "WARNING")


class ImageBuildStep(ResourceStep):
    """Build the model folder into an image and push it to the registry."""

    name = "image"
    arm_type = ""
    label = "image"
    icon = "settings"
    depends_on = ("registry",)
    success_text = "Built and pushed {title}"

    def __init__(self, spec: DeploymentSpec) -> None:
        super().__init__(spec)
        self.title = f"image {image_reference(spec)}"
        self.builder = image_builder(spec)
        self.progress_text = ("Building {title} with ACR Tasks" if self.builder == "acr-tasks"
                              else "Building {title} (base image import + model layers)")

    def resource_type(self) -> str:
        return "Container image"

    def resource_name(self) -> str:
        return f"{self.spec.image.repository}:{self.spec.image.tag}"

    def azcli(self, sh: Shell) -> AzCliPart:
        image = image_reference(self.spec)
        build = [
            "# Build the package first: "
            "mlcache-deploy package build MODEL_DIR --out build/package",
            f"az acr build --registry {sh.q(image.registry)} "
            f"--image {sh.q(f'{image.repository}:{image.tag}')} build/package",
        ]
        if self.builder == "acr-tasks":
            return AzCliPart(create=build)
        from app.services.image_push import BASE_REPOSITORY, base_tag
        from app.services.packaging import SITE_PYTHON

        base = f"{BASE_REPOSITORY}:{base_tag(SITE_PYTHON)}"
        return AzCliPart(create=[
            f"az acr import --name {sh.q(image.registry)} "
            f"--source {sh.q('mcr.microsoft.com/' + base)} --image {sh.q(base)} --force",
            "# mlcache-deploy pushes the model's layers over that base without Docker; az",
            "# has no command for it, so this script builds with ACR Tasks instead:",
            *build,
        ])

    def _model_dir(self, ctx: DeployContext) -> Path:
        model_dir = ctx.resolve_path(ctx.spec.image.build_from or "")
        if not model_dir.is_dir():
            raise BadInput(
                f"image.build_from: {model_dir} is not a folder",
                "Point image.build_from at the model folder (entry script, model files, "
                "requirements.txt); a relative path is read from the spec file's folder.",
            )
        return model_dir

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        from app.services.packaging import build_package

        model_dir = self._model_dir(ctx)
        work = Path(tempfile.mkdtemp(prefix="mlcache-build-"))
        try:
            report.progress("Building")
            info = build_package(model_dir, work / "package")
            report.log(f"built the package from {model_dir} (model version {info.model_version})")
            report.check_cancelled()
            extra: dict[str, str] = {}
            if self.builder == "acr-tasks":
                digest = self._acr_tasks(ctx, report, info)
            else:
                digest, extra = self._layers(ctx, report, info, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        image = image_reference(ctx.spec)
        login_server = ctx.output("registry", "login_server")
        report.log(f"pushed {login_server}/{image.repository}:{image.tag} ({digest})")
        # The site runs the pushed digest, not the tag: a changed package under the
        # same tag then changes the site's image, so the site pulls it again. The host
        # is the registry's loginServer as ARM answers it.
        pinned = f"{login_server}/{image.repository}@{digest}" if digest \
            else f"{login_server}/{image.repository}:{image.tag or 'latest'}"
        return {
            "image": pinned,
            "tag": str(image),
            "digest": digest,
            "builder": self.builder,
            "model_version": info.model_version,
            "model_bytes": str(sum((model_dir / name).stat().st_size
                                   for name in info.model_files)),
            **extra,
        }

    def _acr_tasks(self, ctx: DeployContext, report: StepReport, info: PackageInfo) -> str:
        from app.services.acr_build import build_image_in_acr

        image = image_reference(ctx.spec)
        report.progress("Building in ACR")
        result = build_image_in_acr(
            clients=ctx.clients,
            resource_group=ctx.output("registry", "resource_group"),
            registry_name=ctx.output("registry", "name"),
            login_server=ctx.output("registry", "login_server"),
            package_dir=info.out_dir,
            repository=image.repository,
            tag=image.tag or "latest",
            log_line=report.log,
            check_cancelled=report.check_cancelled,
        )
        return result.digest or ""

    def _layers(self, ctx: DeployContext, report: StepReport, info: PackageInfo,
                work: Path) -> tuple[str, dict[str, str]]:
        from app.paths import user_cache_dir
        from app.services.image_layers import app_layer, packages_layer
        from app.services.image_push import ensure_base, push_image
        from app.services.packaging import SITE_PYTHON

        image = image_reference(ctx.spec)

        def pip_line(text: str) -> None:
            if text.removeprefix("pip: ").startswith(_PIP_LINES):
                report.log(text)

        with ctx.clients.registry_data(ctx.output("registry", "login_server")) as client:
            report.progress("Importing base")
            base = ensure_base(ctx.clients, client, ctx.output("registry", "resource_group"),
                               ctx.output("registry", "name"), SITE_PYTHON, report)
            report.progress("Resolving packages")
            packages, cached = packages_layer(list(info.requirements), base.platform,
                                              user_cache_dir(), pip_line,
                                              report.check_cancelled, info.constraints)
            report.log(f"python packages for {base.platform.describe()}: {packages.files} "
                       f"files, {packages.size / 1e6:.1f} MB"
                       + (" (from the cache)" if cached else ""))
            app = app_layer(info.out_dir, work / "app.tar.gz")
            report.progress("Pushing")
            outcome = push_image(client, image.repository, image.tag or "latest", base,
                                 [packages, app], report.log, report.check_cancelled)
        report.log(f"uploaded {outcome.uploaded_blobs} blobs, {outcome.uploaded_bytes} bytes; "
                   f"{outcome.mounted_blobs} base layers mounted")
        return outcome.digest, {
            "base_image": f"{base.repository}:{base.tag}@{base.digest}",
            "uploaded_bytes": str(outcome.uploaded_bytes),
            "packages_layer": packages.digest,
            "app_layer": app.digest,
            "app_layer_bytes": str(app.size),
            "packages_layer_bytes": str(packages.size),
        }
