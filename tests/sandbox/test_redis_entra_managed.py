"""Azure Managed Redis with Microsoft Entra: database access-policy assignments through
azure-mgmt-redisenterprise, enforced by the database's redis-server, and the scoring
template's Entra branch running against it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.redisenterprise import RedisEnterpriseManagementClient
from azure.mgmt.redisenterprise.models import (
    AccessPolicyAssignment,
    AccessPolicyAssignmentPropertiesUser,
    Cluster,
    Database,
    DatabaseUpdate,
    Sku,
)

from app.paths import resources_dir
from app.sandbox import Sandbox
from tests.sandbox.conftest import client_kwargs, mgmt, tls_client, unique
from tests.sandbox.redis_tokens import SandboxTokens, entra_client, mint, new_principal

pytestmark = pytest.mark.sandbox

# The template's modules import each other by bare name, as in a deployed package.
TEMPLATE_DIR = str(resources_dir() / "function-template")
if TEMPLATE_DIR not in sys.path:
    sys.path.append(TEMPLATE_DIR)


@pytest.fixture(scope="module")
def amr(sandbox: Sandbox) -> RedisEnterpriseManagementClient:
    return mgmt(RedisEnterpriseManagementClient, sandbox)


@pytest.fixture
def database(
    amr: RedisEnterpriseManagementClient, group: str
) -> Iterator[tuple[str, Database]]:
    """A Balanced_B0 cluster and its `default` database as a default deploy makes them:
    nothing said about access keys, so (api-version 2025-07-01) they are off."""
    name = unique("amr-")
    amr.redis_enterprise.begin_create(
        group, name,
        Cluster(
            location="westeurope", sku=Sku(name="Balanced_B0"), public_network_access="Enabled"
        ),
    ).result()
    created = amr.databases.begin_create(
        group, name, "default", Database(clustering_policy="NoCluster")
    ).result()
    yield name, created


def _assignment(object_id: str, policy: str = "default") -> AccessPolicyAssignment:
    return AccessPolicyAssignment(
        access_policy_name=policy, user=AccessPolicyAssignmentPropertiesUser(object_id=object_id)
    )


def test_assignment_crud_and_enforcement(
    sandbox: Sandbox,
    amr: RedisEnterpriseManagementClient,
    group: str,
    database: tuple[str, Database],
) -> None:
    cluster, db = database
    assert db.access_keys_authentication == "Disabled"
    host, port, ca = "127.0.0.1", db.port, sandbox.ca_cert
    keys = amr.databases.list_keys(group, cluster, "default")
    with pytest.raises(redis.AuthenticationError):
        tls_client(host, port, ca, keys.primary_key).ping()
    principal = new_principal()
    token = mint(sandbox, principal)
    with pytest.raises(redis.AuthenticationError):
        entra_client(host, port, ca, principal, token).ping()

    poller = amr.access_policy_assignment.begin_create_update(
        group, cluster, "default", "fnidentity", _assignment(principal)
    )
    initial = poller.polling_method()._initial_response.http_response  # type: ignore[attr-defined]
    assert initial.status_code == 201
    assert "/providers/Microsoft.Cache/locations/westeurope/operationsStatus/" in (
        initial.headers["Azure-AsyncOperation"]
    )
    assigned = poller.result()
    assert assigned.provisioning_state == "Succeeded"
    assert assigned.access_policy_name == "default" and assigned.user.object_id == principal
    assert assigned.id.endswith(f"/{cluster}/databases/default/accessPolicyAssignments/fnidentity")
    got = amr.access_policy_assignment.get(group, cluster, "default", "fnidentity")
    assert got.user.object_id == principal
    listed = list(amr.access_policy_assignment.list(group, cluster, "default"))
    assert [a.name for a in listed] == ["fnidentity"]

    # `default` gives what a key gives: everything.
    with entra_client(host, port, ca, principal, token) as conn:
        assert conn.set("k", "v") is True and conn.get("k") == b"v"
        assert conn.flushall() is True
    for user, wrong in (
        (principal, mint(sandbox, new_principal())),
        (principal, mint(sandbox, principal, audience="https://storage.azure.com")),
        (principal, mint(sandbox, principal, lifetime=-1)),
    ):
        with pytest.raises(redis.AuthenticationError):
            entra_client(host, port, ca, user, wrong).ping()
    # The application-id audience is Redis's too.
    assert entra_client(
        host, port, ca, principal,
        mint(sandbox, principal, audience="acca5fbb-b7e4-4009-81f1-37e38fd66d78"),
    ).ping()

    # Refusals.
    with pytest.raises(HttpResponseError) as policy:
        amr.access_policy_assignment.begin_create_update(
            group, cluster, "default", "other", _assignment(new_principal(), "Data Owner")
        ).result()
    assert policy.value.status_code == 400 and policy.value.error.code == "BadRequest"
    with pytest.raises(HttpResponseError) as object_id:
        amr.access_policy_assignment.begin_create_update(
            group, cluster, "default", "other", _assignment("someone")
        ).result()
    assert object_id.value.status_code == 400

    # Deleting it drops the principal's connection at once.
    connected = entra_client(host, port, ca, principal, token)
    assert connected.ping()
    delete = amr.access_policy_assignment.begin_delete(group, cluster, "default", "fnidentity")
    first = delete.polling_method()._initial_response.http_response  # type: ignore[attr-defined]
    assert first.status_code == 202 and "Location" in first.headers
    with pytest.raises(redis.ConnectionError):
        connected.ping()
    delete.result()
    with pytest.raises(ResourceNotFoundError):
        amr.access_policy_assignment.get(group, cluster, "default", "fnidentity")
    with pytest.raises(redis.AuthenticationError):
        entra_client(host, port, ca, principal, mint(sandbox, principal)).ping()
    # Deleting what is not there is a 204, which the SDK takes as done.
    amr.access_policy_assignment.begin_delete(group, cluster, "default", "fnidentity").result()


def test_access_keys_default_follows_the_api_version(
    sandbox: Sandbox, group: str
) -> None:
    older = RedisEnterpriseManagementClient(
        sandbox.credential(), sandbox.subscription_id, api_version="2025-04-01",
        **client_kwargs(sandbox),
    )
    name = unique("amr-")
    older.redis_enterprise.begin_create(
        group, name,
        Cluster(
            location="westeurope", sku=Sku(name="Balanced_B0"), public_network_access="Enabled"
        ),
    ).result()
    db = older.databases.begin_create(group, name, "default", Database()).result()
    # Before 2025-07-01 a database without the property had access keys on.
    assert db.access_keys_authentication == "Enabled"
    keys = older.databases.list_keys(group, name, "default")
    assert tls_client("127.0.0.1", db.port, sandbox.ca_cert, keys.primary_key).ping()


def test_switching_keys_off_ends_every_connection(
    sandbox: Sandbox,
    amr: RedisEnterpriseManagementClient,
    group: str,
    database: tuple[str, Database],
) -> None:
    cluster, db = database
    principal = new_principal()
    amr.access_policy_assignment.begin_create_update(
        group, cluster, "default", "fnidentity", _assignment(principal)
    ).result()
    amr.databases.begin_update(
        group, cluster, "default", DatabaseUpdate(access_keys_authentication="Enabled")
    ).result()
    key = amr.databases.list_keys(group, cluster, "default").primary_key
    by_key = entra_client("127.0.0.1", db.port, sandbox.ca_cert, "default", key)
    by_token = entra_client(
        "127.0.0.1", db.port, sandbox.ca_cert, principal, mint(sandbox, principal)
    )
    assert by_key.ping() and by_token.ping()
    amr.databases.begin_update(
        group, cluster, "default", DatabaseUpdate(access_keys_authentication="Disabled")
    ).result()
    for conn in (by_key, by_token):
        with pytest.raises(redis.ConnectionError):
            conn.ping()
    # The token still opens a new connection; the key does not.
    assert entra_client(
        "127.0.0.1", db.port, sandbox.ca_cert, principal, mint(sandbox, principal)
    ).ping()
    with pytest.raises(redis.AuthenticationError):
        tls_client("127.0.0.1", db.port, sandbox.ca_cert, key).ping()


def test_scoring_template_connects_with_the_identity_token(
    sandbox: Sandbox,
    amr: RedisEnterpriseManagementClient,
    group: str,
    database: tuple[str, Database],
) -> None:
    import cache_aside

    cluster, db = database
    principal = new_principal()
    settings = cache_aside.RedisSettings.from_environment({
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(db.port),
        "REDIS_AUTH": "entra",
        "REDIS_USERNAME": principal,
        "REDIS_CA_BUNDLE": str(sandbox.ca_cert),
    })
    assert settings is not None
    credential = SandboxTokens(sandbox, principal)
    calls: list[Any] = []

    def model(raw: str) -> Any:
        calls.append(raw)
        return {"predictions": [1]}

    cache = cache_aside.RedisCache(settings, credential=credential)
    scorer = cache_aside.CacheAsideScorer(model, "v1", cache)
    try:
        # No assignment yet: the token is refused and the request bypasses the cache.
        first = scorer.score(b'{"data": [1]}')
        assert first.cache == "BYPASS" and "authentication failed" in first.cache_detail
        amr.access_policy_assignment.begin_create_update(
            group, cluster, "default", "fnidentity", _assignment(principal)
        ).result()
        cache.ping()  # reconnects (and closes the breaker) with a fresh token
        assert scorer.score(b'{"data": [2]}').cache == "MISS"
        assert scorer.score(b'{"data": [2]}').cache == "HIT"
        assert credential.scopes[-1] == ("https://redis.azure.com/.default",)
        # Removing the assignment: the function loses the cache at once.
        amr.access_policy_assignment.begin_delete(
            group, cluster, "default", "fnidentity"
        ).result()
        lost = scorer.score(b'{"data": [2]}')
        assert lost.cache == "BYPASS" and lost.cache_detail.startswith("cache unavailable")
        assert len(calls) == 3  # the first miss, the stored one, and the lost one
    finally:
        cache.close()
