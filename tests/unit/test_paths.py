"""Paths in a spec: one reading for the engine and the wizard, and how Save as keeps
a relative model folder meaning the same folder from the file's new place."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.paths import rebase_spec_path, resolve_spec_path

ROOT = Path(__file__).resolve().parents[2]


def test_a_folder_above_the_spec_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # not from the current folder
    found = resolve_spec_path("resources/sample-model", ROOT / "examples")
    assert found == (ROOT / "resources" / "sample-model").resolve()


def test_rebase_keeps_what_already_means_the_same(tmp_path: Path) -> None:
    (tmp_path / "a" / "model").mkdir(parents=True)
    (tmp_path / "a" / "sub").mkdir()
    # From a/sub, "model" is found in the folder above: unchanged.
    assert rebase_spec_path("model", tmp_path / "a", tmp_path / "a" / "sub") == "model"
    assert rebase_spec_path("/abs/model", tmp_path / "a", tmp_path) == "/abs/model"


def test_rebase_rewrites_what_the_new_place_would_read_elsewhere(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    monkeypatch.chdir(ROOT)  # the current folder would find it: not enough for a file
    elsewhere = tmp_path / "saved"
    elsewhere.mkdir()
    meant = (ROOT / "resources" / "sample-model").resolve()
    assert rebase_spec_path("resources/sample-model", ROOT / "examples", elsewhere) \
        == str(meant)
    # Saved to a folder that holds it: relative to the new folder.
    assert rebase_spec_path("resources/sample-model", ROOT / "examples", ROOT) \
        == "resources/sample-model"
    project = tmp_path / "proj"
    (project / "specs" / "model").mkdir(parents=True)
    assert rebase_spec_path("model", project / "specs", project) == "specs/model"
