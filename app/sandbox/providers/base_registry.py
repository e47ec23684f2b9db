"""The public base-image registry stand-in: Microsoft Container Registry's role.

An anonymous, read-only HTTPS registry on a 127.0.0.1 port of its own (certificate
from the sandbox CA, the request log and the faults file's rules as on every
registry host), serving the stand-in images of `app.sandbox.base_images`:

    GET /v2/                                        200 {}
    GET|HEAD /v2/azure-functions/python/manifests/<tag|digest>
    GET|HEAD /v2/azure-functions/python/blobs/<digest>

No credentials are asked for, as mcr.microsoft.com lets anyone pull. Its host
(`127.0.0.1:<port>`) is `base_registry` in connection.json; the port is kept
across restarts while it is free. ARM's importImage takes this host, or
`mcr.microsoft.com` as an alias for it, as a source registryUri.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.sandbox.base_images import find_blob, find_manifest
from app.sandbox.oci import DOCKER_MANIFEST
from app.sandbox.ports import free_port, port_free
from app.sandbox.providers import SandboxContext
from app.sandbox.providers.registry_hosts import RegistryHosts

log = logging.getLogger("mlcache.sandbox.registry")

HOST_NAME = "base-registry"
_API = {"Docker-Distribution-API-Version": "registry/2.0"}


def _error(status: int, code: str, message: str, detail: object = None) -> Response:
    return JSONResponse(
        {"errors": [{"code": code, "message": message, "detail": detail}]},
        status_code=status,
        headers=_API,
    )


async def _base(request: Request) -> Response:
    return JSONResponse({}, headers=_API)


async def _manifest(request: Request) -> Response:
    repository = str(request.path_params["repository"])
    reference = str(request.path_params["reference"])
    image = find_manifest(repository, reference)
    if image is None:
        return _error(
            404, "MANIFEST_UNKNOWN", "manifest unknown",
            {"Name": repository,
             "Revision" if reference.startswith("sha256:") else "Tag": reference},
        )
    headers = {**_API, "Docker-Content-Digest": image.digest,
               "Content-Length": str(len(image.manifest)), "ETag": f'"{image.digest}"'}
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers, media_type=DOCKER_MANIFEST)
    return Response(image.manifest, headers=headers, media_type=DOCKER_MANIFEST)


async def _blob(request: Request) -> Response:
    repository = str(request.path_params["repository"])
    digest = str(request.path_params["digest"])
    data = find_blob(repository, digest)
    if data is None:
        return _error(404, "BLOB_UNKNOWN", "blob unknown to registry", digest)
    headers = {**_API, "Docker-Content-Digest": digest, "Content-Length": str(len(data))}
    body = b"" if request.method == "HEAD" else data
    return Response(body, headers=headers, media_type="application/octet-stream")


def base_registry_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/v2/", _base, methods=["GET"]),
            Route("/v2/{repository:path}/manifests/{reference}", _manifest,
                  methods=["GET", "HEAD"]),
            Route("/v2/{repository:path}/blobs/{digest}", _blob, methods=["GET", "HEAD"]),
        ]
    )


class BaseRegistry:
    """Starts and stops the stand-in's listener; `host` is `127.0.0.1:<port>` once running."""

    def __init__(self, ctx: SandboxContext, root: Path, hosts: RegistryHosts) -> None:
        self._ctx = ctx
        self._state = root / "base-registry.json"
        self._hosts = hosts
        self.host = ""

    def start(self) -> None:
        port: object = None
        try:
            port = json.loads(self._state.read_text(encoding="utf-8")).get("port")
        except (OSError, ValueError, AttributeError):
            port = None
        for _attempt in range(5):
            if not isinstance(port, int) or not port_free(port, reuse_address=True):
                port = free_port()
            try:
                self._hosts.start(HOST_NAME, port, base_registry_app())
            except OSError:
                port = None
                continue
            break
        else:
            log.error("the base registry stand-in found no port to listen on")
            return
        self._state.parent.mkdir(parents=True, exist_ok=True)
        self._state.write_text(json.dumps({"port": port}), encoding="utf-8")
        self.host = f"127.0.0.1:{port}"

    def stop(self) -> None:
        self._hosts.stop(HOST_NAME)
        self.host = ""
