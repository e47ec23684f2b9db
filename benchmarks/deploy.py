"""Deploy wall time against the critical path: does parallelism pay off?

Starts its own sandbox with `--latency realistic-scaled` (redis create 20 s,
storage 4 s, plan 2 s, site 6 s, settings 1 s, ...), deploys the sample model
with the real engine (the same runner and steps as `mlcache-deploy deploy`),
deletes everything again and prints `name=value` lines:

    deploy_wall_s    the deployment's wall-clock time, start to the function answering
    critical_path_s  the profile's nominal durations summed along the longest
                     dependency chain of the plan (cache create + app settings)
    sequential_s     the step durations measured in this run, summed: what running
                     them one after another would take
    ratio            deploy_wall_s / critical_path_s (goal: at most 1.10)
    keyed_deploy_wall_s  the same deploy the way earlier versions made it: Azure Cache
                     for Redis Standard C1 with its access key, the registry's admin
                     password and the storage key in the function's settings

The default deployment (what the figures above measure) is keyless Azure Managed
Redis: the spec names only the cache. `--variant keyless|keyed|both` picks.

Usage: .venv/bin/python benchmarks/deploy.py [--latency realistic-scaled] [--runs N]
       [--variant both]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.connect import sandbox_target  # noqa: E402
from app.sandbox import Sandbox  # noqa: E402
from app.sandbox.latency import resolve_latency  # noqa: E402
from app.services.cleanup import delete_group  # noqa: E402
from app.services.clients import ClientFactory  # noqa: E402
from app.services.deploy import plan_deployment, run_deployment  # noqa: E402
from app.services.plan import build_plan  # noqa: E402
from app.services.runner import Step, critical_path  # noqa: E402
from app.spec import spec_from_dict  # noqa: E402

# Which latency-profile entry each step waits for in the sandbox.
STEP_LATENCY = {
    "cache": "redis.create",
    "cache-cluster": "redis.create",
    "storage": "storage.create",
    "plan": "web.plan",
    "registry": "registry.create",
    "function-app": "web.site",
    "app-settings": "web.config",
}


KEYED_CACHE = {"kind": "azure-cache-for-redis", "tier": "Standard", "size": "C1",
               "auth": "access-keys"}


def sample_spec(keyed: bool = False) -> dict[str, object]:
    tag = uuid.uuid4().hex[:8]
    return {
        "version": 1,
        "target": "sandbox",
        "resource_group": {"name": f"rg-bench-{tag}"},
        "cache": {"name": f"cache-bench-{tag}", **(KEYED_CACHE if keyed else {})},
        "tags": {"purpose": "benchmark"},
        "image": {
            "build_from": str(ROOT / "resources" / "sample-model"),
            "registry": f"acrbench{tag}",
            "repository": "digits-scoring",
            "tag": "v1",
        },
        "function_app": {
            "name": f"func-bench-{tag}",
            "plan_name": f"plan-bench-{tag}",
            "storage_account": f"stbench{tag}",
            **({"auth": "keys"} if keyed else {}),
        },
    }


def one_run(state_dir: Path, keyed: bool = False) -> dict[str, float]:
    spec = spec_from_dict(sample_spec(keyed))
    steps = plan_deployment(spec, ROOT)
    target = sandbox_target(state_dir, start=False)
    clients = ClientFactory(target)
    started = time.monotonic()
    # The same deploy the CLI and the wizard run (its ARM access check included).
    result = run_deployment(spec, target, clients, steps, ROOT)
    wall = time.monotonic() - started
    if not result.succeeded:
        failures = "; ".join(
            f"{o.name}: {o.error.message if o.error else o.status}" for o in result.failures()
        )
        raise SystemExit(f"deploy failed: {failures}")
    sequential = sum(o.duration for o in result.outcomes.values())
    delete_group(clients, spec.resource_group.name, spec.resource_group.name, say=lambda _: None)
    clients.close()
    return {"deploy_wall_s": wall, "sequential_s": sequential}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", default="realistic-scaled")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--variant", choices=("keyless", "keyed", "both"), default="both")
    args = parser.parse_args()
    profile = resolve_latency(args.latency)

    def nominal(step: Step) -> float:
        key = STEP_LATENCY.get(step.name)
        return profile.seconds(key) if key else 0.0

    critical = critical_path(build_plan(spec_from_dict(sample_spec())), nominal)
    runs: list[dict[str, float]] = []
    keyed: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="mlcache-bench-") as tmp:
        # The deployment logs of these runs go with the temporary folder.
        os.environ["XDG_DATA_HOME"] = str(Path(tmp) / "data")
        state = Path(tmp) / "sandbox"
        with Sandbox.start(state, latency=profile):
            for _ in range(args.runs):
                if args.variant != "keyed":
                    runs.append(one_run(state))
                if args.variant != "keyless":
                    keyed.append(one_run(state, keyed=True))
    print(f"latency={profile.name}")
    print(f"runs={args.runs}")
    if runs:
        wall = statistics.median(r["deploy_wall_s"] for r in runs)
        sequential = statistics.median(r["sequential_s"] for r in runs)
        print(f"deploy_wall_s={wall:.2f}")
        print(f"critical_path_s={critical:.2f}")
        print(f"sequential_s={sequential:.2f}")
        print(f"ratio={wall / critical:.3f}")
        if len(runs) > 1:
            print("deploy_wall_s_runs=" + ",".join(f"{r['deploy_wall_s']:.2f}" for r in runs))
    if keyed:
        print(f"keyed_deploy_wall_s={statistics.median(r['deploy_wall_s'] for r in keyed):.2f}")
        if len(keyed) > 1:
            print("keyed_deploy_wall_s_runs="
                  + ",".join(f"{r['deploy_wall_s']:.2f}" for r in keyed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
