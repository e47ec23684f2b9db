"""Build the package's image with an ACR Tasks quick build, as `az acr build` does.

Ask the registry for a build-source upload URL, PUT the gzipped context there (a
blob SAS URL), schedule a DockerBuildRequest run, then follow the run's log blob
until its `Complete` metadata appears: Azure Storage answers a range beyond the
end with 416, so the readable length comes from the blob's properties (HEAD), as
azure-cli's `_stream_utils` reads it. The run's status is the SDK's `RunStatus`
enum, read by value. Hosts come from ARM's answers; the polls from the target.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import ServiceFailure
from app.folders import folder_files, pack_folder
from app.services.arm import enum_text
from app.services.clients import ClientFactory
from app.services.transport import retrying_session

FINISHED = frozenset({"Succeeded", "Failed", "Canceled", "Error", "Timeout"})
# After the run has finished, the log blob is read this many more times while its
# Complete metadata is missing, then given up on (the run's status is what counts).
_LOG_GRACE_POLLS = 5


@dataclass(frozen=True)
class CloudBuildResult:
    image: str  # <login server>/<repository>:<tag>
    digest: str | None
    run_id: str


def context_archive(package_dir: Path) -> bytes:
    """The Docker build context as a reproducible tar.gz (what ACR Tasks uploads)."""
    return pack_folder(folder_files(package_dir))


def run_status(run: Any) -> str:
    """An ACR Tasks run's status as its wire value ("Succeeded").

    The SDK gives a `RunStatus` enum, whose `str()` is "RunStatus.SUCCEEDED":
    compare its value, never its text.
    """
    return enum_text(run.properties.status if run.properties else None)


class LogBlob:
    """An append blob read as it grows: properties first, then only the bytes there are."""

    def __init__(self, session: Any, url: str, verify: str | bool) -> None:
        self.session = session
        self.url = url
        self.verify = verify
        self.offset = 0
        self.pending = ""
        self.complete = ""  # the Complete metadata's value (the run's status), once set

    def read(self, line: Callable[[str], None]) -> None:
        head = self.session.head(self.url, timeout=30, verify=self.verify)
        if head.status_code == 404:
            return  # the run has not written its log yet
        if head.status_code != 200:
            raise ServiceFailure(f"reading the build log failed: HTTP {head.status_code}")
        available = int(head.headers.get("Content-Length") or 0)
        self.complete = next((v for k, v in head.headers.items()
                              if k.lower() == "x-ms-meta-complete"), "")
        if self.offset < available:
            answer = self.session.get(
                self.url, headers={"Range": f"bytes={self.offset}-{available - 1}"},
                timeout=60, verify=self.verify)
            if answer.status_code in (200, 206):
                self.offset += len(answer.content)
                self.pending += answer.content.decode("utf-8", errors="replace")
                *lines, self.pending = self.pending.split("\n")
                for text in lines:
                    line(text.rstrip("\r"))

    def flush(self, line: Callable[[str], None]) -> None:
        if self.pending:
            line(self.pending.rstrip("\r"))
            self.pending = ""


def build_image_in_acr(
    *,
    clients: ClientFactory,
    resource_group: str,
    registry_name: str,
    login_server: str,
    package_dir: Path,
    repository: str,
    tag: str,
    log_line: Callable[[str], None],
    check_cancelled: Callable[[], None] = lambda: None,
    timeout_seconds: int = 3600,
) -> CloudBuildResult:
    """Build and push the package's image with ACR Tasks, streaming its log to `log_line`."""
    from azure.mgmt.containerregistrytasks.models import DockerBuildRequest, PlatformProperties

    target = clients.target
    client = clients.registry_tasks()
    upload = client.registries.get_build_source_upload_url(resource_group, registry_name)
    if not upload.upload_url or not upload.relative_path:
        raise ServiceFailure("ACR returned no build-source upload location")
    archive = context_archive(package_dir)
    log_line(f"Uploading build context ({len(archive) // 1024} KiB)")
    # The upload is a blob PUT (sending it again replaces the blob) and the log reads
    # are HEAD/GET: all of them may be retried on a 503 or a dropped connection.
    with retrying_session(target) as session:
        put = session.put(
            upload.upload_url, data=archive, timeout=300, verify=target.verify,
            headers={"x-ms-blob-type": "BlockBlob", "Content-Type": "application/gzip"},
        )
        if put.status_code not in (200, 201):
            raise ServiceFailure(f"uploading the build context failed: HTTP {put.status_code}")
        image = f"{repository}:{tag}"
        run = client.registries.schedule_run(
            resource_group, registry_name,
            DockerBuildRequest(
                source_location=upload.relative_path, docker_file_path="Dockerfile",
                image_names=[image], is_push_enabled=True,
                platform=PlatformProperties(os="Linux", architecture="amd64"),
                timeout=timeout_seconds,
            ),
        )
        run_id = (run.properties.run_id if run.properties else None) or run.name
        if not run_id:
            raise ServiceFailure("ACR accepted the build but returned no run id")
        log_line(f"Queued ACR Tasks run {run_id}")
        links = client.runs.get_log_sas_url(resource_group, registry_name, run_id)
        log_url = links.log_link or links.log_artifact_link
        blob = LogBlob(session, log_url, target.verify) if log_url else None
        status, after_finish = "Queued", 0
        deadline = time.monotonic() + timeout_seconds + 300
        while True:
            check_cancelled()
            if blob is not None:
                blob.read(log_line)
            current = client.runs.get(resource_group, registry_name, run_id)
            status = run_status(current) or status
            if status in FINISHED:
                after_finish += 1
                if blob is None or blob.complete or after_finish > _LOG_GRACE_POLLS:
                    break
            if time.monotonic() > deadline:
                raise ServiceFailure(
                    f"ACR Tasks run {run_id} did not finish in time (last: {status})")
            time.sleep(target.polling_interval)
        if blob is not None:
            blob.read(log_line)
            blob.flush(log_line)
    if status != "Succeeded":
        message = current.properties.run_error_message if current.properties else None
        raise ServiceFailure(
            f"ACR Tasks run {run_id} ended {status}" + (f": {message}" if message else ""),
            "Read the build log above; a failing `pip install` is the usual cause.",
        )
    digest = None
    for output in (current.properties.output_images if current.properties else None) or []:
        if output.repository == repository and output.digest:
            digest = output.digest
    log_line(f"Built {login_server}/{image}" + (f"@{digest}" if digest else ""))
    return CloudBuildResult(image=f"{login_server}/{image}", digest=digest, run_id=run_id)
