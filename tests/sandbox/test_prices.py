"""The sandbox's Retail Prices API over real HTTPS (sandbox CA), and the estimate built on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from azure.mgmt.resource.resources import ResourceManagementClient

from app.errors import ServiceFailure
from app.sandbox import Sandbox
from app.sandbox.prices_table import ITEMS, LABEL
from app.sandbox.providers.prices import PAGE_SIZE, FilterError, parse_filter
from app.services import pricing
from app.spec import load_spec

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
PREVIEW = "2023-01-01-preview"


def url(sb: Sandbox) -> str:
    return f"{sb.endpoint.rstrip('/')}/retail/prices"


def get(sb: Sandbox, **params: str) -> requests.Response:
    return requests.get(url(sb), params=params, verify=str(sb.ca_cert), timeout=10)


def all_items(sb: Sandbox, filter_text: str, api_version: str = PREVIEW) -> list[dict[str, Any]]:
    response = get(sb, **{"$filter": filter_text, "api-version": api_version})
    assert response.status_code == 200, response.text
    body = response.json()
    items = list(body["Items"])
    while body["NextPageLink"]:
        response = requests.get(body["NextPageLink"], verify=str(sb.ca_cert), timeout=10)
        assert response.status_code == 200
        body = response.json()
        assert body["Count"] == len(body["Items"]) <= PAGE_SIZE
        items += body["Items"]
    return items


def test_answers_without_a_token_in_azures_shape(sandbox: Sandbox) -> None:
    response = get(sandbox, **{"$filter": "serviceName eq 'Container Registry' and "
                                          "skuName eq 'Basic'", "api-version": PREVIEW})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"BillingCurrency", "CustomerEntityId", "CustomerEntityType", "Items",
                         "NextPageLink", "Count"}
    (item,) = body["Items"]
    assert (item["meterName"], item["unitOfMeasure"], item["type"]) == (
        "Basic Registry Unit", "1/Day", "Consumption")
    assert item["armRegionName"] == "westeurope" and item["currencyCode"] == "USD"
    assert body["NextPageLink"] is None and body["Count"] == 1


def test_eq_and_selects_exactly(sandbox: Sandbox) -> None:
    items = all_items(sandbox, "serviceName eq 'Redis Cache' and productName eq "
                               "'Azure Redis Cache Standard' and skuName eq 'C1' "
                               "and priceType eq 'Consumption'")
    assert sorted(i["meterName"] for i in items) == ["C1 Cache", "C1 Cache Instance"]
    whole, node = sorted(items, key=lambda i: i["meterName"])
    assert node["retailPrice"] == pytest.approx(whole["retailPrice"] / 2, abs=1e-4)


def test_next_page_links_cover_every_match_once(sandbox: Sandbox) -> None:
    items = all_items(sandbox, "serviceName eq 'Redis Cache'")
    expected = [i for i in ITEMS if i["serviceName"] == "Redis Cache"]
    assert len(expected) > 2 * PAGE_SIZE  # the query really pages
    assert len(items) == len(expected)
    assert {(i["productName"], i["meterName"], i["type"]) for i in items} == {
        (i["productName"], i["meterName"], i["type"]) for i in expected}


def test_values_are_case_sensitive_from_the_2023_preview_on(sandbox: Sandbox) -> None:
    lower = "serviceName eq 'container registry'"
    assert all_items(sandbox, lower, PREVIEW) == []
    assert len(all_items(sandbox, lower, "2021-10-01")) == 3


def test_or_not_contains_and_parentheses(sandbox: Sandbox) -> None:
    items = all_items(sandbox, "(skuName eq 'Basic' or skuName eq 'Standard') and "
                               "serviceName eq 'Container Registry' and not (skuName eq 'Basic')")
    assert [i["skuName"] for i in items] == ["Standard"]
    linux = all_items(sandbox, "serviceName eq 'Azure App Service' and "
                               "contains(productName, '- Linux') and skuName eq 'B1'")
    assert [i["productName"] for i in linux] == ["Azure App Service Basic Plan - Linux"]
    cheap = all_items(sandbox, "serviceName eq 'Storage' and retailPrice lt 0.015")
    assert cheap and all(i["retailPrice"] < 0.015 for i in cheap)


def test_other_regions_have_no_items(sandbox: Sandbox) -> None:
    assert all_items(sandbox, "armRegionName eq 'eastus'") == []


@pytest.mark.parametrize("bad", [
    "serviceName eq",
    "serviceName eq 'Redis Cache' and",
    "serviceName eq 'unterminated",
    "colour eq 'blue'",
    "serviceName like 'Redis'",
    "contains(serviceName, 3)",
    "(serviceName eq 'Redis Cache'",
    "serviceName eq 'Redis Cache' extra",
    "",
])
def test_a_filter_it_cannot_parse_is_400(sandbox: Sandbox, bad: str) -> None:
    response = get(sandbox, **{"$filter": bad, "api-version": PREVIEW})
    assert response.status_code == 400
    assert "Invalid $filter" in response.json()["Error"]["Message"]


def test_other_currencies_are_refused_clearly(sandbox: Sandbox) -> None:
    response = get(sandbox, currencyCode="EUR")
    assert response.status_code == 400
    assert "USD" in response.json()["Error"]["Message"]


def test_is_not_listed_as_a_resource_provider(sandbox: Sandbox) -> None:
    client = ResourceManagementClient(
        sandbox.credential(), sandbox.subscription_id, base_url=sandbox.endpoint,
        credential_scopes=["https://management.azure.com/.default"],
        connection_verify=str(sandbox.ca_cert))
    namespaces = [p.namespace for p in client.providers.list()]
    assert namespaces and all(namespaces)


def test_parser_quotes_and_literals() -> None:
    match = parse_filter("meterName eq 'it''s' and isPrimaryMeterRegion eq true")
    assert match({"meterName": "it's", "isPrimaryMeterRegion": True})
    assert not match({"meterName": "it's", "isPrimaryMeterRegion": False})
    with pytest.raises(FilterError, match="position"):
        parse_filter("serviceName eq 'a' or or")


# --- the estimate against the sandbox ----------------------------------------------


@pytest.mark.parametrize("example", ["digits-classic-sandbox.json", "digits-azure.toml"])
def test_estimate_of_the_examples_prices_every_line(sandbox: Sandbox, example: str) -> None:
    spec = load_spec(ROOT / "examples" / example)
    result = pricing.estimate(spec, url(sandbox), str(sandbox.ca_cert), sandbox=True)
    assert result.items and all(item.found for item in result.items)
    assert result.total == pytest.approx(sum(i.monthly or 0 for i in result.items), abs=0.01)
    assert result.total > 0
    assert "sample price table" in result.summary()


def test_every_managed_redis_and_plan_choice_resolves_or_says_not_found(sandbox: Sandbox) -> None:
    spec = load_spec(ROOT / "examples" / "digits-classic-sandbox.json")
    spec.cache.kind, spec.cache.tier, spec.cache.size = "azure-managed-redis", "Balanced", "B0"
    spec.function_app.plan_sku = "EP1"
    result = pricing.estimate(spec, url(sandbox), str(sandbox.ca_cert), sandbox=True)
    cache, _storage, vcpu, memory, _registry, _workspace = result.items
    assert cache.found and cache.units == 1460
    assert vcpu.found and memory.found and memory.units == 3.5 * 730
    spec.cache.size = "B1000"  # a real size the sample table does not list
    result = pricing.estimate(spec, url(sandbox), str(sandbox.ca_cert), sandbox=True)
    assert not result.items[0].found and result.items[0].note == "price not found"
    assert result.priced == len(result.items) - 1


def test_an_api_error_is_a_service_failure(tmp_path: Path) -> None:
    from app.services.target import RetrySettings

    faults = {"rules": [{"path": "^/retail/prices", "status": 503, "retry_after": 0.1}]}
    with Sandbox.start(tmp_path, latency="fast", faults=faults) as sb:
        spec = load_spec(ROOT / "examples" / "digits-classic-sandbox.json")
        retry = RetrySettings(total=2, backoff_factor=0.1, backoff_max=0.5)
        with pytest.raises(ServiceFailure, match="answered 503"):
            pricing.estimate(spec, url(sb), str(sb.ca_cert), sandbox=True, retry=retry)
        # Asked once, then again as often as the retry settings allow, then reported.
        assert sb.context.faults.rules[0].fired == 3


def test_the_table_says_what_it_is() -> None:
    assert "Sample list prices" in LABEL and "westeurope" in LABEL


def test_the_wizard_review_line_comes_from_the_sandbox(sandbox: Sandbox) -> None:
    from app.services.target import sandbox_target_from_connection
    from app.wizard.services_backend import ServicesBackend

    target = sandbox_target_from_connection({
        "endpoint": sandbox.endpoint, "ca_cert": str(sandbox.ca_cert),
        "subscription_id": sandbox.subscription_id, "token": sandbox.token,
    })
    backend = ServicesBackend(target, "Local sandbox")
    spec = load_spec(ROOT / "examples" / "digits-classic-sandbox.json")
    text = backend.monthly_cost(spec)
    expected = pricing.estimate(spec, url(sandbox), str(sandbox.ca_cert), sandbox=True).total
    assert text is not None and text.startswith(f"USD {expected:,.2f} (")
    assert "the sandbox itself costs nothing" in text
    spec.location = "eastus"  # nothing priced: the page shows the reason instead
    with pytest.raises(ServiceFailure, match="lists none of this deployment's meters"):
        backend.monthly_cost(spec)
