"""Bring the base image into the user's registry and push the model's layers on top.

The Azure Functions Python base image is copied registry-to-registry by ACR's
import operation (`registries.begin_import_image`), so none of its bytes pass
through this machine, and only when the registry does not already hold the digest
the public registry now serves for its tag. The model's image is then written over
the registry's data plane with azure-containerregistry: the base's layers are
mounted from the base repository (no bytes either), the model's layers and the
image config are uploaded only when the repository does not have them (a blob's
digest is its content), and an OCI manifest ties them together.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.errors import ServiceFailure
from app.services.arm import Progress, wait_lro
from app.services.clients import ClientFactory
from app.services.explain import plain_request_error
from app.services.image_layers import PACKAGES_ROOT, SCRIPT_ROOT, Layer, Platform, platform_of
from app.services.transport import retrying_session

BASE_REPOSITORY = "azure-functions/python"
# The Functions runtime the base images carry; the Python comes after it in the tag.
FUNCTIONS_RUNTIME = "4"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
_INDEX_TYPES = frozenset({"application/vnd.oci.image.index.v1+json",
                          "application/vnd.docker.distribution.manifest.list.v2+json"})
_MANIFEST_ACCEPT = ", ".join([OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json",
                              *sorted(_INDEX_TYPES)])
# Azure Functions runs Linux containers on x86-64.
SITE_OS, SITE_ARCHITECTURE = "linux", "amd64"
# Written into the image's history entries, which OCI asks to be a date.
_EPOCH = "1970-01-01T00:00:00Z"

LogLine = Callable[[str], None]


def base_tag(python: str) -> str:
    """`4-python3.11`: the Functions v4 base image for that Python."""
    return f"{FUNCTIONS_RUNTIME}-python{python}"


@dataclass(frozen=True)
class BaseImage:
    """The base as the user's registry holds it, read from there after the import."""

    repository: str
    tag: str
    digest: str  # of the platform manifest the layers stack on
    manifest: dict[str, Any]
    config: dict[str, Any]
    imported: bool

    @property
    def platform(self) -> Platform:
        return platform_of(self.config)


@dataclass(frozen=True)
class PushOutcome:
    digest: str
    uploaded_bytes: int
    uploaded_blobs: int
    mounted_blobs: int


def _sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def canonical_json(value: Any) -> bytes:
    """The bytes a config or manifest is pushed as: sorted keys, no spaces, so the
    same image always has the same digest."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
                      ).encode("utf-8")


def public_digest(clients: ClientFactory, repository: str, tag: str) -> str | None:
    """The digest the public registry serves for `repository:tag` (an anonymous
    `HEAD /v2/.../manifests/<tag>`), or None when it cannot be asked."""
    import requests

    target = clients.target
    url = f"https://{target.base_registry}/v2/{repository}/manifests/{tag}"
    with retrying_session(target) as session:
        try:
            answer = session.head(url, headers={"Accept": _MANIFEST_ACCEPT}, timeout=30,
                                  verify=target.verify)
        except requests.RequestException:
            return None
    digest = answer.headers.get("Docker-Content-Digest", "")
    return digest if answer.status_code == 200 and digest.startswith("sha256:") else None


def _not_found(exc: Exception) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    return isinstance(exc, ResourceNotFoundError)


def _platform_manifest(client: Any, repository: str, reference: str) -> tuple[str, dict[str, Any]]:
    """The manifest for the site's platform: `reference` itself, or its entry for
    linux/amd64 when it names an index (a multi-platform image)."""
    found = client.get_manifest(repository, reference)
    manifest: dict[str, Any] = dict(found.manifest)
    if found.media_type.split(";")[0].strip() not in _INDEX_TYPES:
        return str(found.digest), manifest
    for entry in manifest.get("manifests") or []:
        platform = entry.get("platform") or {}
        if platform.get("os") == SITE_OS and platform.get("architecture") == SITE_ARCHITECTURE:
            child = client.get_manifest(repository, entry["digest"])
            return str(child.digest), dict(child.manifest)
    raise ServiceFailure(f"{repository}:{reference} has no {SITE_OS}/{SITE_ARCHITECTURE} image")


def ensure_base(clients: ClientFactory, client: Any, resource_group: str, registry: str,
                python: str, report: Progress) -> BaseImage:
    """Import the base into the registry unless it already holds the public digest,
    then read its manifest and config from the registry."""
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.containerregistry.models import ImportImageParameters, ImportSource

    tag = base_tag(python)
    source = f"{clients.target.base_registry}/{BASE_REPOSITORY}:{tag}"
    wanted = public_digest(clients, BASE_REPOSITORY, tag)
    held = False
    if wanted is not None:
        try:
            client.get_manifest(BASE_REPOSITORY, wanted)
            held = True
        except HttpResponseError as exc:
            if not _not_found(exc):
                raise
    if held:
        report.log(f"the registry already holds {source} ({wanted}); not imported again")
    else:
        report.log(f"importing {source} into {registry} (a copy inside Azure)")
        parameters = ImportImageParameters(
            source=ImportSource(registry_uri=clients.target.base_registry,
                                source_image=f"{BASE_REPOSITORY}:{tag}"),
            target_tags=[f"{BASE_REPOSITORY}:{tag}"],
            mode="Force",
        )
        poller = clients.registry().registries.begin_import_image(
            resource_group, registry, parameters)
        wait_lro(poller, report, state="Importing")
    digest, manifest = _platform_manifest(client, BASE_REPOSITORY, wanted if held and wanted
                                          else tag)
    config_digest = str((manifest.get("config") or {}).get("digest") or "")
    config = json.loads(b"".join(client.download_blob(BASE_REPOSITORY, config_digest)))
    if not held:
        report.log(f"imported {source} ({digest})")
    return BaseImage(BASE_REPOSITORY, tag, digest, manifest, config, imported=not held)


def image_config(base: dict[str, Any], layers: list[Layer]) -> dict[str, Any]:
    """The base's config with the model's layers appended: their diff ids, a history
    entry each, and the environment the Functions host reads the app from."""
    config = copy.deepcopy(base)
    config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    config["rootfs"]["diff_ids"] = [*config["rootfs"].get("diff_ids", []),
                                    *(layer.diff_id for layer in layers)]
    config["history"] = [*config.get("history", []), *(
        {"created": _EPOCH, "created_by": f"mlcache-deploy: {what}"}
        for what in ("python packages", "function app and model")[-len(layers):])]
    runtime = config.setdefault("config", {})
    env = dict(item.partition("=")[::2] for item in runtime.get("Env") or [])
    packages = f"/{PACKAGES_ROOT}"
    paths = [packages, *(p for p in env.get("PYTHONPATH", "").split(":") if p and p != packages)]
    env.update({"AzureWebJobsScriptRoot": f"/{SCRIPT_ROOT}",
                "AzureFunctionsJobHost__Logging__Console__IsEnabled": "true",
                "PYTHONPATH": ":".join(paths)})
    runtime["Env"] = [f"{key}={value}" for key, value in env.items()]
    return config


def image_manifest(base: BaseImage, config: bytes, layers: list[Layer]) -> dict[str, Any]:
    """An OCI image manifest: the base's layer descriptors as they are, then ours."""
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": _sha256(config), "size": len(config)},
        "layers": [*(dict(d) for d in base.manifest.get("layers") or []),
                   *(layer.descriptor() for layer in layers)],
    }


def _has_blob(client: Any, repository: str, digest: str) -> bool:
    from azure.core.exceptions import HttpResponseError

    # The public client has no HEAD on blobs; its generated layer does (the same
    # pipeline, with the token exchange).
    try:
        client._client.container_registry_blob.check_blob_exists(repository, digest)
    except HttpResponseError as exc:
        if _not_found(exc) or getattr(exc, "status_code", None) == 404:
            return False
        raise
    return True


def _mount(client: Any, repository: str, source: str, digest: str) -> bool:
    """Cross-repository mount; False when the registry started an upload instead."""
    response: list[int] = []
    client._client.container_registry_blob.mount_blob(
        repository, from_parameter=source, mount=digest,
        cls=lambda pipeline, _result, _headers: response.append(pipeline.http_response.status_code))
    return bool(response) and response[0] == 201


def push_image(client: Any, repository: str, tag: str, base: BaseImage, layers: list[Layer],
               log_line: LogLine, check_cancelled: Callable[[], None]) -> PushOutcome:
    """Write the image: mount the base's layers, upload what is missing, put the manifest."""
    mounted = uploaded = sent = 0
    for descriptor in base.manifest.get("layers") or []:
        digest = str(descriptor["digest"])
        if not _has_blob(client, repository, digest):
            if not _mount(client, repository, base.repository, digest):
                raise ServiceFailure(f"the registry would not mount base layer {digest} "
                                     f"from {base.repository} into {repository}")
            mounted += 1
    config = canonical_json(image_config(base.config, layers))
    blobs: list[tuple[str, str, int, Layer | bytes]] = [
        (layer.digest, f"layer {layer.digest[:19]} ({layer.files} files)", layer.size, layer)
        for layer in layers]
    blobs.append((_sha256(config), "image config", len(config), config))
    for digest, what, size, content in blobs:
        check_cancelled()
        if _has_blob(client, repository, digest):
            log_line(f"{what}: already in the registry")
            continue
        log_line(f"uploading {what}, {size / 1e6:.1f} MB")
        with (io.BytesIO(content) if isinstance(content, bytes)
              else content.path.open("rb")) as data:
            stored, _ = client.upload_blob(repository, data)
        if stored != digest:
            raise ServiceFailure(f"the registry stored {what} as {stored}, not {digest}")
        uploaded += 1
        sent += size
    manifest = canonical_json(image_manifest(base, config, layers))
    digest = client.set_manifest(repository, io.BytesIO(manifest), tag=tag,
                                 media_type=OCI_MANIFEST)
    if digest != _sha256(manifest):
        raise ServiceFailure(f"the registry answered digest {digest} for the manifest "
                             f"{_sha256(manifest)}")
    return PushOutcome(str(digest), sent, uploaded, mounted)


def registry_call_failed(exc: Exception, login_server: str) -> ServiceFailure:
    return ServiceFailure(f"the registry {login_server} refused the image: "
                          f"{plain_request_error(exc)}")
