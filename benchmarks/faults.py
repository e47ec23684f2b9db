"""Does a deployment survive Azure's transient faults, and does a re-run repair the rest?

A script, not a timed test. Each fault file of a fixed set runs in a sandbox of its
own (`mlcache-deploy sandbox serve --faults FILE`, its own state dir), through what a
person runs: `deploy`, `deploy` again (the re-run), `test`, the function's log tail
(`logstream.tail`, what the wizard's log pane reads: the CLI has no log command, and
it is the only caller of Kudu), then `cleanup`. Two faults run at a time. Afterwards
it looks for redis-server and function host processes still running from any of the
sandboxes (all of which have stopped by then). Prints one `name=value` per figure,
then a table with one row per fault.

    .venv/bin/python benchmarks/faults.py [--parallel 2] [--only NAME ...]

A transient fault (throttling, 5xx, a dropped connection) must be survived by the
first run; a `fail_provisioning` fault fails the first run by design and must be
repaired by the re-run. `fired` counts the fault answers and drops the sandbox's
request log shows (a `fail_provisioning` rule answers 2xx, so it shows as "-").
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.paths import resources_dir  # noqa: E402

SAMPLE = resources_dir() / "sample-model"
CLI_TIMEOUT_S = 300


def provisioning(kind_path: str) -> list[dict[str, Any]]:
    return [{"method": "PUT", "path": kind_path, "count": 1, "fail_provisioning": True,
             "code": "InjectedProvisioningFailure",
             "message": "The resource could not be provisioned (injected fault)."}]


@dataclass(frozen=True)
class Fault:
    name: str
    rules: list[dict[str, Any]]
    transient: bool = True
    # The spec names an image already in a registry (so the deploy asks the
    # registry's loginServer for it) instead of building one.
    by_reference: bool = False


FAULTS: list[Fault] = [
    Fault("arm-429-retry-after", [
        {"method": "PUT", "path": "/resourcegroups/[^/]+$", "count": 1, "status": 429,
         "retry_after": 1},
        {"method": "PUT", "path": "/storageAccounts/[^/]+$", "count": 2, "status": 429,
         "retry_after": 1},
        {"method": "POST", "path": "/redis/[^/]+/listKeys$", "count": 1, "status": 429,
         "retry_after": 1},
    ]),
    Fault("arm-5xx", [
        {"method": "PUT", "path": "/serverfarms/[^/]+$", "count": 2, "status": 503},
        {"method": "POST", "path": "/listCredentials$", "count": 1, "status": 500},
        {"method": "GET", "path": "/providers/Microsoft.Web/sites/[^/]+$", "count": 1,
         "status": 502},
        {"method": "PUT", "path": "/config/appsettings$", "count": 1, "status": 504},
    ]),
    Fault("arm-drop", [
        {"method": "GET", "path": "/asyncOperations/", "count": 1, "drop": True},
        {"method": "PUT", "path": "/providers/Microsoft.Web/sites/[^/]+$", "count": 1,
         "drop": True},
        {"method": "POST", "path": "/scheduleRun$", "count": 1, "drop": True},
        {"method": "GET", "path": "/resourcegroups/[^/]+$", "count": 1, "drop": True},
    ]),
    Fault("build-blob-503", [
        {"method": "PUT", "path": "^/dataplane/blobs/", "count": 1, "status": 503,
         "retry_after": 1},
        {"method": "HEAD", "path": "^/dataplane/blobs/", "count": 2, "status": 503,
         "retry_after": 1},
    ]),
    Fault("build-blob-drop", [
        {"method": "PUT", "path": "^/dataplane/blobs/", "count": 1, "drop": True},
        {"method": "GET", "path": "^/dataplane/blobs/", "count": 1, "drop": True},
    ]),
    Fault("registry-loginserver-503", [
        {"method": "HEAD", "path": "^/v2/.+/manifests/", "count": 2, "status": 503,
         "retry_after": 1},
    ], by_reference=True),
    Fault("registry-loginserver-drop", [
        {"method": "HEAD", "path": "^/v2/.+/manifests/", "count": 2, "drop": True},
    ], by_reference=True),
    Fault("kudu-503", [
        {"method": "GET", "path": "^/api/vfs/LogFiles/$", "count": 2, "status": 503,
         "retry_after": 1},
    ]),
    Fault("kudu-drop", [
        {"method": "GET", "path": "^/api/vfs/LogFiles/", "count": 2, "drop": True},
    ]),
    Fault("test-and-cleanup-faults", [
        {"method": "POST", "path": "/host/default/listkeys$", "count": 2, "status": 400,
         "code": "BadRequest",
         "message": "Encountered an error (InternalServerError) from host runtime."},
        {"method": "DELETE", "path": "/resourcegroups/[^/]+$", "count": 2, "status": 503,
         "retry_after": 1},
    ]),
    Fault("provisioning-storage", provisioning("/storageAccounts/[^/]+$"), transient=False),
    Fault("provisioning-plan", provisioning("/serverfarms/[^/]+$"), transient=False),
    Fault("provisioning-site", provisioning("/providers/Microsoft.Web/sites/[^/]+$"),
          transient=False),
    Fault("provisioning-registry", provisioning("/registries/[^/]+$"), transient=False),
    Fault("provisioning-redis", provisioning("/providers/Microsoft.Cache/redis/[^/]+$"),
          transient=False),
]


@dataclass
class Outcome:
    fault: Fault
    phases: dict[str, bool] = field(default_factory=dict)
    fired: int | None = None
    seconds: float = 0.0
    detail: str = ""

    @property
    def first_run(self) -> bool:
        return all(self.phases.get(p, False) for p in ("deploy", "test", "logs", "cleanup"))

    @property
    def rerun(self) -> bool:
        return all(self.phases.get(p, False) for p in ("re-run", "test", "logs", "cleanup"))


def spec_for(folder: Path, tag: str, reference: str | None = None) -> dict[str, Any]:
    image: dict[str, Any] = {"reference": reference} if reference else {
        "build_from": str(SAMPLE), "registry": f"acrf{tag}", "repository": "digits-scoring",
        "tag": "v1"}
    return {
        "version": 1, "target": "sandbox", "location": "westeurope",
        "resource_group": {"name": f"rg-faults-{tag}", "create": True},
        "cache": {"kind": "azure-cache-for-redis", "name": f"cache-f-{tag}", "tier": "Basic",
                  "size": "C0"},
        "tags": {"bench": "faults"},
        "image": image,
        "function_app": {"name": f"func-f-{tag}", "plan_name": f"plan-f-{tag}",
                         "plan_sku": "B1", "storage_account": f"stf{tag}"},
    }


def cli(state: Path, data: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_DATA_HOME": str(data)}
    return subprocess.run(
        [sys.executable, "-m", "app", *argv, "--sandbox-state", str(state)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)


def last_words(done: subprocess.CompletedProcess[str]) -> str:
    """The line that says why a command failed (a failed step's, else the last one)."""
    text = [line.strip() for line in (done.stdout + "\n" + done.stderr).splitlines()
            if line.strip() and not line.startswith("Log: ")]
    failed = [line for line in text if " FAILED " in f" {line} " or "error" in line.lower()]
    chosen = (failed or text or [f"exit {done.returncode}"])[-1]
    return " ".join(chosen.split())[:140]


def tail_log(state: Path, spec_path: Path) -> None:
    """The product's own log tail (Kudu) against the running sandbox."""
    from app.connect import sandbox_target
    from app.services import logstream
    from app.services.clients import ClientFactory
    from app.spec import load_spec

    target = sandbox_target(state, start=False)
    clients = ClientFactory(target)
    try:
        logstream.tail(load_spec(spec_path), target, clients)
    finally:
        clients.close()


def count_fired(state: Path, rules: list[dict[str, Any]]) -> int | None:
    """Fault answers and drops in the request log (None: only provisioning faults)."""
    answering = [r for r in rules if not r.get("fail_provisioning")]
    if not answering:
        return None
    log = state / "requests.log"
    lines = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    fired = 0
    for rule in answering:
        pattern = re.compile(rule["path"], re.IGNORECASE)
        wanted = None if rule.get("drop") else rule["status"]
        hits = [ln for ln in lines if ln["method"] == rule["method"]
                and pattern.search(ln["path"]) and ln["status"] == wanted]
        fired += min(len(hits), rule.get("count", len(hits)))
    return fired


def run_fault(fault: Fault, work: Path) -> Outcome:
    from app.sandbox.api import SandboxProcess

    started = time.monotonic()
    outcome = Outcome(fault)
    folder = work / fault.name
    state, data = folder / "state", folder / "data"
    folder.mkdir(parents=True)
    faults_file = folder / "faults.json"
    faults_file.write_text(json.dumps({"rules": fault.rules}, indent=1))
    tag = uuid.uuid4().hex[:8]
    spec_path = folder / "spec.json"
    spec = spec_for(folder, tag)
    spec_path.write_text(json.dumps(spec, indent=1))
    with SandboxProcess.start(state, faults=faults_file):
        if fault.by_reference:
            # The image is built first (its rules match nothing a build asks), then the
            # same deployment is pointed at it by reference.
            built = cli(state, data, "deploy", str(spec_path))
            if built.returncode != 0:
                outcome.detail = f"setup build: {last_words(built)}"
                return outcome
            reference = f"acrf{tag}.azurecr.io/digits-scoring:v1"
            spec_path.write_text(json.dumps(spec_for(folder, tag, reference), indent=1))
        group = spec["resource_group"]["name"]
        notes = []
        for phase, argv in (("deploy", ["deploy", str(spec_path)]),
                            ("re-run", ["deploy", str(spec_path)]),
                            ("test", ["test", str(spec_path), "--payload",
                                      str(SAMPLE / "sample-request.json")])):
            done = cli(state, data, *argv)
            outcome.phases[phase] = done.returncode == 0
            if done.returncode != 0:
                notes.append(f"{phase}: {last_words(done)}")
        try:
            tail_log(state, spec_path)
            outcome.phases["logs"] = True
        except Exception as exc:
            outcome.phases["logs"] = False
            notes.append(f"logs: {type(exc).__name__}: {exc}"[:160])
        done = cli(state, data, "cleanup", str(spec_path), "--confirm", group)
        outcome.phases["cleanup"] = done.returncode == 0
        if done.returncode != 0:
            notes.append(f"cleanup: {last_words(done)}")
        outcome.detail = "; ".join(notes)
    outcome.fired = count_fired(state, fault.rules)
    outcome.seconds = time.monotonic() - started
    return outcome


def leftover_processes(work: Path) -> list[str]:
    """redis-server and function host processes whose command line or working folder
    is under `work` (every sandbox here kept its state there)."""
    root = str(work.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if root in cmdline or cwd.startswith(root):
            found.append(f"{entry.name}: {cmdline[:120]}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", type=int, default=2, help="faults run at once")
    parser.add_argument("--only", nargs="*", help="names of the faults to run")
    args = parser.parse_args()
    chosen = [f for f in FAULTS if not args.only or f.name in args.only]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlcache-faults-") as tmp:
        work = Path(tmp)
        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            outcomes = list(pool.map(lambda f: run_fault(f, work), chosen))
        leftovers = leftover_processes(work)
    wall = time.monotonic() - started
    transient = [o for o in outcomes if o.fault.transient]
    print(f"faults_tried={len(outcomes)}")
    print(f"transient_faults={len(transient)}")
    print(f"survived_first_run={sum(o.first_run for o in outcomes)}")
    print(f"transient_survived_first_run={sum(o.first_run for o in transient)}")
    print(f"survived_rerun={sum(o.rerun for o in outcomes)}")
    print(f"leftover_processes={len(leftovers)}")
    print(f"wall_s={wall:.1f}")
    print()
    print("| fault | kind | fired | deploy | re-run | test | logs | cleanup | s | notes |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for o in outcomes:
        marks = ["ok" if o.phases.get(p) else "FAIL" if p in o.phases else "-"
                 for p in ("deploy", "re-run", "test", "logs", "cleanup")]
        kind = "transient" if o.fault.transient else "provisioning"
        fired = "-" if o.fired is None else str(o.fired)
        print(f"| {o.fault.name} | {kind} | {fired} | {' | '.join(marks)} | "
              f"{o.seconds:.0f} | {o.detail} |")
    for line in leftovers:
        print(f"leftover: {line}")
    ok = (all(o.first_run for o in transient) and all(o.rerun for o in outcomes)
          and not leftovers)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
