"""ARM error codes become an error class and a recommendation."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ResourceNotModifiedError,
    ServiceRequestError,
)
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


# The error_map every generated azure-mgmt operation passes to map_error (e.g.
# azure-mgmt-web's AppServicePlansOperations._create_or_update_initial): 401, 404 and
# 409 raise these subclasses, without the ARM error format; anything else raises
# HttpResponseError with ARMErrorFormat.
SDK_ERROR_MAP = {
    401: ClientAuthenticationError,
    404: ResourceNotFoundError,
    409: ResourceExistsError,
    304: ResourceNotModifiedError,
}


def sdk_error_for(status: int, body: dict[str, object]) -> HttpResponseError:
    """What the generated SDK code raises for an error answer: azure-core's own response
    type fed the body as Azure sends it, then map_error and the ARM error format."""
    import requests
    from azure.core.exceptions import map_error
    from azure.core.pipeline.transport import RequestsTransportResponse
    from azure.core.rest import HttpRequest
    from azure.mgmt.core.exceptions import ARMErrorFormat

    raw = requests.Response()
    raw.status_code, raw.reason = status, {401: "Unauthorized", 409: "Conflict"}.get(
        status, "Bad Request")
    raw._content = json.dumps(body).encode()
    raw.headers["Content-Type"] = "application/json; charset=utf-8"
    response = RequestsTransportResponse(HttpRequest("PUT", "https://management.azure.com/x"), raw)
    try:
        map_error(status_code=status, response=response, error_map=SDK_ERROR_MAP)
    except HttpResponseError as mapped:
        return mapped
    return HttpResponseError(response=response, error_format=ARMErrorFormat)


# App Service's own error shape, as quoted from live answers (Azure/azure-cli#31665,
# Azure/terraform-azurerm-avm-res-web-site#248): PascalCase, no "error" wrapper.
QUOTA_MESSAGE = (
    "Operation cannot be completed without additional quota. \r\nAdditional details - "
    "Location:  \r\nCurrent Limit (Basic VMs): 0 \r\nCurrent Usage: 0\r\nAmount required for "
    "this deployment (Basic VMs): 1 \r\n(Minimum) New Limit that you should request to enable "
    "this deployment: 1. \r\nNote that if you experience multiple scaling operations failing "
    "(in addition to this one) and need to accommodate the aggregate quota requirements of "
    "these operations, you will need to request a higher quota limit than the one currently "
    "displayed."
)


def app_service_body(code: str, message: str, extended: str) -> dict[str, object]:
    return {
        "Code": code, "Message": message, "Target": None,
        "Details": [
            {"Message": message}, {"Code": code},
            {"ErrorEntity": {"ExtendedCode": extended, "MessageTemplate": message,
                             "Parameters": [], "Code": code, "Message": message}},
        ],
        "Innererror": None,
    }


def test_azure_core_cannot_read_app_service_errors_so_the_translator_does() -> None:
    exc = sdk_error_for(409, app_service_body(
        "Conflict", "Website with given name digits-scoring already exists.", "54001"))
    assert exc.error is None  # azure-core's ARM format finds no "error" object
    assert "invalid status" in exc.message
    explained = describe(exc)
    assert explained.code == "Conflict"
    assert explained.message == "Website with given name digits-scoring already exists."
    assert explained.error_class is BadInput and "name is taken" in explained.hint


def test_a_plan_refused_for_quota_with_401_says_quota_not_sign_in() -> None:
    exc = sdk_error_for(401, app_service_body("Unauthorized", QUOTA_MESSAGE, "70007"))
    # What azure-mgmt-web really raises for the plan PUT's 401.
    assert type(exc) is ClientAuthenticationError and exc.error is None
    explained = describe(exc)
    assert explained.error_class is QuotaOrRegion
    assert "Sign in" not in explained.hint
    assert "support request" in explained.hint and "quota" in explained.hint
    assert "Current Limit (Basic VMs): 0" in explained.message
    assert "\r" not in explained.message and "\n" not in explained.message


def test_a_401_from_arm_itself_still_says_sign_in_again() -> None:
    # ARM's own 401 for a bad token (its `error` shape), e.g. Azure/azure-sdk-for-net#49391.
    expired = describe(sdk_error_for(401, {"error": {
        "code": "ExpiredAuthenticationToken",
        "message": "The access token expiry UTC time '1/1/2026 10:00:00 AM' is earlier than "
                   "current UTC time '1/1/2026 11:00:00 AM'."}}))
    assert expired.code == "ExpiredAuthenticationToken"
    assert expired.error_class is NotPermitted and "Sign in again" in expired.hint
    bare = describe(sdk_error_for(401, {}))
    assert bare.error_class is NotPermitted and "Sign in again" in bare.hint


def test_acr_tasks_refused_on_a_trial_points_at_image_reference_not_at_retrying() -> None:
    # The answer to POST .../registries/{name}/scheduleRun quoted in
    # Azure-Samples/azure-search-openai-demo#2592 (a free-trial subscription).
    body = {"error": {
        "code": "TasksOperationsNotAllowed",
        "message": "ACR Tasks requests for the registry digitsacr and "
                   "f0542a21-69d2-489d-861c-ed7d0ec47ee4 are not permitted. Please file an "
                   "Azure support request at http://aka.ms/azuresupport for assistance.",
        "target": "request"}}
    explained = describe(sdk_error_for(400, body))
    assert explained.code == "TasksOperationsNotAllowed"
    assert explained.error_class is NotPermitted
    assert "image.reference" in explained.hint and "again will not help" in explained.hint


@pytest.mark.parametrize("code", ["InsufficientCapacity", "AllocationFailed"])
def test_capacity_refusals_name_another_region(code: str) -> None:
    explained = describe(arm_error(200, code, "There is not enough capacity in eastus2."))
    assert explained.error_class is QuotaOrRegion
    assert "another region" in explained.hint and "location" in explained.hint


def test_a_failed_cleanup_says_run_cleanup_again_not_deploy_again() -> None:
    lost = ServiceRequestError("Connection refused")
    assert "deploy again" in as_error(lost).recommendation
    cleanup = as_error(lost, prefix="deleting rg-x: ", again="run cleanup")
    assert "run cleanup again" in cleanup.recommendation
    assert "deploy" not in cleanup.recommendation.lower()
