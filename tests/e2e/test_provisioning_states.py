"""Adopting what a run finds: its provisioning state decides, not its mere existence.

A registry left Failed by an earlier run is provisioned again by the same PUT (the
sandbox provisions it again, as ARM lets a failed create be retried), so the re-run
pushes into a working registry instead of one that only exists on paper.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.containerregistry import ContainerRegistryManagementClient

from tests.e2e.test_cli import Cli, events, finished, make_spec
from tests.sandbox.conftest import mgmt

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]


def test_a_registry_whose_provisioning_failed_is_repaired_by_the_next_deploy(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    spec, data = make_spec(tmp_path)
    registry = data["image"]["registry"]
    group = data["resource_group"]["name"]
    sandbox = sandbox_factory({"rules": [{
        "method": "PUT",
        "path": f"/registries/{registry}$",
        "count": 1,
        "fail_provisioning": True,
        "code": "ProvisioningDisabled",  # not transient: this run does not retry
        "message": "The registry could not be provisioned.",
    }]})
    first = cli("deploy", str(spec), "--json")
    assert first.returncode == 1, first.stdout[-3000:] + first.stderr[-2000:]
    end = finished(first.stdout)
    assert end["failed"] == ["registry"]
    failure = next(e for e in events(first.stdout)
                   if e["event"] == "step_failed" and e["step"] == "registry")
    assert failure["code"] == "ProvisioningDisabled"
    assert "could not be provisioned" in failure["message"] and failure["hint"], failure
    acr = mgmt(ContainerRegistryManagementClient, sandbox)
    assert acr.registries.get(group, registry).provisioning_state == "Failed"

    second = cli("deploy", str(spec), "--json")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-2000:]
    steps = {e["step"]: e for e in events(second.stdout) if e["event"] == "step_succeeded"}
    assert not steps["registry"]["adopted"]  # provisioned again, not taken as it stood
    assert steps["image"] and finished(second.stdout)["succeeded"]
    assert acr.registries.get(group, registry).provisioning_state == "Succeeded"
    calls = events(cli("test", str(spec), "--json").stdout)
    assert calls[0]["status"] == 200 and calls[0]["cache"] in ("MISS", "HIT")
