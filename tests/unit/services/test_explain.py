"""ARM error codes become an error class and a recommendation."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError
from azure.core.pipeline.transport import HttpResponse  # type: ignore[attr-defined]

from app.errors import BadInput, NotPermitted, QuotaOrRegion, ServiceFailure
from app.services.explain import MANAGED_REDIS_SUGGESTION, as_error, describe, is_cache_blocked


class FakeResponse(HttpResponse):
    """A minimal transport response carrying an ARM error body."""

    def __init__(self, status: int, body: dict[str, object]) -> None:
        super().__init__(None, None)  # type: ignore[arg-type]
        self.status_code = status
        self.reason = "Error"
        self._body = json.dumps(body).encode()
        self.headers = {}

    def body(self) -> bytes:
        return self._body

    def text(self, encoding: str | None = None) -> str:
        return self._body.decode()


def arm_error(status: int, code: str, message: str) -> HttpResponseError:
    body = {"error": {"code": code, "message": message}}
    return HttpResponseError(response=FakeResponse(status, body))


@pytest.mark.parametrize(
    ("code", "cls", "words"),
    [
        ("NameNotAvailable", BadInput, "choose another"),
        ("StorageAccountAlreadyTaken", BadInput, "choose another"),
        ("QuotaExceeded", QuotaOrRegion, "quota"),
        ("SkuNotAvailable", QuotaOrRegion, "region"),
        ("AuthorizationFailed", NotPermitted, "Contributor"),
        ("ScopeLocked", NotPermitted, "lock"),
        ("RequestDisallowedByPolicy", NotPermitted, "Policy"),
        ("MissingSubscriptionRegistration", NotPermitted, "provider register"),
        ("InvalidRequestContent", BadInput, "settings"),
        ("SomethingNobodyKnows", ServiceFailure, "deploy again"),
    ],
)
def test_codes_map_to_a_class_and_a_recommendation(code: str, cls: type, words: str) -> None:
    explained = describe(arm_error(400, code, "Azure said no."))
    assert explained.code == code
    assert explained.message == "Azure said no."
    assert explained.error_class is cls
    assert words in explained.hint


def test_blocked_cache_creation_suggests_azure_managed_redis() -> None:
    exc = arm_error(
        400, "BadRequest",
        "Creating new Azure Cache for Redis instances is blocked for this tenant; "
        "use Azure Managed Redis.",
    )
    explained = describe(exc)
    assert explained.hint == MANAGED_REDIS_SUGGESTION
    assert is_cache_blocked(explained.code, explained.message)
    assert not is_cache_blocked("BadRequest", "P3 is not a valid size for Basic")


def test_status_without_body_still_gets_a_code() -> None:
    explained = describe(HttpResponseError(response=FakeResponse(503, {})))
    assert explained.code == "ServiceUnavailable" and explained.error_class is ServiceFailure


def test_network_and_sign_in_errors() -> None:
    assert describe(ServiceRequestError("connection refused")).code == "ConnectionFailed"
    assert describe(ClientAuthenticationError("expired")).error_class is NotPermitted


def test_as_error_keeps_code_message_and_hint() -> None:
    exc = arm_error(409, "ScopeLocked", "The scope is locked.")
    error = as_error(exc, prefix="resource group: ")
    assert isinstance(error, NotPermitted)
    assert str(error).startswith("resource group: The scope is locked. (ScopeLocked)")
    assert error.recommendation and "lock" in error.recommendation


def test_a_bare_conflict_about_a_taken_name_says_choose_another() -> None:
    taken = describe(arm_error(409, "Conflict", "Website with given name func-x already exists."))
    assert taken.error_class is BadInput and "choose another" in taken.hint
    busy = describe(arm_error(409, "Conflict", "Another operation is in progress on the cache."))
    assert busy.error_class is ServiceFailure and "wait" in busy.hint


@pytest.mark.parametrize(
    ("message", "cls", "words"),
    [
        ("Operation results in exceeding quota limits of Core. Maximum allowed: 10",
         QuotaOrRegion, "quota"),
        ("The requested SKU Premium P5 is not available in location westeurope.",
         QuotaOrRegion, "region"),
        ("The property 'capacity' must be between 0 and 6.", BadInput, "settings"),
    ],
)
def test_generic_codes_are_read_by_their_message(message: str, cls: type, words: str) -> None:
    explained = describe(arm_error(400, "BadRequest", message))
    assert explained.error_class is cls and words in explained.hint
