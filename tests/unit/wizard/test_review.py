"""Review + create: every problem listed with a link to its field, or "Validation passed"."""

from __future__ import annotations

import threading

import pytest

from app.rules import Problem
from app.spec import CacheSpec, DeploymentSpec, FunctionAppSpec, ImageSpec, ResourceGroupSpec
from app.wizard.backend import Availability
from app.wizard.pages.image import SAMPLE_MODEL
from tests.unit.wizard.helpers import StandInBackend

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    # The headless platform cannot size dialogs from their hints; harmless there.
    pytest.mark.qt_log_ignore("does not support propagateSizeHints"),
]


def valid_spec() -> DeploymentSpec:
    return DeploymentSpec(
        resource_group=ResourceGroupSpec("rg-review"),
        cache=CacheSpec(kind="azure-cache-for-redis", name="review-cache", tier="Basic",
                        size="C0"),
        image=ImageSpec(build_from=str(SAMPLE_MODEL), registry="reviewacr",
                        repository="digits", tag="v1"),
        function_app=FunctionAppSpec("review-app", "review-plan", "B1", "reviewstor"),
        tags={"env": "test"},
    )


def test_problems_link_to_their_fields(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.go("review")
    review = window.pages["review"]
    assert "Validation failed" in review.banner.text()
    assert not window.next_button.isEnabled()
    text = review.problem_list.text()
    assert 'href="field:cache.name"' in text
    assert 'href="field:function_app.storage_account"' in text
    review.problem_list.linkActivated.emit("field:function_app.storage_account")
    assert window.current == "function_app"
    qtbot.waitUntil(lambda: window.pages["function_app"].storage.edit.hasFocus(), timeout=2000)


def test_without_a_target_the_deploy_checks_cannot_pass(qtbot, window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    window.session.replace_spec(valid_spec())
    window.go("review")
    review = window.pages["review"]
    # Every page is fine, but the engine's preflight needs a target: no Create yet.
    assert "Validation failed: 1 problem" in review.banner.text()
    assert "the deploy checks could not run" in review.problem_list.text().lower()
    assert window.next_button.text().replace("&", "") == "Create"
    assert not window.next_button.isEnabled()
    assert "review-cache" in review.summary.text()
    assert "created-by" in review.summary_right.text()
    # With no target connected, export says so in plain words.
    review.export_to(tmp_path / "t.json", "arm")
    assert "could not export" in review.export_message.text().lower()
    assert not (tmp_path / "t.json").exists()


def test_review_says_whether_the_function_is_monitored(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    spec = valid_spec()
    window.session.replace_spec(spec)
    window.go("review")
    review = window.pages["review"]
    assert "Application Insights, on a Log Analytics workspace" in review.summary_right.text()
    spec = valid_spec()
    spec.monitoring.enabled = False
    window.session.replace_spec(spec)
    window.go("review")
    assert "Monitoring" in review.summary_right.text()
    assert "Application Insights" not in review.summary_right.text()
    first = review.export_button.menu().actions()[0]
    assert first.text().replace("&", "").startswith("ARM template")


class SlowNamesBackend(StandInBackend):
    """Every name is free, but no answer comes until the test lets it (the deploy
    checks themselves answer at once)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.asked: list[str] = []

    def preflight(self, spec: DeploymentSpec) -> list[Problem]:
        return []

    def name_available(self, kind: str, name: str, spec: DeploymentSpec) -> Availability:
        self.asked.append(kind)
        self.release.wait(30)
        return Availability("available")


def test_create_waits_for_every_name_to_be_confirmed_free(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    backend = SlowNamesBackend()
    window.target.use_backend(backend)
    window.session.replace_spec(valid_spec())
    window.go("review")
    review = window.pages["review"]
    try:
        qtbot.waitUntil(lambda: review._preflight is not None and len(backend.asked) >= 3,
                        timeout=10_000)
        window._update_navigation()
        assert not window.next_button.isEnabled()
        assert review.banner.text() == "Checking that the names are free\u2026"
        assert window.nav_status.text() == "Checking that the names are free\u2026"
    finally:
        backend.release.set()
    qtbot.waitUntil(window.next_button.isEnabled, timeout=10_000)
    assert "Validation passed" in review.banner.text()
