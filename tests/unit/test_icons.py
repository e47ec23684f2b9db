"""Every resource kind names an icon that exists; the monitoring rows have their own."""

from __future__ import annotations

from app.paths import resources_dir
from app.services.plan import build_plan, resource_kinds
from app.spec import load_spec


def test_every_resource_kind_names_an_icon_file() -> None:
    icons = {p.stem for p in (resources_dir() / "icons").glob("*.svg")}
    missing = {kind.__name__: kind.icon for kind in resource_kinds() if kind.icon not in icons}
    assert not missing


def test_monitoring_rows_have_their_own_icon() -> None:
    spec = load_spec(resources_dir().parent / "examples" / "digits-classic-sandbox.json")
    steps = {step.name: step for step in build_plan(spec)}
    assert steps["insights"].icon == steps["workspace"].icon == "monitoring"
