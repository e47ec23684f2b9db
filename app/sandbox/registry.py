"""Package storage behind the sandbox's container registries, and the push client.

Azure Container Registry holds container images; the sandbox has no Docker, so a
sandbox registry holds *packages*: function-app folders, addressed exactly like
images (`<registry>.azurecr.io/<repository>:<tag>` or `@sha256:<digest>`). The
digest is a sha256 over the folder's content (relative paths and file bytes), so
the same folder always gets the same digest, as an image's manifest digest does.

Layout under the store root (`<state dir>/registry/`):

    <registry>/index.json           {"repositories": {repo: {"tags": {tag: digest},
                                                             "digests": [digest, ...]}}}
    <registry>/packages/<hex>/      the package content, one folder per digest

Packages travel as gzip'd tar archives (`pack_package` / `unpack_package`); the
sandbox accepts them on its registry data plane
(`PUT /dataplane/registries/<name>/v2/<repo>/manifests/<tag>`),
which is what `push_package` calls, so a push works against a sandbox running in
another process. `list_repositories` / `list_tags` read the same data plane.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import ssl
import tarfile
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app.errors import BadInput, ServiceFailure
from app.folders import folder_files, pack_folder
from app.imageref import ImageReference, ImageReferenceError, parse_image_reference

# Media type of a pushed package on the data plane (stands where an image manifest would).
PACKAGE_MEDIA_TYPE = "application/vnd.mlcache.package.v1.tar+gzip"

# A package is a small code folder plus a model file; refuse archives that unpack
# to something absurd rather than fill the disk.
MAX_PACKAGE_BYTES = 512 * 1024 * 1024


class PackageError(ValueError):
    """A folder or archive cannot be used as a package; the message says why."""


@dataclass(frozen=True)
class StoredPackage:
    """One package found in a registry: where its content is and its digest."""

    registry: str
    repository: str
    digest: str
    path: Path


@dataclass(frozen=True)
class PushResult:
    reference: ImageReference
    digest: str

    def __str__(self) -> str:
        """`<registry>.azurecr.io/<repository>:<tag>@sha256:<digest>`, a valid reference."""
        ref = self.reference
        return f"{ref.login_server}/{ref.repository}:{ref.tag}@{self.digest}"


def package_files(root: Path) -> list[tuple[str, Path]]:
    """The package's files as (relative POSIX path, absolute path), sorted by path."""
    if not root.is_dir():
        raise PackageError(f"{root} is not a folder")
    return folder_files(root)


def package_digest(root: Path) -> str:
    """`sha256:<hex>` over every file's relative path and content hash."""
    outer = hashlib.sha256()
    for relative, path in package_files(root):
        inner = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                inner.update(chunk)
        outer.update(relative.encode("utf-8") + b"\0" + inner.hexdigest().encode("ascii") + b"\n")
    return f"sha256:{outer.hexdigest()}"


def pack_package(root: Path) -> bytes:
    """A reproducible tar.gz of the package (fixed owner and times, sorted entries)."""
    files = package_files(root)
    if not files:
        raise PackageError(f"{root} holds no files to package")
    return pack_folder(files)


def unpack_package(data: bytes, dest: Path) -> None:
    """Unpack a package archive into the empty folder `dest`, refusing unsafe members."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = tar.getmembers()
            total = 0
            for member in members:
                if not (member.isfile() or member.isdir()):
                    raise PackageError(f"archive member {member.name!r} is not a file or folder")
                total += member.size
            if total > MAX_PACKAGE_BYTES:
                raise PackageError("archive unpacks to more than 512 MiB")
            # The "data" filter refuses absolute paths, `..` and links out of dest.
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise PackageError(f"not a readable package archive: {exc}") from None


class PackageStore:
    """Every sandbox registry's packages, under one root folder in the state dir."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.RLock()

    # -- paths ---------------------------------------------------------------

    def _registry_dir(self, registry: str) -> Path:
        return self.root / registry.lower()

    def _index_path(self, registry: str) -> Path:
        return self._registry_dir(registry) / "index.json"

    def _package_dir(self, registry: str, digest: str) -> Path:
        return self._registry_dir(registry) / "packages" / digest.removeprefix("sha256:")

    def _read_index(self, registry: str) -> dict[str, dict[str, dict[str, object]]]:
        path = self._index_path(registry)
        if not path.exists():
            return {"repositories": {}}
        data = json.loads(path.read_text(encoding="utf-8"))
        data.setdefault("repositories", {})
        return data

    def _write_index(self, registry: str, index: dict[str, dict[str, dict[str, object]]]) -> None:
        path = self._index_path(registry)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(index, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(path)

    # -- writing -------------------------------------------------------------

    def push_directory(self, registry: str, repository: str, tag: str, source: Path) -> str:
        """Copy `source` in as `repository:tag`; return its digest."""
        if not package_files(source):
            raise PackageError(f"{source} holds no files to package")
        staging = self._staging_dir(registry)
        try:
            content = staging / "content"
            content.mkdir()
            for relative, path in package_files(source):
                target = content / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
            return self._commit(registry, repository, tag, content)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def push_archive(self, registry: str, repository: str, tag: str | None, data: bytes) -> str:
        """Store a package archive as `repository:tag` (or untagged); return its digest."""
        staging = self._staging_dir(registry)
        try:
            content = staging / "content"
            content.mkdir()
            unpack_package(data, content)
            if not package_files(content):
                raise PackageError("the archive holds no files")
            return self._commit(registry, repository, tag, content)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _staging_dir(self, registry: str) -> Path:
        base = self._registry_dir(registry)
        base.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".push-", dir=base))

    def _commit(self, registry: str, repository: str, tag: str | None, content: Path) -> str:
        digest = package_digest(content)
        with self._lock:
            final = self._package_dir(registry, digest)
            if not final.exists():
                final.parent.mkdir(parents=True, exist_ok=True)
                content.rename(final)
            index = self._read_index(registry)
            repo = index["repositories"].setdefault(repository, {"tags": {}, "digests": []})
            digests = repo.setdefault("digests", [])
            assert isinstance(digests, list)
            if digest not in digests:
                digests.append(digest)
            if tag:
                tags = repo.setdefault("tags", {})
                assert isinstance(tags, dict)
                tags[tag] = digest
            self._write_index(registry, index)
        return digest

    def untag(self, registry: str, repository: str, tag: str) -> None:
        """Drop a tag (an image manifest took it over); the package stays by digest."""
        with self._lock:
            index = self._read_index(registry)
            repo = index["repositories"].get(repository)
            tags = repo.get("tags") if repo is not None else None
            if isinstance(tags, dict) and tags.pop(tag, None) is not None:
                self._write_index(registry, index)

    def delete_repository(self, registry: str, repository: str) -> list[str]:
        """Forget a repository; returns the digests it held. Package folders stay
        until the registry goes (another repository may hold the same digest)."""
        with self._lock:
            index = self._read_index(registry)
            repo = index["repositories"].pop(repository, None)
            if repo is None:
                return []
            self._write_index(registry, index)
        digests = repo.get("digests", [])
        return [str(d) for d in digests] if isinstance(digests, list) else []

    def delete_registry(self, registry: str) -> None:
        """Forget every package of `registry` (its resource is gone)."""
        with self._lock:
            shutil.rmtree(self._registry_dir(registry), ignore_errors=True)

    # -- reading -------------------------------------------------------------

    def repositories(self, registry: str) -> list[str]:
        with self._lock:
            return sorted(self._read_index(registry)["repositories"])

    def tags(self, registry: str, repository: str) -> list[str] | None:
        """The repository's tags, or None when the repository does not exist."""
        with self._lock:
            repo = self._read_index(registry)["repositories"].get(repository)
        if repo is None:
            return None
        tags = repo.get("tags", {})
        assert isinstance(tags, dict)
        return sorted(tags)

    def resolve(self, registry: str, repository: str, reference: str) -> StoredPackage | None:
        """Find `repository:<tag>` or `repository@sha256:...`; None when absent."""
        with self._lock:
            repo = self._read_index(registry)["repositories"].get(repository)
        if repo is None:
            return None
        if reference.startswith("sha256:"):
            digests = repo.get("digests", [])
            assert isinstance(digests, list)
            digest: object = reference.lower() if reference.lower() in digests else None
        else:
            tags = repo.get("tags", {})
            assert isinstance(tags, dict)
            digest = tags.get(reference)
        if not isinstance(digest, str):
            return None
        path = self._package_dir(registry, digest)
        if not path.is_dir():
            return None
        return StoredPackage(registry.lower(), repository, digest, path)

    def resolve_image(self, image: ImageReference) -> StoredPackage | None:
        """Resolve a parsed reference; a digest, when given, wins over the tag (as in Docker)."""
        reference = image.digest or image.tag
        if reference is None:
            return None
        return self.resolve(image.registry, image.repository, reference)

    def iter_registries(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for child in sorted(self.root.iterdir()):
            if child.is_dir() and not child.name.startswith("."):
                yield child.name


# -- the push client ----------------------------------------------------------


def parse_push_reference(text: str) -> ImageReference:
    """Parse a push target: it must name a tag (a digest is computed, not chosen)."""
    try:
        image = parse_image_reference(text)
    except ImageReferenceError as exc:
        raise BadInput(
            f"--image {text!r}: {exc}",
            "Use the form <registry>.azurecr.io/<repository>:<tag>.",
        ) from None
    if image.tag is None:
        raise BadInput(
            f"--image {text!r}: a push needs a tag; the digest is computed from the content",
            "Use the form <registry>.azurecr.io/<repository>:<tag>.",
        )
    if image.digest is not None:
        raise BadInput(
            f"--image {text!r}: give only a tag; the digest is computed from the content",
            "Use the form <registry>.azurecr.io/<repository>:<tag>.",
        )
    return image


def data_plane_url(endpoint: str, registry: str, path: str) -> str:
    """URL of the sandbox's registry data plane (`/dataplane/registries/<name>/v2/...`)."""
    return f"{endpoint.rstrip('/')}/dataplane/registries/{registry.lower()}/v2/{path.lstrip('/')}"


def push_package(
    package_dir: Path,
    image: str | ImageReference,
    *,
    endpoint: str,
    ca_cert: Path | str,
    token: str | None = None,
    username: str | None = None,
    password: str | None = None,
    timeout: float = 120.0,
) -> PushResult:
    """Upload a package folder to a running sandbox's registry as `image`.

    Authenticates with the sandbox token (Bearer) or the registry's admin
    credentials (Basic). Raises BadInput for a bad folder, reference or a
    registry that does not exist; ServiceFailure for anything else the sandbox refuses.
    """
    reference = image if isinstance(image, ImageReference) else parse_push_reference(image)
    if reference.tag is None:
        raise BadInput(f"{reference}: a push needs a tag")
    folder = Path(package_dir)
    try:
        archive = pack_package(folder)
    except PackageError as exc:
        raise BadInput(f"cannot push {folder}: {exc}") from None
    url = data_plane_url(
        endpoint,
        reference.registry,
        f"{urllib.parse.quote(reference.repository)}/manifests/{urllib.parse.quote(reference.tag)}",
    )
    headers = {"Content-Type": PACKAGE_MEDIA_TYPE, **_auth_header(token, username, password)}
    request = urllib.request.Request(url, data=archive, method="PUT", headers=headers)
    context = ssl.create_default_context(cafile=str(ca_cert))
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            digest = response.headers.get("Docker-Content-Digest", "")
    except urllib.error.HTTPError as exc:
        raise _push_error(reference, exc) from None
    except (urllib.error.URLError, OSError) as exc:
        raise ServiceFailure(
            f"cannot reach the sandbox at {endpoint}: {getattr(exc, 'reason', exc)}",
            "Start it with `mlcache-deploy sandbox serve`.",
        ) from None
    if not digest.startswith("sha256:"):
        raise ServiceFailure("the sandbox registry answered without a content digest")
    return PushResult(reference, digest)


def _auth_header(token: str | None, username: str | None, password: str | None) -> dict[str, str]:
    if token:
        return {"Authorization": f"Bearer {token}"}
    if username and password:
        basic = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        return {"Authorization": f"Basic {basic}"}
    return {}


def _get_json(
    url: str, ca_cert: Path | str, headers: dict[str, str], timeout: float
) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, headers=headers)
    context = ssl.create_default_context(cafile=str(ca_cert))
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read() or b"{}")
        except ValueError:
            body = {}
        return exc.code, body if isinstance(body, dict) else {}
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ServiceFailure(
            f"cannot reach the sandbox registry: {getattr(exc, 'reason', exc)}",
            "Start the sandbox with `mlcache-deploy sandbox serve`.",
        ) from None


def _listing_error(registry: str, status: int, body: dict[str, object]) -> Exception:
    errors = body.get("errors")
    detail = ""
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        detail = f" ({errors[0].get('code')}: {errors[0].get('message')})"
    if status == 404:
        return BadInput(f"registry {registry} does not exist in the sandbox{detail}")
    if status == 401:
        return BadInput(f"the sandbox registry {registry} refused the credentials{detail}")
    return ServiceFailure(f"the sandbox registry {registry} answered HTTP {status}{detail}")


def list_repositories(
    registry: str,
    *,
    endpoint: str,
    ca_cert: Path | str,
    token: str | None = None,
    username: str | None = None,
    password: str | None = None,
    timeout: float = 30.0,
) -> list[str]:
    """Repositories of a sandbox registry (`GET /v2/_catalog` on its data plane)."""
    url = data_plane_url(endpoint, registry, "_catalog")
    status, body = _get_json(url, ca_cert, _auth_header(token, username, password), timeout)
    if status != 200:
        raise _listing_error(registry, status, body)
    repositories = body.get("repositories") or []
    return [str(r) for r in repositories] if isinstance(repositories, list) else []


def list_tags(
    registry: str,
    repository: str,
    *,
    endpoint: str,
    ca_cert: Path | str,
    token: str | None = None,
    username: str | None = None,
    password: str | None = None,
    timeout: float = 30.0,
) -> list[str]:
    """Tags of one repository (`GET /v2/<repo>/tags/list`); [] when the repository is unknown."""
    url = data_plane_url(endpoint, registry, f"{urllib.parse.quote(repository)}/tags/list")
    status, body = _get_json(url, ca_cert, _auth_header(token, username, password), timeout)
    # Both an unknown registry and an unknown repository are NAME_UNKNOWN; only the
    # repository case means "no tags yet".
    if status == 404 and _first_code(body) == "NAME_UNKNOWN" and "repository name" in str(body):
        return []
    if status != 200:
        raise _listing_error(registry, status, body)
    tags = body.get("tags") or []
    return [str(t) for t in tags] if isinstance(tags, list) else []


def _first_code(body: dict[str, object]) -> str:
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("code", ""))
    return ""


def _push_error(reference: ImageReference, exc: urllib.error.HTTPError) -> Exception:
    try:
        body = json.loads(exc.read().decode("utf-8") or "{}")
        errors = body.get("errors") or ([body["error"]] if "error" in body else [])
        detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
    except (ValueError, AttributeError, OSError):
        detail = ""
    detail = detail or f"HTTP {exc.code}"
    if exc.code == 404:
        return BadInput(
            f"registry {reference.registry} does not exist in the sandbox ({detail})",
            "Create the container registry first (the deploy does), then push again.",
        )
    if exc.code == 400:
        return BadInput(f"the sandbox registry refused {reference}: {detail}")
    if exc.code == 401:
        return BadInput(f"the sandbox registry refused the credentials ({detail})")
    return ServiceFailure(f"pushing {reference} failed: {detail}")
