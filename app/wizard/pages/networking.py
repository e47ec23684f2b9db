"""Networking: reach the cache over its public endpoint, or only privately."""

from __future__ import annotations

from PySide6.QtWidgets import QButtonGroup, QGroupBox, QLabel, QRadioButton, QVBoxLayout

from app.spec import DeploymentSpec
from app.wizard.pages.base import Page

UNAVAILABLE = ("Not available yet: only reachable from a virtual network through a private "
               "endpoint, and this release does not create virtual networks or private "
               "endpoints. Choose the public endpoint to deploy.")


class NetworkingPage(Page):
    key = "networking"
    title = "Networking"
    heading = "Networking"
    intro = ("Choose how clients reach the cache. The function app connects over TLS "
             "either way.")

    def build(self) -> None:
        box = QGroupBox("Connectivity method", self.body)
        column = QVBoxLayout(box)
        self.public = QRadioButton("&Public endpoint", box)
        self.public.setAccessibleName("Public endpoint")
        self.private = QRadioButton("P&rivate endpoint (no public access)", box)
        self.private.setAccessibleName("Private endpoint")
        group = QButtonGroup(box)
        group.addButton(self.public)
        group.addButton(self.private)
        self.public.setChecked(True)
        column.addWidget(self.public)
        note = QLabel("Reachable from the internet over TLS; access keys or Microsoft "
                      "Entra ID still guard it.", box)
        note.setObjectName("muted")
        note.setWordWrap(True)
        column.addWidget(note)
        column.addWidget(self.private)
        # Not offered as if it could be created: the deploy's preflight refuses it.
        # A spec from a file may still ask for it; it shows checked, and Review lists it.
        self.private.setEnabled(False)
        self.private.setToolTip(UNAVAILABLE)
        self.private_note = QLabel(UNAVAILABLE, box)
        self.private_note.setObjectName("warningText")
        self.private_note.setWordWrap(True)
        column.addWidget(self.private_note)
        self.message = self.message_for()
        column.addWidget(self.message)
        self.layout_.addWidget(box)
        self.bind("cache.public_network_access", self.public, self.message)
        self.public.toggled.connect(self._on_toggle)
        self.private.toggled.connect(self._on_toggle)

    def _on_toggle(self, _checked: bool) -> None:
        self._on_edit()

    def load(self, spec: DeploymentSpec) -> None:
        self.public.setChecked(spec.cache.public_network_access)
        self.private.setChecked(not spec.cache.public_network_access)

    def store(self, spec: DeploymentSpec) -> None:
        spec.cache.public_network_access = self.public.isChecked()
