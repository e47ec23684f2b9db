"""Basics: subscription, resource group, cache DNS name, region, cache type and size
(the portal's "New Redis Cache" Basics tab, plus Azure Managed Redis)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.rules import Problem, sizes_for
from app.spec import DeploymentSpec
from app.wizard.backend import Region
from app.wizard.pages.advanced import clear_kind_options
from app.wizard.pages.base import Page, make_checker, stack
from app.wizard.widgets import FieldMessage, NameField

CLASSIC = "azure-cache-for-redis"
MANAGED = "azure-managed-redis"

# (kind, tier, label) in the order the type list shows them: the successor first.
CACHE_TYPES: tuple[tuple[str, str, str], ...] = (
    (MANAGED, "Balanced", "Azure Managed Redis \u2014 Balanced (recommended)"),
    (MANAGED, "MemoryOptimized", "Azure Managed Redis \u2014 Memory Optimized"),
    (MANAGED, "ComputeOptimized", "Azure Managed Redis \u2014 Compute Optimized"),
    (CLASSIC, "Basic", "Azure Cache for Redis \u2014 Basic"),
    (CLASSIC, "Standard", "Azure Cache for Redis \u2014 Standard"),
    (CLASSIC, "Premium", "Azure Cache for Redis \u2014 Premium"),
)

# Memory per size, as Microsoft's pricing pages list it (GB).
SIZE_MEMORY_GB: dict[str, float] = {
    "C0": 0.25, "C1": 1, "C2": 2.5, "C3": 6, "C4": 13, "C5": 26, "C6": 53,
    "P1": 6, "P2": 13, "P3": 26, "P4": 53, "P5": 120,
    "B0": 0.5, "B1": 1, "B3": 3, "B5": 6, "B10": 12, "B20": 24, "B50": 60, "B100": 120,
    "B150": 180, "B250": 240, "B350": 360, "B500": 480, "B700": 720, "B1000": 960,
    "M10": 12, "M20": 24, "M50": 60, "M100": 120, "M150": 180, "M250": 240, "M350": 360,
    "M500": 480, "M700": 720, "M1000": 960, "M1500": 1440, "M2000": 1920,
    "X3": 3, "X5": 6, "X10": 12, "X20": 24, "X50": 60, "X100": 120, "X150": 180,
    "X250": 240, "X350": 360, "X500": 480, "X700": 720,
}

RETIREMENT_NOTE = (
    "Azure Cache for Redis (Basic, Standard, Premium) retires on 30 September 2028, "
    "and since 1 April 2026 a tenant that never had one cannot create one. "
    "Azure Managed Redis is its successor."
)

DEFAULT_REGIONS = (
    "westeurope", "northeurope", "uksouth", "francecentral", "germanywestcentral",
    "swedencentral", "eastus", "eastus2", "westus2", "westus3", "centralus",
    "canadacentral", "brazilsouth", "japaneast", "koreacentral", "southeastasia",
    "eastasia", "australiaeast", "centralindia", "southafricanorth",
)


TIER_LABELS = {"MemoryOptimized": "Memory Optimized", "ComputeOptimized": "Compute Optimized"}


def suggested_managed(tier: str, size: str) -> tuple[str, str] | None:
    """The engine's copy of Microsoft's Basic/Standard/Premium → Managed Redis mapping."""
    from app.errors import BadInput
    from app.services.cache_migration import suggest_managed_redis

    try:
        return suggest_managed_redis(tier, size)
    except BadInput:
        return None


def size_label(size: str) -> str:
    gb = SIZE_MEMORY_GB.get(size)
    if gb is None:
        return size
    shown = f"{gb:g} GB" if gb >= 1 else f"{int(gb * 1000)} MB"
    return f"{size} ({shown})"


class BasicsPage(Page):
    key = "basics"
    title = "Basics"
    heading = "Basics"
    intro = ("Create a cache in front of your model, and a function app that serves it. "
             "Names are checked as you type; cache, app and storage names are global "
             "across Azure.")

    def build(self) -> None:
        project = QGroupBox("Project details", self.body)
        form = QFormLayout(project)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.subscription = QComboBox(project)
        self.subscription.setAccessibleName("Subscription")
        self.subscription_message = FieldMessage(project)
        sub_box = stack(self.subscription, self.subscription_message)
        form.addRow("&Subscription", sub_box)
        self.bind("subscription_id", self.subscription, self.subscription_message)

        self.group = NameField("Resource group", "e.g. rg-digits-demo")
        self.group.checker = make_checker(self, lambda: "resource_group")
        self.group.availability_changed.connect(self._on_group_answer)
        self.existing_groups = QComboBox(project)
        self.existing_groups.setAccessibleName("Existing resource groups")
        self.existing_groups.setToolTip("Pick an existing resource group")
        self.existing_groups.activated.connect(self._on_existing_group)
        self.existing_groups.hide()
        self._known_groups: list[str] = []
        group_row = QWidget(project)
        row = QHBoxLayout(group_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.group, 2)
        row.addWidget(self.existing_groups, 1, Qt.AlignmentFlag.AlignTop)
        label = QLabel("Resource &group")
        label.setBuddy(self.group.edit)
        form.addRow(label, group_row)
        self.bind("resource_group.name", self.group)
        self.layout_.addWidget(project)

        instance = QGroupBox("Cache details", self.body)
        instance_column = QVBoxLayout(instance)
        form = QFormLayout()
        instance_column.addLayout(form)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.cache_name = NameField("DNS name", "e.g. digits-cache")
        self.cache_name.checker = make_checker(
            self, lambda: "managed_cache" if self._kind() == MANAGED else "cache")
        self.host_suffix = QLabel(instance)
        self.host_suffix.setObjectName("muted")
        name_box = stack(self.cache_name, self.host_suffix)
        label = QLabel("&DNS name")
        label.setBuddy(self.cache_name.edit)
        form.addRow(label, name_box)
        self.bind("cache.name", self.cache_name)

        # Closed to the subscription's regions (no free text: `marsnorth` is not one);
        # typing the first letters of a display name still picks it.
        self.location = QComboBox(instance)
        self.location.setAccessibleName("Region")
        self._regions_known = False
        self._set_regions([Region(name, name) for name in DEFAULT_REGIONS], known=False)
        self.location.currentIndexChanged.connect(self._on_location)
        self.location_message = FieldMessage(instance)
        label = QLabel("&Region")
        label.setBuddy(self.location)
        form.addRow(label, stack(self.location, self.location_message))
        self.bind("location", self.location, self.location_message)

        self.cache_type = QComboBox(instance)
        self.cache_type.setAccessibleName("Cache type")
        for kind, tier, text in CACHE_TYPES:
            self.cache_type.addItem(text, (kind, tier))
        self.cache_type.currentIndexChanged.connect(self._on_type)
        self.type_message = FieldMessage(instance)
        label = QLabel("Cache &type")
        label.setBuddy(self.cache_type)
        form.addRow(label, stack(self.cache_type, self.type_message))
        self.bind("cache.tier", self.cache_type, self.type_message)
        self.bind("cache.kind", self.cache_type, self.type_message)

        self.size_combo = QComboBox(instance)
        self.size_combo.setAccessibleName("Cache size")
        self.size_combo.currentIndexChanged.connect(self._on_edit)
        self.size_message = FieldMessage(instance)
        label = QLabel("Cache si&ze")
        label.setBuddy(self.size_combo)
        form.addRow(label, stack(self.size_combo, self.size_message))
        self.bind("cache.size", self.size_combo, self.size_message)

        self.retirement = QLabel(RETIREMENT_NOTE, instance)
        self.retirement.setWordWrap(True)
        self.retirement.setObjectName("noteBox")
        self.retirement.setAccessibleName("Retirement note")
        self.suggestion = QLabel(instance)
        self.suggestion.setWordWrap(True)
        self.switch_button = QPushButton("Switch to Azure Managed Redis", instance)
        self.switch_button.setAccessibleName("Switch to Azure Managed Redis")
        self.switch_button.clicked.connect(self._on_switch)
        instance_column.addWidget(self.retirement)
        suggestion_row = QWidget(instance)
        row = QHBoxLayout(suggestion_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.suggestion, 1)
        row.addWidget(self.switch_button)
        instance_column.addWidget(suggestion_row)
        self._suggestion_row = suggestion_row
        self.layout_.addWidget(instance)

        self.group.edit.textEdited.connect(lambda _t: self.cache_name.recheck())
        self.cache_name.edit.textChanged.connect(lambda _t: self._update_suffix())

    # -- regions ------------------------------------------
    def region(self) -> str:
        """The picked region's ARM name (what the spec holds)."""
        return str(self.location.currentData() or "")

    def select_region(self, name: str) -> None:
        """Pick `name`; one the list lacks (from an opened spec) is shown as such, so
        the page can say it is not offered instead of silently picking another."""
        index = self.location.findData(name)
        if index < 0 and name:
            shown = f"{name} (not offered by this subscription)" if self._regions_known \
                else name
            self.location.addItem(shown, name)
            index = self.location.count() - 1
        if index >= 0:
            self.location.setCurrentIndex(index)

    def _set_regions(self, regions: list[Region], known: bool = True) -> None:
        current = self.region()
        self.location.blockSignals(True)
        self.location.clear()
        for region in regions:
            self.location.addItem(region.label, region.name)
        self._regions_known = known
        self._offered = {r.name for r in regions}
        self.select_region(current)
        self.location.blockSignals(False)

    def _region_problems(self) -> list[Problem]:
        region = self.region()
        if self._regions_known and region and region not in self._offered:
            return [Problem("location", f"{region!r} is not a region this subscription "
                                        "offers; pick one from the list")]
        return []

    def extra_problems(self) -> list[Problem]:
        return super().extra_problems() + self._region_problems()

    def show_problems(self, spec: DeploymentSpec) -> list[Problem]:
        problems = super().show_problems(spec)
        offered = self._region_problems()
        if offered and self.reveals("location"):
            self.location_message.show_messages(
                [*self.location_message.messages, *(p.plain for p in offered)])
        return problems

    # -- availability ------------------------------------------
    def _group_exists(self) -> bool:
        answer = self.group.availability
        if answer is not None and answer.state == "yours":
            return True
        lowered = self.group.text().lower()
        return any(g.lower() == lowered for g in self._known_groups)

    def _on_group_answer(self) -> None:
        # The answer arrives after the edit was stored: record new/existing now.
        self.session.spec.resource_group.create = not self._group_exists()

    def group_deleted(self, name: str) -> None:
        """Clean up deleted `name`: it is no longer an existing group, so a deploy (and a
        spec saved now) creates it again, as the page then says."""
        self._set_groups([g for g in self._known_groups if g.lower() != name.lower()])
        self.group.recheck()
        self._on_group_answer()

    def _set_groups(self, groups: list[str]) -> None:
        self._known_groups = sorted(groups, key=str.lower)
        current = self.existing_groups.currentText()
        self.existing_groups.blockSignals(True)
        self.existing_groups.clear()
        self.existing_groups.addItem("Existing groups\u2026", "")
        for g in self._known_groups:
            self.existing_groups.addItem(g, g)
        index = self.existing_groups.findText(current)
        self.existing_groups.setCurrentIndex(max(index, 0))
        self.existing_groups.blockSignals(False)
        self.existing_groups.setVisible(bool(self._known_groups))

    def on_shown(self) -> None:
        self._refresh_subscription()
        self.session.submit(lambda b: b.resource_groups(), self._set_groups, lambda _e: None)

        def set_regions(regions: list[Region]) -> None:
            if regions:
                self._set_regions(regions)
                self._update_suffix()
                self.status_changed.emit()

        self._update_suffix()
        self.session.submit(lambda b: b.locations(), set_regions, lambda _e: None)

    def _refresh_subscription(self) -> None:
        self.subscription.clear()
        backend = self.session.backend
        if backend is None:
            self.subscription.addItem("Connecting\u2026")
            self.subscription.setEnabled(False)
            return
        sub = backend.subscription()
        text = f"{sub.name} ({sub.id})" if sub.id else sub.name
        self.subscription.addItem(text, sub.id)
        # The subscription follows the target; change it with "Sign in to Azure".
        self.subscription.setEnabled(False)
        self.subscription.setToolTip("Change the subscription from the toolbar's target menu")

    # -- events ------------------------------------------
    def _kind(self) -> str:
        data = self.cache_type.currentData()
        return str(data[0]) if data else CLASSIC

    def _tier(self) -> str:
        data = self.cache_type.currentData()
        return str(data[1]) if data else "Standard"

    def _on_existing_group(self, index: int) -> None:
        name = self.existing_groups.itemData(index)
        if name:
            self.group.set_text(str(name))
            self.group.recheck()
            self.cache_name.recheck()
            self._on_edit()

    def _on_location(self, _index: int) -> None:
        self._update_suffix()
        self._show_size_prices()
        self._on_edit()

    def _on_type(self, _index: int) -> None:
        previous = self.size_combo.currentText().split(" ")[0]
        self._fill_sizes(previous)
        self._update_suffix()
        self._update_notes()
        self.cache_name.recheck()
        self._on_edit()

    def _fill_sizes(self, preferred: str) -> None:
        sizes = sizes_for(self._kind(), self._tier())
        self.size_combo.blockSignals(True)
        self.size_combo.clear()
        for s in sizes:
            self.size_combo.addItem(size_label(s), s)
        if preferred in sizes:
            self.size_combo.setCurrentIndex(sizes.index(preferred))
        elif self._tier() == "Standard" and "C1" in sizes:
            self.size_combo.setCurrentIndex(sizes.index("C1"))
        self.size_combo.blockSignals(False)
        self._show_size_prices()

    def _show_size_prices(self) -> None:
        """Each size with its monthly list price, for the type and region shown."""
        import copy

        from app.wizard.pages.prices import show_choice_prices

        spec = copy.deepcopy(self.session.spec)
        spec.cache.kind, spec.cache.tier = self._kind(), self._tier()
        spec.location = self.region() or spec.location
        show_choice_prices(self.session, self.size_combo, spec, "cache.size", size_label)

    def _update_suffix(self) -> None:
        """The cache's address as the name is typed: Azure Cache for Redis is
        <name>.redis.cache.windows.net (TLS port 6380), Azure Managed Redis
        <name>.<region>.redis.azure.net (port 10000); the sandbox's caches answer on
        127.0.0.1, each on a port of its own."""
        name = self.cache_name.text() or "<name>"
        if self._kind() == MANAGED:
            host, port = f"{name}.{self.region() or '<region>'}.redis.azure.net", 10000
        else:
            host, port = f"{name}.redis.cache.windows.net", 6380
        self.host_suffix.setText(self.address_hint("Host name", f"{host}, port {port}"))

    def _update_notes(self) -> None:
        classic = self._kind() == CLASSIC
        self._suggestion_row.setVisible(classic)
        if classic:
            size = str(self.size_combo.currentData() or "")
            suggestion = suggested_managed(self._tier(), size)
            if suggestion is None:
                self.suggestion.clear()
                return
            tier, managed = suggestion
            self.suggestion.setText(
                f"Suggested equivalent (Microsoft's mapping): Azure Managed Redis "
                f"{TIER_LABELS.get(tier, tier)} {size_label(managed)} for "
                f"{self._tier()} {size_label(size)}."
            )

    def _on_switch(self) -> None:
        suggestion = suggested_managed(self._tier(), str(self.size_combo.currentData() or ""))
        if suggestion is None:
            return
        tier, managed = suggestion
        for i, (kind, t, _text) in enumerate(CACHE_TYPES):
            if kind == MANAGED and t == tier:
                self.cache_type.setCurrentIndex(i)
        index = self.size_combo.findData(managed)
        if index >= 0:
            self.size_combo.setCurrentIndex(index)
        self._on_edit()

    # -- spec ------------------------------------------
    def load(self, spec: DeploymentSpec) -> None:
        self._refresh_subscription()
        self.group.set_text(spec.resource_group.name)
        self.cache_name.set_text(spec.cache.name)
        self.select_region(spec.location)
        for i, (kind, tier, _text) in enumerate(CACHE_TYPES):
            if kind == spec.cache.kind and tier == spec.cache.tier:
                self.cache_type.blockSignals(True)
                self.cache_type.setCurrentIndex(i)
                self.cache_type.blockSignals(False)
                break
        self._fill_sizes(spec.cache.size)
        self._update_suffix()
        self._update_notes()

    def store(self, spec: DeploymentSpec) -> None:
        spec.resource_group.name = self.group.text()
        spec.resource_group.create = not self._group_exists()
        spec.cache.name = self.cache_name.text()
        spec.location = self.region()
        kind, tier = self._kind(), self._tier()
        if kind != spec.cache.kind:
            # The options of one kind do not exist on the other: reset them.
            spec.cache.redis_version = None if kind == MANAGED else "6"
            spec.cache.shards = None
            spec.cache.persistence = None
            spec.cache.zones = []
            spec.cache.non_tls_port = False
            clear_kind_options(spec)
        if tier != "Premium" and kind == CLASSIC:
            spec.cache.shards = None
            spec.cache.persistence = None
            spec.cache.persistence_frequency = None
            spec.cache.replicas = None
        if tier == "Basic":
            spec.cache.zones = []
        spec.cache.kind = kind
        spec.cache.tier = tier
        spec.cache.size = str(self.size_combo.currentData() or "")
        self._update_notes()

