"""ARM's importImage on a registry: copy an image server-side, as `az acr import` does.

`POST .../registries/{name}/importImage` with `{"source": {"registryUri" |
"resourceId", "sourceImage": "repo:tag" | "repo@sha256:..."}, "targetTags":
["repo:tag", ...], "untaggedTargetRepositories": [...], "mode": "Force" |
"NoForce"}` answers 202 with a `Location` (`.../locations/<loc>/operationResults/<id>`)
and the body `null`, as in azure-cli's `test_acr_import_no_wait.yaml` recording;
polling it gives 202 while the copy runs, then 200 (no body), or the failure.

Sources: the base-registry stand-in (its `127.0.0.1:<port>` host, or
`mcr.microsoft.com` as an alias for it), or another sandbox registry named by
its loginServer or resource id. Once done the target repository holds the same
manifest bytes (same digest) and every blob it names. Failures, as the operation's
error (the words follow the ones ACR is quoted with in Azure/azure-cli#10938 and
Azure/acr#632): an image the source does not have, and, in NoForce mode, a target
tag that already exists ("Tag <t> already exists in target registry.").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.sandbox.arm import ArmError
from app.sandbox.base_images import MCR_HOST, find_blob, find_manifest
from app.sandbox.oci import (
    DOCKER_MANIFEST,
    IMAGE_MANIFESTS,
    ImageStore,
    digest_of,
    image_blobs,
)
from app.sandbox.registry import PackageStore
from app.sandbox.store import Record, Store

RTYPE = "Microsoft.ContainerRegistry/registries"


@dataclass(frozen=True)
class ImportRequest:
    """A checked importImage body."""

    registry_uri: str | None
    resource_id: str | None
    source_image: str
    target_tags: tuple[str, ...]
    untagged: tuple[str, ...]
    force: bool

    def as_args(self) -> dict[str, Any]:
        return {
            "registryUri": self.registry_uri,
            "resourceId": self.resource_id,
            "sourceImage": self.source_image,
            "targetTags": list(self.target_tags),
            "untaggedTargetRepositories": list(self.untagged),
            "mode": "Force" if self.force else "NoForce",
        }

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> ImportRequest:
        return cls(
            args.get("registryUri"), args.get("resourceId"), str(args["sourceImage"]),
            tuple(args.get("targetTags") or ()),
            tuple(args.get("untaggedTargetRepositories") or ()),
            args.get("mode") == "Force",
        )


def _invalid(message: str) -> ArmError:
    return ArmError(400, "InvalidParameters", message)


def parse_import(body: dict[str, Any]) -> ImportRequest:
    """Check the body the way the RP does before accepting it (400 InvalidParameters)."""
    source = body.get("source")
    if not isinstance(source, dict):
        raise _invalid("The 'source' property is required.")
    image = source.get("sourceImage")
    if not isinstance(image, str) or not image.strip():
        raise _invalid("The 'source.sourceImage' property is required.")
    uri = source.get("registryUri")
    rid = source.get("resourceId")
    if not (isinstance(uri, str) and uri) and not (isinstance(rid, str) and rid):
        raise _invalid("Either 'source.registryUri' or 'source.resourceId' is required.")
    tags = body.get("targetTags") or []
    untagged = body.get("untaggedTargetRepositories") or []
    if not isinstance(tags, list) or not isinstance(untagged, list):
        raise _invalid("'targetTags' and 'untaggedTargetRepositories' must be lists.")
    if not tags and not untagged:
        raise _invalid("At least one of 'targetTags' or 'untaggedTargetRepositories' is needed.")
    for tag in tags:
        repo, sep, name = str(tag).rpartition(":")
        if not sep or not repo or not name or "/" in name:
            raise _invalid(f"The target tag '{tag}' is not of the form 'repository:tag'.")
    mode = str(body.get("mode") or "NoForce")
    if mode.lower() not in ("force", "noforce"):
        raise _invalid(f"The mode '{mode}' is not valid; use 'Force' or 'NoForce'.")
    return ImportRequest(
        uri if isinstance(uri, str) and uri else None,
        rid if isinstance(rid, str) and rid else None,
        image.strip(),
        tuple(str(t) for t in tags),
        tuple(str(u) for u in untagged),
        mode.lower() == "force",
    )


def split_image(image: str) -> tuple[str, str]:
    """`repo:tag` or `repo@sha256:...` -> (repo, reference); no tag means `latest`."""
    if "@" in image:
        repo, _, digest = image.partition("@")
        return repo, digest
    repo, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        return image, "latest"
    return repo, tag


@dataclass(frozen=True)
class SourceImage:
    """What an import copies: the manifest's exact bytes and a reader per blob."""

    manifest: bytes
    media_type: str
    blobs: dict[str, Callable[[ImageStore, str, str], None]]


class Importer:
    """Runs an import for the registry provider (in its operation's worker thread)."""

    def __init__(
        self, store: Store, images: ImageStore, packages: PackageStore,
        base_host: Callable[[], str], on_push: Callable[[str, str, str], None],
    ) -> None:
        self._store = store
        self._images = images
        self._packages = packages
        self._base_host = base_host
        self._on_push = on_push

    def _source_registry(self, request: ImportRequest) -> Record | None:
        if request.resource_id:
            return self._store.resource(request.resource_id)
        wanted = (request.registry_uri or "").lower()
        for record in self._store.resources(RTYPE):
            if str(record["body"]["properties"].get("loginServer", "")).lower() == wanted:
                return record
            if f"{record['body']['name'].lower()}.azurecr.io" == wanted:
                return record
        return None

    def _find(self, request: ImportRequest) -> SourceImage | None:
        repository, reference = split_image(request.source_image)
        uri = (request.registry_uri or "").lower()
        if not request.resource_id and uri in (MCR_HOST, self._base_host().lower()):
            base = find_manifest(repository, reference)
            if base is None:
                return None

            def from_base(digest: str) -> Callable[[ImageStore, str, str], None]:
                def copy(images: ImageStore, registry: str, repo: str) -> None:
                    data = find_blob(repository, digest)
                    assert data is not None
                    images.put_blob_bytes(registry, repo, data)
                return copy

            return SourceImage(
                base.manifest, DOCKER_MANIFEST, {d: from_base(d) for d in base.blobs}
            )
        record = self._source_registry(request)
        if record is None:
            return None
        name = record["body"]["name"]
        found = self._images.resolve(name, repository, reference)
        if found is None:
            return None
        digests = image_blobs(found.document()) if found.media_type in IMAGE_MANIFESTS else []

        def from_registry(digest: str) -> Callable[[ImageStore, str, str], None]:
            path: Path = self._images.blob_path(name, digest)

            def copy(images: ImageStore, registry: str, repo: str) -> None:
                images.put_blob_file(registry, repo, path, digest)
            return copy

        return SourceImage(found.body, found.media_type, {d: from_registry(d) for d in digests})

    def run(self, op: dict[str, Any]) -> None:
        request = ImportRequest.from_args(op["args"])
        rid = str(op["resourceId"])
        failed = f"Operation registries-{op['id']} failed. Resource {rid}"
        target = self._store.resource(rid)
        if target is None:
            raise ArmError(404, "ResourceNotFound", f"{failed} The registry no longer exists.")
        registry = target["body"]["name"]
        source = self._find(request)
        if source is None:
            where = request.registry_uri or request.resource_id
            raise _invalid(f"{failed} Source image {where}/{request.source_image} not found.")
        if not request.force:
            for tag in request.target_tags:
                repo, _, name = tag.rpartition(":")
                taken = self._images.resolve(registry, repo, name) or self._packages.resolve(
                    registry, repo, name
                )
                if taken is not None:
                    raise _invalid(f"{failed} {tag} Tag {tag} already exists in target registry.")
        repositories = [t.rpartition(":")[0] for t in request.target_tags] + list(request.untagged)
        for repo in dict.fromkeys(repositories):
            for copy in source.blobs.values():
                copy(self._images, registry, repo)
        for tag in request.target_tags:
            repo, _, name = tag.rpartition(":")
            self._images.put_manifest(registry, repo, name, source.manifest, source.media_type)
            self._packages.untag(registry, repo, name)
        for repo in request.untagged:
            self._images.put_manifest(
                registry, repo, digest_of(source.manifest), source.manifest, source.media_type
            )
        for tag in request.target_tags:
            repo, _, name = tag.rpartition(":")
            self._on_push(registry, repo, name)
