"""DIR/requests.log: one JSON line per request served, ARM and data planes, no secrets."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.mgmt.resource.resources import ResourceManagementClient

from app.sandbox import Sandbox
from app.sandbox.requestlog import RequestLog
from tests.sandbox.conftest import mgmt

pytestmark = pytest.mark.sandbox


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_request_is_one_line_without_secrets(tmp_path: Path) -> None:
    faults = {"rules": [{"method": "GET", "path": "/resourcegroups/rg-dropped$", "drop": True}]}
    with Sandbox.start(tmp_path / "state", latency="fast", faults=faults) as sb:
        rm = mgmt(ResourceManagementClient, sb)
        rm.resource_groups.create_or_update("rg-logged", {"location": "westeurope"})
        secret = "sig=SECRET-SAS-VALUE"
        prices = requests.get(
            f"{sb.endpoint}/retail/prices?{secret}",
            verify=str(sb.ca_cert),
            timeout=10,
        )
        assert prices.status_code in (200, 400)
        no_token = requests.get(
            f"{sb.endpoint}/subscriptions?api-version=2022-12-01",
            verify=str(sb.ca_cert),
            timeout=10,
        )
        assert no_token.status_code == 401
        with pytest.raises(requests.ConnectionError):
            requests.get(
                f"{sb.endpoint}/subscriptions/{sb.subscription_id}/resourcegroups/rg-dropped"
                "?api-version=2022-12-01",
                headers={"Authorization": f"Bearer {sb.token}"},
                verify=str(sb.ca_cert),
                timeout=10,
            )
        rm.close()
    # Read once the sandbox has stopped: the dropped request's line is written after
    # the client already saw the connection go.
    log_path = sb.state_dir / "requests.log"
    lines = _lines(log_path)
    text = log_path.read_text(encoding="utf-8")
    assert all(set(line) == {"time", "method", "host", "path", "status"} for line in lines)
    put = [ln for ln in lines if ln["method"] == "PUT"]
    assert put and put[0]["path"].endswith("/resourcegroups/rg-logged")
    assert put[0]["status"] == 201
    assert put[0]["host"].startswith("127.0.0.1:")
    assert {"method": "GET", "path": "/retail/prices"}.items() <= next(
        ln for ln in lines if ln["path"] == "/retail/prices"
    ).items()
    assert any(ln["path"] == "/subscriptions" and ln["status"] == 401 for ln in lines)
    assert any(ln["path"].endswith("/rg-dropped") and ln["status"] is None for ln in lines)
    # No query strings, tokens or bodies.
    assert "SECRET" not in text and "api-version" not in text
    assert sb.token not in text and "westeurope" not in text


def test_concurrent_writers_never_interleave(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "requests.log")
    long_path = "/x" * 2000

    def write_many(index: int) -> None:
        for _ in range(200):
            log.write("GET", f"127.0.0.1:{index}", long_path, 200)

    threads = [threading.Thread(target=write_many, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    lines = _lines(tmp_path / "requests.log")
    assert len(lines) == 1600
    assert all(line["path"] == long_path for line in lines)
