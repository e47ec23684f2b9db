"""OCI images behind the sandbox's container registries: blobs, manifests, tags.

Beside packages (`registry.PackageStore`), a sandbox registry holds real images the
way a distribution registry does: *blobs* (layers, image configs) stored once per
registry by content (`sha256:<hex>` of their bytes), *linked* to the repositories
that pushed, mounted or imported them (a blob is visible in a repository only
through a link, as in ACR), and *manifests* (their exact bytes, also
content-addressed) with tags pointing at them.

Layout under the store root (`<state dir>/providers/microsoft.containerregistry/images/`):

    <registry>/blobs/<hex>          every blob and manifest body, by digest
    <registry>/uploads/<uuid>       upload sessions in progress (temp files)
    <registry>/index.json           {"repositories": {repo: {
                                        "blobs": [digest, ...],
                                        "manifests": {digest: {"mediaType", "size", "created"}},
                                        "tags": {tag: {"digest", "created", "updated"}}}}}

Uploads are written to disk chunk by chunk and hashed as they arrive (a layer
can be a hundred megabytes: never held whole in memory). A session's running
hash lives in memory only, so an upload does not survive a sandbox restart (the
client starts again on `BLOB_UPLOAD_UNKNOWN`, as after an expired ACR session).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import shutil
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
# Manifests whose config and layers must be blobs of the repository.
IMAGE_MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
# Indexes are stored as they come (their entries are manifests, maybe other platforms').
INDEX_MANIFESTS = (OCI_INDEX, DOCKER_MANIFEST_LIST)
MANIFEST_MEDIA_TYPES = IMAGE_MANIFESTS + INDEX_MANIFESTS
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # ACR's and the SDK's manifest limit
MAX_BLOB_BYTES = 512 * 1024 * 1024  # the sandbox's push limit, as for packages

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_CHUNK = 1 << 20


def is_digest(text: str) -> bool:
    return bool(_DIGEST.match(text))


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


class ImageError(ValueError):
    """A distribution error: `code` is the registry error code (DIGEST_INVALID, ...)."""

    def __init__(self, status: int, code: str, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail


@dataclass(frozen=True)
class StoredManifest:
    """A manifest found by tag or digest: its exact bytes and what they are."""

    registry: str
    repository: str
    digest: str
    media_type: str
    body: bytes
    created: str

    def document(self) -> dict[str, Any]:
        data = json.loads(self.body)
        return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class TagInfo:
    name: str
    digest: str
    created: str
    updated: str


@dataclass
class _Upload:
    registry: str
    repository: str
    path: Path
    hasher: Any
    offset: int = 0


class ImageStore:
    """Every sandbox registry's images, under one root folder in the state dir."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.RLock()
        self._uploads: dict[str, _Upload] = {}

    # -- paths and index -------------------------------------------------------

    def _registry_dir(self, registry: str) -> Path:
        return self.root / registry.lower()

    def blob_path(self, registry: str, digest: str) -> Path:
        return self._registry_dir(registry) / "blobs" / digest.removeprefix("sha256:")

    def _index_path(self, registry: str) -> Path:
        return self._registry_dir(registry) / "index.json"

    def _read(self, registry: str) -> dict[str, Any]:
        path = self._index_path(registry)
        if not path.exists():
            return {"repositories": {}}
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        data.setdefault("repositories", {})
        return data

    def _write(self, registry: str, index: dict[str, Any]) -> None:
        path = self._index_path(registry)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(index, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(path)

    @staticmethod
    def _repo(index: dict[str, Any], repository: str) -> dict[str, Any]:
        repo: dict[str, Any] = index["repositories"].setdefault(
            repository, {"blobs": [], "manifests": {}, "tags": {}}
        )
        return repo

    # -- blobs -------------------------------------------------------------------

    def blob_size(self, registry: str, repository: str, digest: str) -> int | None:
        """The size of a blob linked to `repository`; None when it is not there."""
        with self._lock:
            repo = self._read(registry)["repositories"].get(repository)
            if repo is None or digest not in repo.get("blobs", []):
                return None
        path = self.blob_path(registry, digest)
        return path.stat().st_size if path.is_file() else None

    def link_blob(self, registry: str, repository: str, digest: str) -> None:
        """Make an existing blob of the registry visible in `repository`."""
        with self._lock:
            index = self._read(registry)
            blobs = self._repo(index, repository)["blobs"]
            if digest not in blobs:
                blobs.append(digest)
                self._write(registry, index)

    def mount(self, registry: str, repository: str, source: str, digest: str) -> bool:
        """Link `digest` from `source` (same registry) into `repository`; False if absent."""
        if self.blob_size(registry, source, digest) is None:
            return False
        self.link_blob(registry, repository, digest)
        return True

    def put_blob_bytes(self, registry: str, repository: str, data: bytes) -> str:
        """Store a small blob given whole (import, the stand-in base images)."""
        digest = digest_of(data)
        path = self.blob_path(registry, digest)
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{uuid.uuid4().hex}")
            tmp.write_bytes(data)
            tmp.replace(path)
        self.link_blob(registry, repository, digest)
        return digest

    def put_blob_file(self, registry: str, repository: str, source: Path, digest: str) -> None:
        """Copy a blob from another store's file (import from another registry)."""
        path = self.blob_path(registry, digest)
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{uuid.uuid4().hex}")
            shutil.copyfile(source, tmp)
            tmp.replace(path)
        self.link_blob(registry, repository, digest)

    def read_range(
        self, registry: str, digest: str, start: int, end: int
    ) -> Iterator[bytes]:
        """The blob's bytes `start..end` (inclusive), in chunks."""
        with self.blob_path(registry, digest).open("rb") as handle:
            handle.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = handle.read(min(_CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk

    # -- uploads -----------------------------------------------------------------

    def start_upload(self, registry: str, repository: str) -> str:
        session = str(uuid.uuid4())
        folder = self._registry_dir(registry) / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / session
        path.touch()
        with self._lock:
            self._uploads[session] = _Upload(registry.lower(), repository, path, hashlib.sha256())
        return session

    def upload(self, registry: str, repository: str, session: str) -> _Upload:
        with self._lock:
            found = self._uploads.get(session)
        if found is None or found.registry != registry.lower() or found.repository != repository:
            raise ImageError(
                404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", {"uuid": session}
            )
        return found

    def append(self, upload: _Upload, chunks: Iterable[bytes]) -> int:
        """Write chunks at the end of the session's file, hashing them; the new size."""
        with upload.path.open("ab") as handle:
            for chunk in chunks:
                if upload.offset + len(chunk) > MAX_BLOB_BYTES:
                    raise ImageError(413, "SIZE_INVALID", "blob larger than 512 MiB")
                handle.write(chunk)
                upload.hasher.update(chunk)
                upload.offset += len(chunk)
        return upload.offset

    def finish_upload(self, upload: _Upload, session: str, digest: str) -> str:
        """Close the session: the content must hash to `digest`; stores and links it."""
        computed = f"sha256:{upload.hasher.hexdigest()}"
        with self._lock:
            self._uploads.pop(session, None)
        if not is_digest(digest) or computed != digest:
            upload.path.unlink(missing_ok=True)
            raise ImageError(
                400,
                "DIGEST_INVALID",
                "provided digest did not match uploaded content",
                {"digest": digest, "computed": computed},
            )
        final = self.blob_path(upload.registry, digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.is_file():
            upload.path.unlink(missing_ok=True)
        else:
            upload.path.replace(final)
        self.link_blob(upload.registry, upload.repository, digest)
        return digest

    def cancel_upload(self, upload: _Upload, session: str) -> None:
        with self._lock:
            self._uploads.pop(session, None)
        upload.path.unlink(missing_ok=True)

    # -- manifests ---------------------------------------------------------------

    def put_manifest(
        self, registry: str, repository: str, reference: str, body: bytes, media_type: str
    ) -> str:
        """Store a manifest under a tag or its digest; returns its digest.

        An image manifest's config and layers must be blobs of the repository.
        """
        if len(body) > MAX_MANIFEST_BYTES:
            raise ImageError(413, "SIZE_INVALID", "manifest larger than 4 MiB")
        digest = digest_of(body)
        if is_digest(reference) and reference != digest:
            raise ImageError(
                400, "DIGEST_INVALID", "provided digest did not match uploaded content",
                {"digest": reference, "computed": digest},
            )
        if reference.startswith("sha256:") and not is_digest(reference):
            raise ImageError(400, "DIGEST_INVALID", f"invalid digest {reference!r}")
        document = _parse_manifest(body, media_type)
        with self._lock:
            if media_type in IMAGE_MANIFESTS:
                for descriptor in _blob_descriptors(document):
                    if self.blob_size(registry, repository, descriptor) is None:
                        raise ImageError(
                            400, "MANIFEST_BLOB_UNKNOWN",
                            f"blob unknown to registry: {descriptor}", {"digest": descriptor},
                        )
            path = self.blob_path(registry, digest)
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(body)
            index = self._read(registry)
            repo = self._repo(index, repository)
            now = _now()
            repo["manifests"].setdefault(
                digest, {"mediaType": media_type, "size": len(body), "created": now}
            )
            if not is_digest(reference):
                old = repo["tags"].get(reference)
                created = old["created"] if old else now
                repo["tags"][reference] = {"digest": digest, "created": created, "updated": now}
            self._write(registry, index)
        return digest

    def resolve(self, registry: str, repository: str, reference: str) -> StoredManifest | None:
        """The manifest a tag or digest names in `repository`; None when absent."""
        with self._lock:
            repo = self._read(registry)["repositories"].get(repository)
        if repo is None:
            return None
        if reference.startswith("sha256:"):
            digest = reference.lower()
        else:
            tag = repo["tags"].get(reference)
            if tag is None:
                return None
            digest = tag["digest"]
        info = repo["manifests"].get(digest)
        path = self.blob_path(registry, digest)
        if info is None or not path.is_file():
            return None
        return StoredManifest(
            registry.lower(), repository, digest, info["mediaType"], path.read_bytes(),
            info["created"],
        )

    def untag(self, registry: str, repository: str, tag: str) -> None:
        """Drop a tag (a package took it over); the manifest stays pullable by digest."""
        with self._lock:
            index = self._read(registry)
            repo = index["repositories"].get(repository)
            if repo is not None and repo["tags"].pop(tag, None) is not None:
                self._write(registry, index)

    # -- listing and deletion ----------------------------------------------------

    def repositories(self, registry: str) -> list[str]:
        with self._lock:
            return sorted(
                name for name, repo in self._read(registry)["repositories"].items()
                if repo.get("manifests")
            )

    def tags(self, registry: str, repository: str) -> list[TagInfo] | None:
        """The repository's tags, or None when it holds no manifest."""
        with self._lock:
            repo = self._read(registry)["repositories"].get(repository)
        if repo is None or not repo.get("manifests"):
            return None
        return [
            TagInfo(name, t["digest"], t["created"], t["updated"])
            for name, t in sorted(repo["tags"].items())
        ]

    def manifest_tags(self, registry: str, repository: str, digest: str) -> list[str]:
        tags = self.tags(registry, repository) or []
        return [t.name for t in tags if t.digest == digest]

    def delete_repository(self, registry: str, repository: str) -> tuple[list[str], list[str]]:
        """Forget a repository; returns (manifests deleted, tags deleted). Blobs other
        repositories link stay (blob garbage is collected with the registry)."""
        with self._lock:
            index = self._read(registry)
            repo = index["repositories"].pop(repository, None)
            if repo is None:
                return [], []
            self._write(registry, index)
        return sorted(repo.get("manifests", {})), sorted(repo.get("tags", {}))

    def delete_registry(self, registry: str) -> None:
        with self._lock:
            shutil.rmtree(self._registry_dir(registry), ignore_errors=True)
            for session, upload in list(self._uploads.items()):
                if upload.registry == registry.lower():
                    self._uploads.pop(session, None)


def _parse_manifest(body: bytes, media_type: str) -> dict[str, Any]:
    if media_type not in MANIFEST_MEDIA_TYPES:
        raise ImageError(
            400, "MANIFEST_INVALID", f"manifest media type {media_type!r} is not supported"
        )
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ImageError(400, "MANIFEST_INVALID", "manifest invalid: not JSON") from None
    if not isinstance(document, dict) or document.get("schemaVersion") != 2:
        raise ImageError(400, "MANIFEST_INVALID", "manifest invalid: schemaVersion must be 2")
    declared = document.get("mediaType")
    if declared is not None and declared != media_type:
        raise ImageError(
            400, "MANIFEST_INVALID",
            f"manifest invalid: mediaType {declared!r} does not match Content-Type {media_type!r}",
        )
    if media_type in IMAGE_MANIFESTS:
        config = document.get("config")
        layers = document.get("layers")
        if not isinstance(config, dict) or not isinstance(layers, list):
            raise ImageError(400, "MANIFEST_INVALID", "manifest invalid: config and layers needed")
        for descriptor in [config, *layers]:
            if not isinstance(descriptor, dict) or not is_digest(str(descriptor.get("digest"))):
                raise ImageError(400, "MANIFEST_INVALID", "manifest invalid: bad descriptor")
    elif not isinstance(document.get("manifests"), list):
        raise ImageError(400, "MANIFEST_INVALID", "manifest invalid: manifests list needed")
    return document


def _blob_descriptors(document: dict[str, Any]) -> list[str]:
    return [str(document["config"]["digest"])] + [str(d["digest"]) for d in document["layers"]]


def image_blobs(document: dict[str, Any]) -> list[str]:
    """Digests an image manifest names (config first, then layers in order)."""
    return _blob_descriptors(document)
