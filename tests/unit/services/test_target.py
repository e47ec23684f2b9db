"""The cloud target and the one client factory: every client gets the target's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.connect import sandbox_target
from app.errors import BadInput
from app.sandbox import Sandbox
from app.services.accounts import list_subscriptions
from app.services.clients import ClientFactory
from app.services.redaction import redact
from app.services.target import (
    AZURE_POLLING_S,
    azure_target,
    make_credential,
    sandbox_target_from_connection,
)

CONNECTION = {
    "endpoint": "https://127.0.0.1:4443/",
    "ca_cert": "/tmp/sandbox-ca.pem",
    "subscription_id": "00000000-0000-0000-0000-000000000001",
    "token": "sandbox-token-0123456789",
}


def test_every_client_gets_endpoint_scopes_ca_polling_and_retry() -> None:
    target = sandbox_target_from_connection(CONNECTION)
    factory = ClientFactory(target)
    for name in ("resources", "subscriptions", "redis", "redis_enterprise", "storage", "web",
                 "registry"):
        client = getattr(factory, name)()
        config = client._config
        assert config.polling_interval == pytest.approx(0.1), name
        assert config.credential_scopes == ["https://127.0.0.1:4443/.default"], name
        assert config.retry_policy.backoff_factor == pytest.approx(0.1), name
        assert client._client._pipeline._transport.connection_config.verify == "/tmp/sandbox-ca.pem"
        assert getattr(factory, name)() is client  # made once
    assert factory.client_kwargs()["connection_verify"] == "/tmp/sandbox-ca.pem"
    assert factory.client_kwargs()["base_url"] == "https://127.0.0.1:4443"
    assert target.verify == "/tmp/sandbox-ca.pem"


def test_the_sandbox_token_is_a_registered_secret() -> None:
    sandbox_target_from_connection(CONNECTION)
    assert "sandbox-token-0123456789" not in redact("Bearer sandbox-token-0123456789")


def test_azure_target_defaults() -> None:
    target = azure_target("11111111-1111-1111-1111-111111111111", credential=object())
    assert target.arm_endpoint == "https://management.azure.com"
    assert target.ca_bundle is None and target.verify is True
    assert target.polling_interval == AZURE_POLLING_S < 30
    kwargs = ClientFactory(target).client_kwargs()
    assert "connection_verify" not in kwargs
    assert kwargs["credential_scopes"] == ["https://management.azure.com/.default"]
    with pytest.raises(BadInput, match="subscription"):
        azure_target("", credential=object())


def test_sign_in_methods() -> None:
    import azure.identity as identity

    from app.services.target import RememberingCredential

    # No account remembered yet: the first token request signs in and keeps the record.
    for method, kind in (("device-code", identity.DeviceCodeCredential),
                         ("browser", identity.InteractiveBrowserCredential)):
        made = make_credential(method, prompt=print)
        assert isinstance(made, RememberingCredential) and isinstance(made.inner, kind)
    assert isinstance(make_credential("cli"), identity.AzureCliCredential)
    assert isinstance(make_credential("azd"), identity.AzureDeveloperCliCredential)
    with pytest.raises(BadInput, match="sign-in method"):
        make_credential("carrier-pigeon")


def test_sandbox_target_connects_to_a_running_sandbox_or_starts_one(tmp_path: Path) -> None:
    state = tmp_path / "sandbox"
    with pytest.raises(BadInput, match="no sandbox is running"):
        sandbox_target(state, start=False)
    with Sandbox.start(state, latency="fast") as sandbox:
        target = sandbox_target(state, start=False)
        assert target.arm_endpoint == sandbox.endpoint.rstrip("/")
        groups = list(ClientFactory(target).resources().resource_groups.list())
        assert groups == []
        subscriptions = list_subscriptions(target.credential, target)
        assert [s.subscription_id for s in subscriptions] == [sandbox.subscription_id]
        assert subscriptions[0].state == "Enabled"
    started = sandbox_target(state)  # none runs now: start one in this process
    try:
        assert list(ClientFactory(started).resources().resource_groups.list()) == []
    finally:
        started.close()
    with pytest.raises(BadInput):
        sandbox_target(state, start=False)


class _Response:
    def __init__(self, status: int, headers: dict[str, str]) -> None:
        from requests.structures import CaseInsensitiveDict

        self.status_code = status
        self.headers = CaseInsensitiveDict(headers)


class _PipelineResponse:
    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.http_response = _Response(status, headers)


def test_poll_delays_are_capped_at_the_target_interval_but_throttling_is_honoured() -> None:
    from azure.core.pipeline.policies._utils import get_retry_after

    factory = ClientFactory(sandbox_target_from_connection(CONNECTION))
    hook = factory.client_kwargs()["raw_response_hook"]
    poll = _PipelineResponse(200, {"Retry-After": "10"})
    hook(poll)
    # "0": azure-core then waits its own polling interval, the target's 0.1 s.
    assert poll.http_response.headers["Retry-After"] == "0"
    assert not get_retry_after(poll)  # type: ignore[arg-type]
    in_ms = _PipelineResponse(202, {"retry-after-ms": "15000"})
    hook(in_ms)
    assert get_retry_after(in_ms) == pytest.approx(0.1)  # type: ignore[arg-type]
    azure = ClientFactory(azure_target("11111111-1111-1111-1111-111111111111", object()))
    slow = _PipelineResponse(202, {"Retry-After": "60"})
    azure.client_kwargs()["raw_response_hook"](slow)
    assert get_retry_after(slow) == pytest.approx(5.0)  # type: ignore[arg-type]
    short = _PipelineResponse(202, {"Retry-After": "0.05"})
    hook(short)
    assert short.http_response.headers["Retry-After"] == "0.05"
    throttled = _PipelineResponse(429, {"Retry-After": "7"})
    hook(throttled)
    assert get_retry_after(throttled) == pytest.approx(7.0)  # type: ignore[arg-type]


def test_device_code_prompt_receives_url_and_code_instead_of_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """azure-identity prints the device-code message unless given a callback: ours is
    wired in, so the wizard's dialog (or any caller) shows the URL and the code."""
    from datetime import UTC, datetime

    shown: list[str] = []
    credential = make_credential("device-code", "contoso.onmicrosoft.com", prompt=shown.append)
    expires = datetime(2026, 11, 24, 7, 15, tzinfo=UTC)
    # The hook azure-identity calls once Microsoft Entra answers with a device code.
    credential._prompt_callback("https://microsoft.com/devicelogin", "ABCD-1234", expires)
    assert len(shown) == 1
    assert "https://microsoft.com/devicelogin" in shown[0] and "ABCD-1234" in shown[0]
    assert "valid until" in shown[0]
    assert capsys.readouterr().out == ""


def test_target_for_spec_signs_in_to_azure_as_asked() -> None:
    """The CLI's --auth/--tenant map onto make_credential (no call leaves the machine)."""
    import azure.identity as identity

    from app.connect import target_for_spec
    from app.services.target import TenantCredential

    device = target_for_spec("azure", "sub-1", None, "device-code", "t-1", prompt=print)
    # A named tenant pins every token to it (ARM serves only that tenant's subscriptions).
    assert isinstance(device.credential, TenantCredential)
    assert device.credential.tenant_id == "t-1"
    assert isinstance(device.credential.inner.inner, identity.DeviceCodeCredential)
    assert (device.kind, device.subscription_id, device.tenant_id) == ("azure", "sub-1", "t-1")
    browser = target_for_spec("azure", "sub-1", None, "browser")
    assert isinstance(browser.credential.inner, identity.InteractiveBrowserCredential)
    default = target_for_spec("azure", "sub-1", None)
    assert isinstance(default.credential, identity.DefaultAzureCredential)
    with pytest.raises(BadInput, match="subscription id"):
        target_for_spec("azure", None, None, "device-code")
    with pytest.raises(BadInput, match="sign-in method"):
        target_for_spec("azure", "sub-1", None, "carrier-pigeon")
