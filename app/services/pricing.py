"""Monthly cost estimate of a spec, from the Azure Retail Prices API (portal's "Estimated cost").

Review + create in the portal shows what a deployment will cost per month
before anything exists; this module does the same for a `DeploymentSpec`.
It asks the public, unauthenticated Retail Prices API
(https://prices.azure.com/api/retail/prices, OData `$filter`, pages linked by
`NextPageLink`) for the list price of every meter the spec's resources bill
on, and multiplies by a month of 730 hours. The sandbox serves the same API
shape from a sample price table, so the estimate works offline.

Everything that decides *what* to ask and *which* answer to use is a pure
function (`price_queries`, `build_filter`, `select_item`, `line_item`), so it
is tested without a server. A meter the API does not list becomes a line
"price not found" rather than a guessed number.

Where the Retail Prices API's field values come from: Microsoft documents the
API and its fields, not the value of every meter, so the values below are the
ones the API answers today as seen in public tooling and billing exports.
Where a value is less certain, the comment says so; `select_item` compares
SKU names without spaces and case to absorb the known "P1 v3" / "P0v3" drift.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from app.errors import ServiceFailure
from app.services.meters import PriceQuery
from app.services.plan import build_plan
from app.services.target import RETAIL_PRICES_URL, CloudTarget, RetrySettings
from app.services.transport import retrying_session
from app.spec import DeploymentSpec

# The version whose filter values are case-sensitive and which lists every meter.
API_VERSION = "2023-01-01-preview"
# (connect, read) seconds: an estimate is a convenience and must not hold a page up.
TIMEOUT = (3.05, 10.0)
# Pages followed per query before giving up (the API pages 100 or 1000 items).
MAX_PAGES = 20
@dataclass
class LineItem:
    resource: str
    sku: str
    meter: str
    unit_price: float | None
    unit: str
    units: float
    monthly: float | None
    currency: str
    note: str = ""

    @property
    def found(self) -> bool:
        return self.monthly is not None


@dataclass
class CostEstimate:
    items: list[LineItem]
    currency: str
    region: str
    source: str  # the API's URL
    retrieved: str  # ISO date the prices were read
    sandbox: bool = False  # the prices came from the sandbox's sample table
    billed: bool = True  # False when the spec deploys to the sandbox
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return round(sum(item.monthly or 0.0 for item in self.items), 2)

    @property
    def priced(self) -> int:
        return sum(1 for item in self.items if item.found)

    @property
    def missing(self) -> int:
        return len(self.items) - self.priced

    @property
    def basis(self) -> str:
        """One sentence saying what the figure is (and, in the sandbox, what it is not)."""
        if self.sandbox:
            text = (f"Azure list-price estimate for {self.region} from the sandbox's sample "
                    "price table, not a quote")
            return text + ("" if self.billed else "; the sandbox itself costs nothing")
        return (f"Azure retail list prices for {self.region} on {self.retrieved}, pay-as-you-go, "
                "before taxes, discounts and usage-based charges")

    def summary(self) -> str:
        """One line for the Review page ("Estimated monthly cost: …"): total and its basis."""
        text = f"{self.currency} {self.total:,.2f} ({self.basis}"
        if self.missing:
            text += f"; {self.missing} item(s) without a list price are not included"
        return text + ")"

    def as_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "region": self.region,
            "total": self.total,
            "items": [{**asdict(item), "found": item.found} for item in self.items],
            "source": self.source,
            "retrieved": self.retrieved,
            "sandbox": self.sandbox,
            "billed": self.billed,
            "basis": self.basis,
            "notes": list(self.notes),
        }


# --- what to price (pure) -----------------------------------------------------------


def price_queries(spec: DeploymentSpec) -> list[PriceQuery]:
    """Every meter the resources `spec` creates bill on, in plan order."""
    return [query for step in build_plan(spec) for query in step.price_queries()]


def estimate_notes(spec: DeploymentSpec) -> list[str]:
    notes = ["Function executions and outbound data are billed by use and not included."]
    if spec.monitoring.enabled:
        notes.append("Application Insights bills what its Log Analytics workspace ingests "
                     "(pay-as-you-go per GB, the first 5 GB a month free); the line assumes "
                     "1 GB a month, a busier function ingests more.")
    else:
        notes.append("No Application Insights: the function's logs are kept by App Service "
                     "only (monitoring is off).")
    if not spec.image.build_from:
        notes.append("The image's existing registry is not created by this deployment and "
                     "is not counted.")
    return notes


# --- the OData filter and the choice of item (pure) -------------------------------


def odata_string(value: str) -> str:
    """An OData string literal: single quotes, an embedded quote doubled."""
    return "'" + value.replace("'", "''") + "'"


def build_filter(query: PriceQuery, region: str) -> str:
    """The `$filter` for one query: service, product, region, pay-as-you-go."""
    parts = [
        f"serviceName eq {odata_string(query.service_name)}",
        f"productName eq {odata_string(query.product_name)}",
    ]
    if query.filter_sku:
        parts.append(f"skuName eq {odata_string(query.sku_name)}")
    parts += [f"armRegionName eq {odata_string(region)}", "priceType eq 'Consumption'"]
    return " and ".join(parts)


def _squash(text: Any) -> str:
    return "".join(str(text or "").split()).lower()


def select_item(items: Iterable[Mapping[str, Any]], query: PriceQuery, region: str,
                currency: str) -> Mapping[str, Any] | None:
    """The item that prices `query` in `region`, or None.

    Pay-as-you-go only (not a reservation, savings plan or dev/test price), the
    exact region, product and unit, the SKU compared without spaces, the first
    price tier (tierMinimumUnits 0); among equals the newest effectiveStartDate.
    """
    candidates = []
    for item in items:
        if item.get("type") != "Consumption" or item.get("reservationTerm"):
            continue
        if str(item.get("armRegionName", "")).lower() != region.lower():
            continue
        if item.get("productName") != query.product_name:
            continue
        if _squash(item.get("skuName")) != _squash(query.sku_name):
            continue
        if query.meter_name is not None and _squash(item.get("meterName")) != _squash(
                query.meter_name):
            continue
        if item.get("unitOfMeasure") != query.unit_of_measure:
            continue
        if str(item.get("currencyCode", currency)).upper() != currency.upper():
            continue
        if float(item.get("tierMinimumUnits") or 0) != 0:
            continue
        if not isinstance(item.get("retailPrice"), int | float):
            continue
        candidates.append(item)
    if not candidates:
        return None
    return max(candidates, key=lambda item: str(item.get("effectiveStartDate", "")))


def line_item(query: PriceQuery, item: Mapping[str, Any] | None, currency: str) -> LineItem:
    if item is None:
        return LineItem(
            resource=query.resource, sku=query.sku, meter=query.meter_name or query.sku_name,
            unit_price=None, unit=query.unit_label, units=query.units, monthly=None,
            currency=currency, note="price not found",
        )
    price = float(item["retailPrice"])
    return LineItem(
        resource=query.resource, sku=query.sku, meter=str(item.get("meterName", "")),
        unit_price=price, unit=query.unit_label, units=query.units,
        monthly=round(price * query.units, 2), currency=currency, note=query.note,
    )


# --- asking the API ---------------------------------------------------------------


Fetch = Callable[[str, Mapping[str, str] | None], Mapping[str, Any]]


def _http_fetch(verify: str | bool, session: Any) -> Fetch:
    import requests

    def fetch(url: str, params: Mapping[str, str] | None) -> Mapping[str, Any]:
        shown = url.split("?", 1)[0]
        try:
            response = session.get(url, params=params, timeout=TIMEOUT, verify=verify)
        except requests.exceptions.SSLError as exc:
            raise ServiceFailure(
                f"the Retail Prices API at {shown} failed the TLS check: {exc}",
                "No estimate is available; check the certificate bundle in use.",
            ) from None
        except requests.exceptions.Timeout:
            raise ServiceFailure(
                f"the Retail Prices API at {shown} did not answer in time "
                f"({TIMEOUT[0]:g} s to connect, {TIMEOUT[1]:g} s to answer)",
                "No estimate is available; check the network connection and try again.",
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise ServiceFailure(
                f"the Retail Prices API at {shown} could not be reached "
                f"({type(exc).__name__})",
                "No estimate is available; check the network connection and try again.",
            ) from None
        except requests.exceptions.RequestException as exc:
            raise ServiceFailure(
                f"the Retail Prices API at {shown} could not be asked: {exc}",
                "No estimate is available; check the prices URL.",
            ) from None
        if response.status_code != 200:
            raise ServiceFailure(
                f"the Retail Prices API at {shown} answered {response.status_code}: "
                f"{_error_text(response)}",
                "No estimate is available; try again later.",
            )
        try:
            body = response.json()
        except ValueError:
            raise ServiceFailure(
                f"the Retail Prices API at {shown} answered something that is not JSON",
                "No estimate is available; check the prices URL.",
            ) from None
        if not isinstance(body, dict) or not isinstance(body.get("Items"), list):
            raise ServiceFailure(
                f"the Retail Prices API at {shown} answered without an Items list",
                "No estimate is available; check the prices URL.",
            )
        return body

    return fetch


def _error_text(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason or ""
    error = body.get("Error") or body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("Message") or error.get("message") or error)[:300]
    return str(body)[:200]


def fetch_items(fetch: Fetch, base_url: str, filter_text: str, currency: str) -> list[
        dict[str, Any]]:
    """Every item of one filtered query, following NextPageLink."""
    params: Mapping[str, str] | None = {
        "api-version": API_VERSION, "currencyCode": currency, "$filter": filter_text,
    }
    url = base_url
    items: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        body = fetch(url, params)
        items.extend(item for item in body["Items"] if isinstance(item, dict))
        next_link = body.get("NextPageLink")
        if not next_link:
            return items
        # The link carries the whole query (filter, currency, $skip).
        url, params = str(next_link), None
    raise ServiceFailure(
        f"the Retail Prices API kept paging after {MAX_PAGES} pages for {filter_text}",
        "No estimate is available; the query is broader than intended.",
    )


def estimate(spec: DeploymentSpec, prices_base_url: str = RETAIL_PRICES_URL,
             verify: str | bool = True, *, currency: str = "USD", sandbox: bool = False,
             fetch: Fetch | None = None, retry: RetrySettings | None = None) -> CostEstimate:
    """Price every resource of `spec` at list prices for its location.

    `verify` is passed to every request (the sandbox CA path, or True for the
    system store). Raises ServiceFailure when the API cannot be used at all; a
    meter it does not list becomes a "price not found" line. Its GETs follow the
    product's retry policy (`retry`: the target's settings, else azure-core's defaults).
    """
    queries = price_queries(spec)
    region = spec.location.lower()
    session = None
    if fetch is None:
        session = retrying_session(retry or RetrySettings())
        fetch = _http_fetch(verify, session)
    try:
        results: dict[str, list[dict[str, Any]]] = {}
        items = []
        for query in queries:
            filter_text = build_filter(query, region)
            if filter_text not in results:
                results[filter_text] = fetch_items(fetch, prices_base_url, filter_text, currency)
            chosen = select_item(results[filter_text], query, region, currency)
            items.append(line_item(query, chosen, currency))
    finally:
        if session is not None:
            session.close()
    return CostEstimate(
        items=items, currency=currency, region=region, source=prices_base_url,
        retrieved=_dt.datetime.now(_dt.UTC).date().isoformat(), sandbox=sandbox,
        billed=spec.target != "sandbox", notes=estimate_notes(spec),
    )


def estimate_for_target(spec: DeploymentSpec, target: CloudTarget) -> CostEstimate:
    """The estimate from the prices API the target's profile names."""
    return estimate(spec, target.prices_url, target.verify, sandbox=target.sample_prices,
                    retry=target.retry)


def monthly_cost_text(spec: DeploymentSpec, target: CloudTarget) -> str:
    """The wizard's one line; ServiceFailure (shown as "No estimate: …") when nothing is priced."""
    result = estimate_for_target(spec, target)
    if result.priced == 0:
        raise ServiceFailure(
            f"the Retail Prices API lists none of this deployment's meters for {result.region}",
            "See the Azure pricing calculator for these sizes.",
        )
    return result.summary()


# --- prices beside each choice (the wizard's size and plan lists) ---------------------

# What each choice prices: the steps that bill for it, and the spec field it sets.
_CHOICE_STEPS = {"cache.size": ("cache", "cache-cluster"), "function_app.plan_sku": ("plan",)}


def choice_variants(spec: DeploymentSpec, path: str) -> dict[str, DeploymentSpec]:
    """A copy of `spec` per value the choice `path` offers (every size of the spec's
    tier, or every plan), so each is priced exactly as the estimate prices it."""
    import copy

    from app.rules import PLAN_SKUS, sizes_for

    values = sizes_for(spec.cache.kind, spec.cache.tier) if path == "cache.size" else PLAN_SKUS
    variants = {}
    for value in values:
        variant = copy.deepcopy(spec)
        if path == "cache.size":
            variant.cache.size = value
        else:
            variant.function_app.plan_sku = value
        variants[value] = variant
    return variants


def choice_prices(spec: DeploymentSpec, path: str, prices_base_url: str = RETAIL_PRICES_URL,
                  verify: str | bool = True, *, currency: str = "USD",
                  fetch: Fetch | None = None,
                  retry: RetrySettings | None = None) -> dict[str, float | None]:
    """The monthly list price of each value of the choice `path` ("cache.size" or
    "function_app.plan_sku") in the spec's region: None where any meter it bills on is
    not listed (the wizard says "price unknown" rather than guess).

    One request per product, not per size: the queries drop their SKU filter and
    `select_item` picks each size's item from the product's list."""
    from dataclasses import replace

    region = spec.location.lower()
    session = None
    if fetch is None:
        session = retrying_session(retry or RetrySettings())
        fetch = _http_fetch(verify, session)
    results: dict[str, list[dict[str, Any]]] = {}
    prices: dict[str, float | None] = {}
    try:
        for value, variant in choice_variants(spec, path).items():
            total: float | None = 0.0
            for step in build_plan(variant):
                if step.name not in _CHOICE_STEPS[path]:
                    continue
                for query in step.price_queries():
                    query = replace(query, filter_sku=False)
                    filter_text = build_filter(query, region)
                    if filter_text not in results:
                        results[filter_text] = fetch_items(fetch, prices_base_url,
                                                           filter_text, currency)
                    item = line_item(query, select_item(results[filter_text], query, region,
                                                        currency), currency)
                    total = None if total is None or item.monthly is None \
                        else total + item.monthly
            prices[value] = None if total is None else round(total, 2)
    finally:
        if session is not None:
            session.close()
    return prices


def choice_price_texts(spec: DeploymentSpec, path: str, target: CloudTarget) -> dict[str, str]:
    """`choice_prices` in words for the wizard: "USD 40.15/month" or "price unknown"."""
    return {value: "price unknown" if price is None else f"USD {price:,.2f}/month"
            for value, price in choice_prices(spec, path, target.prices_url, target.verify,
                                              retry=target.retry).items()}


__all__ = [
    "API_VERSION",
    "RETAIL_PRICES_URL",
    "CostEstimate",
    "LineItem",
    "PriceQuery",
    "build_filter",
    "choice_price_texts",
    "choice_prices",
    "estimate",
    "estimate_for_target",
    "monthly_cost_text",
    "odata_string",
    "price_queries",
    "select_item",
]
