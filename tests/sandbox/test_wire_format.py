"""What the sandbox sends is what the SDK models know: no invented or misspelt fields."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from azure.mgmt.redis import RedisManagementClient
from azure.mgmt.redis.models import RedisResource

from app.sandbox import Sandbox
from app.sandbox.latency import FAST_SECONDS, REALISTIC_SECONDS, resolve_latency
from tests.sandbox.conftest import unique

pytestmark = pytest.mark.sandbox


def _flatten(body: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for key, value in body.items():
        keys.add(prefix + key)
        if key == "properties" and isinstance(value, dict):
            keys |= _flatten(value, "properties.")
    return keys


def test_redis_body_uses_only_fields_the_sdk_model_knows(
    sandbox: Sandbox, redis_mgmt: RedisManagementClient, group: str
) -> None:
    name = unique("cache-")
    redis_mgmt.redis.begin_create(
        group,
        name,
        {"location": "westeurope", "sku": {"name": "Basic", "family": "C", "capacity": 0}},
    ).result()
    url = (
        f"{sandbox.endpoint}/subscriptions/{sandbox.subscription_id}/resourceGroups/{group}"
        f"/providers/Microsoft.Cache/redis/{name}"
    )
    body = requests.get(
        url,
        params={"api-version": "2024-11-01"},
        headers={"Authorization": f"Bearer {sandbox.token}"},
        verify=str(sandbox.ca_cert),
        timeout=10,
    ).json()
    known = {spec["key"] for spec in RedisResource._attribute_map.values()}
    emitted = _flatten(body) - {"properties"}
    assert emitted <= known, emitted - known
    for required in (
        "properties.hostName",
        "properties.sslPort",
        "properties.port",
        "properties.provisioningState",
        "properties.redisVersion",
    ):
        assert required in emitted
    model = RedisResource.deserialize(body)
    assert model.ssl_port == body["properties"]["sslPort"]


def test_latency_profiles() -> None:
    assert set(FAST_SECONDS) == set(REALISTIC_SECONDS)
    assert all(seconds < 1 for seconds in FAST_SECONDS.values())
    realistic = resolve_latency("realistic-scaled")
    assert realistic.seconds("redis.create") == 20
    assert realistic.seconds("storage.create") == 4
    assert realistic.seconds("web.plan") == 2
    assert realistic.seconds("web.site") == 6
    assert realistic.seconds("web.config") == 1
    assert realistic.seconds("group.delete") == 5
    half = resolve_latency("0.5")
    assert half.seconds("redis.create") == 10
    assert resolve_latency(2).seconds("group.delete") == 10
    for bad in ("slow", "-1", "inf", "nan"):
        with pytest.raises(ValueError):
            resolve_latency(bad)
