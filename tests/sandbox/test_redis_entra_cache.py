"""Azure Cache for Redis with Microsoft Entra authentication: access policies, assignments,
and a real redis-server that accepts exactly the sandbox-signed tokens of assigned principals."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.redis import RedisManagementClient
from azure.mgmt.redis.models import (
    RedisCacheAccessPolicyAssignment,
    RedisCommonPropertiesRedisConfiguration,
    RedisCreateParameters,
    RedisResource,
    RedisUpdateParameters,
    Sku,
)
from azure.mgmt.resource.resources import ResourceManagementClient

from app.sandbox import Sandbox
from app.sandbox.entra_tokens import b64url_decode
from app.sandbox.redis_entra import token_hash
from tests.sandbox.conftest import mgmt, tls_client, unique
from tests.sandbox.redis_tokens import entra_client, mint, new_principal, wait_until

pytestmark = pytest.mark.sandbox

BASIC_C0 = Sku(name="Basic", family="C", capacity=0)
AAD_ON = RedisCommonPropertiesRedisConfiguration(aad_enabled="true")


def _create(
    client: RedisManagementClient, group: str, name: str, **props: object
) -> RedisResource:
    params = RedisCreateParameters(location="westeurope", sku=BASIC_C0, **props)  # type: ignore[arg-type]
    cache: RedisResource = client.redis.begin_create(group, name, params).result()
    return cache


def _assign(
    client: RedisManagementClient, group: str, cache: str, object_id: str,
    policy: str = "Data Contributor", name: str | None = None,
) -> RedisCacheAccessPolicyAssignment:
    params = RedisCacheAccessPolicyAssignment(
        object_id=object_id, object_id_alias="ServicePrincipal", access_policy_name=policy
    )
    poller = client.access_policy_assignment.begin_create_update(
        group, cache, name or object_id.replace("-", ""), params
    )
    result: RedisCacheAccessPolicyAssignment = poller.result()
    return result


def _claims_exp(token: str) -> float:
    return float(json.loads(b64url_decode(token.split(".")[1]))["exp"])


def test_builtin_access_policies(redis_mgmt: RedisManagementClient, group: str) -> None:
    name = unique("entra-")
    _create(redis_mgmt, group, name, redis_configuration=AAD_ON)
    policies = {p.name: p for p in redis_mgmt.access_policy.list(group, name)}
    assert set(policies) == {"Data Owner", "Data Contributor", "Data Reader"}
    assert policies["Data Owner"].permissions == "+@all allkeys"
    assert policies["Data Contributor"].permissions.startswith("+@all -@dangerous")
    assert all(p.type_properties_type == "BuiltIn" for p in policies.values())
    reader = redis_mgmt.access_policy.get(group, name, "Data Reader")
    assert reader.permissions.startswith("+@read +@connection")
    with pytest.raises(ResourceNotFoundError):
        redis_mgmt.access_policy.get(group, name, "accessPolicy1")


def test_entra_settings_refused_as_azure_refuses_them(
    redis_mgmt: RedisManagementClient, group: str
) -> None:
    # Access keys off with Entra off would lock every client out.
    with pytest.raises(HttpResponseError) as keys_off:
        _create(redis_mgmt, group, unique("entra-"), disable_access_key_authentication=True)
    assert keys_off.value.status_code == 400
    assert keys_off.value.error.code == "InvalidRequestBody"
    # Entra needs TLS only.
    with pytest.raises(HttpResponseError) as non_ssl:
        _create(
            redis_mgmt, group, unique("entra-"), redis_configuration=AAD_ON,
            enable_non_ssl_port=True,
        )
    assert "non-SSL connections" in non_ssl.value.message
    # An assignment needs Entra on.
    name = unique("entra-")
    _create(redis_mgmt, group, name)
    with pytest.raises(HttpResponseError) as no_aad:
        _assign(redis_mgmt, group, name, new_principal())
    assert no_aad.value.status_code == 400 and "aad-enabled" in no_aad.value.message
    # Unknown policy, or an object id that is not one.
    redis_mgmt.redis.begin_update(
        group, name, RedisUpdateParameters(redis_configuration=AAD_ON)
    ).result()
    with pytest.raises(HttpResponseError) as policy:
        _assign(redis_mgmt, group, name, new_principal(), policy="Data Admin")
    assert policy.value.status_code == 400
    with pytest.raises(HttpResponseError) as object_id:
        _assign(redis_mgmt, group, name, "not-a-guid", name="bad")
    assert object_id.value.status_code == 400
    assert list(redis_mgmt.access_policy_assignment.list(group, name)) == []


def test_assignment_lets_exactly_the_principals_tokens_in(
    sandbox: Sandbox, redis_mgmt: RedisManagementClient, group: str
) -> None:
    name = unique("entra-")
    cache = _create(
        redis_mgmt, group, name, redis_configuration=AAD_ON,
        disable_access_key_authentication=True,
    )
    assert cache.disable_access_key_authentication is True
    host, port, ca = cache.host_name, cache.ssl_port, sandbox.ca_cert
    principal = new_principal()
    early = mint(sandbox, principal)  # signed before the assignment: counts once it exists
    with pytest.raises(redis.AuthenticationError):
        entra_client(host, port, ca, principal, early).ping()

    poller = redis_mgmt.access_policy_assignment.begin_create_update(
        group, name, "fnidentity",
        RedisCacheAccessPolicyAssignment(
            object_id=principal, object_id_alias="ServicePrincipal",
            access_policy_name="Data Contributor",
        ),
    )
    initial = poller.polling_method()._initial_response.http_response  # type: ignore[attr-defined]
    assert initial.status_code == 201
    assert initial.json()["properties"]["provisioningState"] == "Updating"
    assert "/providers/Microsoft.Cache/locations/westeurope/asyncOperations/" in (
        initial.headers["Azure-AsyncOperation"]
    )
    assigned = poller.result()
    assert assigned.provisioning_state == "Succeeded"
    assert assigned.object_id == principal and assigned.access_policy_name == "Data Contributor"
    assert assigned.type == "Microsoft.Cache/Redis/accessPolicyAssignments"
    got = redis_mgmt.access_policy_assignment.get(group, name, "fnidentity")
    assert got.object_id_alias == "ServicePrincipal"
    assert [a.name for a in redis_mgmt.access_policy_assignment.list(group, name)] == [
        "fnidentity"
    ]

    # The principal's tokens open the cache, with Data Contributor's rights.
    with entra_client(host, port, ca, principal, early) as conn:
        assert conn.set("k", "v") is True and conn.get("k") == b"v"
        with pytest.raises(redis.exceptions.NoPermissionError):
            conn.flushall()
    assert entra_client(host, port, ca, principal, mint(sandbox, principal)).ping()
    # Nothing else does.
    stranger = new_principal()
    refused = {
        "another principal's token": (principal, mint(sandbox, stranger)),
        "a token for another audience": (
            principal, mint(sandbox, principal, audience="https://management.azure.com")
        ),
        "an expired token": (principal, mint(sandbox, principal, lifetime=-60)),
        "a token the sandbox did not sign": (principal, early[:-8] + "AAAAAAAA"),
        "the token under another name": (stranger, early),
    }
    for what, (user, token) in refused.items():
        with pytest.raises(redis.AuthenticationError, match="invalid username-password pair"):
            entra_client(host, port, ca, user, token).ping()
            pytest.fail(f"{what} was accepted")
    # Access keys are off: the key-based default user is refused.
    key = redis_mgmt.redis.list_keys(group, name).primary_key
    with pytest.raises(redis.AuthenticationError):
        tls_client(host, port, ca, key).ping()

    # Deleting the assignment drops the principal's open connection at once.
    connected = entra_client(host, port, ca, principal, early)
    assert connected.ping()
    redis_mgmt.access_policy_assignment.begin_delete(group, name, "fnidentity").result()
    with pytest.raises(redis.ConnectionError):
        connected.ping()
    with pytest.raises(redis.AuthenticationError):
        entra_client(host, port, ca, principal, mint(sandbox, principal)).ping()
    assert list(redis_mgmt.access_policy_assignment.list(group, name)) == []
    with pytest.raises(ResourceNotFoundError):
        redis_mgmt.access_policy_assignment.get(group, name, "fnidentity")


def test_reader_reads_and_tokens_expire(
    sandbox: Sandbox, redis_mgmt: RedisManagementClient, group: str
) -> None:
    name = unique("entra-")
    cache = _create(redis_mgmt, group, name, redis_configuration=AAD_ON)
    host, port, ca = cache.host_name, cache.ssl_port, sandbox.ca_cert
    key = redis_mgmt.redis.list_keys(group, name).primary_key
    with tls_client(host, port, ca, key) as conn:  # keys still work: they are not disabled
        conn.set("shared", "1")
    reader = new_principal()
    _assign(redis_mgmt, group, name, reader, policy="Data Reader")
    with entra_client(host, port, ca, reader, mint(sandbox, reader)) as conn:
        assert conn.get("shared") == b"1"
        with pytest.raises(redis.exceptions.NoPermissionError):
            conn.set("shared", "2")
    # A token stops opening the cache when it expires.
    brief = mint(sandbox, reader, lifetime=2)
    assert entra_client(host, port, ca, reader, brief).ping()

    def refused() -> bool:
        try:
            entra_client(host, port, ca, reader, brief).ping()
        except redis.AuthenticationError:
            return True
        return False

    assert wait_until(refused, timeout=15)
    assert time.time() >= _claims_exp(brief)  # refused because it expired, not before


def test_switching_access_keys_off_closes_connections_and_refuses_keys(
    sandbox: Sandbox, redis_mgmt: RedisManagementClient, group: str
) -> None:
    name = unique("entra-")
    cache = _create(redis_mgmt, group, name, redis_configuration=AAD_ON)
    host, port, ca = cache.host_name, cache.ssl_port, sandbox.ca_cert
    key = redis_mgmt.redis.list_keys(group, name).primary_key
    connected = entra_client(host, port, ca, "default", key)
    assert connected.ping()
    updated = redis_mgmt.redis.begin_update(
        group, name, RedisUpdateParameters(disable_access_key_authentication=True)
    ).result()
    assert updated.disable_access_key_authentication is True
    with pytest.raises(redis.ConnectionError):
        connected.ping()
    with pytest.raises(redis.AuthenticationError):
        tls_client(host, port, ca, key).ping()
    # Entra cannot go off while it is the only way in. (The SDK's update model sends
    # disableAccessKeyAuthentication false unless told otherwise, so say it.)
    with pytest.raises(HttpResponseError) as locked:
        redis_mgmt.redis.begin_update(
            group, name, RedisUpdateParameters(
                redis_configuration=RedisCommonPropertiesRedisConfiguration(aad_enabled="false"),
                disable_access_key_authentication=True,
            ),
        ).result()
    assert locked.value.status_code == 400
    redis_mgmt.redis.begin_update(
        group, name, RedisUpdateParameters(disable_access_key_authentication=False)
    ).result()
    assert tls_client(host, port, ca, key).ping()


def test_entra_users_survive_a_sandbox_restart(tmp_path: Path) -> None:
    principal = new_principal()
    with Sandbox.start(tmp_path, latency="fast") as sb:
        client = mgmt(RedisManagementClient, sb)
        mgmt(ResourceManagementClient, sb).resource_groups.create_or_update(
            "rg-entra", {"location": "westeurope"}
        )
        cache = _create(
            client, "rg-entra", "entra-restart", redis_configuration=AAD_ON,
            disable_access_key_authentication=True,
        )
        _assign(client, "rg-entra", "entra-restart", principal)
        token = mint(sb, principal)
        assert entra_client(cache.host_name, cache.ssl_port, sb.ca_cert, principal, token).ping()
        # The server's own config has the user (with the token's hash, never the token),
        # so a restarted redis-server keeps it.
        config = next((tmp_path / "providers").rglob("entra-restart/redis.conf")).read_text()
        assert f"user {principal} " in config and token_hash(token) in config
        assert token not in config
    with Sandbox.start(tmp_path, latency="fast") as sb:
        client = mgmt(RedisManagementClient, sb)
        cache = client.redis.get("rg-entra", "entra-restart")
        host, port = cache.host_name, cache.ssl_port
        # Tokens of the last run were signed with its key and are gone; new ones work.
        with pytest.raises(redis.AuthenticationError):
            entra_client(host, port, sb.ca_cert, principal, token).ping()
        assert entra_client(host, port, sb.ca_cert, principal, mint(sb, principal)).ping()
        key = client.redis.list_keys("rg-entra", "entra-restart").primary_key
        with pytest.raises(redis.AuthenticationError):
            tls_client(host, port, sb.ca_cert, key).ping()


def test_token_listeners_hear_every_signed_token_and_cannot_break_signing(
    sandbox: Sandbox,
) -> None:
    issuer = sandbox.context.tokens
    heard: list[tuple[str, str]] = []

    def broken(token: str, claims: dict[str, object]) -> None:
        raise RuntimeError("a listener's own failure")

    def record(token: str, claims: dict[str, object]) -> None:
        heard.append((token, str(claims["oid"])))

    issuer.add_listener(broken)
    issuer.add_listener(record)
    try:
        principal = new_principal()
        token = mint(sandbox, principal)
        assert heard == [(token, principal)]
        assert issuer.verify(token)["oid"] == principal
    finally:
        issuer.remove_listener(broken)
        issuer.remove_listener(record)
    mint(sandbox, new_principal())
    assert len(heard) == 1
