"""A deployment survives a sandbox restart: every resource keeps its ports.

A cache whose redis-server died (killed, crashed) comes back on the same TLS port
when the sandbox restarts, so the function's `REDIS_PORT` app setting still points at
it and calls keep using the cache instead of bypassing it.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from typing import Any

import pytest

from app.sandbox import Sandbox
from app.sandbox.processes import pid_alive
from tests.e2e.test_cli import Cli, events, make_spec
from tests.sandbox.conftest import mgmt

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]


def _cache_pid(sandbox: Sandbox, cache_name: str) -> int:
    record = next(r for r in sandbox.context.store.resources("Microsoft.Cache/Redis")
                  if r["body"]["name"] == cache_name)
    return int(record["private"]["pid"])


def test_a_killed_redis_server_comes_back_on_its_port_and_calls_use_the_cache(
    tmp_path: Path, cli: Cli
) -> None:
    from azure.mgmt.redis import RedisManagementClient

    spec, data = make_spec(tmp_path)
    group, cache = data["resource_group"]["name"], data["cache"]["name"]
    state = tmp_path / "sandbox"
    with Sandbox.start(state, latency="fast") as sandbox:
        deployed = cli("deploy", str(spec), "--json")
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        before = mgmt(RedisManagementClient, sandbox).redis.get(group, cache)
        first = events(cli("test", str(spec), "--json").stdout)
        assert first[0]["cache"] in ("MISS", "HIT")
        pid = _cache_pid(sandbox, cache)
        os.kill(pid, signal.SIGKILL)
        assert _wait(lambda: not pid_alive(pid))
        # ARM still says Succeeded; only the live checks see the server gone.
        dead = cli("status", str(spec), "--json")
        assert dead.returncode == 1, dead.stdout + dead.stderr
        rows = {row["kind"]: row for row in events(dead.stdout)}
        assert rows["Azure Cache for Redis"]["state"] == "Succeeded"
        assert rows["Azure Cache for Redis"]["checked"] == "live"
        assert rows["Azure Cache for Redis"]["live_ok"] is False
        assert "did not answer PING" in rows["Azure Cache for Redis"]["live"]
        assert rows["function app"]["live_ok"] is False, rows["function app"]
        assert "cache unreachable" in rows["function app"]["live"]
        assert rows["storage account"]["checked"] == "stored state"
        assert rows["storage account"]["live_ok"] is None

    with Sandbox.start(state, latency="fast") as sandbox:
        after = mgmt(RedisManagementClient, sandbox).redis.get(group, cache)
        assert after.ssl_port == before.ssl_port
        assert after.port == before.port
        calls = events(cli("test", str(spec), "--json", "--repeat", "2").stdout)
        assert [c["status"] for c in calls] == [200, 200]
        # The first call's entry was lost with the killed server (no snapshot).
        assert [c["cache"] for c in calls] == ["MISS", "HIT"]
        healthy = cli("status", str(spec), "--json")
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        rows = {row["kind"]: row for row in events(healthy.stdout)}
        assert rows["Azure Cache for Redis"]["live_ok"] is True
        assert rows["function app"]["live_ok"] is True
        assert "cache reachable" in rows["function app"]["live"]
        plain = cli("status", str(spec))
        assert "[stored state]" in plain.stdout and "[live: " in plain.stdout

    # Only a port something else holds is given up: ARM then reports the new one,
    # status sees the function no longer reaching its cache, and a re-run rewrites
    # the settings from ARM's answer.
    with socket.create_server(("127.0.0.1", int(before.ssl_port))), \
            Sandbox.start(state, latency="fast") as sandbox:
        moved = mgmt(RedisManagementClient, sandbox).redis.get(group, cache)
        assert moved.ssl_port != before.ssl_port
        stale = cli("status", str(spec), "--json")
        assert stale.returncode == 1, stale.stdout
        rows = {row["kind"]: row for row in events(stale.stdout)}
        assert rows["Azure Cache for Redis"]["live_ok"] is True
        assert rows["function app"]["live_ok"] is False
        redeployed = cli("deploy", str(spec), "--json")
        assert redeployed.returncode == 0, redeployed.stdout[-3000:]
        steps = {e["step"]: e for e in events(redeployed.stdout)
                 if e["event"] == "step_succeeded"}
        assert steps["cache"]["adopted"] and not steps["app-settings"]["adopted"]
        assert steps["cache"]["outputs"]["ssl_port"] == str(moved.ssl_port)
        calls = events(cli("test", str(spec), "--json").stdout)
        assert calls[0]["status"] == 200 and calls[0]["cache"] in ("MISS", "HIT")


def _wait(condition: Any, timeout: float = 10.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False
