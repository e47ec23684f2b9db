"""A failed sign-in in one sentence with its cause, from the real credential's errors."""

from __future__ import annotations

import socket

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential

from app.errors import NotPermitted, ServiceFailure
from app.services.sign_in_store import sign_in_refused

ARM = "https://management.azure.com/.default"


def _failure(authority: str) -> ClientAuthenticationError:
    credential = ClientSecretCredential("00000000-0000-0000-0000-000000000001", "app", "s",
                                        authority=authority, disable_instance_discovery=True)
    with pytest.raises(ClientAuthenticationError) as caught:
        credential.get_token(ARM)
    return caught.value


def test_a_name_that_does_not_resolve_is_said_so() -> None:
    error = sign_in_refused(_failure("https://login.invalid"))
    assert isinstance(error, ServiceFailure)
    assert error.message == ("could not reach the sign-in service at login.invalid: its "
                             "name could not be resolved (no network connection, or DNS "
                             "is not answering)")
    assert "Errno" not in error.message and "network" in error.recommendation


def test_a_refused_connection_is_said_so() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    # Nothing listens on the port now: the connection is refused.
    error = sign_in_refused(_failure(f"https://127.0.0.1:{port}"))
    assert error.message.startswith("could not reach the sign-in service at 127.0.0.1")
    assert error.message.endswith("the connection was refused")


def test_a_refusal_by_the_service_is_not_called_a_network_problem() -> None:
    refused = ClientAuthenticationError(
        message="DeviceCodeCredential.get_token failed: Timed out waiting for user to "
                "authenticate")
    error = sign_in_refused(refused)
    assert isinstance(error, NotPermitted)
    assert "could not reach" not in error.message
