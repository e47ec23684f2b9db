"""`mlcache-deploy estimate` end to end: the CLI in a child process, priced by a sandbox."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.sandbox import Sandbox

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def estimate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "estimate", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )


def test_sandbox_example_prints_the_table_and_total(tmp_path: Path) -> None:
    # No sandbox runs there: the command starts one for itself and stops it.
    done = estimate(str(EXAMPLES / "digits-classic-sandbox.json"), "--sandbox-state", str(tmp_path))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for text in ("Azure Cache for Redis digits-cache-demo", "Standard C1", "B1 (Linux)",
                 "Container registry digitsdemoacr", "Estimated monthly total: USD",
                 "the sandbox itself costs nothing"):
        assert text in out
    assert "price not found" not in out
    assert "started one for this command" in done.stderr
    assert not (tmp_path / "connection.json").exists()  # the sandbox it started is gone


def test_azure_example_as_json_through_a_running_sandbox(tmp_path: Path) -> None:
    with Sandbox.start(tmp_path, latency="fast"):
        done = estimate(str(EXAMPLES / "digits-azure.toml"), "--json",
                        "--sandbox-state", str(tmp_path))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["currency"] == "USD" and data["region"] == "westeurope"
    assert data["sandbox"] is True and data["billed"] is True
    assert [item["sku"] for item in data["items"]] == [
        "Premium P1", "Standard_LRS (StorageV2, Hot)", "P1v3 (Linux)",
        "Pay-as-you-go (PerGB2018)"]  # Application Insights' workspace, free up to 5 GB
    assert data["items"][-1]["monthly"] == 0.0
    assert all(item["found"] for item in data["items"])
    cache = data["items"][0]
    assert cache["units"] == 2 * 730  # two shards
    assert data["total"] == pytest.approx(sum(i["monthly"] for i in data["items"]), abs=0.01)
    assert "started one" not in done.stderr


def test_unreachable_prices_api_is_exit_1_with_the_reason(tmp_path: Path) -> None:
    faults = {"rules": [{"path": "^/retail/prices", "drop": True}]}
    with Sandbox.start(tmp_path, latency="fast", faults=faults):
        done = estimate(str(EXAMPLES / "digits-azure.toml"), "--sandbox-state", str(tmp_path))
    assert done.returncode == 1
    assert "could not be reached" in done.stderr and "No estimate is available" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_price_at_all_is_exit_1(tmp_path: Path) -> None:
    spec = json.loads((EXAMPLES / "digits-classic-sandbox.json").read_text())
    spec["location"] = "eastus"  # the sample table models westeurope only
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    done = estimate(str(path), "--sandbox-state", str(tmp_path / "state"), "--no-monitoring")
    assert done.returncode == 1
    assert done.stdout.count("price not found") == 4  # no workspace line without monitoring
    assert "no list price was found" in done.stderr


@pytest.mark.parametrize(("change", "message", "code"), [
    (None, "no such file", 2),
    # A rule problem is exit 1, as in `validate`.
    ({"cache": {"kind": "azure-cache-for-redis", "name": "digits-cache-demo",
                "tier": "Standard", "size": "P9"}}, "cache.size", 1),
])
def test_bad_input_is_refused_before_a_sandbox_starts(
        tmp_path: Path, change: dict[str, object] | None, message: str, code: int) -> None:
    path = tmp_path / "spec.json"
    if change is not None:
        spec = json.loads((EXAMPLES / "digits-classic-sandbox.json").read_text())
        spec.update(change)
        path.write_text(json.dumps(spec))
    done = estimate(str(path), "--sandbox-state", str(tmp_path / "state"))
    assert done.returncode == code
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "state").exists()  # refused before any sandbox started
