"""ARM wire conventions shared by every provider: errors, ids, routes, JSON.

Azure Resource Manager answers failures with `{"error": {"code", "message"}}`
and treats path segments such as `resourceGroups` or `Microsoft.Cache`
case-insensitively; providers here build their routes with `arm_route` and
raise `ArmError` so every answer has the same shape as Azure's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(-(preview|alpha|beta|privatepreview))?$")

Handler = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")


class ArmError(Exception):
    """An ARM failure: HTTP status plus Azure's error code and message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        target: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.target = target

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        return {"error": error}

    def response(self) -> Response:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


def empty_response(status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, headers=headers)


def check_api_version(request: Request) -> None:
    """ARM's own rule: every request names an api-version of the form YYYY-MM-DD[-preview]."""
    value = request.query_params.get("api-version")
    if value is None:
        raise ArmError(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    if not API_VERSION_RE.match(value):
        raise ArmError(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{value}' is invalid. The supported versions are of the form "
            "'YYYY-MM-DD' or 'YYYY-MM-DD-preview'.",
        )


async def read_json(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or ARM's 400 for content it cannot read.

    Only what can be stored and answered again gets through: text that is valid
    Unicode (no lone surrogates such as "\\ud800", which json accepts but no UTF-8
    answer can carry), finite numbers (no NaN, Infinity or 1e999, which strict JSON
    answers refuse), and nesting a parser follows. Anything else would be stored,
    then fail every later GET of the group or resource that holds it.
    """
    raw = await request.body()
    if not raw.strip():
        raise ArmError(400, "InvalidRequestContent", "The request content was invalid: empty body.")
    try:
        body = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
        _check_text(body, "")
    except (ValueError, UnicodeError, RecursionError) as exc:
        reason = "nesting too deep" if isinstance(exc, RecursionError) else str(exc)
        raise ArmError(
            400,
            "InvalidRequestContent",
            f"The request content was invalid and could not be deserialized: '{reason}'.",
        ) from None
    if not isinstance(body, dict):
        raise ArmError(
            400, "InvalidRequestContent", "The request content was invalid: expected an object."
        )
    return body


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text[:32]} is out of range")
    return value


# Deeper than any ARM body goes, shallow enough for every encoder and the store.
MAX_DEPTH = 64


def _check_text(value: Any, path: str) -> None:
    """Raise ValueError naming where `value` holds a string that is not valid Unicode,
    or nests deeper than MAX_DEPTH."""
    stack = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"nesting deeper than {MAX_DEPTH} levels")
        if isinstance(item, str):
            _valid_unicode(item, where)
        elif isinstance(item, dict):
            for key, child in item.items():
                _valid_unicode(key, f"{where}.{key!r}")
                stack.append((child, f"{where}.{key}" if where else str(key), depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item))


def _valid_unicode(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        place = where.encode("ascii", "backslashreplace").decode("ascii") or "the body"
        raise ValueError(
            f"invalid Unicode at '{place}': a lone surrogate (\\u{ord(text[exc.start]):04x})"
        ) from None


def parse_model(
    deserialize: Callable[[dict[str, Any]], T], body: dict[str, Any], what: str = "request content"
) -> T:
    """An SDK model from a request body (`Model.deserialize`), or ARM's 400."""
    try:
        return deserialize(body)
    except Exception as exc:
        raise ArmError(400, "InvalidRequestContent", f"The {what} was invalid: {exc}") from None


def arm_route(path: str, endpoint: Handler, methods: Iterable[str]) -> Route:
    """A Starlette route whose literal segments match case-insensitively, as in ARM."""
    route = Route(path, endpoint, methods=list(methods))
    route.path_regex = re.compile(route.path_regex.pattern, re.IGNORECASE)
    return route


def group_id(subscription_id: str, group: str) -> str:
    return f"/subscriptions/{subscription_id}/resourceGroups/{group}"


def resource_id(subscription_id: str, group: str, rtype: str, name: str) -> str:
    """`rtype` is `Namespace/type`, e.g. `Microsoft.Cache/Redis`."""
    return f"{group_id(subscription_id, group)}/providers/{rtype}/{name}"


def not_found(rtype: str, name: str, group: str) -> ArmError:
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{rtype}/{name}' under resource group '{group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def location_required() -> ArmError:
    return ArmError(
        400, "LocationRequired", "The location property is required for this definition."
    )


def location_not_available(location: object, rtype: str) -> ArmError:
    return ArmError(
        400,
        "LocationNotAvailableForResourceType",
        f"The provided location '{location}' is not available for resource type '{rtype}'.",
    )


def group_not_found(group: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found.")


def invalid_body(message: str, target: str | None = None) -> ArmError:
    return ArmError(400, "InvalidRequestContent", message, target=target)
