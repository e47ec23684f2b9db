"""Signing in to the sandbox with the real azure-identity credentials, as to Entra ID.

The only thing replaced is the browser (there is none here): `webbrowser.open`
hands the authorize URL to the sandbox's scripted browser, which signs in as the
sandbox user. Every socket the process opens during these tests is checked to
go to the loopback interface: nothing asks login.microsoftonline.com.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import socket
import sys
import threading
import webbrowser
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import DeviceCodeCredential, InteractiveBrowserCredential
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.resource.subscriptions import SubscriptionClient

from app.sandbox import Sandbox
from app.sandbox.signin_browser import SignInFailed
from tests.sandbox.conftest import POLL, unique

pytestmark = pytest.mark.sandbox

# Azure CLI's public client id: any id works, the sandbox has no app registrations.
CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
ARM_SCOPE = "https://management.azure.com/.default"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

_audit: dict[str, Any] = {"on": False, "hosts": []}


def _audit_hook(event: str, args: tuple[Any, ...]) -> None:
    if not _audit["on"]:
        return
    if event == "socket.getaddrinfo":
        _audit["hosts"].append(str(args[0]))
    elif event == "socket.connect":
        sock, address = args[0], args[1]
        if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
            _audit["hosts"].append(str(address[0]))


sys.addaudithook(_audit_hook)


@pytest.fixture(autouse=True)
def only_loopback() -> Iterator[None]:
    """Every name looked up and every address connected to stays on this machine."""
    _audit["hosts"] = []
    _audit["on"] = True
    try:
        yield
    finally:
        _audit["on"] = False
    assert _audit["hosts"], "the audit hook saw no connection at all"
    assert set(_audit["hosts"]) <= LOOPBACK, set(_audit["hosts"]) - LOOPBACK


def _claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _guest(sb: Sandbox) -> tuple[str, str]:
    guest = sb.guest_tenant
    assert guest is not None
    return guest.tenant_id, guest.subscriptions[0]


def _arm_kwargs(sb: Sandbox) -> dict[str, Any]:
    return {
        "base_url": sb.endpoint,
        "credential_scopes": [ARM_SCOPE],
        "connection_verify": str(sb.ca_cert),
        "polling_interval": POLL,
    }


class TenantToken:
    """A credential's tokens for one tenant: what azure-identity does for a client that
    passes `tenant_id` (MSAL redeems the refresh token at that tenant's endpoint)."""

    def __init__(self, credential: Any, tenant_id: str) -> None:
        self.credential = credential
        self.tenant_id = tenant_id

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        kwargs["tenant_id"] = self.tenant_id
        return self.credential.get_token(*scopes, **kwargs)  # type: ignore[no-any-return]


# discovery


def test_openid_configuration_has_entras_shape(sandbox: Sandbox) -> None:
    ca = str(sandbox.ca_cert)
    tenant = sandbox.tenant_id
    for key in (tenant, "sandbox.onmicrosoft.com"):
        url = f"{sandbox.authority}/{key}/v2.0/.well-known/openid-configuration"
        doc = requests.get(url, verify=ca, timeout=10).json()
        base = f"{sandbox.authority}/{tenant}"  # a domain resolves to the tenant id
        assert doc["issuer"] == f"{base}/v2.0"
        assert doc["token_endpoint"] == f"{base}/oauth2/v2.0/token"
        assert doc["authorization_endpoint"] == f"{base}/oauth2/v2.0/authorize"
        assert doc["device_authorization_endpoint"] == f"{base}/oauth2/v2.0/devicecode"
        assert doc["end_session_endpoint"] == f"{base}/oauth2/v2.0/logout"
        assert doc["jwks_uri"] == f"{base}/discovery/v2.0/keys"
        assert "form_post" in doc["response_modes_supported"]
        assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    organizations = requests.get(
        f"{sandbox.authority}/organizations/v2.0/.well-known/openid-configuration",
        verify=ca,
        timeout=10,
    ).json()
    assert organizations["issuer"] == f"{sandbox.authority}/{{tenantid}}/v2.0"
    keys = requests.get(f"{sandbox.authority}/{tenant}/discovery/v2.0/keys", verify=ca, timeout=10)
    (key,) = keys.json()["keys"]
    assert key["kty"] == "RSA" and key["use"] == "sig" and key["kid"]
    unknown = requests.get(
        f"{sandbox.authority}/nosuchtenant.onmicrosoft.com/v2.0/.well-known/openid-configuration",
        verify=ca,
        timeout=10,
    )
    assert unknown.status_code == 400
    body = unknown.json()
    assert body["error"] == "invalid_tenant" and body["error_codes"] == [90002]
    assert body["error_description"].startswith("AADSTS90002: Tenant 'nosuchtenant")


# device code flow on the wire


def test_device_code_is_pending_until_approved_then_redeemed_once(sandbox: Sandbox) -> None:
    ca = str(sandbox.ca_cert)
    base = f"{sandbox.authority}/{sandbox.tenant_id}/oauth2/v2.0"
    scope = f"{ARM_SCOPE} openid profile offline_access"
    flow = requests.post(
        f"{base}/devicecode", data={"client_id": CLIENT_ID, "scope": scope}, verify=ca, timeout=10
    ).json()
    assert set(flow) == {
        "device_code", "user_code", "verification_uri", "expires_in", "interval", "message"
    }
    assert flow["verification_uri"] == f"{sandbox.authority}/devicelogin"
    assert flow["user_code"] in flow["message"]
    poll = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "client_id": CLIENT_ID,
        "device_code": flow["device_code"],
        "client_info": "1",
    }
    pending = requests.post(f"{base}/token", data=poll, verify=ca, timeout=10)
    assert pending.status_code == 400
    body = pending.json()
    assert body["error"] == "authorization_pending" and body["error_codes"] == [70016]
    assert body["error_description"].startswith("AADSTS70016: ")
    assert {"timestamp", "trace_id", "correlation_id"} <= set(body)

    with pytest.raises(SignInFailed, match="AADSTS50126"):
        dataclasses.replace(sandbox.connection, password="not-the-password").approve_device_code(
            flow["user_code"]
        )
    sandbox.approve_device_code(flow["user_code"])

    tokens = requests.post(f"{base}/token", data=poll, verify=ca, timeout=10)
    assert tokens.status_code == 200, tokens.text
    answer = tokens.json()
    assert answer["token_type"] == "Bearer"
    assert ARM_SCOPE in answer["scope"].split()
    assert {"access_token", "refresh_token", "id_token", "client_info", "expires_in"} <= set(answer)
    access = _claims(answer["access_token"])
    assert access["tid"] == sandbox.tenant_id
    assert access["aud"] == "https://management.azure.com"
    assert access["iss"] == f"{sandbox.authority}/{sandbox.tenant_id}/"
    ident = _claims(answer["id_token"])
    assert ident["aud"] == CLIENT_ID and ident["preferred_username"] == sandbox.username
    assert ident["iss"] == f"{sandbox.authority}/{sandbox.tenant_id}/v2.0"
    again = requests.post(f"{base}/token", data=poll, verify=ca, timeout=10)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_tokens_the_sandbox_did_not_sign_are_refused(sandbox: Sandbox) -> None:
    ca = str(sandbox.ca_cert)
    base = f"{sandbox.authority}/{sandbox.tenant_id}/oauth2/v2.0"
    flow = requests.post(
        f"{base}/devicecode", data={"client_id": CLIENT_ID, "scope": ARM_SCOPE}, verify=ca,
        timeout=10,
    ).json()
    sandbox.approve_device_code(flow["user_code"])
    answer = requests.post(
        f"{base}/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "client_id": CLIENT_ID,
            "device_code": flow["device_code"],
        },
        verify=ca,
        timeout=10,
    ).json()
    header, payload, signature = answer["access_token"].split(".")
    forged = header + "." + payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB")
    url = f"{sandbox.endpoint}/subscriptions?api-version=2022-12-01"
    ok = requests.get(url, headers={"Authorization": f"Bearer {answer['access_token']}"},
                      verify=ca, timeout=10)
    assert ok.status_code == 200
    refused = requests.get(url, headers={"Authorization": f"Bearer {forged}.{signature}"},
                           verify=ca, timeout=10)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "InvalidAuthenticationToken"


# the real credentials


def test_device_code_credential_lists_each_tenants_subscriptions(sandbox: Sandbox) -> None:
    guest_tenant, guest_sub = _guest(sandbox)
    prompts: list[str] = []

    def approve(verification_uri: str, user_code: str, expires_on: Any) -> None:
        # What a person does with the printed message: open the page, type the code.
        assert verification_uri == f"{sandbox.authority}/devicelogin"
        prompts.append(user_code)
        sandbox.approve_device_code(user_code)

    credential = DeviceCodeCredential(
        tenant_id=sandbox.tenant_id,
        client_id=CLIENT_ID,
        prompt_callback=approve,
        additionally_allowed_tenants=["*"],
        **sandbox.identity_kwargs(),
    )
    home = SubscriptionClient(credential, **_arm_kwargs(sandbox))
    assert {t.tenant_id for t in home.tenants.list()} == {sandbox.tenant_id, guest_tenant}
    assert [s.subscription_id for s in home.subscriptions.list()] == [sandbox.subscription_id]
    token = credential.get_token(ARM_SCOPE)
    assert _claims(token.token)["tid"] == sandbox.tenant_id

    # The guest tenant's token comes from the refresh token: no second sign-in.
    in_guest = TenantToken(credential, guest_tenant)
    guest = SubscriptionClient(in_guest, **_arm_kwargs(sandbox))
    subs = list(guest.subscriptions.list())
    assert [(s.subscription_id, s.tenant_id) for s in subs] == [(guest_sub, guest_tenant)]
    assert prompts and len(prompts) == 1
    guest_token = in_guest.get_token(ARM_SCOPE)
    assert _claims(guest_token.token)["tid"] == guest_tenant
    assert _claims(guest_token.token)["oid"] != _claims(token.token)["oid"]

    # A home-tenant token on the guest tenant's subscription: ARM's 401.
    wrong = ResourceManagementClient(credential, guest_sub, **_arm_kwargs(sandbox))
    with pytest.raises(ClientAuthenticationError) as info:
        list(wrong.resource_groups.list())
    assert info.value.error is not None
    assert info.value.error.code == "InvalidAuthenticationTokenTenant"
    assert f"/{guest_tenant}/' associated with this subscription" in str(info.value)

    # Resources live per subscription: a group in the guest subscription only.
    name = unique("rg-guest-")
    rm_guest = ResourceManagementClient(in_guest, guest_sub, **_arm_kwargs(sandbox))
    rm_home = ResourceManagementClient(credential, sandbox.subscription_id, **_arm_kwargs(sandbox))
    created = rm_guest.resource_groups.create_or_update(name, {"location": "westeurope"})
    assert created.id == f"/subscriptions/{guest_sub}/resourceGroups/{name}"
    assert rm_guest.resource_groups.check_existence(name) is True
    assert rm_home.resource_groups.check_existence(name) is False
    assert name in {g.name for g in rm_guest.resource_groups.list()}
    assert name not in {g.name for g in rm_home.resource_groups.list()}
    rm_guest.resource_groups.begin_delete(name).result()
    assert rm_guest.resource_groups.check_existence(name) is False


def test_interactive_browser_credential_signs_in_to_the_guest_tenant(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    guest_tenant, guest_sub = _guest(sandbox)
    browsed: list[str] = []
    failures: list[BaseException] = []
    threads: list[threading.Thread] = []

    def open_browser(url: str, *args: Any, **kwargs: Any) -> bool:
        # The browser is the one part not available here: sign in the way a person
        # would, while the credential waits on its redirect URI.
        browsed.append(url)

        def browse() -> None:
            try:
                sandbox.complete_browser_sign_in(url)
            except BaseException as exc:  # surfaced by the test below
                failures.append(exc)

        thread = threading.Thread(target=browse, daemon=True)
        threads.append(thread)
        thread.start()
        return True

    monkeypatch.setattr(webbrowser, "open", open_browser)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    credential = InteractiveBrowserCredential(
        tenant_id=guest_tenant,
        client_id=CLIENT_ID,
        redirect_uri=f"http://127.0.0.1:{port}",
        login_hint=sandbox.username,
        timeout=60,
        **sandbox.identity_kwargs(),
    )
    token = credential.get_token(ARM_SCOPE)
    for thread in threads:
        thread.join(30)
    assert not failures, failures
    (url,) = browsed
    assert url.startswith(f"{sandbox.authority}/{guest_tenant}/oauth2/v2.0/authorize?")
    assert "code_challenge_method=S256" in url
    claims = _claims(token.token)
    assert claims["tid"] == guest_tenant and claims["acct"] == 1

    subs = SubscriptionClient(credential, **_arm_kwargs(sandbox)).subscriptions.list()
    assert [s.subscription_id for s in subs] == [guest_sub]
    rm = ResourceManagementClient(credential, guest_sub, **_arm_kwargs(sandbox))
    name = unique("rg-browser-")
    rm.resource_groups.create_or_update(name, {"location": "northeurope", "tags": {"by": "ibc"}})
    assert rm.resource_groups.get(name).tags == {"by": "ibc"}
    rm.resource_groups.begin_delete(name).result()
    # A silent second token: the credential's cache, no second browser.
    credential.get_token(ARM_SCOPE)
    assert len(browsed) == 1


def test_authorization_code_needs_the_pkce_verifier(sandbox: Sandbox) -> None:
    ca = str(sandbox.ca_cert)
    base = f"{sandbox.authority}/{sandbox.tenant_id}/oauth2/v2.0"
    verifier = "v" * 50
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    redirect_uri = "http://127.0.0.1:9/callback"
    page = requests.get(
        f"{base}/authorize",
        params={
            "client_id": CLIENT_ID,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": f"{ARM_SCOPE} openid offline_access",
            "state": "s1",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
        verify=ca,
        timeout=10,
    )
    assert page.status_code == 200
    match = re.search(r"name='ctx' value='([^']+)'", page.text)
    assert match is not None
    signed_in = requests.post(
        f"{sandbox.authority}/{sandbox.tenant_id}/login",
        data={"ctx": match.group(1), "login": sandbox.username,
              "passwd": sandbox.connection.password},
        verify=ca,
        timeout=10,
        allow_redirects=False,
    )
    assert signed_in.status_code == 302
    location = signed_in.headers["Location"]
    assert location.startswith(redirect_uri + "?") and "state=s1" in location
    code = dict(p.split("=", 1) for p in location.split("?", 1)[1].split("&"))["code"]
    redeem = {
        "grant_type": "authorization_code",
        "client_id": CLIENT_ID,
        "code": requests.utils.unquote(code),
        "redirect_uri": redirect_uri,
        "code_verifier": "w" * 50,
    }
    wrong = requests.post(f"{base}/token", data=redeem, verify=ca, timeout=10)
    assert wrong.status_code == 400 and wrong.json()["error_codes"] == [501481]
    # A code is good for one redemption: the failed one spent it.
    again = requests.post(f"{base}/token", data={**redeem, "code_verifier": verifier},
                          verify=ca, timeout=10)
    assert again.status_code == 400 and again.json()["error_codes"] == [54005]
