"""A function app's managed identity at work: App Service's token endpoint inside the host,
registry pulls that need AcrPull, host storage that needs Storage Blob Data Owner.

Everything is real: the sandbox's hosts run the package,
`azure.identity.ManagedIdentityCredential()` inside it asks the endpoint App Service's
environment names, the role assignments are made with azure-mgmt-authorization, and
the site's log says what App Service and the Functions host say when a right is missing.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ManagedIdentityCredential
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
from azure.mgmt.storage import StorageManagementClient
from azure.mgmt.storage.models import StorageAccountUpdateParameters

from app.paths import resources_dir
from app.sandbox import Sandbox
from app.sandbox.rbac import holds_role, role_definition_id

from .conftest import mgmt, unique
from .test_web import Cloud, registry_settings, site_log, wait_for

TOKEN_APP = """
import base64
import json
import os

import azure.functions as func
from azure.identity import ManagedIdentityCredential

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="hello")
def hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("hello")


@app.route(route="token")
def token(req: func.HttpRequest) -> func.HttpResponse:
    got = ManagedIdentityCredential().get_token("https://redis.azure.com/.default")
    body = got.token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return func.HttpResponse(json.dumps({
        "claims": claims, "token": got.token, "expires_on": got.expires_on,
        "endpoint": os.environ.get("IDENTITY_ENDPOINT"),
        "header": os.environ.get("IDENTITY_HEADER"),
        "msi_endpoint": os.environ.get("MSI_ENDPOINT"),
    }), mimetype="application/json")
"""


def package(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "function_app.py").write_text(TOKEN_APP)
    (root / "host.json").write_text('{"version": "2.0"}\n')
    # What the app imports, as a package must list it: the host has none of its own.
    (root / "requirements.txt").write_text("azure-functions\nazure-identity\n")
    (root / "constraints.txt").write_text(
        (resources_dir() / "function-template" / "constraints.txt").read_text())
    return root


class Rig(Cloud):
    def __init__(self, sb: Any) -> None:
        super().__init__(sb)
        self.auth = mgmt(AuthorizationManagementClient, sb)
        self.storage = mgmt(StorageManagementClient, sb)

    def assign(self, scope: str, principal: str, role: str) -> Any:
        return self.auth.role_assignments.create(
            scope, str(uuid.uuid4()),
            RoleAssignmentCreateParameters(
                role_definition_id=role_definition_id(self.sb.subscription_id, role),
                principal_id=principal, principal_type="ServicePrincipal",
            ),
        )

    def identity_site(
        self, group: str, image: str, settings: dict[str, str], *, acr_identity: bool = False
    ) -> Any:
        plan = self.plan(group)
        return self.web.web_apps.begin_create_or_update(
            group, unique("func-"),
            {"location": "westeurope", "kind": "functionapp,linux,container",
             "identity": {"type": "SystemAssigned"},
             "properties": {"serverFarmId": plan.id, "siteConfig": {
                 "linuxFxVersion": f"DOCKER|{image}",
                 "acrUseManagedIdentityCreds": acr_identity,
                 "appSettings": [{"name": k, "value": v} for k, v in settings.items()]}}},
        ).result()

    def get(self, host: str, route: str) -> requests.Response:
        return requests.get(f"https://{host}/api/{route}", verify=str(self.sb.ca_cert), timeout=30)

    def answers(self, host: str) -> bool:
        return self.get(host, "hello").status_code == 200

    def down(self, host: str) -> bool:
        return self.get(host, "hello").status_code == 503


@pytest.fixture(scope="module")
def rig(sandbox: Sandbox) -> Rig:
    return Rig(sandbox)


def test_managed_identity_endpoint_in_the_host(rig: Rig, group: str, tmp_path: Path) -> None:
    registry, password = rig.registry(group)
    image = f"{registry}.azurecr.io/mi:v1"
    rig.push(package(tmp_path / "app"), image)
    site = rig.identity_site(group, image, registry_settings(registry, password))
    host, principal = site.properties.default_host_name, site.identity.principal_id
    wait_for(lambda: rig.answers(host), what="the host")

    answer = rig.get(host, "token")
    assert answer.status_code == 200, answer.text
    got = answer.json()
    claims = got["claims"]
    assert claims["oid"] == claims["sub"] == principal
    assert claims["tid"] == rig.sb.tenant_id and claims["idtyp"] == "app"
    assert claims["aud"] == "https://redis.azure.com"
    assert claims["iss"] == f"{rig.sb.endpoint}/{rig.sb.tenant_id}/"
    assert claims["xms_mirid"] == site.id
    assert rig.sb.context.tokens.verify(got["token"])["oid"] == principal  # the sandbox signed it
    assert got["endpoint"].startswith("http://127.0.0.1:")
    assert got["msi_endpoint"] == got["endpoint"]

    # The protocol itself: App Service's answer, and a wrong header refused.
    params = {"resource": "https://storage.azure.com/", "api-version": "2019-08-01"}
    ok = requests.get(got["endpoint"], params=params,
                      headers={"X-IDENTITY-HEADER": got["header"]}, timeout=10)
    assert ok.status_code == 200
    body = ok.json()
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert body["resource"] == "https://storage.azure.com/" and body["token_type"] == "Bearer"
    assert int(body["expires_on"]) > 0 and body["client_id"] == claims["appid"]
    wrong = requests.get(got["endpoint"], params=params,
                         headers={"X-IDENTITY-HEADER": "nope"}, timeout=10)
    assert wrong.status_code == 401

    # A restart rotates the header: the old one opens nothing any more.
    rig.web.web_apps.restart(group, site.name, synchronous=True)
    wait_for(lambda: rig.answers(host), what="the restarted host")
    fresh = rig.get(host, "token").json()
    assert fresh["header"] != got["header"] and fresh["claims"]["oid"] == principal
    stale = requests.get(got["endpoint"], params=params,
                         headers={"X-IDENTITY-HEADER": got["header"]}, timeout=10)
    assert stale.status_code == 401


def test_managed_identity_credential_with_app_service_environment(
    rig: Rig, group: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same env outside the host: the real credential, unchanged, and a wrong secret."""
    registry, password = rig.registry(group)
    image = f"{registry}.azurecr.io/mi:v1"
    rig.push(package(tmp_path / "app"), image)
    site = rig.identity_site(group, image, registry_settings(registry, password))
    host = site.properties.default_host_name
    wait_for(lambda: rig.answers(host), what="the host")
    env = rig.get(host, "token").json()
    for name in ("IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", env["endpoint"])
    monkeypatch.setenv("IDENTITY_HEADER", env["header"])
    token = ManagedIdentityCredential().get_token("https://management.azure.com/.default")
    claims = rig.sb.context.tokens.verify(token.token)
    assert claims["oid"] == site.identity.principal_id
    assert claims["aud"] == "https://management.azure.com"
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-secret")
    with pytest.raises(ClientAuthenticationError):
        ManagedIdentityCredential().get_token("https://vault.azure.net/.default")


def test_pull_with_identity_needs_acr_pull(rig: Rig, group: str, tmp_path: Path) -> None:
    registry = rig.acr.registries.begin_create(
        group, unique("acr"), {"location": "westeurope", "sku": {"name": "Basic"},
                               "properties": {"adminUserEnabled": False}}).result()
    image = f"{registry.name}.azurecr.io/mi:v1"
    rig.push(package(tmp_path / "app"), image)
    site = rig.identity_site(group, image, {}, acr_identity=True)
    host, principal = site.properties.default_host_name, site.identity.principal_id
    wait_for(lambda: "unauthorized: authentication required" in site_log(rig.sb, site.name),
             what="the refused pull")
    assert rig.down(host)

    # AcrPull at the registry: the site starts by itself once the assignment takes effect.
    assignment = rig.assign(registry.id, principal, "AcrPull")
    wait_for(lambda: rig.answers(host), what="the pull with AcrPull")

    # Without it, the next pull (a restart) fails again.
    rig.auth.role_assignments.delete(registry.id, assignment.name)
    before = site_log(rig.sb, site.name).count("unauthorized: authentication required")
    rig.web.web_apps.restart(group, site.name, synchronous=True)
    wait_for(lambda: site_log(rig.sb, site.name).count(
        "unauthorized: authentication required") > before, what="the pull refused again")
    wait_for(lambda: rig.down(host), what="503 after the refused pull")

    # A role above the registry (Contributor on the group) also lets it pull.
    rig.assign(f"/subscriptions/{rig.sb.subscription_id}/resourceGroups/{group}",
               principal, "Contributor")
    wait_for(lambda: rig.answers(host), what="the pull with Contributor on the group")


def test_host_storage_needs_blob_data_owner(rig: Rig, group: str, tmp_path: Path) -> None:
    registry, password = rig.registry(group)
    image = f"{registry}.azurecr.io/mi:v1"
    rig.push(package(tmp_path / "app"), image)
    account = unique("st")[:20]
    created = rig.storage.storage_accounts.begin_create(
        group, account, {"location": "westeurope", "sku": {"name": "Standard_LRS"},
                         "kind": "StorageV2"}).result()
    settings = {
        **registry_settings(registry, password), "AzureWebJobsStorage__accountName": account
    }
    site = rig.identity_site(group, image, settings)
    host, principal = site.properties.default_host_name, site.identity.principal_id
    wait_for(lambda: "ErrorCode: AuthorizationPermissionMismatch" in site_log(rig.sb, site.name),
             what="the refused storage")
    assert "This request is not authorized to perform this operation using this permission." in (
        site_log(rig.sb, site.name))
    assert rig.down(host)
    assert not holds_role(rig.sb.context.store, principal, created.id, ["Storage Blob Data Owner"])

    rig.assign(created.id, principal, "Storage Blob Data Owner")
    wait_for(lambda: rig.answers(host), what="the host with Storage Blob Data Owner")


def test_host_storage_with_a_connection_string(rig: Rig, group: str, tmp_path: Path) -> None:
    registry, password = rig.registry(group)
    image = f"{registry}.azurecr.io/mi:v1"
    rig.push(package(tmp_path / "app"), image)
    account = unique("st")[:20]
    rig.storage.storage_accounts.begin_create(
        group, account, {"location": "westeurope", "sku": {"name": "Standard_LRS"},
                         "kind": "StorageV2"}).result()
    key = rig.storage.storage_accounts.list_keys(group, account).keys_property[0].value

    def connection(secret: str) -> str:
        return (f"DefaultEndpointsProtocol=https;AccountName={account};AccountKey={secret};"
                "EndpointSuffix=core.windows.net")

    base = registry_settings(registry, password)
    site = rig.identity_site(group, image, {**base, "AzureWebJobsStorage": connection("bad" + key)})
    host = site.properties.default_host_name
    wait_for(lambda: "ErrorCode: AuthenticationFailed" in site_log(rig.sb, site.name),
             what="the wrong key refused")
    assert rig.down(host)

    def settings(value: str) -> None:
        rig.web.web_apps.update_application_settings(
            group, site.name, {"properties": {**base, "AzureWebJobsStorage": value}})

    settings(connection(key))
    wait_for(lambda: rig.answers(host), what="the host with the account key")

    updated = rig.storage.storage_accounts.update(
        group, account, StorageAccountUpdateParameters(allow_shared_key_access=False))
    assert updated.allow_shared_key_access is False
    rig.web.web_apps.restart(group, site.name, synchronous=True)
    wait_for(lambda: "ErrorCode: KeyBasedAuthenticationNotPermitted" in site_log(
        rig.sb, site.name), what="shared key access refused")
    wait_for(lambda: rig.down(host), what="503 without shared key access")
    assert key not in site_log(rig.sb, site.name)  # secrets stay out of the log


def test_assignments_take_effect_after_the_propagation_delay(tmp_path: Path) -> None:
    """On a slower profile a new assignment is stored at once but counts only later."""
    with Sandbox.start(tmp_path / "s", latency=0.25) as sb:
        rig = Rig(sb)
        rig.rm.resource_groups.create_or_update("rg-delay", {"location": "westeurope"})
        scope = f"/subscriptions/{sb.subscription_id}/resourceGroups/rg-delay"
        user = sb.context.directory.home.user_object_id
        rig.auth.role_assignments.create(scope, str(uuid.uuid4()), RoleAssignmentCreateParameters(
            role_definition_id=role_definition_id(sb.subscription_id, "Reader"),
            principal_id=user))
        assert not holds_role(sb.context.store, user, scope, ["Reader"])
        wait_for(lambda: holds_role(sb.context.store, user, scope, ["Reader"]), timeout=10,
                 what="the assignment to take effect")
        assert json.dumps(sb.context.store.role_assignments()[0]["body"])  # stored as ARM JSON
