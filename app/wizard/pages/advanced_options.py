"""The Advanced page's portal options beyond connections: replicas and the update channel
(Azure Cache for Redis), data persistence and its frequency (both kinds), and Azure
Managed Redis's clustering policy, eviction policy and modules.

Each part loads from and stores into the spec, and `apply` enables what the kind and
tier allow, showing the reason beside what they do not (`cache_option_blockers`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QWidget,
)

from app.rules import (
    CLASSIC_RDB_FREQUENCIES,
    MANAGED_FREQUENCIES,
    MAX_REPLICAS,
    MODULES,
    OSS_CLUSTER_REASON,
    cache_option_blockers,
    persistence_frequency,
)
from app.spec import DeploymentSpec
from app.wizard.pages.base import stack
from app.wizard.widgets import FieldMessage

if TYPE_CHECKING:
    from app.wizard.pages.base import Page

FREQUENCY_LABELS = {
    "15": "Every 15 minutes", "30": "Every 30 minutes", "60": "Every hour",
    "360": "Every 6 hours", "720": "Every 12 hours", "1440": "Every 24 hours",
    "1h": "Every hour", "6h": "Every 6 hours", "12h": "Every 12 hours",
    "1s": "Every second", "always": "On every write (slower)",
}
EVICTION_LABELS = {
    "VolatileLRU": "Volatile LRU: least recently used keys with a TTL (default)",
    "VolatileLFU": "Volatile LFU: least frequently used keys with a TTL",
    "VolatileTTL": "Volatile TTL: keys closest to expiring",
    "VolatileRandom": "Volatile random: any key with a TTL",
    "AllKeysLRU": "All keys LRU: least recently used keys",
    "AllKeysLFU": "All keys LFU: least frequently used keys",
    "AllKeysRandom": "All keys random",
    "NoEviction": "No eviction: refuse writes when memory is full",
}
CLUSTERING_LABELS = {
    "EnterpriseCluster": "Enterprise: one endpoint, any client (default)",
    "NoCluster": "Non-clustered: one shard",
    "OSSCluster": "OSS cluster: needs a cluster-aware client",
}


def reason_label(parent: QWidget) -> QLabel:
    """The sentence beside an option the kind or tier cannot have."""
    label = QLabel(parent)
    label.setWordWrap(True)
    label.setObjectName("optionReason")
    label.setVisible(False)
    return label


def show_reason(label: QLabel, reason: str | None) -> None:
    label.setText(f"Not available: {reason}." if reason else "")
    label.setVisible(bool(reason))


def option_row(page: Page, form: QFormLayout, text: str, widget: QWidget, path: str,
               *below: QWidget) -> FieldMessage:
    """One labelled row (mnemonic in `text`) whose rule messages show under `widget`."""
    message = page.message_for()
    label = QLabel(text)
    label.setBuddy(widget)
    form.addRow(label, stack(widget, message, *below))
    page.bind(path, widget, message)
    return message


def _combo(parent: QWidget, name: str, page: Page) -> QComboBox:
    combo = QComboBox(parent)
    combo.setAccessibleName(name)
    combo.currentIndexChanged.connect(page._on_edit)
    return combo


class ReplicaOptions:
    """Replicas per primary, in the Premium group's form (Premium only, 1 to 3)."""

    def __init__(self, page: Page, box: QGroupBox, form: QFormLayout) -> None:
        self.replicas = QSpinBox(box)
        self.replicas.setRange(1, MAX_REPLICAS)
        self.replicas.setAccessibleName("Replicas per primary")
        self.replicas.setToolTip("More replicas keep the cache up through more failures; "
                                 "the count cannot change after the cache is created.")
        self.replicas.valueChanged.connect(page._on_edit)
        self.message = option_row(page, form, "Re&plicas per primary", self.replicas,
                                  "cache.replicas")

    def load(self, spec: DeploymentSpec) -> None:
        self.replicas.setValue(spec.cache.replicas or 1)

    def store(self, spec: DeploymentSpec, allowed: bool) -> None:
        value = self.replicas.value()
        spec.cache.replicas = value if allowed and value > 1 else None


class PersistenceOptions(QGroupBox):
    """Data persistence (RDB snapshots or AOF) and how often it writes, for either kind."""

    def __init__(self, page: Page, parent: QWidget) -> None:
        super().__init__("Data persistence", parent)
        form = QFormLayout(self)
        self.reason = reason_label(self)
        form.addRow(self.reason)
        self.mode = _combo(self, "Data persistence", page)
        self.mode.addItem("Disabled", None)
        self.mode.addItem("RDB snapshots", "rdb")
        self.mode.addItem("AOF (append-only file)", "aof")
        self.mode.currentIndexChanged.connect(self._refill)
        self.mode_message = option_row(page, form, "Data &persistence", self.mode,
                                       "cache.persistence")
        self.frequency = _combo(self, "Persistence frequency", page)
        self.frequency_reason = reason_label(self)
        self.frequency_message = option_row(page, form, "&Frequency", self.frequency,
                                            "cache.persistence_frequency",
                                            self.frequency_reason)
        self._kind = ""
        self._tier = ""

    def _probe(self) -> DeploymentSpec:
        """The spec as this group shows it: kind and tier as loaded, the mode as chosen."""
        probe = DeploymentSpec()
        probe.cache.kind, probe.cache.tier = self._kind, self._tier
        probe.cache.persistence = self.mode.currentData()
        return probe

    def _choices(self) -> tuple[str, ...]:
        mode = self.mode.currentData()
        if self._kind == "azure-managed-redis":
            return MANAGED_FREQUENCIES.get(str(mode), ()) if mode else ()
        return CLASSIC_RDB_FREQUENCIES if mode == "rdb" else ()

    def _refill(self, *_args: object, preferred: str | None = None) -> None:
        current = preferred or self.frequency.currentData()
        self.frequency.blockSignals(True)
        self.frequency.clear()
        for value in self._choices():
            self.frequency.addItem(FREQUENCY_LABELS.get(value, value), value)
        index = self.frequency.findData(current)
        if index < 0:
            # The kind's default, as the engine would choose it.
            index = self.frequency.findData(persistence_frequency(self._probe()))
        self.frequency.setCurrentIndex(max(index, 0))
        self.frequency.blockSignals(False)
        self.apply(cache_option_blockers(self._probe()))

    def load(self, spec: DeploymentSpec) -> None:
        self._kind, self._tier = spec.cache.kind, spec.cache.tier
        self.mode.blockSignals(True)
        self.mode.setCurrentIndex(max(self.mode.findData(spec.cache.persistence), 0))
        self.mode.blockSignals(False)
        self._refill(preferred=persistence_frequency(spec))

    def apply(self, blockers: dict[str, str]) -> None:
        self.mode.setEnabled("persistence" not in blockers)
        show_reason(self.reason, blockers.get("persistence"))
        frequency_blocked = blockers.get("persistence_frequency")
        self.frequency.setEnabled(frequency_blocked is None and self.frequency.count() > 0)
        # The tier's reason is said once, above; the frequency says only its own.
        own = frequency_blocked if "persistence" not in blockers and self.mode.currentData() \
            else None
        show_reason(self.frequency_reason, own)

    def store(self, spec: DeploymentSpec, blockers: dict[str, str]) -> None:
        spec.cache.persistence = None if "persistence" in blockers else self.mode.currentData()
        chosen = self.frequency.currentData()
        spec.cache.persistence_frequency = None
        if "persistence_frequency" not in cache_option_blockers(spec) and chosen:
            default = persistence_frequency(spec)
            spec.cache.persistence_frequency = None if chosen == default else str(chosen)


class ManagedOptions(QGroupBox):
    """Azure Managed Redis's database: clustering policy, eviction policy, modules."""

    def __init__(self, page: Page, parent: QWidget) -> None:
        super().__init__("Azure Managed Redis options", parent)
        self.page = page
        form = QFormLayout(self)
        self.clustering = _combo(self, "Clustering policy", page)
        for value, text in CLUSTERING_LABELS.items():
            self.clustering.addItem(text, None if value == "EnterpriseCluster" else value)
        oss = self.clustering.findData("OSSCluster")
        model = self.clustering.model()
        if isinstance(model, QStandardItemModel):
            item = model.item(oss)
            item.setEnabled(False)
            item.setToolTip(f"Not available: {OSS_CLUSTER_REASON}.")
        self.clustering_message = option_row(page, form, "C&lustering policy",
                                             self.clustering, "cache.clustering_policy")

        self.eviction = _combo(self, "Eviction policy", page)
        for value, text in EVICTION_LABELS.items():
            self.eviction.addItem(text, None if value == "VolatileLRU" else value)
        self.eviction_message = option_row(page, form, "E&viction policy", self.eviction,
                                           "cache.eviction_policy")

        row = QWidget(self)
        line = QHBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        self.module_checks: dict[str, QCheckBox] = {}
        for module in MODULES:
            check = QCheckBox(module, row)
            check.setAccessibleName(f"Module {module}")
            check.toggled.connect(page._on_edit)
            self.module_checks[module] = check
            line.addWidget(check)
        line.addStretch(1)
        self.module_checks["RediSearch"].toggled.connect(self._on_search)
        self.modules_message = page.message_for()
        self.modules_note = QLabel(self)
        self.modules_note.setWordWrap(True)
        form.addRow("Modules", stack(row, self.modules_message, self.modules_note))
        page.bind("cache.modules", self.module_checks[MODULES[0]], self.modules_message)

    def _on_search(self, checked: bool) -> None:
        """RediSearch needs the Enterprise policy and no eviction: set both, and say so."""
        if not checked:
            self.modules_note.setText("")
            return
        self.clustering.setCurrentIndex(self.clustering.findData(None))
        self.eviction.setCurrentIndex(self.eviction.findData("NoEviction"))
        self.modules_note.setText("RediSearch needs the Enterprise clustering policy and no "
                                  "eviction; both are set.")

    def load(self, spec: DeploymentSpec) -> None:
        cache = spec.cache
        for combo, value in ((self.clustering, cache.clustering_policy),
                             (self.eviction, cache.eviction_policy)):
            combo.blockSignals(True)
            combo.setCurrentIndex(max(combo.findData(value), 0))
            combo.blockSignals(False)
        for module, check in self.module_checks.items():
            check.blockSignals(True)
            check.setChecked(module in cache.modules)
            check.blockSignals(False)

    def store(self, spec: DeploymentSpec, managed: bool) -> None:
        cache = spec.cache
        cache.clustering_policy = self.clustering.currentData() if managed else None
        cache.eviction_policy = self.eviction.currentData() if managed else None
        cache.modules = [m for m, c in self.module_checks.items() if c.isChecked()] \
            if managed else []


__all__ = ["ManagedOptions", "PersistenceOptions", "ReplicaOptions", "option_row",
           "reason_label", "show_reason"]
