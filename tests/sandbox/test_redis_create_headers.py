"""A Redis create answers with both Azure-AsyncOperation and Location, as the RP does.

azure-cli's `az redis create` recordings (redis/tests/latest/recordings/
test_redis_cache_with_mandatory_args.yaml) show the 201 carrying
`azure-asyncoperation: .../providers/Microsoft.Cache/locations/{loc}/asyncOperations/{id}`
and `location:` the cache's own URL; the SDK's poller must still finish on the cache.
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.mgmt.redis import RedisManagementClient

from tests.sandbox.conftest import unique

pytestmark = pytest.mark.sandbox

BASIC_C0 = {"location": "westeurope", "sku": {"name": "Basic", "family": "C", "capacity": 0}}


def test_create_sends_both_headers_and_the_poller_finishes(
    redis_mgmt: RedisManagementClient, group: str
) -> None:
    name = unique("cache-")
    seen: list[tuple[int, str | None, str | None]] = []

    def hook(response: Any) -> None:
        http = response.http_response
        if http.request.method == "PUT":
            seen.append(
                (
                    http.status_code,
                    http.headers.get("Azure-AsyncOperation"),
                    http.headers.get("Location"),
                )
            )

    cache = redis_mgmt.redis.begin_create(group, name, BASIC_C0, raw_response_hook=hook).result()
    assert cache.provisioning_state == "Succeeded"
    [(status, async_url, location)] = seen
    assert status == 201
    assert async_url is not None and "/providers/Microsoft.Cache/locations/" in async_url
    assert "/asyncOperations/" in async_url
    assert location is not None
    own_path = f"/resourceGroups/{group}/providers/Microsoft.Cache/redis/{name}"
    assert location.split("?")[0].endswith(own_path)
    assert "api-version=" in location
