"""Fixtures for tests that drive a running sandbox with the real Azure SDK clients.

One sandbox serves the whole session (starting one costs ~0.1 s, but caches
cost a redis-server each); every test gets its own resource group, deleted
afterwards, so tests never see each other's resources.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from azure.mgmt.redis import RedisManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.resource.subscriptions import SubscriptionClient
from azure.mgmt.storage import StorageManagementClient

from app.sandbox import Sandbox

POLL = 0.05


def client_kwargs(sb: Any) -> dict[str, Any]:
    """How every SDK client reaches the sandbox: its endpoint, its CA, never verify=False."""
    return {
        "base_url": sb.endpoint,
        "credential_scopes": ["https://management.azure.com/.default"],
        "connection_verify": str(sb.ca_cert),
        "polling_interval": POLL,
    }


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    state = tmp_path_factory.mktemp("sandbox-state")
    with Sandbox.start(state, latency="fast") as sb:
        yield sb


@pytest.fixture(scope="session")
def resource_client(sandbox: Sandbox) -> ResourceManagementClient:
    return mgmt(ResourceManagementClient, sandbox)


@pytest.fixture(scope="session")
def subscription_client(sandbox: Sandbox) -> SubscriptionClient:
    return SubscriptionClient(sandbox.credential(), **client_kwargs(sandbox))


@pytest.fixture(scope="session")
def redis_mgmt(sandbox: Sandbox) -> RedisManagementClient:
    return mgmt(RedisManagementClient, sandbox)


@pytest.fixture(scope="session")
def storage_mgmt(sandbox: Sandbox) -> StorageManagementClient:
    return mgmt(StorageManagementClient, sandbox)


def mgmt(client_class: Any, sb: Any) -> Any:
    """An `azure-mgmt-*` client (its class) for sandbox `sb`."""
    return client_class(sb.credential(), sb.subscription_id, **client_kwargs(sb))


def tls_client(host: Any, port: Any, ca: Path, password: Any) -> redis.Redis:
    """A redis client over TLS verified against the sandbox CA, failing fast (no retries)."""
    return redis.Redis(
        host=host,
        port=port,
        ssl=True,
        ssl_ca_certs=str(ca),
        password=password,
        socket_timeout=5,
        socket_connect_timeout=5,
        retry=None,  # redis-py would otherwise back off and retry a refused password
    )


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`mlcache-deploy <args>` as a separate process, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@pytest.fixture
def group(resource_client: ResourceManagementClient) -> Iterator[str]:
    """A fresh resource group in westeurope, deleted (with all it holds) after the test."""
    name = unique("rg-test-")
    resource_client.resource_groups.create_or_update(name, {"location": "westeurope"})
    yield name
    if resource_client.resource_groups.check_existence(name):
        resource_client.resource_groups.begin_delete(name).result()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path
