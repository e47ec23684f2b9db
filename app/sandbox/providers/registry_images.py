"""OCI distribution on a registry's data plane: blob uploads, mounts, blobs, image manifests.

What azure-containerregistry 1.2 sends (`upload_blob`, `set_manifest`,
`get_manifest`, `download_blob`, the generated `check_blob_exists` and
`mount_blob`), answered as ACR answers it (azure-sdk-for-js recordings
`containerregistrycontentclient/recording_can_upload_oci_manifest_with_tag.json`):

    POST  /v2/<repo>/blobs/uploads/                  202 Location, Docker-Upload-UUID, Range 0-0
    POST  /v2/<repo>/blobs/uploads/?from=<r>&mount=<d>  201 when <d> is a blob of <r>, else 202
    PATCH <Location>  (a chunk)                      202 Location, Docker-Upload-UUID, Range 0-<n-1>
    PUT   <Location>&digest=<d>  (optional last chunk)  201 Location /v2/<repo>/blobs/<d>,
                                                     Docker-Content-Digest; 400 DIGEST_INVALID
    GET   <Location>                                 204 Range, Docker-Upload-UUID (status)
    DELETE <Location>                                204 (cancel)
    HEAD|GET /v2/<repo>/blobs/<d>                    200 (Range: 206 Content-Range);
                                                     404 BLOB_UNKNOWN
    PUT   /v2/<repo>/manifests/<tag|digest>  (OCI/Docker manifest, index or list)
                                                     201 Docker-Content-Digest, Location

Pushing needs `repository:<repo>:pull,push`, a mount also `repository:<from>:pull`,
reading `repository:<repo>:pull`. Unknown upload sessions are 404 BLOB_UPLOAD_UNKNOWN.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from app.sandbox.oci import (
    MANIFEST_MEDIA_TYPES,
    MAX_MANIFEST_BYTES,
    ImageError,
    ImageStore,
    StoredManifest,
    is_digest,
)
from app.sandbox.store import Record


class Gatekeeper(Protocol):
    """What the handlers ask of the data plane they serve (`RegistryDataPlane`)."""

    def authorise(self, request: Request, record: Record,
                  need: Any, legacy: bool) -> None: ...

    def check_repository_name(self, repository: str) -> None: ...

_API = {"Docker-Distribution-API-Version": "registry/2.0"}
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _state(repository: str, session: str, offset: int) -> str:
    """The opaque `_state` ACR puts in an upload's Location (base64 JSON, as it does)."""
    raw = json.dumps({"Name": repository, "UUID": session, "Offset": offset})
    return base64.urlsafe_b64encode(raw.encode()).decode()


class ImageHandlers:
    """The blob and image-manifest handlers of `RegistryDataPlane`."""

    def __init__(self, plane: Gatekeeper, images: ImageStore) -> None:
        self.plane = plane
        self.images = images

    # -- helpers -----------------------------------------------------------------

    @staticmethod
    def _prefix(record: Record, legacy: bool) -> str:
        from app.sandbox.providers import DATA_PLANE_ROOT

        name = record["body"]["name"].lower()
        return f"{DATA_PLANE_ROOT}registries/{name}/v2" if legacy else "/v2"

    def _upload_headers(
        self, record: Record, legacy: bool, repository: str, session: str, offset: int
    ) -> dict[str, str]:
        location = (
            f"{self._prefix(record, legacy)}/{repository}/blobs/uploads/{session}"
            f"?_nouploadcache=false&_state={_state(repository, session, offset)}"
        )
        return {
            **_API,
            "Location": location,
            "Docker-Upload-UUID": session,
            "Range": f"0-{max(offset - 1, 0)}",
            "Content-Length": "0",
        }

    def _push_need(self, repository: str) -> tuple[str, str, str]:
        return ("repository", repository, "pull,push")

    @staticmethod
    def _repository(request: Request) -> str:
        return str(request.path_params["repository"])

    async def _chunks(self, request: Request) -> AsyncIterator[bytes]:
        async for chunk in request.stream():
            if chunk:
                yield chunk

    async def _append(self, request: Request, upload: object) -> int:
        """Stream the request body into the session file, hashing as it goes; a thread
        writes so the event loop never blocks on the disk."""
        offset = 0
        batch: list[bytes] = []
        size = 0
        async for chunk in self._chunks(request):
            batch.append(chunk)
            size += len(chunk)
            if size >= 1 << 20:
                offset = await asyncio.to_thread(self.images.append, upload, batch)  # type: ignore[arg-type]
                batch, size = [], 0
        offset = await asyncio.to_thread(self.images.append, upload, batch)  # type: ignore[arg-type]
        return offset

    @staticmethod
    def _error(exc: ImageError) -> Exception:
        from app.sandbox.providers.registry_errors import DataPlaneError

        return DataPlaneError(exc.status, exc.code, exc.message, detail=exc.detail)

    # -- uploads -----------------------------------------------------------------

    async def start_upload(self, request: Request, record: Record, legacy: bool) -> Response:
        repository = self._repository(request)
        name = record["body"]["name"]
        source = request.query_params.get("from")
        mount = request.query_params.get("mount")
        needs = [self._push_need(repository)]
        if source and mount:
            needs.append(("repository", source, "pull"))
        self.plane.authorise(request, record, needs, legacy)
        self.plane.check_repository_name(repository)
        if (
            source
            and mount
            and is_digest(mount)
            and await asyncio.to_thread(self.images.mount, name, repository, source, mount)
        ):
            return Response(
                status_code=201,
                headers={
                    **_API,
                    "Location": f"{self._prefix(record, legacy)}/{repository}/blobs/{mount}",
                    "Docker-Content-Digest": mount,
                    "Content-Length": "0",
                },
            )
        session = await asyncio.to_thread(self.images.start_upload, name, repository)
        digest = request.query_params.get("digest")
        if digest:
            # A monolithic upload: POST with the whole blob and ?digest=.
            return await self._finish(request, record, legacy, repository, session, digest)
        return Response(
            status_code=202, headers=self._upload_headers(record, legacy, repository, session, 0)
        )

    async def patch_upload(self, request: Request, record: Record, legacy: bool) -> Response:
        repository = self._repository(request)
        self.plane.authorise(request, record, self._push_need(repository), legacy)
        session = str(request.path_params["session"])
        try:
            upload = self.images.upload(record["body"]["name"], repository, session)
            offset = await self._append(request, upload)
        except ImageError as exc:
            raise self._error(exc) from None
        return Response(
            status_code=202,
            headers=self._upload_headers(record, legacy, repository, session, offset),
        )

    async def put_upload(self, request: Request, record: Record, legacy: bool) -> Response:
        repository = self._repository(request)
        self.plane.authorise(request, record, self._push_need(repository), legacy)
        session = str(request.path_params["session"])
        digest = request.query_params.get("digest", "")
        return await self._finish(request, record, legacy, repository, session, digest)

    async def _finish(
        self, request: Request, record: Record, legacy: bool, repository: str, session: str,
        digest: str,
    ) -> Response:
        try:
            upload = self.images.upload(record["body"]["name"], repository, session)
            await self._append(request, upload)
            await asyncio.to_thread(self.images.finish_upload, upload, session, digest)
        except ImageError as exc:
            raise self._error(exc) from None
        return Response(
            status_code=201,
            headers={
                **_API,
                "Location": f"{self._prefix(record, legacy)}/{repository}/blobs/{digest}",
                "Docker-Content-Digest": digest,
                "Content-Length": "0",
            },
        )

    async def upload_status(self, request: Request, record: Record, legacy: bool) -> Response:
        repository = self._repository(request)
        self.plane.authorise(request, record, self._push_need(repository), legacy)
        session = str(request.path_params["session"])
        try:
            upload = self.images.upload(record["body"]["name"], repository, session)
        except ImageError as exc:
            raise self._error(exc) from None
        headers = self._upload_headers(record, legacy, repository, session, upload.offset)
        if request.method == "DELETE":
            self.images.cancel_upload(upload, session)
            return Response(status_code=204, headers=_API)
        return Response(status_code=204, headers=headers)

    # -- blobs -------------------------------------------------------------------

    async def get_blob(self, request: Request, record: Record, legacy: bool) -> Response:
        repository = self._repository(request)
        self.plane.authorise(request, record, ("repository", repository, "pull"), legacy)
        digest = str(request.path_params["digest"])
        name = record["body"]["name"]
        size = self.images.blob_size(name, repository, digest) if is_digest(digest) else None
        if size is None:
            if request.method == "HEAD":
                return Response(status_code=404, headers=_API)
            from app.sandbox.providers.registry_errors import DataPlaneError

            raise DataPlaneError(404, "BLOB_UNKNOWN", "blob unknown to registry", detail=digest)
        headers = {**_API, "Docker-Content-Digest": digest, "Accept-Ranges": "bytes",
                   "ETag": f'"{digest}"'}
        start, end, status = 0, size - 1, 200
        match = _RANGE.match(request.headers.get("range", "").strip())
        if match and size > 0:
            first, last = match.groups()
            if first:
                start = int(first)
                end = min(int(last), size - 1) if last else size - 1
            elif last:
                start, end = max(size - int(last), 0), size - 1
            if start > end or start >= size:
                return Response(
                    status_code=416, headers={**_API, "Content-Range": f"bytes */{size}"}
                )
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        headers["Content-Length"] = str(end - start + 1 if size else 0)
        if request.method == "HEAD":
            headers["Content-Length"] = str(size)
            return Response(status_code=200, headers=headers,
                            media_type="application/octet-stream")
        chunks: Iterator[bytes] = self.images.read_range(name, digest, start, end)
        return StreamingResponse(chunks, status_code=status, headers=headers,
                                 media_type="application/octet-stream")

    # -- manifests ---------------------------------------------------------------

    def find_manifest(
        self, record: Record, repository: str, reference: str
    ) -> StoredManifest | None:
        return self.images.resolve(record["body"]["name"], repository, reference)

    @staticmethod
    def manifest_response(request: Request, found: StoredManifest) -> Response:
        headers = {**_API, "Docker-Content-Digest": found.digest,
                   "Content-Length": str(len(found.body)), "ETag": f'"{found.digest}"'}
        if request.method == "HEAD":
            return Response(status_code=200, headers=headers, media_type=found.media_type)
        return Response(found.body, headers=headers, media_type=found.media_type)

    async def put_manifest(
        self, request: Request, record: Record, legacy: bool, media_type: str
    ) -> Response:
        """An image manifest (the data plane has checked the repository and reference)."""
        repository = self._repository(request)
        reference = str(request.path_params["reference"])
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_MANIFEST_BYTES:
            from app.sandbox.providers.registry_errors import DataPlaneError

            raise DataPlaneError(413, "SIZE_INVALID", "manifest larger than 4 MiB")
        body = await request.body()
        name = record["body"]["name"]
        try:
            digest = await asyncio.to_thread(
                self.images.put_manifest, name, repository, reference, body, media_type
            )
        except ImageError as exc:
            raise self._error(exc) from None
        return Response(
            status_code=201,
            headers={
                **_API,
                "Docker-Content-Digest": digest,
                "Location": f"{self._prefix(record, legacy)}/{repository}/manifests/{digest}",
                "Content-Length": "0",
            },
        )


def is_image_media_type(content_type: str) -> bool:
    return content_type in MANIFEST_MEDIA_TYPES
