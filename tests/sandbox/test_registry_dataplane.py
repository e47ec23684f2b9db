"""A registry's data plane at its own `loginServer`, with ACR's authentication.

Driven by the real `azure-containerregistry` client (which runs the token
exchange by itself from the 401 challenge) and by `requests`, step by step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from azure.containerregistry import ContainerRegistryClient
from azure.core.exceptions import ClientAuthenticationError
from azure.mgmt.containerregistry import ContainerRegistryManagementClient

from app.sandbox import Sandbox
from app.sandbox.registry import push_package

from .conftest import mgmt, unique


@pytest.fixture(scope="module")
def acr(sandbox: Sandbox) -> ContainerRegistryManagementClient:
    return mgmt(ContainerRegistryManagementClient, sandbox)


def write_package(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "host.json").write_text('{"version": "2.0"}\n')
    (root / "function_app.py").write_text("\n")
    return root


def registry_with_image(
    sandbox: Sandbox, acr: ContainerRegistryManagementClient, group: str, tmp_path: Path,
    admin: bool = True,
) -> tuple[str, str]:
    """A registry holding ml/score:v1 and :v2; returns (name, loginServer)."""
    name = unique("acr")
    created = acr.registries.begin_create(
        group, name,
        {"location": "westeurope", "sku": {"name": "Basic"},
         "properties": {"adminUserEnabled": admin}},
    ).result()
    for tag in ("v1", "v2"):
        push_package(write_package(tmp_path / tag), f"{name}.azurecr.io/ml/score:{tag}",
                     endpoint=sandbox.endpoint, ca_cert=sandbox.ca_cert, token=sandbox.token)
    return name, created.properties.login_server


def exchange(sb: Any, server: str, scope: str) -> str:
    verify = str(sb.ca_cert)
    refresh = requests.post(
        f"https://{server}/oauth2/exchange",
        data={"grant_type": "access_token", "service": server, "access_token": sb.token,
              "tenant": sb.context.store.tenant_id},
        verify=verify, timeout=30,
    )
    assert refresh.status_code == 200, refresh.text
    token = requests.post(
        f"https://{server}/oauth2/token",
        data={"grant_type": "refresh_token", "service": server, "scope": scope,
              "refresh_token": refresh.json()["refresh_token"]},
        verify=verify, timeout=30,
    )
    assert token.status_code == 200, token.text
    return str(token.json()["access_token"])


def test_the_sdk_lists_repositories_and_tags(
    sandbox: Sandbox, acr: ContainerRegistryManagementClient, group: str, tmp_path: Path
) -> None:
    _, server = registry_with_image(sandbox, acr, group, tmp_path, admin=False)
    client = ContainerRegistryClient(
        endpoint=f"https://{server}",
        credential=sandbox.credential(),
        audience="https://management.azure.com",
        connection_verify=str(sandbox.ca_cert),
    )
    with client:
        assert list(client.list_repository_names()) == ["ml/score"]
        tags = list(client.list_tag_properties("ml/score"))
        assert sorted(t.name for t in tags) == ["v1", "v2"]
        assert all(t.digest.startswith("sha256:") for t in tags)


def test_the_sdk_with_a_wrong_token_is_refused(
    sandbox: Sandbox, acr: ContainerRegistryManagementClient, group: str, tmp_path: Path
) -> None:
    _, server = registry_with_image(sandbox, acr, group, tmp_path)

    class Wrong:
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            from azure.core.credentials import AccessToken

            return AccessToken("not-the-sandbox-token", 2**31)

    client = ContainerRegistryClient(
        endpoint=f"https://{server}", credential=Wrong(),  # type: ignore[arg-type]
        audience="https://management.azure.com", connection_verify=str(sandbox.ca_cert),
    )
    with client, pytest.raises(ClientAuthenticationError):
        list(client.list_repository_names())


def test_unauthenticated_requests_get_acr_s_challenge(
    sandbox: Sandbox, acr: ContainerRegistryManagementClient, group: str, tmp_path: Path
) -> None:
    _, server = registry_with_image(sandbox, acr, group, tmp_path)
    verify = str(sandbox.ca_cert)
    base = requests.get(f"https://{server}/v2/", verify=verify, timeout=30)
    assert base.status_code == 401
    assert base.headers["WWW-Authenticate"] == (
        f'Bearer realm="https://{server}/oauth2/token",service="{server}"'
    )
    tags = requests.get(f"https://{server}/v2/ml/score/tags/list", verify=verify, timeout=30)
    assert tags.status_code == 401
    assert tags.headers["WWW-Authenticate"] == (
        f'Bearer realm="https://{server}/oauth2/token",service="{server}",'
        'scope="repository:ml/score:pull"'
    )
    [error] = tags.json()["errors"]
    assert error["code"] == "UNAUTHORIZED"
    assert error["detail"] == [{"Type": "repository", "Name": "ml/score", "Action": "pull"}]


def test_token_exchange_then_bearer(
    sandbox: Sandbox, acr: ContainerRegistryManagementClient, group: str, tmp_path: Path
) -> None:
    _, server = registry_with_image(sandbox, acr, group, tmp_path)
    verify = str(sandbox.ca_cert)
    pull = exchange(sandbox, server, "repository:ml/score:pull,push")
    listed = requests.get(f"https://{server}/v2/ml/score/tags/list",
                          headers={"Authorization": f"Bearer {pull}"}, verify=verify, timeout=30)
    assert listed.status_code == 200
    assert listed.json() == {"name": "ml/score", "tags": ["v1", "v2"]}
    manifest = requests.head(f"https://{server}/v2/ml/score/manifests/v1",
                             headers={"Authorization": f"Bearer {pull}"}, verify=verify,
                             timeout=30)
    assert manifest.status_code == 200
    assert manifest.headers["Docker-Content-Digest"].startswith("sha256:")
    # That token is for one repository: the catalog asks for its own scope.
    catalog = requests.get(f"https://{server}/v2/_catalog",
                           headers={"Authorization": f"Bearer {pull}"}, verify=verify, timeout=30)
    assert catalog.status_code == 401
    assert 'scope="registry:catalog:*",error="insufficient_scope"' in catalog.headers[
        "WWW-Authenticate"
    ]
    token = exchange(sandbox, server, "registry:catalog:*")
    catalog = requests.get(f"https://{server}/v2/_catalog",
                           headers={"Authorization": f"Bearer {token}"}, verify=verify, timeout=30)
    assert catalog.json() == {"repositories": ["ml/score"]}


def test_exchange_refuses_a_foreign_token_and_service(
    sandbox: Sandbox, acr: ContainerRegistryManagementClient, group: str, tmp_path: Path
) -> None:
    _, server = registry_with_image(sandbox, acr, group, tmp_path)
    verify = str(sandbox.ca_cert)
    wrong = requests.post(
        f"https://{server}/oauth2/exchange",
        data={"grant_type": "access_token", "service": server, "access_token": "nope"},
        verify=verify, timeout=30,
    )
    assert wrong.status_code == 401
    other = requests.post(
        f"https://{server}/oauth2/exchange",
        data={"grant_type": "access_token", "service": "other.azurecr.io",
              "access_token": sandbox.token},
        verify=verify, timeout=30,
    )
    assert other.status_code == 400
    forged = requests.get(f"https://{server}/v2/_catalog",
                          headers={"Authorization": f"Bearer {sandbox.token}"},
                          verify=verify, timeout=30)
    # An Entra token is not an ACR access token: it must be exchanged first.
    assert forged.status_code == 401
    assert 'error="invalid_token"' in forged.headers["WWW-Authenticate"]


def test_basic_auth_with_the_admin_user_until_it_is_disabled(
    sandbox: Sandbox, acr: ContainerRegistryManagementClient, group: str, tmp_path: Path
) -> None:
    name, server = registry_with_image(sandbox, acr, group, tmp_path)
    verify = str(sandbox.ca_cert)
    password = acr.registries.list_credentials(group, name).passwords[0].value
    answer = requests.get(f"https://{server}/v2/_catalog", auth=(name, password),
                          verify=verify, timeout=30)
    assert answer.status_code == 200
    assert answer.json() == {"repositories": ["ml/score"]}
    wrong = requests.get(f"https://{server}/v2/_catalog", auth=(name, "nope"), verify=verify,
                         timeout=30)
    assert wrong.status_code == 401

    acr.registries.begin_update(group, name, {"properties": {"adminUserEnabled": False}}).result()
    assert acr.registries.get(group, name).properties.admin_user_enabled is False
    refused = requests.get(f"https://{server}/v2/_catalog", auth=(name, password),
                           verify=verify, timeout=30)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer realm=")
    # The token exchange still works without the admin user.
    token = exchange(sandbox, server, "registry:catalog:*")
    ok = requests.get(f"https://{server}/acr/v1/_catalog",
                      headers={"Authorization": f"Bearer {token}"}, verify=verify, timeout=30)
    assert ok.status_code == 200 and ok.json() == {"repositories": ["ml/score"]}


def test_the_registry_keeps_its_port_across_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Sandbox.start(state) as sb:
        from azure.mgmt.resource.resources import ResourceManagementClient

        mgmt(ResourceManagementClient, sb).resource_groups.create_or_update(
            "rg", {"location": "westeurope"}
        )
        client = mgmt(ContainerRegistryManagementClient, sb)
        name = unique("acr")
        server = client.registries.begin_create(
            "rg", name, {"location": "westeurope", "sku": {"name": "Basic"}}
        ).result().properties.login_server
    with Sandbox.start(state) as sb:
        client = mgmt(ContainerRegistryManagementClient, sb)
        assert client.registries.get("rg", name).properties.login_server == server
        answer = requests.get(f"https://{server}/v2/", verify=str(sb.ca_cert), timeout=30)
        assert answer.status_code == 401
        client.registries.begin_delete("rg", name).result()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"https://{server}/v2/", verify=str(sb.ca_cert), timeout=5)
