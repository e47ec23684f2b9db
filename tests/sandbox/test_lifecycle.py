"""The sandbox as a whole: restarts, cascades, separate serving process, no orphans."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from azure.mgmt.redis import RedisManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.storage import StorageManagementClient

from app.errors import BadInput
from app.sandbox import Sandbox, SandboxProcess, connect
from app.sandbox.api import CONNECTION_FILE
from app.sandbox.processes import pid_alive, processes_mentioning
from tests.sandbox.conftest import mgmt, run_cli, tls_client

pytestmark = pytest.mark.sandbox

BASIC_C0 = {"location": "westeurope", "sku": {"name": "Basic", "family": "C", "capacity": 0}}


def _wait_gone(pids: list[int], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(pid_alive(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


def _redis_pid(state_dir: Path, cache_id: str) -> int:
    store = json.loads((state_dir / "store.json").read_text(encoding="utf-8"))
    return int(store["resources"][cache_id.lower()]["private"]["pid"])


def test_group_delete_leaves_no_redis_server(state_dir: Path) -> None:
    with Sandbox.start(state_dir) as sb:
        resources = mgmt(ResourceManagementClient, sb)
        caches = mgmt(RedisManagementClient, sb)
        resources.resource_groups.create_or_update("rg-cascade", {"location": "westeurope"})
        created = [
            caches.redis.begin_create("rg-cascade", f"cascade-{i}", BASIC_C0).result()
            for i in range(2)
        ]
        pids = [_redis_pid(state_dir, cache.id) for cache in created]
        assert all(pid_alive(pid) for pid in pids)
        assert sorted(processes_mentioning(str(state_dir))) == sorted(pids)
        cache_dirs = list(state_dir.rglob("redis.conf"))
        assert len(cache_dirs) == 2
        resources.resource_groups.begin_delete("rg-cascade").result()
        assert not any(pid_alive(pid) for pid in pids)
        assert not any(p.exists() for p in cache_dirs)
        assert processes_mentioning(str(state_dir)) == []
        assert list(resources.resources.list()) == []


def test_restart_brings_resources_and_processes_back(state_dir: Path) -> None:
    with Sandbox.start(state_dir) as sb:
        resources = mgmt(ResourceManagementClient, sb)
        caches = mgmt(RedisManagementClient, sb)
        storage = mgmt(StorageManagementClient, sb)
        resources.resource_groups.create_or_update("rg-keep", {"location": "westeurope"})
        cache = caches.redis.begin_create("rg-keep", "kept-cache", BASIC_C0).result()
        storage.storage_accounts.begin_create(
            "rg-keep",
            "keptaccount",
            {"sku": {"name": "Standard_LRS"}, "kind": "StorageV2", "location": "westeurope"},
        ).result()
        key = caches.redis.list_keys("rg-keep", "kept-cache").secondary_key
        with tls_client(cache.host_name, cache.ssl_port, sb.ca_cert, key) as conn:
            conn.set("model:answer", "42")
        subscription, first_token = sb.subscription_id, sb.token
        first_pid = _redis_pid(state_dir, cache.id)
    assert not pid_alive(first_pid)
    assert not (state_dir / CONNECTION_FILE).exists()

    with Sandbox.start(state_dir) as sb:
        assert sb.subscription_id == subscription
        assert sb.token != first_token
        caches = mgmt(RedisManagementClient, sb)
        storage = mgmt(StorageManagementClient, sb)
        back = caches.redis.get("rg-keep", "kept-cache")
        assert back.provisioning_state == "Succeeded"
        assert pid_alive(_redis_pid(state_dir, cache.id))
        with tls_client(back.host_name, back.ssl_port, sb.ca_cert, key) as conn:
            assert conn.ping()
            # Contents are snapshotted when the sandbox stops and loaded when it starts.
            assert conn.get("model:answer") == b"42"
        account = storage.storage_accounts.get_properties("rg-keep", "keptaccount")
        assert account.provisioning_state == "Succeeded"


def test_operation_in_progress_resumes_after_restart(state_dir: Path) -> None:
    # Factor 0.1 of realistic: a cache takes 2 s, long enough to stop in between.
    with Sandbox.start(state_dir, latency=0.1) as sb:
        resources = mgmt(ResourceManagementClient, sb)
        caches = mgmt(RedisManagementClient, sb)
        resources.resource_groups.create_or_update("rg-resume", {"location": "westeurope"})
        poller = caches.redis.begin_create("rg-resume", "resumed", BASIC_C0)
        assert caches.redis.get("rg-resume", "resumed").provisioning_state == "Creating"
        initial = poller.polling_method()._initial_response.http_response  # type: ignore[attr-defined]
        status = requests.get(
            initial.headers["Azure-AsyncOperation"],
            headers={"Authorization": f"Bearer {sb.token}"},
            verify=str(sb.ca_cert),
            timeout=10,
        )
        # Outside the fast profile, pollers are told when to come back.
        assert status.json()["status"] == "InProgress"
        assert status.headers["Retry-After"] == "1"
    with Sandbox.start(state_dir, latency="fast") as sb:
        caches = mgmt(RedisManagementClient, sb)
        sb.wait_idle(30)
        assert caches.redis.get("rg-resume", "resumed").provisioning_state == "Succeeded"


def test_one_sandbox_per_state_dir_and_connect(state_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no sandbox is running"):
        connect(state_dir)
    with Sandbox.start(state_dir) as sb:
        with pytest.raises(BadInput, match="already runs"):
            Sandbox.start(state_dir)
        conn = connect(state_dir)
        assert (conn.endpoint, conn.token, conn.subscription_id) == (
            sb.endpoint,
            sb.token,
            sb.subscription_id,
        )
        assert conn.ca_cert == sb.ca_cert
        assert oct((state_dir / CONNECTION_FILE).stat().st_mode & 0o777) == "0o600"
        client = mgmt(ResourceManagementClient, conn)
        assert list(client.resource_groups.list()) == []
    with pytest.raises(BadInput):
        connect(state_dir)
    status = run_cli("sandbox", "status", "--state-dir", str(state_dir))
    assert status.returncode == 1
    assert "no sandbox is running" in status.stdout
    with pytest.raises(BadInput, match="latency"):
        Sandbox.start(tmp_path / "other", latency="slowish")
    with pytest.raises(BadInput, match="loopback only"):
        Sandbox.start(tmp_path / "other", host="0.0.0.0")


@pytest.fixture
def served(state_dir: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """`mlcache-deploy sandbox serve` as a real separate process, and its JSON line."""
    proc = SandboxProcess.start(state_dir)
    try:
        yield proc.popen, json.loads(proc.ready_line)
    finally:
        proc.kill()


def _cache_in(state_dir: Path, info: dict[str, str]) -> tuple[RedisManagementClient, int]:
    conn = connect(state_dir)
    assert conn.endpoint == info["endpoint"]
    resources = mgmt(ResourceManagementClient, conn)
    caches = mgmt(RedisManagementClient, conn)
    resources.resource_groups.create_or_update("rg-served", {"location": "westeurope"})
    cache = caches.redis.begin_create("rg-served", "served-cache", BASIC_C0).result()
    return caches, _redis_pid(state_dir, cache.id)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_one_json_line_and_a_signal_stops_everything(
    state_dir: Path, served: tuple[subprocess.Popen[str], dict[str, str]], signum: int
) -> None:
    proc, info = served
    assert set(info) == {
        "endpoint", "ca_cert", "subscription_id", "token", "authority", "tenant_id", "tenants",
        "user", "base_registry",
    }
    assert info["authority"] == info["endpoint"]
    assert info["base_registry"].startswith("127.0.0.1:")
    assert info["endpoint"].startswith("https://127.0.0.1:")
    assert Path(info["ca_cert"]).is_file()
    assert json.loads((state_dir / CONNECTION_FILE).read_text()) == info
    _, redis_pid = _cache_in(state_dir, info)
    assert pid_alive(redis_pid)
    proc.send_signal(signum)
    assert proc.wait(20) == 0
    # Nothing but the one JSON line ever reaches stdout.
    assert proc.stdout is not None and proc.stdout.read() == ""
    assert _wait_gone([redis_pid])
    assert processes_mentioning(str(state_dir)) == []


def test_stop_command_stops_a_served_sandbox(
    state_dir: Path, served: tuple[subprocess.Popen[str], dict[str, str]]
) -> None:
    proc, info = served
    _, redis_pid = _cache_in(state_dir, info)
    status = run_cli("sandbox", "status", "--state-dir", str(state_dir))
    assert status.returncode == 0
    assert "served-cache" in status.stdout and info["endpoint"] in status.stdout
    assert info["token"] not in status.stdout
    stop = run_cli("sandbox", "stop", "--state-dir", str(state_dir))
    assert stop.returncode == 0, stop.stderr
    assert proc.wait(10) == 0
    assert _wait_gone([redis_pid])


def test_killed_sandbox_leaves_no_orphans(
    state_dir: Path, served: tuple[subprocess.Popen[str], dict[str, str]]
) -> None:
    proc, info = served
    _, redis_pid = _cache_in(state_dir, info)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    # The parent-death signal takes redis-server down with the sandbox.
    assert _wait_gone([redis_pid])
    assert processes_mentioning(str(state_dir)) == []


@pytest.mark.parametrize(
    ("extra", "store_text", "message"),
    [
        (["--latency", "sluggish"], None, "latency must be"),
        (["--host", "0.0.0.0"], None, "loopback only"),
        ([], "{not json", "is unreadable"),
    ],
)
def test_serve_refuses_bad_input_with_exit_2(
    state_dir: Path, extra: list[str], store_text: str | None, message: str
) -> None:
    if store_text is not None:
        (state_dir / "store.json").write_text(store_text, encoding="utf-8")
    result = run_cli("sandbox", "serve", "--state-dir", str(state_dir), *extra)
    assert result.returncode == 2
    assert result.stdout == ""
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_group_deleted_while_a_cache_is_still_creating(state_dir: Path) -> None:
    # Factor 0.1: the group goes after 0.5 s, the cache would be ready after 2 s.
    with Sandbox.start(state_dir, latency=0.1) as sb:
        resources = mgmt(ResourceManagementClient, sb)
        caches = mgmt(RedisManagementClient, sb)
        resources.resource_groups.create_or_update("rg-race", {"location": "westeurope"})
        caches.redis.begin_create("rg-race", "racing", BASIC_C0)
        resources.resource_groups.begin_delete("rg-race").result()
        assert resources.resource_groups.check_existence("rg-race") is False
        sb.wait_idle(30)
        assert processes_mentioning(str(state_dir)) == []
        assert (
            caches.redis.check_name_availability(
                {"name": "racing", "type": "Microsoft.Cache/redis"}
            )
            is None
        )
