"""Tail the function app's log: what it printed, image pulls, starts, requests.

Reads the Kudu log file (`/api/vfs/LogFiles/...`) with `Range: bytes=N-`, so each
call returns only what is new since the last offset. The sandbox serves Kudu's
endpoints under its own endpoint with its token; on Azure the app's SCM site
accepts a Microsoft Entra token. Lines pass through redaction like every log.
"""

from __future__ import annotations

from typing import Any

from app.errors import ServiceFailure
from app.services.clients import ClientFactory
from app.services.redaction import redact
from app.services.target import CloudTarget
from app.spec import DeploymentSpec

MAX_BYTES = 256 * 1024


def _log_url(
    spec: DeploymentSpec, target: CloudTarget, session: Any, headers: dict[str, str]
) -> str:
    name = spec.function_app.name
    if target.is_sandbox:
        return f"{target.arm_endpoint}/dataplane/sites/{name}/api/vfs/LogFiles/site.log"
    # App Service on Linux writes the container's output to *_default_docker.log.
    base = f"https://{name}.scm.azurewebsites.net/api/vfs/LogFiles/"
    listing = session.get(base, headers=headers, timeout=30, verify=target.verify)
    if listing.status_code != 200:
        raise ServiceFailure(f"the log folder of {name} answered HTTP {listing.status_code}")
    logs = [
        item for item in listing.json()
        if str(item.get("name", "")).endswith("_default_docker.log")
    ]
    if not logs:
        raise ServiceFailure(f"{name} has no container log yet")
    newest = max(logs, key=lambda item: str(item.get("mtime", "")))
    return str(newest.get("href") or base + str(newest["name"]))


def tail(
    spec: DeploymentSpec, target: CloudTarget, clients: ClientFactory, since: int = 0
) -> tuple[list[str], int]:
    """Lines written after byte offset `since`, and the offset to ask from next time."""
    import requests

    token = target.credential.get_token(*target.credential_scopes).token
    headers = {"Authorization": f"Bearer {token}", "Range": f"bytes={max(0, since)}-"}
    with requests.Session() as session:
        url = _log_url(spec, target, session, {"Authorization": headers["Authorization"]})
        response = session.get(url, headers=headers, timeout=30, verify=target.verify)
    if response.status_code == 416:  # nothing new
        return [], since
    if response.status_code == 404:
        return [], since
    if response.status_code not in (200, 206):
        raise ServiceFailure(f"reading the function's log answered HTTP {response.status_code}")
    data = response.content[-MAX_BYTES:]
    # A 200 means the server ignored the range and sent the whole file.
    size = len(response.content)
    offset = since + size if response.status_code == 206 else size
    text = data.decode("utf-8", errors="replace")
    # Keep a partial last line for the next call.
    if text and not text.endswith("\n"):
        cut = text.rfind("\n") + 1
        offset -= len(text[cut:].encode("utf-8"))
        text = text[:cut]
    return [redact(line) for line in text.splitlines()], offset
