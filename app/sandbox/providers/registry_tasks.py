"""ACR Tasks quick builds, as ContainerRegistryTasksMgmtClient calls them.

- `POST .../registries/{r}/listBuildSourceUploadUrl` -> `{"uploadUrl", "relativePath"}`:
  a blob SAS URL on the sandbox (`task_blobs`) to PUT the build context to, and
  the `source/<yyyymmddhhmm>/<guid>.tar.gz` path scheduleRun names it by.
- `POST .../registries/{r}/scheduleRun` with a `DockerBuildRequest` -> the `Run`
  (`runId` "ca1", "ca2", ..., status Queued); the build then runs in the
  background (`task_builds`): Queued -> Running -> Succeeded with `outputImages`,
  or Failed with `runErrorMessage`, timed by the latency profile's
  `registry.run.queue` / `registry.run.build`.
- `GET .../runs/{runId}`, `GET .../runs`, `POST .../runs/{runId}/listLogSasUrl`
  -> `{"logLink", "logArtifactLink"}`: the log blob, appended to as the run goes,
  given the metadata `Complete: <final status>` once it ends.
- A subscription on a free-trial offer is refused scheduleRun with 400
  `TasksOperationsNotAllowed`, the answer live Azure gives
  (Azure-Samples/azure-search-openai-demo#2592).

Runs live in their registry's record (they go with it); a run still going when
the sandbox stops starts over when it comes back, from its uploaded source.
"""

from __future__ import annotations

import datetime
import logging
import re
import threading
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.sandbox.arm import ArmError, arm_route, json_response, read_json
from app.sandbox.providers import Provider, SandboxContext
from app.sandbox.providers.registry import RTYPE, RegistryProvider
from app.sandbox.providers.task_blobs import BlobStore
from app.sandbox.providers.task_builds import (
    BuildFailed,
    BuildRequest,
    QuickBuild,
    elapsed_text,
)
from app.sandbox.store import Record

log = logging.getLogger("mlcache.sandbox.tasks")

RUN_TYPE = "Microsoft.ContainerRegistry/registries/runs"
_FINISHED = ("Succeeded", "Failed", "Canceled", "Error", "Timeout")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_IMAGE = re.compile(rf"^(?P<repository>{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>{_TAG}))?$")
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


def run_id_for(counter: int) -> str:
    """ACR's run ids: a two-letter prefix and a base-36 counter (ca1 ... ca9, caa, ...)."""
    digits = ""
    while counter:
        counter, rest = divmod(counter, 36)
        digits = _DIGITS[rest] + digits
    return "ca" + (digits or "0")


def log_blob(run_id: str) -> str:
    return f"logs/{run_id}/rawtext.log"


class RegistryTasksProvider(Provider):
    """scheduleRun and runs on every sandbox registry (see the module docstring)."""

    namespace = "Microsoft.ContainerRegistry"
    resource_types = (RUN_TYPE,)

    def __init__(self, ctx: SandboxContext) -> None:
        super().__init__(ctx)
        self.blobs = BlobStore(ctx.provider_dir(self.namespace) / "tasks")
        self._stop = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def routes(self) -> list[BaseRoute]:
        registry = (
            "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/"
            f"{RTYPE}/{{registryName}}"
        )
        run = registry + "/runs/{runId}"
        return [
            arm_route(registry + "/listBuildSourceUploadUrl", self.upload_url, ["POST"]),
            arm_route(registry + "/scheduleRun", self.schedule_run, ["POST"]),
            arm_route(registry + "/runs", self.list_runs, ["GET"]),
            arm_route(run, self.get_run, ["GET"]),
            arm_route(run + "/listLogSasUrl", self.log_sas_url, ["POST"]),
            *self.blobs.routes(),
        ]

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Runs cut short by a stop start over from their uploaded source."""
        self._stop.clear()
        for record in self.ctx.store.resources(RTYPE):
            for run in (record.get("private", {}).get("runs") or {}).values():
                if run["properties"]["status"] not in _FINISHED:
                    self._launch(record["body"]["name"], run["name"])

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(10)

    def on_registry_deleted(self, name: str) -> None:
        """The registry went: its uploads and logs go too."""
        self.blobs.delete_registry(name)

    def wait_run(self, registry: str, run_id: str, timeout: float = 60.0) -> None:
        """Block until the run's background work is over (tools and tests)."""
        with self._lock:
            thread = self._threads.get(f"{registry.lower()}/{run_id}")
        if thread is not None:
            thread.join(timeout)

    # -- helpers ---------------------------------------------------------------

    def _registry(self, request: Request) -> Record:
        record = self.lookup(request, RTYPE, "registryName")[1]
        state = record["body"]["properties"]["provisioningState"]
        if state != "Succeeded":
            raise ArmError(
                409,
                "RegistryNotReady",
                f"The registry '{record['body']['name']}' is {state.lower()}; retry when it "
                "has been provisioned.",
            )
        return record

    def _run(self, request: Request) -> tuple[Record, dict[str, Any]]:
        record = self.lookup(request, RTYPE, "registryName")[1]
        run_id = request.path_params["runId"]
        run = (record.get("private", {}).get("runs") or {}).get(run_id.lower())
        if run is None:
            raise ArmError(
                404,
                "ResourceNotFound",
                f"The resource with name '{run_id}' and type '{RUN_TYPE}' could not be found "
                f"in registry '{record['body']['name']}'.",
            )
        return record, run

    def _packages_provider(self) -> RegistryProvider:
        for provider in self.ctx.providers:
            if isinstance(provider, RegistryProvider):
                return provider
        raise RuntimeError("the registry provider is not loaded")

    # -- ARM -------------------------------------------------------------------

    async def upload_url(self, request: Request) -> Response:
        record = self._registry(request)
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d%H%M")
        relative = f"source/{stamp}/{uuid.uuid4()}.tar.gz"
        url = self.blobs.sas_url(self.ctx.endpoint, record["body"]["name"], relative, "cw")
        return json_response({"uploadUrl": url, "relativePath": relative})

    def _refuse_trial(self, record: Record) -> None:
        if self.ctx.offer.is_free_trial:
            raise ArmError(
                400,
                "TasksOperationsNotAllowed",
                f"ACR Tasks requests for the registry {record['body']['name']} and "
                f"{self.ctx.subscription_id} are not permitted. Please file an Azure support "
                "request at http://aka.ms/azuresupport for assistance.",
                target="request",
            )

    def _images(self, body: dict[str, Any], record: Record) -> list[tuple[str, str]]:
        names = body.get("imageNames") or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ArmError(400, "InvalidRequestContent", "'imageNames' must be a list of strings.")
        if body.get("isPushEnabled", True) and not names:
            raise ArmError(
                400,
                "InvalidParameter",
                "At least one image name is required when isPushEnabled is true.",
            )
        server = str(record["body"]["properties"].get("loginServer", "")).lower()
        alias = f"{record['body']['name'].lower()}.azurecr.io"
        images = []
        for name in names:
            host, sep, rest = name.partition("/")
            text = rest if sep and host.lower() in (server, alias) else name
            match = _IMAGE.match(text)
            if match is None:
                raise ArmError(
                    400,
                    "InvalidParameter",
                    f"The image name '{name}' is invalid: use <repository>[:<tag>] in lower "
                    "case.",
                )
            images.append((match["repository"], match["tag"] or "latest"))
        return images

    async def schedule_run(self, request: Request) -> Response:
        body = await read_json(request)
        record = self._registry(request)
        self._refuse_trial(record)
        kind = body.get("type")
        if kind != "DockerBuildRequest":
            raise ArmError(
                400,
                "InvalidRequestContent",
                f"The run request type '{kind}' is not supported by the sandbox; send a "
                "DockerBuildRequest (a quick build).",
            )
        for required in ("dockerFilePath", "platform"):
            if not body.get(required):
                raise ArmError(
                    400, "InvalidRequestContent", f"The '{required}' property is required."
                )
        platform = body["platform"] if isinstance(body["platform"], dict) else {}
        if str(platform.get("os", "")).lower() != "linux":
            raise ArmError(
                400,
                "InvalidParameter",
                f"The platform os '{platform.get('os')}' is not supported by the sandbox; "
                "it builds Linux images only.",
            )
        images = self._images(body, record)
        name = record["body"]["name"]
        with self.ctx.store.transaction() as store:
            current = store.resource(record["body"]["id"])
            assert current is not None
            private = current.setdefault("private", {})
            counter = int(private.get("runCounter", 0)) + 1
            private["runCounter"] = counter
            run_id = run_id_for(counter)
            now = _now()
            run = {
                "id": f"{record['body']['id']}/runs/{run_id}",
                "name": run_id,
                "type": RUN_TYPE,
                "properties": {
                    "runId": run_id,
                    "status": "Queued",
                    "lastUpdatedTime": now,
                    "runType": "QuickRun",
                    "createTime": now,
                    "outputImages": [],
                    "platform": {
                        "os": "Linux",
                        "architecture": platform.get("architecture") or "amd64",
                    },
                    "agentConfiguration": {"cpu": 2},
                    "isArchiveEnabled": bool(body.get("isArchiveEnabled", False)),
                    "provisioningState": "Succeeded",
                },
                "request": {
                    "sourceLocation": str(body.get("sourceLocation") or ""),
                    "dockerFilePath": str(body["dockerFilePath"]),
                    "images": [list(image) for image in images],
                    "push": bool(body.get("isPushEnabled", True)),
                },
            }
            private.setdefault("runs", {})[run_id] = run
            answer = _public(run)
        self._launch(name, run_id)
        return json_response(answer)

    async def list_runs(self, request: Request) -> Response:
        record = self.lookup(request, RTYPE, "registryName")[1]
        runs = (record.get("private", {}).get("runs") or {}).values()
        ordered = sorted(runs, key=lambda r: r["properties"]["createTime"], reverse=True)
        return json_response({"value": [_public(r) for r in ordered]})

    async def get_run(self, request: Request) -> Response:
        return json_response(_public(self._run(request)[1]))

    async def log_sas_url(self, request: Request) -> Response:
        record, run = self._run(request)
        name = record["body"]["name"]
        link = self.blobs.sas_url(self.ctx.endpoint, name, log_blob(run["name"]), "r", 24)
        return json_response({"logLink": link, "logArtifactLink": link})

    # -- the run ---------------------------------------------------------------

    def _launch(self, registry: str, run_id: str) -> None:
        key = f"{registry.lower()}/{run_id}"
        thread = threading.Thread(
            target=self._execute, args=(registry, run_id), name=f"run-{key}", daemon=True
        )
        with self._lock:
            if key in self._threads and self._threads[key].is_alive():
                return
            self._threads[key] = thread
        thread.start()

    def _update(self, registry: str, run_id: str, **changes: Any) -> dict[str, Any] | None:
        """Change the run's properties in the store; None when the registry is gone."""
        with self.ctx.store.transaction() as store:
            record = store.find_by_name(RTYPE, registry)
            if record is None:
                return None
            run = (record.get("private", {}).get("runs") or {}).get(run_id)
            if run is None:
                return None
            run["properties"].update(changes)
            run["properties"]["lastUpdatedTime"] = _now()
            return {**run, "loginServer": record["body"]["properties"].get("loginServer", "")}

    def _execute(self, registry: str, run_id: str) -> None:
        try:
            self._build(registry, run_id)
        except InterruptedError:
            log.info("run %s of %s stopped with the sandbox", run_id, registry)
        except Exception:
            log.exception("run %s of %s failed", run_id, registry)
            self._finish(registry, run_id, "Error", time.monotonic(), "internal error")

    def _build(self, registry: str, run_id: str) -> None:
        started = time.monotonic()
        blob = log_blob(run_id)
        if self._stop.wait(self.ctx.latency.seconds("registry.run.queue")):
            raise InterruptedError
        run = self._update(registry, run_id, status="Running", startTime=_now())
        if run is None:
            return
        asked = run["request"]
        source_path = asked["sourceLocation"].split("?", 1)[0].rsplit(
            f"/blobs/{registry.lower()}/", 1
        )[-1]
        source = (
            self.blobs.read(registry, source_path)
            if source_path.startswith("source/") and self.blobs.exists(registry, source_path)
            else None
        )
        build = QuickBuild(
            BuildRequest(
                registry=registry,
                login_server=str(run["loginServer"]),
                run_id=run_id,
                source=source,
                dockerfile=asked["dockerFilePath"],
                images=tuple((repo, tag) for repo, tag in asked["images"]),
                push=bool(asked["push"]),
            ),
            self._packages_provider().packages,
            lambda text: self.blobs.append(registry, blob, text),
            self._stop,
            self.ctx.latency.seconds("registry.run.build"),
        )
        try:
            built = build.run()
        except BuildFailed as exc:
            build.agent(f"Run ID: {run_id} failed after {elapsed_text(started)}. Error: {exc}")
            self._finish(registry, run_id, "Failed", started, str(exc))
            return
        build.output(f"Run ID: {run_id} was successful after {elapsed_text(started)}")
        self._finish(
            registry,
            run_id,
            "Succeeded",
            started,
            None,
            [
                {"registry": b.registry, "repository": b.repository, "tag": b.tag,
                 "digest": b.digest}
                for b in built
            ],
        )
        provider = self._packages_provider()
        for image in built:
            provider.image_pushed(registry, image.repository, image.tag)

    def _finish(
        self,
        registry: str,
        run_id: str,
        status: str,
        started: float,
        error: str | None,
        images: list[dict[str, str]] | None = None,
    ) -> None:
        changes: dict[str, Any] = {"status": status, "finishTime": _now()}
        if images is not None:
            changes["outputImages"] = images
        if error:
            changes["runErrorMessage"] = error
        if self._update(registry, run_id, **changes) is None:
            return
        blob = log_blob(run_id)
        if not self.blobs.exists(registry, blob):
            self.blobs.append(registry, blob, "")
        # What azure-cli's log streamer waits for: the blob marked complete, with the
        # run's final status as the value.
        self.blobs.set_metadata(registry, blob, {"Complete": status})


def _public(run: dict[str, Any]) -> dict[str, Any]:
    """The run as ARM shows it (without what the sandbox keeps for itself)."""
    return {key: value for key, value in run.items() if key not in ("request", "loginServer")}
