"""The cost estimate's pure parts: meters a spec bills on, OData filters, the item chosen."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from app.cli.commands import format_table
from app.errors import BadInput, ServiceFailure
from app.services import pricing
from app.services.plan import build_plan
from app.services.pricing import PriceQuery, build_filter, price_queries, select_item
from app.services.target import RetrySettings
from app.spec import DeploymentSpec, load_spec

ROOT = Path(__file__).resolve().parents[3]
# How a failure reads once the retries are spent, without waiting for them.
NO_RETRY = RetrySettings(total=0)


def queries_of(spec: DeploymentSpec, step: str) -> list[PriceQuery]:
    """The meters the resource modules whose step name starts with `step` price for `spec`."""
    return [q for s in build_plan(spec) if s.name.startswith(step) for q in s.price_queries()]


def sandbox_spec() -> DeploymentSpec:
    return load_spec(ROOT / "examples" / "digits-classic-sandbox.json")


def azure_spec() -> DeploymentSpec:
    return load_spec(ROOT / "examples" / "digits-azure.toml")


def item(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "currencyCode": "USD", "tierMinimumUnits": 0.0, "retailPrice": 0.139,
        "armRegionName": "westeurope", "effectiveStartDate": "2026-01-01T00:00:00Z",
        "meterName": "C1 Cache", "productName": "Azure Redis Cache Standard", "skuName": "C1",
        "serviceName": "Redis Cache", "unitOfMeasure": "1 Hour", "type": "Consumption",
    }
    base.update(changes)
    return base


C1 = PriceQuery(
    resource="Azure Cache for Redis c", sku="Standard C1", service_name="Redis Cache",
    product_name="Azure Redis Cache Standard", sku_name="C1", meter_name="C1 Cache",
    unit_of_measure="1 Hour", units=730, unit_label="hour",
)


# --- which meters ------------------------------------------------------------------


def test_sandbox_example_prices_cache_storage_plan_and_the_registry_it_builds() -> None:
    queries = price_queries(sandbox_spec())
    assert [(q.product_name, q.sku_name, q.meter_name) for q in queries] == [
        ("Azure Redis Cache Standard", "C1", "C1 Cache"),
        ("General Block Blob v2", "Hot LRS", "Hot LRS Data Stored"),
        ("Azure App Service Basic Plan - Linux", "B1", None),
        ("Container Registry", "Basic", "Basic Registry Unit"),
        ("Log Analytics", "Pay-as-you-go", "Pay-as-you-go Data Ingestion"),
    ]
    assert queries[0].units == 730
    assert queries[3].unit_of_measure == "1/Day"
    assert queries[3].units == pytest.approx(730 / 24, abs=1e-3)


def test_premium_shards_multiply_the_cache_and_an_existing_image_has_no_registry() -> None:
    queries = price_queries(azure_spec())  # Premium P1, 2 shards, P1v3, image by reference
    cache = queries[0]
    assert (cache.product_name, cache.meter_name, cache.units) == (
        "Azure Redis Cache Premium", "P1 Cache", 2 * 730)
    assert "2 shards" in cache.note and "persistence" in cache.note
    assert not any(q.service_name == "Container Registry" for q in queries)
    (plan,) = queries_of(azure_spec(), "plan")
    assert plan.product_name == "Azure App Service Premium v3 Plan - Linux"
    assert plan.sku_name == "P1v3" and not plan.filter_sku


def test_shards_only_count_on_premium() -> None:
    spec = sandbox_spec()
    spec.cache.shards = 3  # rules refuse this on Standard; the estimate must not multiply
    assert price_queries(spec)[0].units == 730


@pytest.mark.parametrize(("tier", "product"), [
    ("Balanced", "Azure Managed Redis - Balanced"),
    ("MemoryOptimized", "Azure Managed Redis - Memory Optimized"),
    ("ComputeOptimized", "Azure Managed Redis - Compute Optimized"),
])
def test_managed_redis_counts_two_nodes_of_the_instance_meter(tier: str, product: str) -> None:
    spec = sandbox_spec()
    spec.cache.kind, spec.cache.tier, spec.cache.size = "azure-managed-redis", tier, "X10"
    (query,) = queries_of(spec, "cache")
    assert (query.service_name, query.product_name, query.meter_name) == (
        "Redis Cache", product, "X10 Cache Instance")
    assert query.units == 2 * 730


@pytest.mark.parametrize(("sku", "product"), [
    ("B1", "Azure App Service Basic Plan - Linux"),
    ("S2", "Azure App Service Standard Plan - Linux"),
    ("P2v2", "Azure App Service Premium v2 Plan - Linux"),
    ("P0v3", "Azure App Service Premium v3 Plan - Linux"),
])
def test_plans_use_the_linux_products(sku: str, product: str) -> None:
    spec = sandbox_spec()
    spec.function_app.plan_sku = sku
    (query,) = queries_of(spec, "plan")
    assert query.product_name == product
    assert query.units == 730


def test_elastic_premium_bills_vcpu_and_memory_hours() -> None:
    spec = sandbox_spec()
    spec.function_app.plan_sku = "EP2"
    vcpu, memory = queries_of(spec, "plan")
    assert (vcpu.service_name, vcpu.product_name, vcpu.meter_name, vcpu.units) == (
        "Functions", "Premium Functions", "Premium vCPU Duration", 2 * 730)
    assert (memory.meter_name, memory.unit_of_measure, memory.units) == (
        "Premium Memory Duration", "1 GiB Hour", 7 * 730)


def test_an_unknown_tier_is_bad_input() -> None:
    spec = sandbox_spec()
    spec.cache.tier = "Gold"
    with pytest.raises(BadInput, match="Gold"):
        price_queries(spec)


# --- filters -----------------------------------------------------------------------


def test_filter_names_service_product_sku_region_and_pay_as_you_go() -> None:
    assert build_filter(C1, "westeurope") == (
        "serviceName eq 'Redis Cache' and productName eq 'Azure Redis Cache Standard' "
        "and skuName eq 'C1' and armRegionName eq 'westeurope' "
        "and priceType eq 'Consumption'")


def test_filter_leaves_out_an_uncertain_sku_spelling() -> None:
    query = dataclasses.replace(C1, sku_name="P1v3", filter_sku=False)
    assert "skuName" not in build_filter(query, "westeurope")


def test_quotes_in_values_are_doubled() -> None:
    assert pricing.odata_string("it's") == "'it''s'"
    query = dataclasses.replace(C1, product_name="O'Brien")
    assert "productName eq 'O''Brien'" in build_filter(query, "westeurope")


# --- choosing the item -------------------------------------------------------------


def test_picks_the_matching_consumption_item() -> None:
    chosen = select_item([item()], C1, "westeurope", "USD")
    assert chosen is not None and chosen["retailPrice"] == 0.139


@pytest.mark.parametrize("wrong", [
    {"type": "Reservation", "reservationTerm": "1 Year"},
    {"type": "DevTestConsumption"},
    {"armRegionName": "eastus"},
    {"productName": "Azure Redis Cache Basic"},
    {"meterName": "C1 Cache Instance"},
    {"skuName": "C2"},
    {"unitOfMeasure": "1/Day"},
    {"currencyCode": "EUR"},
    {"tierMinimumUnits": 51200.0},
    {"retailPrice": None},
])
def test_rejects_an_item_that_differs_in_one_field(wrong: dict[str, Any]) -> None:
    assert select_item([item(**wrong)], C1, "westeurope", "USD") is None
    # ... and still finds the right one next to it.
    found = select_item([item(**{"retailPrice": 99.0, **wrong}), item()], C1, "westeurope",
                        "USD")
    assert found is not None and found["retailPrice"] == 0.139


def test_sku_names_compare_without_spaces_or_case() -> None:
    query = dataclasses.replace(C1, product_name="Azure App Service Premium v3 Plan - Linux",
                                sku_name="P1v3", meter_name=None)
    items = [
        item(productName=query.product_name, skuName="P1mv3", meterName="P1mv3 App",
             retailPrice=0.19),
        item(productName=query.product_name, skuName="P1 v3", meterName="P1 v3 App",
             retailPrice=0.157),
    ]
    chosen = select_item(items, query, "westeurope", "USD")
    assert chosen is not None and chosen["meterName"] == "P1 v3 App"


def test_linux_plan_is_not_priced_from_the_windows_product() -> None:
    query = dataclasses.replace(C1, product_name="Azure App Service Basic Plan - Linux",
                                sku_name="B1", meter_name=None)
    windows = item(productName="Azure App Service Basic Plan", skuName="B1", meterName="B1 App")
    assert select_item([windows], query, "westeurope", "USD") is None


def test_the_newest_price_wins() -> None:
    old = item(effectiveStartDate="2024-01-01T00:00:00Z", retailPrice=0.1)
    new = item(effectiveStartDate="2026-06-01T00:00:00Z", retailPrice=0.2)
    chosen = select_item([new, old], C1, "westeurope", "USD")
    assert chosen is not None and chosen["retailPrice"] == 0.2


def test_region_comparison_ignores_case() -> None:
    assert select_item([item(armRegionName="westeurope")], C1, "WestEurope", "USD") is not None


# --- line items, totals, text --------------------------------------------------------


def test_line_item_multiplies_and_a_missing_price_says_so() -> None:
    found = pricing.line_item(C1, item(), "USD")
    assert found.monthly == pytest.approx(101.47) and found.found
    missing = pricing.line_item(C1, None, "USD")
    assert missing.monthly is None and missing.note == "price not found" and not missing.found


def fake_fetch(pages: Mapping[str, list[dict[str, Any]]], calls: list[str]) -> pricing.Fetch:
    """Answers from fixed pages: the base URL's first page links to `next`, and so on."""

    def fetch(url: str, params: Mapping[str, str] | None) -> Mapping[str, Any]:
        calls.append(url if params is None else f"{url}?$filter={params['$filter']}")
        key = "first" if params is not None else url
        items = pages[key]
        following = {"first": "page2", "page2": None}.get(key)
        return {"Items": items, "NextPageLink": following if following in pages else None}

    return fetch


def test_estimate_follows_next_page_links_and_totals_what_was_found() -> None:
    spec = sandbox_spec()
    spec.image.build_from = None  # cache, storage, plan
    spec.monitoring.enabled = False
    calls: list[str] = []
    pages = {"first": [item(meterName="C1 Cache Instance", retailPrice=0.0695)],
             "page2": [item()]}
    result = pricing.estimate(spec, "https://prices.example", fetch=fake_fetch(pages, calls))
    assert "page2" in calls
    cache, storage, plan = result.items
    assert cache.monthly == pytest.approx(101.47)
    assert not storage.found and not plan.found
    assert result.total == pytest.approx(101.47)
    assert (result.priced, result.missing) == (1, 2)
    assert "2 item(s) without a list price" in result.summary()
    table = format_table(result)
    assert table.count("price not found") == 2
    assert "Estimated monthly total: USD 101.47" in table


def test_the_same_filter_is_asked_once() -> None:
    spec = sandbox_spec()
    spec.function_app.plan_sku = "EP1"  # two meters of one product
    calls: list[str] = []
    pricing.estimate(spec, "https://prices.example", fetch=fake_fetch({"first": []}, calls))
    assert sum("Premium Functions" in call for call in calls) == 1


def test_estimate_basis_tells_sandbox_and_azure_apart() -> None:
    fetch = fake_fetch({"first": [item()]}, [])
    on_sandbox = pricing.estimate(sandbox_spec(), "u", sandbox=True, fetch=fetch)
    assert "sandbox itself costs nothing" in on_sandbox.summary()
    azure_from_sandbox = pricing.estimate(azure_spec(), "u", sandbox=True, fetch=fetch)
    assert "sample price table" in azure_from_sandbox.basis
    assert "costs nothing" not in azure_from_sandbox.basis
    on_azure = pricing.estimate(azure_spec(), "u", fetch=fetch)
    assert "Azure retail list prices for westeurope" in on_azure.basis
    data = on_azure.as_dict()
    assert data["total"] == on_azure.total and data["source"] == "u"


def test_endless_paging_is_a_service_failure() -> None:
    def fetch(url: str, params: Mapping[str, str] | None) -> Mapping[str, Any]:
        return {"Items": [], "NextPageLink": "again"}

    with pytest.raises(ServiceFailure, match="kept paging"):
        pricing.estimate(sandbox_spec(), "u", fetch=fetch)


def test_a_closed_port_is_a_clear_service_failure() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens there now: the connection is refused at once.
    with pytest.raises(ServiceFailure, match="could not be reached") as caught:
        pricing.estimate(sandbox_spec(), f"https://127.0.0.1:{port}/retail/prices",
                         retry=NO_RETRY)
    assert "No estimate is available" in caught.value.recommendation


def test_a_server_that_never_answers_is_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pricing, "TIMEOUT", (0.5, 0.5))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)  # the kernel accepts the connection; nobody ever answers
        port = sock.getsockname()[1]
        with pytest.raises(ServiceFailure, match="did not answer in time"):
            pricing.estimate(sandbox_spec(), f"https://127.0.0.1:{port}/retail/prices",
                             retry=NO_RETRY)


def test_each_replica_above_one_adds_a_node_of_the_instance_meter() -> None:
    spec = azure_spec()  # Premium
    spec.cache.shards, spec.cache.replicas = 2, 3
    cache, extra = queries_of(spec, "cache")
    assert cache.meter_name == f"{spec.cache.size} Cache" and cache.units == 730 * 2
    assert extra.meter_name == f"{spec.cache.size} Cache Instance"
    assert extra.units == 730 * 2 * 2 and extra.unit_label == "node-hour"


def test_choice_prices_price_every_size_from_one_product_list() -> None:
    spec = sandbox_spec()
    spec.cache.tier, spec.cache.size = "Standard", "C1"
    items = [item(skuName=size, meterName=f"{size} Cache", retailPrice=price)
             for size, price in (("C0", 0.055), ("C1", 0.139))]
    calls: list[str] = []
    prices = pricing.choice_prices(spec, "cache.size", "https://prices.example",
                                   fetch=fake_fetch({"first": items}, calls))
    assert prices["C0"] == round(0.055 * 730, 2) and prices["C1"] == round(0.139 * 730, 2)
    # A size the list does not price is unknown, not guessed.
    assert prices["C6"] is None and set(prices) == {f"C{i}" for i in range(7)}
    assert len(calls) == 1 and "skuName" not in calls[0]


def test_application_insights_is_priced_on_its_workspace_inside_the_free_allowance() -> None:
    """The sandbox's table lists ingestion as Azure lists a free allowance: a 0.0 row at
    tier 0 and the paid row from 5 GB; 1 GB a month is inside the free part."""
    from app.sandbox.prices_table import ITEMS

    (query,) = queries_of(sandbox_spec(), "workspace")
    rows = [i for i in ITEMS if i["serviceName"] == query.service_name]
    chosen = select_item(rows, query, "westeurope", "USD")
    assert chosen is not None and chosen["retailPrice"] == 0.0
    line = pricing.line_item(query, chosen, "USD")
    assert line.found and line.monthly == 0.0
    assert "first 5 GB a month are free" in line.note
    notes = pricing.estimate_notes(sandbox_spec())
    assert any("Application Insights" in note for note in notes)
    off = sandbox_spec()
    off.monitoring.enabled = False
    assert not queries_of(off, "workspace")
