"""Advanced: ports, TLS, Redis version, how the function signs in to the cache and to its
registry and storage; the update channel; Premium-only clustering and replicas; data
persistence and its frequency; availability zones for Standard and Premium; Azure Managed
Redis's clustering and eviction policies and modules.

An option the chosen kind or tier cannot have stays in view, disabled, with the reason
(`app.rules.cache_option_blockers`, the same table the rules refuse a spec with)."""

from __future__ import annotations

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
    MAX_SHARDS,
    REDIS_VERSIONS,
    TLS_VERSIONS,
    ZONES,
    cache_option_blockers,
)
from app.spec import DeploymentSpec
from app.wizard.pages.advanced_options import (
    ManagedOptions,
    PersistenceOptions,
    ReplicaOptions,
    option_row,
    reason_label,
    show_reason,
)
from app.wizard.pages.base import Page, stack


def clear_kind_options(spec: DeploymentSpec) -> None:
    """The options of one cache kind do not exist on the other: a kind change resets them."""
    cache = spec.cache
    cache.persistence_frequency = None
    cache.replicas = None
    cache.update_channel = None
    cache.clustering_policy = None
    cache.eviction_policy = None
    cache.modules = []


class AdvancedPage(Page):
    key = "advanced"
    title = "Advanced"
    heading = "Advanced"
    intro = "Security and resilience options. The defaults suit most models."

    def build(self) -> None:
        general = QGroupBox("Connections", self.body)
        form = QFormLayout(general)
        self.non_tls = QCheckBox("Enable the non-TLS port (6379)", general)
        self.non_tls.setAccessibleName("Non-TLS port")
        self.non_tls.setToolTip("Off by default: unencrypted connections expose the access key")
        self.non_tls_message = self.message_for()
        self.non_tls.toggled.connect(self._on_edit)
        form.addRow("Non-TLS port", stack(self.non_tls, self.non_tls_message))
        self.bind("cache.non_tls_port", self.non_tls, self.non_tls_message)

        self.tls = QComboBox(general)
        self.tls.setAccessibleName("Minimum TLS version")
        self.tls.addItems(TLS_VERSIONS)
        self.tls.currentIndexChanged.connect(self._on_edit)
        self.tls_message = self.message_for()
        label = QLabel("Minimum &TLS version")
        label.setBuddy(self.tls)
        form.addRow(label, stack(self.tls, self.tls_message))
        self.bind("cache.minimum_tls_version", self.tls, self.tls_message)

        self.version = QComboBox(general)
        self.version.setAccessibleName("Redis version")
        for v in REDIS_VERSIONS:
            self.version.addItem(v, v)
        self.version.currentIndexChanged.connect(self._on_edit)
        self.version_message = self.message_for()
        label = QLabel("Redis &version")
        label.setBuddy(self.version)
        form.addRow(label, stack(self.version, self.version_message))
        self.bind("cache.redis_version", self.version, self.version_message)

        self.entra, self.keys, self.auth_note = self.two_choices(
            general, form, "cache.auth", "Cache authentication",
            ("Microsoft &Entra ID", "Microsoft Entra authentication",
             "The function signs in to the cache with its managed identity; no key is "
             "stored anywhere and Azure turns the cache's access keys off."),
            ("Access &keys", "Access keys authentication",
             "The function holds the cache's access key in its app settings, for tools "
             "or policies that need keys."))
        self.auth_message = self._last_message
        self.identity, self.app_keys, self.app_note = self.two_choices(
            general, form, "function_app.auth", "Registry and storage access",
            ("&Managed identity", "Managed identity access",
             "The function pulls its image and reaches its storage with its managed "
             "identity and role assignments; the registry's admin user stays off."),
            ("Registry &password and storage key", "Registry password and storage key",
             "The function keeps the registry's admin password and the storage account "
             "key in its app settings, the older way."))
        self.app_auth_message = self._last_message

        self.channel = QComboBox(general)
        self.channel.setAccessibleName("Update channel")
        self.channel.addItem("Stable (default)", None)
        self.channel.addItem("Preview: Redis updates at least 4 weeks earlier", "Preview")
        self.channel.currentIndexChanged.connect(self._on_edit)
        self.channel_reason = reason_label(general)
        self.channel_message = option_row(self, form, "&Update channel", self.channel,
                                          "cache.update_channel", self.channel_reason)
        self.layout_.addWidget(general)

        self.premium = QGroupBox("Premium options", self.body)
        form = QFormLayout(self.premium)
        self.premium_reason = reason_label(self.premium)
        form.addRow(self.premium_reason)
        self.cluster = QCheckBox("Enable clustering", self.premium)
        self.cluster.setAccessibleName("Clustering")
        self.shards = QSpinBox(self.premium)
        # Wider than the rule: a spin box clamps what is typed (99 became 9) without a
        # word, while the rule says the range; the label says it up front.
        self.shards.setRange(1, 999)
        self.shards.setValue(1)
        self.shards.setAccessibleName("Shard count")
        self.shards.setEnabled(False)
        self.cluster.toggled.connect(self.shards.setEnabled)
        self.cluster.toggled.connect(self._on_edit)
        self.shards.valueChanged.connect(self._on_edit)
        self.shards_message = self.message_for()
        cluster_row = QWidget(self.premium)
        row = QHBoxLayout(cluster_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.cluster)
        row.addWidget(QLabel(f"Shard count (1\u2013{MAX_SHARDS})"))
        row.addWidget(self.shards)
        row.addStretch(1)
        form.addRow("Clustering", stack(cluster_row, self.shards_message))
        self.bind("cache.shards", self.cluster, self.shards_message)
        self.replica_options = ReplicaOptions(self, self.premium, form)
        self.layout_.addWidget(self.premium)

        self.persistence_box = PersistenceOptions(self, self.body)
        self.persistence = self.persistence_box.mode
        self.layout_.addWidget(self.persistence_box)
        self.managed_options = ManagedOptions(self, self.body)
        self.layout_.addWidget(self.managed_options)

        self.zones_box = QGroupBox("Availability zones", self.body)
        row = QHBoxLayout(self.zones_box)
        self.zone_checks: dict[str, QCheckBox] = {}
        for zone in ZONES:
            check = QCheckBox(f"Zone {zone}", self.zones_box)
            check.setAccessibleName(f"Availability zone {zone}")
            check.toggled.connect(self._on_edit)
            self.zone_checks[zone] = check
            row.addWidget(check)
        self.zones_message = self.message_for()
        row.addWidget(self.zones_message, 1)
        self.bind("cache.zones", self.zone_checks[ZONES[0]], self.zones_message)
        self.layout_.addWidget(self.zones_box)

        self.managed_note = QLabel(
            "Azure Managed Redis accepts TLS connections only (port 10000), manages the "
            "Redis version, and spreads its replicas across zones itself.", self.body)
        self.managed_note.setWordWrap(True)
        self.managed_note.setObjectName("noteBox")
        self.layout_.addWidget(self.managed_note)

    def _apply_visibility(self, spec: DeploymentSpec) -> None:
        managed = spec.cache.kind == "azure-managed-redis"
        premium = not managed and spec.cache.tier == "Premium"
        blockers = cache_option_blockers(spec)
        # A classic cache's Premium options stay in view on Basic and Standard, disabled,
        # with the reason; Azure Managed Redis has none of them.
        self.premium.setVisible(not managed)
        for widget in (self.cluster, self.replica_options.replicas):
            widget.setEnabled(premium)
        self.shards.setEnabled(premium and self.cluster.isChecked())
        show_reason(self.premium_reason, None if premium or managed else
                    f"clustering and more than one replica need the Premium tier; a "
                    f"{spec.cache.tier} cache has neither")
        self.channel.setEnabled("update_channel" not in blockers)
        show_reason(self.channel_reason, blockers.get("update_channel"))
        self.persistence_box.apply(blockers)
        self.managed_options.setVisible(managed)
        self.zones_box.setVisible(not managed and spec.cache.tier in ("Standard", "Premium"))
        self.managed_note.setVisible(managed)
        self.non_tls.setEnabled(not managed)
        self.version.setEnabled(not managed)
        self.version.setToolTip("Azure manages the version" if managed else "")

    def on_shown(self) -> None:
        self.do_load(self.session.spec)

    def load(self, spec: DeploymentSpec) -> None:
        cache = spec.cache
        self.non_tls.setChecked(cache.non_tls_port)
        self.tls.setCurrentText(cache.minimum_tls_version)
        self.version.clear()
        if cache.kind == "azure-managed-redis":
            self.version.addItem("Managed by Azure", None)
        else:
            for v in REDIS_VERSIONS:
                self.version.addItem(v, v)
            index = self.version.findData(cache.redis_version)
            self.version.setCurrentIndex(max(index, 0))
        self.keys.setChecked(cache.auth != "entra")
        self.entra.setChecked(cache.auth == "entra")
        self.app_keys.setChecked(spec.function_app.auth == "keys")
        self.identity.setChecked(spec.function_app.auth != "keys")
        self.explain_choices()
        self.cluster.setChecked(cache.shards is not None)
        self.shards.setValue(cache.shards or 1)
        self.persistence_box.load(spec)
        self.replica_options.load(spec)
        self.channel.setCurrentIndex(max(self.channel.findData(cache.update_channel), 0))
        self.managed_options.load(spec)
        for zone, check in self.zone_checks.items():
            check.setChecked(zone in cache.zones)
        self._apply_visibility(spec)

    def store(self, spec: DeploymentSpec) -> None:
        cache = spec.cache
        managed = cache.kind == "azure-managed-redis"
        premium = not managed and cache.tier == "Premium"
        cache.non_tls_port = self.non_tls.isChecked() and not managed
        cache.minimum_tls_version = self.tls.currentText()
        cache.redis_version = None if managed else self.version.currentData()
        cache.auth = "entra" if self.entra.isChecked() else "access-keys"
        spec.function_app.auth = "keys" if self.app_keys.isChecked() else "managed-identity"
        cache.shards = self.shards.value() if premium and self.cluster.isChecked() else None
        blockers = cache_option_blockers(spec)
        self.persistence_box.store(spec, blockers)
        self.replica_options.store(spec, premium)
        cache.update_channel = None if managed else self.channel.currentData()
        self.managed_options.store(spec, managed)
        zoned = not managed and cache.tier in ("Standard", "Premium")
        cache.zones = [z for z, c in self.zone_checks.items() if c.isChecked()] if zoned else []
