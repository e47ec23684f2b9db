"""Application Insights and its workspace as plan steps, against the sandbox: create,
adopt on a re-run, the function's settings read off the component, the view `test` shows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.mgmt.resource.resources.models import GenericResource

from app.connect import sandbox_target
from app.errors import BadInput
from app.sandbox import Sandbox
from app.services.arm import state_of
from app.services.clients import ClientFactory
from app.services.context import DeployContext
from app.services.events import Event, StepFailed, StepSucceeded
from app.services.resources.monitoring import (
    AUTHENTICATION_SETTING,
    CONNECTION_SETTING,
    InsightsStep,
    WorkspaceStep,
    insights_settings,
    insights_view,
    stale_insights_settings,
)
from app.services.resources.resource_group import ResourceGroupStep
from app.services.runner import Runner
from app.services.target import CloudTarget
from app.spec import DeploymentSpec, spec_from_dict

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudTarget]:
    state: Path = tmp_path_factory.mktemp("monitoring") / "sandbox"
    with Sandbox.start(state, latency="fast"):
        yield sandbox_target(state, start=False)


def new_spec() -> DeploymentSpec:
    tag = uuid.uuid4().hex[:8]
    return spec_from_dict({
        "version": 1, "resource_group": {"name": f"rg-mon-{tag}"},
        "cache": {"name": f"cache-mon-{tag}"},
        "image": {"reference": f"acrmon{tag}.azurecr.io/m:v1"},
        "function_app": {"name": f"func-mon-{tag}", "storage_account": f"stmon{tag}"},
    })


def run(ctx: DeployContext) -> dict[str, Event]:
    seen: dict[str, Event] = {}

    def keep(event: Event) -> None:
        if isinstance(event, StepSucceeded | StepFailed):
            seen[event.step] = event

    spec = ctx.spec
    Runner([ResourceGroupStep(spec), WorkspaceStep(spec), InsightsStep(spec)], ctx,
           [keep]).run()
    return seen


def test_component_is_made_on_its_workspace_and_a_rerun_adopts_it(target: CloudTarget) -> None:
    spec = new_spec()
    ctx = DeployContext(spec, target)
    first = run(ctx)
    assert all(isinstance(e, StepSucceeded) and not e.adopted for e in first.values()), first
    component = ctx.clients.resources().resources.get_by_id(
        ctx.output("insights", "id").lstrip("/"), api_version="2020-02-02")
    assert component.name == spec.function_app.name
    assert state_of(component) == "Succeeded"  # read off the generic resource's dict
    assert component.properties["WorkspaceResourceId"].lower() == \
        ctx.output("workspace", "id").lower()
    assert component.tags == {"created-by": "mlcache-deploy"}
    assert ctx.output("insights", "app_id") == component.properties["AppId"]
    # Keyless (the default): the connection string and Entra authentication.
    settings = insights_settings(ctx)
    assert settings == {CONNECTION_SETTING: component.properties["ConnectionString"],
                        AUTHENTICATION_SETTING: "Authorization=AAD"}
    again = DeployContext(spec, target)
    second = run(again)
    assert all(isinstance(e, StepSucceeded) and e.adopted for e in second.values()), second
    # With keys: the connection string only, and an old Entra setting is to go.
    spec.function_app.auth = "keys"
    assert set(insights_settings(again)) == {CONNECTION_SETTING}
    assert stale_insights_settings(spec) == {AUTHENTICATION_SETTING}
    spec.monitoring.enabled = False
    assert stale_insights_settings(spec) == {CONNECTION_SETTING, AUTHENTICATION_SETTING}
    assert insights_view(spec, ClientFactory(target)) is None


def test_view_names_the_component_and_its_portal_links(target: CloudTarget) -> None:
    spec = new_spec()
    ctx = DeployContext(spec, target)
    run(ctx)
    view = insights_view(spec, ctx.clients)
    assert view is not None and view.name == spec.function_app.name
    assert view.lines(portal=False) == [
        f"Application Insights: {view.name} ({ctx.output('insights', 'id')})"]
    assert view.live_metrics.endswith(f"/resource{view.resource_id}/quickPulse")
    assert "BladeName/searchV1" in view.recent_requests and "requests" in view.recent_requests
    assert len(view.lines(portal=True)) == 3


def test_a_classic_component_of_the_same_name_is_refused(target: CloudTarget) -> None:
    spec = new_spec()
    ctx = DeployContext(spec, target)
    Runner([ResourceGroupStep(spec)], ctx, []).run()
    rid = (f"subscriptions/{target.subscription_id}/resourceGroups/{spec.resource_group.name}"
           f"/providers/Microsoft.Insights/components/{spec.function_app.name}")
    ctx.clients.resources().resources.begin_create_or_update_by_id(
        rid, GenericResource({"location": spec.location, "kind": "web", "properties": {
            "Application_Type": "web", "IngestionMode": "ApplicationInsights"}}),
        api_version="2020-02-02").result()
    with pytest.raises(BadInput, match="classic component"):
        InsightsStep(spec).find_existing(ctx)


def test_cleanups_gone_check_names_what_application_insights_left(target: CloudTarget) -> None:
    """`still_there` asks by id for the component, its workspace and smart detection
    (what Azure made unasked), and says nothing of what is gone."""
    from app.services.cleanup import group_contents, still_there

    spec = new_spec()
    ctx = DeployContext(spec, target)
    run(ctx)
    contents = group_contents(ctx.clients, spec.resource_group.name)
    left = {item.type.lower() for item in still_there(ctx.clients, contents)}
    assert left == {"microsoft.insights/components", "microsoft.operationalinsights/workspaces",
                    "microsoft.insights/actiongroups",
                    "microsoft.alertsmanagement/smartdetectoralertrules"}
    ctx.clients.resources().resource_groups.begin_delete(spec.resource_group.name).result()
    assert still_there(ctx.clients, contents) == []
