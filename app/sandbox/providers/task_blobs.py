"""The blob storage behind ACR Tasks: build-source uploads and run logs, by SAS URL.

ACR hands a quick build two blob SAS URLs in its own storage account: one to
PUT the gzipped build context (`listBuildSourceUploadUrl`), one to read the
run's log (`listLogSasUrl`), which the run appends to as it goes and marks
finished with the metadata `Complete` (azure-cli's log streamer reads it from
the blob's properties). The sandbox serves those blobs under
`/dataplane/blobs/<registry>/<blob path>` on its own endpoint, in Azure
Storage's shapes: a SAS query (`sv`, `se`, `sr`, `sp`, `sig`; a wrong signature,
an expired one or a missing permission is 403), `x-ms-blob-type: BlockBlob`
required on PUT, ranged GETs (`Range` / `x-ms-range`) answered 206, a range
starting past the end answered 416 `InvalidRange`, metadata as `x-ms-meta-*`
headers, errors as Storage's XML `<Error><Code>...`.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import threading
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.sandbox.providers import DATA_PLANE_ROOT

STORAGE_VERSION = "2021-08-06"
_MAX_UPLOAD = 512 * 1024 * 1024
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def _http_date(when: float) -> str:
    stamp = datetime.datetime.fromtimestamp(when, datetime.UTC)
    return stamp.strftime("%a, %d %b %Y %H:%M:%S GMT")


def _iso(when: datetime.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class StorageError(Exception):
    """An Azure Storage failure: status, error code and message, as its XML body."""

    def __init__(self, status: int, code: str, message: str, **headers: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers

    def response(self, head: bool = False) -> Response:
        now = datetime.datetime.now(datetime.UTC)
        text = (
            f"{self.message}\nRequestId:{uuid.uuid4()}\n"
            f"Time:{now.strftime('%Y-%m-%dT%H:%M:%S.%f')}0Z"
        )
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f"<Error><Code>{self.code}</Code><Message>{text}</Message></Error>"
        )
        headers = {"x-ms-error-code": self.code, "x-ms-version": STORAGE_VERSION, **self.headers}
        if head:
            return Response(status_code=self.status, headers=headers)
        return Response(body, self.status, headers, media_type="application/xml")


class BlobStore:
    """Blobs of every registry's task storage, on disk under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._key = self._load_key(root / "sas.key")
        self._lock = threading.Lock()

    @staticmethod
    def _load_key(path: Path) -> bytes:
        try:
            key = path.read_bytes()
            if len(key) >= 32:
                return key
        except OSError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        return key

    # -- paths and SAS ---------------------------------------------------------

    def _data(self, registry: str, blob: str) -> Path:
        path = (self.root / "data" / registry.lower() / blob).resolve()
        if not path.is_relative_to((self.root / "data").resolve()):
            raise StorageError(400, "InvalidUri", "The requested URI does not represent any "
                               "resource on the server.")
        return path

    def _meta(self, registry: str, blob: str) -> Path:
        return self.root / "meta" / registry.lower() / f"{blob}.json"

    def _signature(self, registry: str, blob: str, permissions: str, expiry: str) -> str:
        text = f"{permissions}\n{expiry}\n/{registry.lower()}/{blob}"
        mac = hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).digest()
        return base64.b64encode(mac).decode("ascii")

    def sas_url(
        self, endpoint: str, registry: str, blob: str, permissions: str, hours: float = 1.0
    ) -> str:
        """A blob SAS URL on the sandbox endpoint, valid for `hours`."""
        now = datetime.datetime.now(datetime.UTC)
        expiry = _iso(now + datetime.timedelta(hours=hours))
        query = urllib.parse.urlencode(
            {
                "sv": STORAGE_VERSION,
                "st": _iso(now - datetime.timedelta(minutes=5)),
                "se": expiry,
                "sr": "b",
                "sp": permissions,
                "spr": "https",
                "sig": self._signature(registry, blob, permissions, expiry),
            }
        )
        path = urllib.parse.quote(f"{DATA_PLANE_ROOT}blobs/{registry.lower()}/{blob}")
        return f"{endpoint.rstrip('/')}{path}?{query}"

    # -- content ---------------------------------------------------------------

    def exists(self, registry: str, blob: str) -> bool:
        return self._data(registry, blob).is_file()

    def read(self, registry: str, blob: str) -> bytes:
        return self._data(registry, blob).read_bytes()

    def write(self, registry: str, blob: str, data: bytes, blob_type: str = "BlockBlob",
              content_type: str = "application/octet-stream") -> Path:
        path = self._data(registry, blob)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        with self._lock:
            tmp.replace(path)
            self._write_meta(registry, blob, {"type": blob_type, "contentType": content_type,
                                              "metadata": {}})
        return path

    def append(self, registry: str, blob: str, text: str) -> None:
        """Append to an append blob (created empty first), as a run writes its log."""
        path = self._data(registry, blob)
        with self._lock:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                self._write_meta(registry, blob, {"type": "AppendBlob",
                                                  "contentType": "text/plain; charset=utf-8",
                                                  "metadata": {}})
            with path.open("ab") as handle:
                handle.write(text.encode("utf-8"))

    def set_metadata(self, registry: str, blob: str, metadata: dict[str, str]) -> None:
        with self._lock:
            meta = self._read_meta(registry, blob)
            meta["metadata"] = dict(metadata)
            self._write_meta(registry, blob, meta)

    def metadata(self, registry: str, blob: str) -> dict[str, str]:
        with self._lock:
            return dict(self._read_meta(registry, blob).get("metadata") or {})

    def _read_meta(self, registry: str, blob: str) -> dict[str, Any]:
        try:
            data = json.loads(self._meta(registry, blob).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"type": "BlockBlob", "contentType": "application/octet-stream",
                    "metadata": {}}
        return data if isinstance(data, dict) else {}

    def _write_meta(self, registry: str, blob: str, meta: dict[str, Any]) -> None:
        path = self._meta(registry, blob)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(meta), encoding="utf-8")

    def delete_registry(self, registry: str) -> None:
        for part in ("data", "meta"):
            shutil.rmtree(self.root / part / registry.lower(), ignore_errors=True)

    # -- HTTP ------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route(
                DATA_PLANE_ROOT + "blobs/{registry}/{blob:path}",
                self.handle,
                methods=["GET", "HEAD", "PUT"],
            )
        ]

    def _authorise(self, request: Request, registry: str, blob: str, needed: str) -> None:
        query = request.query_params
        signature = query.get("sig", "")
        permissions = query.get("sp", "")
        expiry = query.get("se", "")
        denied = StorageError(
            403,
            "AuthenticationFailed",
            "Server failed to authenticate the request. Make sure the value of Authorization "
            "header is formed correctly including the signature.",
        )
        expected = self._signature(registry, blob, permissions, expiry)
        if not signature or not hmac.compare_digest(signature.encode(), expected.encode()):
            raise denied
        try:
            until = datetime.datetime.strptime(expiry, "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=datetime.UTC
            )
        except ValueError:
            raise denied from None
        if until < datetime.datetime.now(datetime.UTC):
            raise denied
        if not any(p in permissions for p in needed):
            raise StorageError(
                403,
                "AuthorizationPermissionMismatch",
                "This request is not authorized to perform this operation using this "
                "permission.",
            )

    async def handle(self, request: Request) -> Response:
        registry = request.path_params["registry"]
        blob = request.path_params["blob"]
        head = request.method == "HEAD"
        try:
            if request.method == "PUT":
                self._authorise(request, registry, blob, "cw")
                return await self._put(request, registry, blob)
            self._authorise(request, registry, blob, "r")
            return self._get(request, registry, blob, head)
        except StorageError as exc:
            return exc.response(head)

    async def _put(self, request: Request, registry: str, blob: str) -> Response:
        blob_type = request.headers.get("x-ms-blob-type")
        if blob_type is None:
            raise StorageError(
                400,
                "MissingRequiredHeader",
                "An HTTP header that's mandatory for this request is not specified.",
            )
        if blob_type != "BlockBlob":
            raise StorageError(
                400, "InvalidHeaderValue",
                "The value for one of the HTTP headers is not in the correct format.",
            )
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > _MAX_UPLOAD:
            raise StorageError(
                413, "RequestBodyTooLarge", "The request body is too large and exceeds the "
                "maximum permissible limit.",
            )
        data = await request.body()
        content_type = request.headers.get("content-type", "application/octet-stream")
        path = self.write(registry, blob, data, content_type=content_type)
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        return Response(
            status_code=201,
            headers={
                "ETag": self._etag(path),
                "Last-Modified": _http_date(path.stat().st_mtime),
                "Content-MD5": md5,
                "x-ms-request-server-encrypted": "true",
                "x-ms-version": STORAGE_VERSION,
            },
        )

    @staticmethod
    def _etag(path: Path) -> str:
        return f'"0x{path.stat().st_mtime_ns:X}"'

    def _get(self, request: Request, registry: str, blob: str, head: bool) -> Response:
        path = self._data(registry, blob)
        if not path.is_file():
            raise StorageError(404, "BlobNotFound", "The specified blob does not exist.")
        with self._lock:
            meta = self._read_meta(registry, blob)
            data = path.read_bytes()
        size = len(data)
        status = 200
        headers = {
            "Accept-Ranges": "bytes",
            "ETag": self._etag(path),
            "Last-Modified": _http_date(path.stat().st_mtime),
            "x-ms-blob-type": str(meta.get("type", "BlockBlob")),
            "x-ms-version": STORAGE_VERSION,
            "x-ms-server-encrypted": "true",
        }
        wanted = request.headers.get("x-ms-range") or request.headers.get("range")
        if wanted and not head:
            match = _RANGE.match(wanted.strip())
            if match is None:
                raise StorageError(
                    400, "InvalidHeaderValue",
                    "The value for one of the HTTP headers is not in the correct format.",
                )
            start = int(match.group(1))
            end = int(match.group(2)) if match.group(2) else size - 1
            if start >= size or end < start:
                raise StorageError(
                    416,
                    "InvalidRange",
                    "The range specified is invalid for the current size of the resource.",
                    **{"Content-Range": f"bytes */{size}"},
                )
            end = min(end, size - 1)
            data = data[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            status = 206
        for key, value in (meta.get("metadata") or {}).items():
            headers[f"x-ms-meta-{key}"] = str(value)
        headers["Content-Length"] = str(len(data))
        media = str(meta.get("contentType") or "application/octet-stream")
        if head:
            return Response(status_code=200, headers=headers, media_type=media)
        return Response(data, status, headers, media_type=media)
