"""One place that knows every secret value, so nothing we emit can carry one.

Secrets (access keys, registry passwords, storage connection strings, function
keys) are registered here the moment a step reads them from ARM. Every log
record of an `mlcache.*` logger and every runner event passes through
`redact()` before anyone sees it; files we write are made from those.
"""

from __future__ import annotations

import dataclasses
import threading
import urllib.parse
from typing import Any, TypeVar

MASK = "***"
# Short values would mask ordinary words; no real secret is this short.
_MIN_LENGTH = 8

T = TypeVar("T")


class SecretRegistry:
    """A thread-safe set of secret strings and the text forms they travel in."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: tuple[str, ...] = ()

    def add(self, value: str | None) -> None:
        """Remember `value` (and its URL-encoded form) as a secret."""
        if not value or len(value) < _MIN_LENGTH:
            return
        forms = {value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}
        with self._lock:
            merged = set(self._values) | forms
            # Longest first, so a connection string is masked whole before its key part.
            self._values = tuple(sorted(merged, key=len, reverse=True))

    def redact(self, text: str) -> str:
        values = self._values
        for value in values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def values(self) -> tuple[str, ...]:
        """Every secret known here, for a process of ours that must mask them too."""
        return self._values

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def clear(self) -> None:
        with self._lock:
            self._values = ()


SECRETS = SecretRegistry()


def register_secret(value: str | None) -> None:
    SECRETS.add(value)


def redact(text: str) -> str:
    return SECRETS.redact(text)


def redact_value(value: Any) -> Any:
    """Redact strings anywhere inside plain data (str, list, tuple, dict, dataclass)."""
    if isinstance(value, str):
        return SECRETS.redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_value(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: redact_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    return value


def redact_event(event: T) -> T:
    return redact_value(event)
