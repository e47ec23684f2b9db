"""The ARM gate: TLS with the sandbox CA, bearer token, api-version, ARM error bodies."""

from __future__ import annotations

import socket
import ssl

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.mgmt.resource.resources import ResourceManagementClient
from cryptography import x509

from app.sandbox import Sandbox, SandboxCredential
from tests.sandbox.conftest import client_kwargs

pytestmark = pytest.mark.sandbox


def _url(sb: Sandbox, path: str, api_version: str | None = "2024-11-01") -> str:
    query = f"?api-version={api_version}" if api_version else ""
    return f"{sb.endpoint}{path}{query}"


def _auth(sb: Sandbox) -> dict[str, str]:
    return {"Authorization": f"Bearer {sb.token}"}


def _get(sb: Sandbox, path: str, api_version: str | None = "2024-11-01") -> requests.Response:
    """GET with the sandbox token, verified against the sandbox CA."""
    return requests.get(
        _url(sb, path, api_version), headers=_auth(sb), verify=str(sb.ca_cert), timeout=10
    )


def test_request_without_token_gets_401_arm_error(sandbox: Sandbox) -> None:
    response = requests.get(
        _url(sandbox, "/subscriptions"), verify=str(sandbox.ca_cert), timeout=10
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AuthenticationFailed"
    assert response.json()["error"]["message"]


def test_wrong_token_is_refused_by_the_sdk(sandbox: Sandbox) -> None:
    client = ResourceManagementClient(
        SandboxCredential("not-the-token"), sandbox.subscription_id, **client_kwargs(sandbox)
    )
    with pytest.raises(ClientAuthenticationError) as info:
        client.resource_groups.get("anything")
    assert info.value.status_code == 401
    assert info.value.error is not None and info.value.error.code == "AuthenticationFailed"


def test_missing_and_malformed_api_version(sandbox: Sandbox) -> None:
    missing = _get(sandbox, "/subscriptions", None)
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "MissingApiVersionParameter"
    bad = _get(sandbox, "/subscriptions", "yesterday")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "InvalidApiVersionParameter"
    preview = _get(sandbox, "/subscriptions", "2031-01-01-preview")
    assert preview.status_code == 200


def test_unknown_subscription_and_unknown_type(sandbox: Sandbox) -> None:
    other = _get(sandbox, "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups")
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "SubscriptionNotFound"
    unknown = requests.get(
        _url(
            sandbox,
            f"/subscriptions/{sandbox.subscription_id}/resourceGroups/x/providers/"
            "Microsoft.Cache/nonsense/y",
        ),
        headers=_auth(sandbox),
        verify=str(sandbox.ca_cert),
        timeout=10,
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "InvalidResourceType"


def test_paths_are_case_insensitive(sandbox: Sandbox, group: str) -> None:
    path = f"/SUBSCRIPTIONS/{sandbox.subscription_id.upper()}/ResourceGroups/{group.upper()}"
    response = _get(sandbox, path)
    assert response.status_code == 200
    assert response.json()["name"] == group


def test_server_certificate_is_issued_by_the_sandbox_ca_for_loopback(sandbox: Sandbox) -> None:
    host, port = sandbox.endpoint.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(sandbox.ca_cert))
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    assert der is not None
    cert = x509.load_der_x509_certificate(der)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_system_trust_store_does_not_trust_the_sandbox(sandbox: Sandbox) -> None:
    """Verification is real: without the sandbox CA the handshake fails."""
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(
            _url(sandbox, "/subscriptions"),
            headers=_auth(sandbox),
            verify=requests.certs.where(),
            timeout=10,
        )


def test_bad_json_body_is_invalid_request_content(sandbox: Sandbox, group: str) -> None:
    response = requests.put(
        _url(sandbox, f"/subscriptions/{sandbox.subscription_id}/resourcegroups/{group}"),
        headers={**_auth(sandbox), "Content-Type": "application/json"},
        data=b"{not json",
        verify=str(sandbox.ca_cert),
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidRequestContent"


def test_sdk_error_carries_arm_code(resource_client: ResourceManagementClient) -> None:
    with pytest.raises(HttpResponseError) as info:
        resource_client.resource_groups.get("rg-that-does-not-exist")
    assert info.value.status_code == 404
    assert info.value.error is not None
    assert info.value.error.code == "ResourceGroupNotFound"


def test_responses_carry_arm_tracing_headers(sandbox: Sandbox) -> None:
    response = requests.get(
        _url(sandbox, "/subscriptions"),
        headers={**_auth(sandbox), "x-ms-correlation-request-id": "corr-1"},
        verify=str(sandbox.ca_cert),
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["x-ms-correlation-request-id"] == "corr-1"
    assert len(response.headers["x-ms-request-id"]) == 36
