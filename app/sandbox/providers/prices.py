"""The Azure Retail Prices API, served by the sandbox from its sample price table.

Azure answers `GET https://prices.azure.com/api/retail/prices?$filter=...`
without authentication: `{"BillingCurrency", "CustomerEntityId",
"CustomerEntityType", "Items": [...], "NextPageLink", "Count"}`, items in pages
linked by `NextPageLink` (`$skip`). The sandbox serves the same shape at
`<endpoint>/retail/prices`, without a token, from `app.sandbox.prices_table`
(sample list prices, not a quote), so cost estimates work with no network.

`$filter` is parsed, not string-matched: the subset of OData the API is used
with here (`eq`, `ne`, `and`, `or`, `not`, parentheses, `contains`,
`startswith`, `endswith`, string/number/boolean literals). A filter outside that
subset answers 400 with the reason. As on Azure since api-version
2023-01-01-preview, string comparisons are case-sensitive; older versions (or
none) compare case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from app.sandbox.prices_table import CURRENCY, ITEMS
from app.sandbox.providers import Provider

PATH = "/retail/prices"
# Azure pages 100 items (1000 in newer versions); a smaller page makes every
# client follow NextPageLink against the sandbox too.
PAGE_SIZE = 25
CASE_SENSITIVE_FROM = "2023-01-01"
# The filterable fields, by their lower-case name. `priceType` filters the
# items' `type` field, as Azure's documentation writes it.
FIELDS = {name.lower(): name for name in ITEMS[0]} | {
    "reservationterm": "reservationTerm",
    "pricetype": "type",
}

Item = dict[str, Any]
Predicate = Callable[[Item], bool]


class FilterError(ValueError):
    """A `$filter` outside the supported OData subset."""


# --- tokens -----------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # string | number | name | punct | end
    text: str
    position: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            start = len(text) - len(text[position:].lstrip())
            raise FilterError(f"unexpected character {text[start]!r} at position {start}")
        kind = match.lastgroup or ""
        tokens.append(Token(kind, match.group(kind), match.start(kind)))
        position = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


# --- parser: filter := or ; or := and ('or' and)* ; and := unary ('and' unary)* ---
#            unary := 'not' unary | '(' or ')' | call | comparison

_COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
_FUNCTIONS = ("contains", "startswith", "endswith")


class _Parser:
    def __init__(self, text: str, case_sensitive: bool) -> None:
        self.tokens = tokenize(text)
        self.index = 0
        self.case_sensitive = case_sensitive

    def peek(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token.kind == "name" and token.text.lower() == word:
            self.index += 1
            return True
        return False

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text:
            found = token.text or "the end of the filter"
            raise FilterError(f"expected {text!r} at position {token.position}, found {found!r}")

    def parse(self) -> Predicate:
        if self.peek().kind == "end":
            raise FilterError("the filter is empty")
        predicate = self.parse_or()
        token = self.peek()
        if token.kind != "end":
            raise FilterError(f"unexpected {token.text!r} at position {token.position}")
        return predicate

    def parse_or(self) -> Predicate:
        parts = [self.parse_and()]
        while self.keyword("or"):
            parts.append(self.parse_and())
        if len(parts) == 1:
            return parts[0]
        return lambda item: any(p(item) for p in parts)

    def parse_and(self) -> Predicate:
        parts = [self.parse_unary()]
        while self.keyword("and"):
            parts.append(self.parse_unary())
        if len(parts) == 1:
            return parts[0]
        return lambda item: all(p(item) for p in parts)

    def parse_unary(self) -> Predicate:
        if self.keyword("not"):
            inner = self.parse_unary()
            return lambda item: not inner(item)
        token = self.peek()
        if token.kind == "punct" and token.text == "(":
            self.take()
            inner = self.parse_or()
            self.expect(")")
            return inner
        if token.kind == "name" and token.text.lower() in _FUNCTIONS:
            return self.parse_call()
        return self.parse_comparison()

    def field(self) -> str:
        token = self.take()
        if token.kind != "name":
            shown = token.text or "the end of the filter"
            raise FilterError(f"expected a field name at position {token.position}, "
                              f"found {shown!r}")
        name = FIELDS.get(token.text.lower())
        if name is None:
            raise FilterError(f"unknown field {token.text!r} at position {token.position}")
        return name

    def literal(self) -> Any:
        token = self.take()
        if token.kind == "string":
            return token.text[1:-1].replace("''", "'")
        if token.kind == "number":
            return float(token.text)
        if token.kind == "name" and token.text.lower() in ("true", "false"):
            return token.text.lower() == "true"
        if token.kind == "name" and token.text.lower() == "null":
            return None
        shown = token.text or "the end of the filter"
        raise FilterError(f"expected a literal at position {token.position}, found {shown!r}")

    def fold(self, value: Any) -> Any:
        if isinstance(value, str) and not self.case_sensitive:
            return value.lower()
        return value

    def parse_comparison(self) -> Predicate:
        name = self.field()
        op_token = self.take()
        op = op_token.text.lower()
        if op_token.kind != "name" or op not in _COMPARISONS:
            shown = op_token.text or "the end of the filter"
            raise FilterError(f"expected a comparison (eq, ne, gt, ge, lt, le) after {name} "
                              f"at position {op_token.position}, found {shown!r}")
        wanted = self.fold(self.literal())
        fold = self.fold

        def compare(item: Item) -> bool:
            have = fold(item.get(name))
            if op == "eq":
                return bool(have == wanted)
            if op == "ne":
                return bool(have != wanted)
            if not isinstance(have, int | float) or not isinstance(wanted, int | float):
                return False
            return {"gt": have > wanted, "ge": have >= wanted,
                    "lt": have < wanted, "le": have <= wanted}[op]

        if op in ("gt", "ge", "lt", "le") and not isinstance(wanted, float):
            raise FilterError(f"{op} needs a number")
        return compare

    def parse_call(self) -> Predicate:
        function = self.take().text.lower()
        self.expect("(")
        name = self.field()
        self.expect(",")
        needle = self.literal()
        if not isinstance(needle, str):
            raise FilterError(f"{function} needs a string")
        self.expect(")")
        needle = self.fold(needle)
        fold = self.fold
        test = {"contains": str.__contains__, "startswith": str.startswith,
                "endswith": str.endswith}[function]

        def call(item: Item) -> bool:
            have = item.get(name)
            return isinstance(have, str) and bool(test(fold(have), needle))

        return call


def parse_filter(text: str, case_sensitive: bool = True) -> Predicate:
    """A predicate over items for an OData `$filter`; FilterError when it cannot be parsed."""
    return _Parser(text, case_sensitive).parse()


def case_sensitive_for(api_version: str | None) -> bool:
    return bool(api_version) and str(api_version)[:10] >= CASE_SENSITIVE_FROM


def _bad_request(message: str) -> Response:
    # Azure's answer to an unusable query has this shape; its codes are not
    # documented, so the code here is chosen to say what went wrong.
    return JSONResponse({"Error": {"Code": "InvalidFilter", "Message": message}},
                        status_code=400)


def select(items: list[Item], predicate: Predicate | None) -> list[Item]:
    return [item for item in items if predicate is None or predicate(item)]


class PricesProvider(Provider):
    """Serves `GET /retail/prices` (no token, like Azure's public endpoint)."""

    namespace = ""  # not an ARM resource provider: never listed as registered
    data_plane_prefixes: ClassVar[tuple[str, ...]] = ("/retail/",)

    def routes(self) -> list[BaseRoute]:
        return [Route(PATH, self.prices, methods=["GET"])]

    async def prices(self, request: Request) -> Response:
        query = request.query_params
        currency = query.get("currencyCode", CURRENCY).strip("'\"").upper()
        if currency != CURRENCY:
            return _bad_request(f"the sandbox's sample price table holds {CURRENCY} prices "
                                f"only, not {currency}")
        try:
            skip = int(query.get("$skip", "0"))
            if skip < 0:
                raise ValueError
        except ValueError:
            return _bad_request(f"$skip must be a whole number >= 0, not {query['$skip']!r}")
        predicate = None
        text = query.get("$filter")
        if text is not None:
            try:
                predicate = parse_filter(text, case_sensitive_for(query.get("api-version")))
            except FilterError as exc:
                return _bad_request(f"Invalid $filter: {exc}")
        matched = select(ITEMS, predicate)
        page = matched[skip:skip + PAGE_SIZE]
        next_link = None
        if skip + PAGE_SIZE < len(matched):
            next_link = str(request.url.include_query_params(**{"$skip": skip + PAGE_SIZE}))
        return JSONResponse({
            "BillingCurrency": CURRENCY,
            "CustomerEntityId": "Default",
            "CustomerEntityType": "Retail",
            "Items": page,
            "NextPageLink": next_link,
            "Count": len(page),
        })
