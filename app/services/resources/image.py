"""The model image a build makes from a model folder and pushes to the registry.

Not an ARM resource: a repository and tag in the registry the "registry" step
made. The site then runs the pushed digest, so a changed model changes the site.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from app.errors import BadInput
from app.services.context import DeployContext
from app.services.resources.base import AzCliPart, ResourceStep, Shell
from app.services.resources.registry import image_reference
from app.services.runner import StepReport
from app.spec import DeploymentSpec


class ImageBuildStep(ResourceStep):
    """Build the model folder into a package/image and push it to the registry."""

    name = "image"
    arm_type = ""
    label = "image"
    icon = "settings"
    depends_on = ("registry",)
    progress_text = "Building {title} with ACR Tasks"
    success_text = "Built and pushed {title}"

    def __init__(self, spec: DeploymentSpec) -> None:
        super().__init__(spec)
        self.title = f"image {image_reference(spec)}"

    def resource_type(self) -> str:
        return "Container image"

    def resource_name(self) -> str:
        return f"{self.spec.image.repository}:{self.spec.image.tag}"

    def azcli(self, sh: Shell) -> AzCliPart:
        image = image_reference(self.spec)
        return AzCliPart(create=[
            "# Build the package first: mlcache-deploy package build MODEL_DIR --out build/package",
            f"az acr build --registry {sh.q(image.registry)} "
            f"--image {sh.q(f'{image.repository}:{image.tag}')} build/package",
        ])

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        from app.services.acr_build import build_image_in_acr
        from app.services.packaging import build_package

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
            digest = result.digest or ""
        finally:
            shutil.rmtree(work, ignore_errors=True)
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
            "model_version": info.model_version,
            "model_bytes": str(sum((model_dir / name).stat().st_size
                                   for name in info.model_files)),
        }
