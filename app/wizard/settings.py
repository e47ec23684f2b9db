"""Remembered choices between runs (QSettings). Never a secret: no keys,
tokens or passwords are written here, only names and ids a person picked."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings

ORGANIZATION = "mlcache-deploy"
APPLICATION = "mlcache-deploy"

# Everything this module may store; `set` refuses any other key.
KNOWN_KEYS = frozenset({
    "target",
    "azure/tenant_id",
    "azure/subscription_id",
    "azure/sign_in_method",
    "sandbox/tenant_id",
    "sandbox/subscription_id",
    "spec/last_path",
    "spec/location",
    "spec/plan_sku",
    "spec/cache_kind",
    "window/geometry",
    "window/state",
    "test/repeat",
})


class Settings:
    """A typed face on QSettings, limited to the known, non-secret keys."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self._q = qsettings or QSettings(ORGANIZATION, APPLICATION)

    def get(self, key: str, default: str = "") -> str:
        value = self._q.value(key, default)
        return str(value) if value is not None else default

    def set(self, key: str, value: str) -> None:
        if key not in KNOWN_KEYS:
            raise KeyError(f"not a remembered setting: {key}")
        self._q.setValue(key, value)

    def get_bytes(self, key: str) -> QByteArray | None:
        value = self._q.value(key)
        return value if isinstance(value, QByteArray) else None

    def set_bytes(self, key: str, value: QByteArray) -> None:
        if key not in KNOWN_KEYS:
            raise KeyError(f"not a remembered setting: {key}")
        self._q.setValue(key, value)

    def sync(self) -> None:
        self._q.sync()

    @property
    def file_name(self) -> str:
        return self._q.fileName()
