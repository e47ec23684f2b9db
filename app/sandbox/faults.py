"""Fault injection: rules that make chosen requests fail the ways Azure fails.

A faults file (JSON `{"rules": [...]}` or TOML `[[rules]]`) lists rules; the
first rule matching a request's method and path decides. A rule either answers
in place of the sandbox (`status`, e.g. 429 with Retry-After, 500, 503, or any
status with an ARM `code`/`message`), drops the connection (`drop = true`), or
lets the request through and makes the provisioning it starts end in Failed
(`fail_provisioning = true` with `code`/`message`). See docs/sandbox.md.
Unknown keys are an error, so a typo never silently disables a fault.
"""

from __future__ import annotations

import json
import random
import re
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RULE_KEYS = {
    "method",
    "path",
    "count",
    "probability",
    "status",
    "code",
    "message",
    "retry_after",
    "drop",
    "fail_provisioning",
    "body",
    "headers",
}

_DEFAULT_CODES = {
    400: ("BadRequest", "The request was refused by an injected fault."),
    404: ("NotFound", "The resource was not found (injected fault)."),
    409: ("Conflict", "The request conflicts with the current state (injected fault)."),
    429: (
        "TooManyRequests",
        "The request is being throttled as the limit has been reached for operation type. "
        "Please retry after the time given in the Retry-After header (injected fault).",
    ),
    500: ("InternalServerError", "An internal server error occurred (injected fault)."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable (injected fault)."),
}


class FaultFileError(ValueError):
    """The faults file cannot be used; the message says where and why."""


@dataclass
class FaultRule:
    """One rule; `count` None means it fires on every match."""

    index: int
    method: str | None
    path: re.Pattern[str]
    status: int | None = None
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None
    drop: bool = False
    fail_provisioning: bool = False
    count: int | None = None
    probability: float = 1.0
    fired: int = 0
    # A replayed answer: `has_body` tells a JSON null body from no body at all.
    body: Any = None
    has_body: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    def error_code(self) -> str:
        if self.code:
            return self.code
        if self.fail_provisioning:
            return "ProvisioningFailed"
        return _DEFAULT_CODES.get(self.status or 500, ("InjectedFault", ""))[0]

    def error_message(self) -> str:
        if self.message:
            return self.message
        if self.fail_provisioning:
            return "The provisioning of the resource failed (injected fault)."
        return _DEFAULT_CODES.get(self.status or 500, ("", "The request failed (injected fault)."))[
            1
        ]


@dataclass
class FaultPlan:
    """All rules of a faults file; thread-safe matching with counters."""

    rules: list[FaultRule] = field(default_factory=list)
    seed: int | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(self.seed)

    def match(self, method: str, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self.rules:
                if rule.method is not None and rule.method != method.upper():
                    continue
                if not rule.path.search(path):
                    continue
                if rule.count is not None and rule.fired >= rule.count:
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                rule.fired += 1
                return rule
            return None


def _type_error(where: str, key: str, expected: str, value: Any) -> FaultFileError:
    return FaultFileError(f"{where}: '{key}' must be {expected}, not {value!r}")


def parse_rules(data: Any, source: str = "faults") -> FaultPlan:
    """Validate a decoded faults document; raises FaultFileError on any problem."""
    if not isinstance(data, dict):
        raise FaultFileError(f"{source}: expected an object with a 'rules' list")
    extra = set(data) - {"rules", "seed"}
    if extra:
        raise FaultFileError(f"{source}: unknown key(s) {', '.join(sorted(extra))}")
    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list):
        raise _type_error(source, "rules", "a list", raw_rules)
    seed = data.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise _type_error(source, "seed", "an integer", seed)
    rules = [_parse_rule(raw, i, source) for i, raw in enumerate(raw_rules)]
    return FaultPlan(rules=rules, seed=seed)


def _parse_rule(raw: Any, index: int, source: str) -> FaultRule:
    where = f"{source}: rule {index + 1}"
    if not isinstance(raw, dict):
        raise FaultFileError(f"{where}: expected an object")
    unknown = set(raw) - RULE_KEYS
    if unknown:
        raise FaultFileError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))} "
            f"(allowed: {', '.join(sorted(RULE_KEYS))})"
        )
    path = raw.get("path")
    if not isinstance(path, str) or not path:
        raise _type_error(where, "path", "a non-empty regular expression", path)
    try:
        pattern = re.compile(path, re.IGNORECASE)
    except re.error as exc:
        raise FaultFileError(f"{where}: 'path' is not a valid regular expression: {exc}") from None
    method = raw.get("method")
    if method is not None and not isinstance(method, str):
        raise _type_error(where, "method", "a string", method)
    if method in ("*", ""):
        method = None
    rule = FaultRule(index=index, method=method.upper() if method else None, path=pattern)

    actions = [
        k for k in ("status", "drop", "fail_provisioning") if raw.get(k) not in (None, False)
    ]
    if len(actions) != 1:
        raise FaultFileError(
            f"{where}: give exactly one of 'status', 'drop = true' or 'fail_provisioning = true'"
        )
    status = raw.get("status")
    if status is not None:
        if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
            raise _type_error(where, "status", "an HTTP error status (400-599)", status)
        rule.status = status
    for flag in ("drop", "fail_provisioning"):
        value = raw.get(flag, False)
        if not isinstance(value, bool):
            raise _type_error(where, flag, "true or false", value)
        setattr(rule, flag, value)
    for text_key in ("code", "message"):
        value = raw.get(text_key)
        if value is not None and not isinstance(value, str):
            raise _type_error(where, text_key, "a string", value)
        setattr(rule, text_key, value)
    _parse_replay(raw, rule, where)
    retry_after = raw.get("retry_after")
    if retry_after is not None:
        if isinstance(retry_after, bool) or not isinstance(retry_after, int | float):
            raise _type_error(where, "retry_after", "a number of seconds", retry_after)
        if retry_after < 0:
            raise _type_error(where, "retry_after", "a number of seconds >= 0", retry_after)
        rule.retry_after = float(retry_after)
    elif rule.status in (429, 503):
        rule.retry_after = 1.0
    count = raw.get("count")
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise _type_error(where, "count", "a positive integer", count)
        rule.count = count
    probability = raw.get("probability", 1.0)
    if isinstance(probability, bool) or not isinstance(probability, int | float):
        raise _type_error(where, "probability", "a number between 0 and 1", probability)
    if not 0.0 <= probability <= 1.0:
        raise _type_error(where, "probability", "a number between 0 and 1", probability)
    rule.probability = float(probability)
    return rule


def _parse_replay(raw: dict[str, Any], rule: FaultRule, where: str) -> None:
    """`body` and `headers`: only a rule that answers (`status`) has a body to send."""
    if rule.status is None:
        given = [key for key in ("body", "headers") if key in raw]
        if given:
            raise FaultFileError(
                f"{where}: {' and '.join(repr(k) for k in given)} need 'status' "
                "(only a rule that answers in place of the sandbox sends a body)"
            )
        return
    if "body" in raw:
        try:
            json.dumps(raw["body"])
        except (TypeError, ValueError):
            raise _type_error(where, "body", "a JSON value", raw["body"]) from None
        rule.body = raw["body"]
        rule.has_body = True
    headers = raw.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise _type_error(where, "headers", "a table of header names to strings", headers)
    for name, value in headers.items():
        if "\r" in value or "\n" in value:
            raise FaultFileError(f"{where}: header {name!r} holds a line break")
        if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name) or name.lower() in (
            "content-length",
            "transfer-encoding",
        ):
            raise FaultFileError(f"{where}: 'headers' cannot set {name!r}")
    rule.headers = dict(headers)


def load_faults(path: Path) -> FaultPlan:
    """Read a .json or .toml faults file; FaultFileError for anything unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FaultFileError(f"cannot read faults file {path}: {exc.strerror}") from None
    try:
        if path.suffix.lower() == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            raise FaultFileError(f"faults file {path} must end in .json or .toml")
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        if isinstance(exc, FaultFileError):
            raise
        raise FaultFileError(f"faults file {path} is not valid: {exc}") from None
    return parse_rules(data, source=str(path))
