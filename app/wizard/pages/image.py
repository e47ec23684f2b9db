"""Model image: an image already in Azure Container Registry, or a model folder
to build one from (AzureML's package() is gone since 2026-06-30)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from app.paths import resolve_spec_path, resources_dir
from app.rules import Problem
from app.spec import DeploymentSpec
from app.wizard.errors_view import plain
from app.wizard.pages.base import Page, make_checker, stack
from app.wizard.widgets import NameField

SAMPLE_MODEL = resources_dir() / "sample-model"


def _refill(combo: QComboBox, names: list[str]) -> None:
    """Replace a picker's items, keeping the current choice when it is still there.

    With a placeholder text set, a combo selects nothing by itself: choose here."""
    previous = combo.currentText()
    combo.clear()
    combo.addItems(names)
    if names:
        combo.setCurrentIndex(max(combo.findText(previous), 0))


class ImagePage(Page):
    key = "image"
    title = "Model image"
    heading = "Model image"
    intro = ("The function app runs your model from a container image. Use an image you "
             "already packaged (for example an AzureML package location), or build one "
             "from a folder with your entry script, model files and requirements.txt.")

    def build(self) -> None:
        choice = QWidget(self.body)
        row = QHBoxLayout(choice)
        row.setContentsMargins(0, 0, 0, 0)
        self.use_existing = QRadioButton("Use an &existing image", choice)
        self.use_existing.setAccessibleName("Use an existing image")
        self.use_build = QRadioButton("&Build from a model folder", choice)
        self.use_build.setAccessibleName("Build from a model folder")
        group = QButtonGroup(choice)
        group.addButton(self.use_existing)
        group.addButton(self.use_build)
        row.addWidget(self.use_build)
        row.addWidget(self.use_existing)
        row.addStretch(1)
        self.layout_.addWidget(choice)
        self.choice_message = self.message_for()
        self.layout_.addWidget(self.choice_message)
        self.bind("image", self.use_build, self.choice_message)

        # -- build from a folder --
        self.build_box = QGroupBox("Build from a model folder", self.body)
        form = QFormLayout(self.build_box)
        folder_row = QWidget(self.build_box)
        row = QHBoxLayout(folder_row)
        row.setContentsMargins(0, 0, 0, 0)
        self.folder = QLineEdit(folder_row)
        self.folder.setAccessibleName("Model folder")
        self.folder.setPlaceholderText("folder with score.py, the model file and requirements.txt")
        self.folder.textEdited.connect(self._on_edit)
        browse = QPushButton("Bro&wse\u2026", folder_row)
        browse.setAccessibleName("Browse for the model folder")
        browse.clicked.connect(self._on_browse)
        sample = QPushButton("Use the &sample model", folder_row)
        sample.setAccessibleName("Use the sample model")
        sample.clicked.connect(self._on_sample)
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        row.addWidget(sample)
        self.folder_message = self.message_for()
        form.addRow("Model folder", stack(folder_row, self.folder_message))
        self.bind("image.build_from", self.folder, self.folder_message)

        self.registry = NameField("Registry", "e.g. digitsacr (created when missing)")
        self.registry.checker = make_checker(self, lambda: "registry")
        form.addRow("Registry", self.registry)
        self.bind("image.registry", self.registry)
        self.repository = QLineEdit(self.build_box)
        self.repository.setAccessibleName("Repository")
        self.repository.textEdited.connect(self._on_edit)
        self.repository_message = self.message_for()
        form.addRow("Repository", stack(self.repository, self.repository_message))
        self.bind("image.repository", self.repository, self.repository_message)
        self.tag = QLineEdit(self.build_box)
        self.tag.setAccessibleName("Tag")
        self.tag.textEdited.connect(self._on_edit)
        self.tag_message = self.message_for()
        form.addRow("Tag", stack(self.tag, self.tag_message))
        self.bind("image.tag", self.tag, self.tag_message)
        self.layer_build, self.tasks_build, self.builder_note = self.two_choices(
            self.build_box, form, "image.builder", "Build",
            ("On this &computer", "Build on this computer",
             "Your packages and your model become two image layers, made here and "
             "pushed over the Functions base image, which Azure copies into the registry; "
             "no Docker needed, and an unchanged model uploads nothing."),
            ("With ACR &Tasks", "Build with ACR Tasks",
             "Azure Container Registry runs a Docker build in the cloud: slower, not "
             "allowed on free-trial subscriptions, but it can compile packages that "
             "publish no Linux wheel."))
        self.layout_.addWidget(self.build_box)

        # -- existing image --
        self.existing_box = QGroupBox("Existing image", self.body)
        column = QVBoxLayout(self.existing_box)
        form = QFormLayout()
        self.reference = QLineEdit(self.existing_box)
        self.reference.setAccessibleName("Image reference")
        self.reference.setPlaceholderText("myacr.azurecr.io/package@sha256:\u2026 or "
                                          "myacr.azurecr.io/model:v1")
        self.reference.textEdited.connect(self._on_edit)
        self.reference_message = self.message_for()
        form.addRow("Image &reference", stack(self.reference, self.reference_message))
        self.bind("image.reference", self.reference, self.reference_message)
        column.addLayout(form)
        pick = QWidget(self.existing_box)
        row = QHBoxLayout(pick)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Or pick:"))
        self.pick_registry = QComboBox(pick)
        self.pick_registry.setAccessibleName("Pick registry")
        self.pick_repository = QComboBox(pick)
        self.pick_repository.setAccessibleName("Pick repository")
        self.pick_tag = QComboBox(pick)
        self.pick_tag.setAccessibleName("Pick tag")
        for combo, hint in ((self.pick_registry, "Registry"),
                            (self.pick_repository, "Repository"), (self.pick_tag, "Tag")):
            combo.setPlaceholderText(hint)
            combo.setToolTip(hint)
            combo.setMinimumContentsLength(12)
            row.addWidget(combo, 1)
        self.use_pick = QPushButton("&Use", pick)
        self.use_pick.setAccessibleName("Use the picked image")
        row.addWidget(self.use_pick)
        column.addWidget(pick)
        self._pick_row = pick
        self.pick_message = self.message_for()
        column.addWidget(self.pick_message)
        self.pick_registry.activated.connect(self._on_pick_registry)
        self.pick_repository.activated.connect(self._on_pick_repository)
        self.use_pick.clicked.connect(self._on_use_pick)
        self.layout_.addWidget(self.existing_box)

        self.use_build.toggled.connect(self._on_mode)
        self.use_build.setChecked(True)

    # -- events ------------------------------------------
    def _on_mode(self, _checked: bool) -> None:
        building = self.use_build.isChecked()
        self.build_box.setVisible(building)
        self.existing_box.setVisible(not building)
        if not building:
            self._load_registries()
        self._on_edit()

    def _on_browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder", self.folder.text())
        if folder:
            self.folder.setText(folder)
            self._on_edit()

    def _on_sample(self) -> None:
        self.folder.setText(str(SAMPLE_MODEL))
        if not self.repository.text():
            self.repository.setText("digits-model")
        if not self.tag.text():
            self.tag.setText("v1")
        self._on_edit()

    def _load_registries(self) -> None:
        self.pick_message.show_note("Loading registries\u2026")

        def fill(names: list[str] | None) -> None:
            if names is None:
                self._pick_row.hide()
                self.pick_message.show_note("This version cannot list registries yet: paste "
                                            "the image reference.")
                return
            self._pick_row.show()
            _refill(self.pick_registry, names)
            self.pick_message.show_note("" if names else "No registries in this subscription.")
            if names:
                self._on_pick_registry(0)

        self.session.submit(lambda b: b.registries(), fill,
                            lambda e: self.pick_message.show_note(plain(e)))

    def _on_pick_registry(self, _index: int) -> None:
        registry = self.pick_registry.currentText()
        if not registry:
            return

        def fill(names: list[str]) -> None:
            if self.pick_registry.currentText() != registry:
                return  # another registry was picked meanwhile
            _refill(self.pick_repository, names)
            self.pick_tag.clear()
            self.pick_message.show_note("" if names else f"No images in {registry} yet.")
            if names:
                self._on_pick_repository(0)

        self.session.submit(lambda b: b.repositories(registry), fill,
                            lambda e: self.pick_message.show_note(plain(e)))

    def _on_pick_repository(self, _index: int) -> None:
        registry = self.pick_registry.currentText()
        repository = self.pick_repository.currentText()
        if not repository:
            return

        def fill(names: list[str]) -> None:
            if self.pick_repository.currentText() != repository:
                return
            _refill(self.pick_tag, names)
            self.pick_message.show_note(
                "" if names else f"{repository} has no tags: paste a reference with its digest.")

        self.session.submit(lambda b: b.image_tags(registry, repository), fill,
                            lambda e: self.pick_message.show_note(plain(e)))

    def _on_use_pick(self) -> None:
        registry, repository, tag = (self.pick_registry.currentText(),
                                     self.pick_repository.currentText(),
                                     self.pick_tag.currentText())
        if registry and repository and tag:
            server = registry if "." in registry else f"{registry}.azurecr.io"
            self.reference.setText(f"{server}/{repository}:{tag}")
            self._on_edit()

    # -- checks that need the local disk, not the cloud ----------------------------
    def extra_problems(self) -> list[Problem]:
        out = super().extra_problems()
        if self.use_build.isChecked():
            folder = self.folder.text().strip()
            # Read where the engine reads it (next to the spec, here, or above the spec).
            base = self.session.spec_dir or Path.cwd()
            if folder and not resolve_spec_path(folder, base).is_dir():
                out.append(Problem("image.build_from", "this folder does not exist"))
        return out

    def show_problems(self, spec: DeploymentSpec) -> list[Problem]:
        problems = super().show_problems(spec)
        extra = [p.plain for p in self.extra_problems() if p.field == "image.build_from"]
        if extra and self.reveals("image.build_from"):
            self.folder_message.show_messages([*self.folder_message.messages, *extra])
        return problems

    # -- spec ------------------------------------------
    def load(self, spec: DeploymentSpec) -> None:
        image = spec.image
        existing = image.reference is not None
        self.use_existing.setChecked(existing)
        self.use_build.setChecked(not existing)
        self.reference.setText(image.reference or "")
        self.folder.setText(image.build_from or "")
        self.registry.set_text(image.registry or "")
        self.repository.setText(image.repository or "")
        self.tag.setText(image.tag or "")
        self.tasks_build.setChecked(image.builder == "acr-tasks")
        self.layer_build.setChecked(image.builder != "acr-tasks")
        self.explain_choices()
        self.build_box.setVisible(not existing)
        self.existing_box.setVisible(existing)

    def store(self, spec: DeploymentSpec) -> None:
        image = spec.image
        if self.use_existing.isChecked():
            image.reference = self.reference.text().strip()
            image.build_from = image.registry = image.repository = image.tag = None
            image.builder = None
        else:
            image.reference = None
            image.build_from = self.folder.text().strip()
            image.registry = self.registry.text()
            image.repository = self.repository.text().strip()
            image.tag = self.tag.text().strip()
            image.builder = "acr-tasks" if self.tasks_build.isChecked() else "layer"
