"""The wizard's warm-up loads everything it needs around a deploy: a whole sandbox
deploy right after it imports no module at all in the window's process (the run
itself is the deployment process's, which the warm-up starts).

Why it matters: an import runs Python code while holding the interpreter lock,
and what it makes lies outside the `gc.freeze()` that follows the warm-up, so an
import mid-deploy stalls the UI thread (reading the run's reports used to load
the engine's modules). The deploy runs in a fresh interpreter, so the modules
this test process has already loaded cannot hide one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = r"""
import json, sys, threading
from pathlib import Path

from app.connect import stop_sandbox_process
from app.wizard.screenshots import demo_spec
from app.wizard.services_backend import ServicesBackend

state = Path(sys.argv[1])
backend = ServicesBackend.for_sandbox(state)
try:
    before = set(sys.modules)
    seen = []
    result = backend.deploy(demo_spec(), seen.append, threading.Event())
    imported = sorted(set(sys.modules) - before)
    backend.delete_group(demo_spec().resource_group.name, lambda _text: None)
finally:
    backend.close()
    stop_sandbox_process(state)
print(json.dumps({"succeeded": result.succeeded, "imported": imported,
                  "events": len(seen)}))
"""


def test_a_deploy_after_warm_up_imports_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "sandbox")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["succeeded"] is True
    assert answer["imported"] == [], answer["imported"]
    assert answer["events"] > 10
