"""The sandbox refuses what ARM refuses and never stores it, so no request can break it.

Text that is not valid Unicode (a lone surrogate such as "\\ud800"), numbers JSON
cannot carry back (NaN, Infinity, 1e999), nesting deeper than a parser follows,
and tags beyond ARM's limits are answered 400 before anything is stored; every
later GET and list still answers 200, and the store still loads after a restart.
Tag errors carry ARM's own codes and messages (see docs/sandbox.md, Fidelity).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.web import WebSiteManagementClient

from app.sandbox import Sandbox
from tests.sandbox.conftest import mgmt, unique

pytestmark = pytest.mark.sandbox

API = {
    "Microsoft.Resources": "2022-09-01",
    "Microsoft.Cache/redis": "2024-11-01",
    "Microsoft.Storage/storageAccounts": "2023-05-01",
    "Microsoft.Web/serverfarms": "2023-12-01",
    "Microsoft.ContainerRegistry/registries": "2023-07-01",
}

# Raw bodies as a hostile or broken client sends them (bytes: json.dumps would not).
HOSTILE = {
    "lone surrogate in a tag value": b'{"location": "westeurope", "tags": {"a": "\\ud800"}}',
    "lone surrogate in a tag name": b'{"location": "westeurope", "tags": {"\\udfff": "x"}}',
    "lone surrogate elsewhere": b'{"location": "westeurope", "managedBy": "x\\ud83d"}',
    "NaN": b'{"location": "westeurope", "managedBy": NaN}',
    "Infinity": b'{"location": "westeurope", "properties": {"n": -Infinity}}',
    "a number beyond float": b'{"location": "westeurope", "properties": {"n": 1e999}}',
    "bytes that are not UTF-8": b'{"location": "westeurope", "tags": {"a": "\xff\xfe"}}',
    "nesting no parser follows": b'{"location": "westeurope", "managedBy": '
    + b"[" * 100_000 + b"]" * 100_000 + b"}",
}


def _url(sb: Sandbox, path: str, api: str) -> str:
    return f"{sb.endpoint}/subscriptions/{sb.subscription_id}{path}?api-version={api}"


def _send(sb: Sandbox, method: str, url: str, body: bytes) -> requests.Response:
    return requests.request(
        method, url, data=body, timeout=30, verify=str(sb.ca_cert),
        headers={"Authorization": f"Bearer {sb.token}", "Content-Type": "application/json"},
    )


def _get(sb: Sandbox, url: str) -> requests.Response:
    return requests.get(url, timeout=30, verify=str(sb.ca_cert),
                        headers={"Authorization": f"Bearer {sb.token}"})


@pytest.fixture
def own_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox.start(tmp_path / "state", latency="fast") as sb:
        yield sb


def test_hostile_bodies_are_400_and_never_stored(own_sandbox: Sandbox, tmp_path: Path) -> None:
    sb = own_sandbox
    rm = mgmt(ResourceManagementClient, sb)
    kept = unique("rg-kept-")
    rm.resource_groups.create_or_update(kept, {"location": "westeurope", "tags": {"k": "v"}})
    targets = {
        "new group": ("PUT", f"/resourcegroups/{unique('rg-bad-')}", API["Microsoft.Resources"]),
        "existing group": ("PUT", f"/resourcegroups/{kept}", API["Microsoft.Resources"]),
        "group patch": ("PATCH", f"/resourcegroups/{kept}", API["Microsoft.Resources"]),
    }
    for rtype, name in (("Microsoft.Cache/redis", unique("bad-")),
                        ("Microsoft.Storage/storageAccounts", unique("bad")),
                        ("Microsoft.Web/serverfarms", unique("plan-")),
                        ("Microsoft.ContainerRegistry/registries", unique("acr"))):
        targets[rtype] = ("PUT", f"/resourceGroups/{kept}/providers/{rtype}/{name}", API[rtype])

    for what, body in HOSTILE.items():
        for target, (method, path, api) in targets.items():
            answer = _send(sb, method, _url(sb, path, api), body)
            assert answer.status_code == 400, (what, target, answer.status_code, answer.text)
            assert answer.json()["error"]["code"] == "InvalidRequestContent", (what, target)

    # Nothing was stored: the group is as it was, the lists answer, nothing else exists.
    group = rm.resource_groups.get(kept)
    assert group.tags == {"k": "v"} and group.managed_by is None
    assert kept in {g.name for g in rm.resource_groups.list()}
    assert list(rm.resources.list_by_resource_group(kept)) == []
    for rtype in ("Microsoft.Cache/redis", "Microsoft.Storage/storageAccounts",
                  "Microsoft.Web/serverfarms", "Microsoft.ContainerRegistry/registries"):
        listed = _get(sb, _url(sb, f"/resourceGroups/{kept}/providers/{rtype}", API[rtype]))
        assert listed.status_code == 200 and listed.json()["value"] == [], rtype
    store = json.loads((sb.state_dir / "store.json").read_text(encoding="utf-8"))
    assert not any("bad" in key for key in store["resources"])


def test_the_sdk_client_gets_400_for_a_lone_surrogate(
    resource_client: ResourceManagementClient,
) -> None:
    name = unique("rg-bad-")
    with pytest.raises(HttpResponseError) as refused:
        resource_client.resource_groups.create_or_update(
            name, {"location": "westeurope", "tags": {"owner": "\ud800"}}
        )
    assert refused.value.status_code == 400
    assert refused.value.error is not None and refused.value.error.code == "InvalidRequestContent"
    assert not resource_client.resource_groups.check_existence(name)
    assert all(g.name for g in resource_client.resource_groups.list())


@pytest.mark.parametrize(
    ("tags", "code", "words"),
    [
        ({"n" * 513: "v"}, "InvalidTagName",
         "exceeded the maximum length. Maximum allowed length for tag name - '512' characters"),
        ({"name": "v" * 257}, "InvalidTagValueLength",
         "exceeded the maximum length. Maximum allowed length for tag value - '256' characters"),
        ({f"t{i}": "v" for i in range(51)}, "InvalidTags",
         "Too many tags specified. Requested tag count - '51'. Maximum number of tags allowed "
         "- '50'"),
        ({"a<b": "v"}, "InvalidTagNameCharacters", "have reserved characters '<,>,%,&,\\,?,/'"),
        ({" ": "v"}, "InvalidTagName", "The tag name must be non-null, non-empty"),
    ],
    ids=["name-513", "value-257", "51-tags", "reserved-character", "blank-name"],
)
def test_tags_beyond_arm_limits_get_arms_codes(
    resource_client: ResourceManagementClient, tags: dict[str, str], code: str, words: str
) -> None:
    name = unique("rg-tags-")
    with pytest.raises(HttpResponseError) as refused:
        resource_client.resource_groups.create_or_update(
            name, {"location": "westeurope", "tags": tags}
        )
    assert refused.value.status_code == 400
    assert refused.value.error is not None
    assert refused.value.error.code == code
    assert words in refused.value.error.message
    assert not resource_client.resource_groups.check_existence(name)


def test_tags_at_arm_limits_are_taken_everywhere(sandbox: Sandbox, group: str) -> None:
    rm = mgmt(ResourceManagementClient, sandbox)
    tags = {f"{i:02d}" + "n" * 510: "v" * 256 for i in range(50)}
    assert rm.resource_groups.update(group, {"tags": tags}).tags == tags
    web = mgmt(WebSiteManagementClient, sandbox)
    plan: dict[str, Any] = {"location": "westeurope", "kind": "linux", "reserved": True,
                            "sku": {"name": "B1", "tier": "Basic"}}
    made = web.app_service_plans.begin_create_or_update(
        group, unique("plan-"), {**plan, "tags": tags}
    ).result()
    assert made.tags == tags
    # App Service's PUT is checked by ARM first: ARM's code, in ARM's shape.
    with pytest.raises(HttpResponseError) as refused:
        web.app_service_plans.begin_create_or_update(
            group, unique("plan-"), {**plan, "tags": {**tags, "one": "more"}}
        ).result()
    assert refused.value.status_code == 400
    assert "InvalidTags" in refused.value.response.text()
