"""What the layer builder costs: a first build, an unchanged re-deploy, a changed model.

Starts its own sandbox (`--latency fast`), with an empty user cache unless
`--keep-cache` (so the first build resolves the packages with pip and, with an
empty pip cache too, downloads their wheels), and deploys the sample model with
the default builder three times through the real engine:

    first_build_s         the image step of the first deploy (base import, pip,
                          both layers, uploads)
    first_upload_bytes    blob bytes the first deploy uploaded
    rebuild_s             the image step of a re-deploy of the unchanged model
    rebuild_upload_bytes  blob bytes it uploaded (goal: 0)
    changed_upload_bytes  blob bytes a deploy uploaded after one file in the model
                          folder changed (goal: the app layer and the image config)
    app_layer_bytes       the compressed app layer (template + model)
    packages_layer_bytes  the compressed packages layer
    first_deploy_s        the whole first deploy, start to the function answering

Usage: .venv/bin/python benchmarks/build.py [--keep-cache]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.connect import sandbox_target  # noqa: E402
from app.sandbox import Sandbox  # noqa: E402
from app.services.cleanup import delete_group  # noqa: E402
from app.services.clients import ClientFactory  # noqa: E402
from app.services.deploy import plan_deployment, run_deployment  # noqa: E402
from app.services.runner import StepOutcome  # noqa: E402
from app.spec import spec_from_dict  # noqa: E402


def sample_spec(model: Path, tag: str) -> dict[str, object]:
    return {
        "version": 1,
        "target": "sandbox",
        "resource_group": {"name": f"rg-build-{tag}"},
        "cache": {"name": f"cache-build-{tag}"},
        "image": {"build_from": str(model), "registry": f"acrbuild{tag}",
                  "repository": "digits-scoring", "tag": "v1"},
        "function_app": {"name": f"func-build-{tag}", "plan_name": f"plan-build-{tag}",
                         "storage_account": f"stbuild{tag}"},
    }


def deploy(state: Path, data: dict[str, object]) -> tuple[StepOutcome, float]:
    spec = spec_from_dict(data)
    target = sandbox_target(state, start=False)
    clients = ClientFactory(target)
    started = time.monotonic()
    result = run_deployment(spec, target, clients, plan_deployment(spec, ROOT), ROOT)
    wall = time.monotonic() - started
    clients.close()
    if not result.succeeded:
        failures = "; ".join(f"{o.name}: {o.error.message if o.error else o.status}"
                             for o in result.failures())
        raise SystemExit(f"deploy failed: {failures}")
    return result.outcomes["image"], wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-cache", action="store_true",
                        help="use the user's cache (wheels and layers) instead of an empty one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlcache-build-bench-") as tmp:
        os.environ["XDG_DATA_HOME"] = str(Path(tmp) / "data")
        if not args.keep_cache:
            os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
        model = Path(tmp) / "model"
        shutil.copytree(ROOT / "resources" / "sample-model", model)
        state = Path(tmp) / "sandbox"
        data = sample_spec(model, uuid.uuid4().hex[:8])
        with Sandbox.start(state, latency="fast"):
            first, first_wall = deploy(state, data)
            again, _ = deploy(state, data)
            request = model / "sample-request.json"
            request.write_text(request.read_text(encoding="utf-8") + "\n", encoding="utf-8")
            changed, _ = deploy(state, data)
            target = sandbox_target(state, start=False)
            clients = ClientFactory(target)
            group = str(data["resource_group"]["name"])  # type: ignore[index]
            delete_group(clients, group, group, say=lambda _: None)
            clients.close()
    print(f"first_build_s={first.duration:.2f}")
    print(f"first_upload_bytes={first.outputs.get('uploaded_bytes', '')}")
    print(f"rebuild_s={again.duration:.2f}")
    print(f"rebuild_upload_bytes={again.outputs.get('uploaded_bytes', '')}")
    print(f"changed_upload_bytes={changed.outputs.get('uploaded_bytes', '')}")
    print(f"app_layer_bytes={first.outputs.get('app_layer_bytes', '')}")
    print(f"packages_layer_bytes={first.outputs.get('packages_layer_bytes', '')}")
    print(f"first_deploy_s={first_wall:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
