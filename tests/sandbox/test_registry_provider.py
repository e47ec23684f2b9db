"""Microsoft.ContainerRegistry in the sandbox, driven by the real ContainerRegistryManagementClient.

Also the registry's data plane (`/dataplane/registries/<name>/v2/...`) and the
`sandbox push` command, against the session's running sandbox.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.containerregistry import ContainerRegistryManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from app.cli import main
from app.errors import BadInput
from app.sandbox import Sandbox
from app.sandbox.registry import (
    data_plane_url,
    list_repositories,
    list_tags,
    package_digest,
    push_package,
)

from .conftest import mgmt, run_cli, unique

RTYPE = "Microsoft.ContainerRegistry/registries"


def _push_command(command: str, package: Path | str, image: str, state: Path | str) -> int:
    """`mlcache-deploy sandbox push` or `package push`, in this process; the exit code."""
    return main([command, "push", str(package), "--image", image, "--state-dir", str(state)])


@pytest.fixture(scope="module")
def acr(sandbox: Sandbox) -> ContainerRegistryManagementClient:
    return mgmt(ContainerRegistryManagementClient, sandbox)


def _registry(
    acr: ContainerRegistryManagementClient, group: str, admin: bool = True, name: str = ""
) -> str:
    name = name or unique("acr")
    created = acr.registries.begin_create(
        group,
        name,
        {
            "location": "westeurope",
            "sku": {"name": "Basic"},
            "properties": {"adminUserEnabled": admin},
        },
    ).result()
    assert created.properties is not None
    assert created.properties.provisioning_state == "Succeeded"
    return name


def _package(root: Path, text: str = "v1") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "function_app.py").write_text(f"# package {text}\n")
    (root / "host.json").write_text('{"version": "2.0"}\n')
    return root


def _get(sb: Any, registry: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.get(
        data_plane_url(sb.endpoint, registry, path), verify=str(sb.ca_cert), timeout=10, **kwargs
    )


def _bearer(sb: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {sb.token}"}


def _basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def test_check_name_availability(acr: ContainerRegistryManagementClient, group: str) -> None:
    name = unique("acr")
    free = acr.registries.check_name_availability({"name": name, "type": RTYPE})
    assert free.name_available is True

    bad = acr.registries.check_name_availability({"name": "no-dashes", "type": RTYPE})
    assert bad.name_available is False and bad.reason == "Invalid"

    _registry(acr, group, name=name)
    taken = acr.registries.check_name_availability({"name": name.upper(), "type": RTYPE})
    assert taken.name_available is False
    assert taken.reason == "AlreadyExists"
    assert name.upper() in (taken.message or "")


def test_create_in_another_group_conflicts(
    acr: ContainerRegistryManagementClient,
    resource_client: ResourceManagementClient,
    group: str,
) -> None:
    name = _registry(acr, group)
    other = unique("rg-test-")
    resource_client.resource_groups.create_or_update(other, {"location": "westeurope"})
    try:
        with pytest.raises(HttpResponseError) as caught:
            acr.registries.begin_create(
                other, name, {"location": "westeurope", "sku": {"name": "Basic"}}
            ).result()
        assert caught.value.status_code == 409
        assert caught.value.error is not None
        assert caught.value.error.code == "RegistryNameNotAvailable"
    finally:
        resource_client.resource_groups.begin_delete(other).result()


def test_registry_lifecycle(acr: ContainerRegistryManagementClient, group: str) -> None:
    name = _registry(acr, group, admin=False)
    got = acr.registries.get(group, name)
    assert got.properties is not None and got.sku is not None
    # The data plane listens on a port of its own; loginServer says which.
    host, _, port = (got.properties.login_server or "").partition(":")
    assert host == "127.0.0.1" and port.isdigit()
    assert got.properties.admin_user_enabled is False
    assert got.sku.name == "Basic"
    assert got.location == "westeurope"
    assert [r.name for r in acr.registries.list_by_resource_group(group)] == [name]

    with pytest.raises(HttpResponseError) as caught:
        acr.registries.list_credentials(group, name)
    assert caught.value.status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "UnAuthorizedForCredentialOperations"

    updated = acr.registries.begin_update(
        group, name, {"properties": {"adminUserEnabled": True}, "tags": {"team": "ml"}}
    ).result()
    assert updated.properties is not None and updated.properties.admin_user_enabled is True
    assert updated.tags == {"team": "ml"}

    creds = acr.registries.list_credentials(group, name)
    assert creds.username == name
    assert creds.passwords is not None
    passwords = {p.name: p.value for p in creds.passwords}
    assert set(passwords) == {"password", "password2"}
    assert passwords["password"] != passwords["password2"]

    regenerated = acr.registries.regenerate_credential(group, name, {"name": "password2"})
    assert regenerated.passwords is not None
    after = {p.name: p.value for p in regenerated.passwords}
    assert after["password"] == passwords["password"]
    assert after["password2"] != passwords["password2"]

    acr.registries.begin_delete(group, name).result()
    with pytest.raises(ResourceNotFoundError):
        acr.registries.get(group, name)
    again = acr.registries.check_name_availability({"name": name, "type": RTYPE})
    assert again.name_available is True


def test_bad_create_bodies(acr: ContainerRegistryManagementClient, group: str) -> None:
    with pytest.raises(HttpResponseError) as caught:
        acr.registries.begin_create(
            group, unique("acr"), {"location": "westeurope", "sku": {"name": "Gold"}}
        ).result()
    assert caught.value.status_code == 400
    with pytest.raises(HttpResponseError) as caught:
        acr.registries.begin_create(
            group, "ab", {"location": "westeurope", "sku": {"name": "Basic"}}
        ).result()
    assert caught.value.status_code == 400
    with pytest.raises(ResourceNotFoundError):
        acr.registries.begin_create(
            unique("rg-missing-"),
            unique("acr"),
            {"location": "westeurope", "sku": {"name": "Basic"}},
        ).result()


def test_data_plane_push_and_list(
    sandbox: Sandbox, acr: ContainerRegistryManagementClient, group: str, tmp_path: Path
) -> None:
    name = _registry(acr, group)
    creds = acr.registries.list_credentials(group, name)
    assert creds.passwords is not None
    password = creds.passwords[0].value
    assert password is not None

    first = push_package(
        _package(tmp_path / "one"),
        f"{name}.azurecr.io/ml/score:v1",
        endpoint=sandbox.endpoint,
        ca_cert=sandbox.ca_cert,
        token=sandbox.token,
    )
    assert first.digest == package_digest(tmp_path / "one")
    second = push_package(
        _package(tmp_path / "two", "v2"),
        f"{name}.azurecr.io/ml/score:v2",
        endpoint=sandbox.endpoint,
        ca_cert=sandbox.ca_cert,
        username=name,
        password=password,
    )
    assert second.digest != first.digest
    assert str(second) == f"{name}.azurecr.io/ml/score:v2@{second.digest}"

    assert _get(sandbox, name, "", headers=_bearer(sandbox)).status_code == 200
    catalog = _get(sandbox, name, "_catalog", headers=_basic(name, password))
    assert catalog.json() == {"repositories": ["ml/score"]}
    tags = _get(sandbox, name, "ml/score/tags/list", headers=_bearer(sandbox))
    assert tags.json() == {"name": "ml/score", "tags": ["v1", "v2"]}
    missing = _get(sandbox, name, "nothing/tags/list", headers=_bearer(sandbox))
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["code"] == "NAME_UNKNOWN"

    by_digest = _get(sandbox, name, f"ml/score/manifests/{first.digest}", headers=_bearer(sandbox))
    assert by_digest.status_code == 200
    assert by_digest.headers["Docker-Content-Digest"] == first.digest

    refused = _get(sandbox, name, "_catalog", headers=_basic(name, "wrong"))
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Basic")
    assert _get(sandbox, name, "_catalog").status_code == 401

    # Turning the admin user off closes Basic access; the sandbox token still works.
    acr.registries.begin_update(group, name, {"properties": {"adminUserEnabled": False}}).result()
    assert _get(sandbox, name, "_catalog", headers=_basic(name, password)).status_code == 401
    assert _get(sandbox, name, "_catalog", headers=_bearer(sandbox)).status_code == 200


def test_push_errors(sandbox: Sandbox, tmp_path: Path) -> None:
    package = _package(tmp_path / "pkg")
    with pytest.raises(BadInput, match="does not exist"):
        push_package(
            package,
            f"{unique('nothere')}.azurecr.io/app:v1",
            endpoint=sandbox.endpoint,
            ca_cert=sandbox.ca_cert,
            token=sandbox.token,
        )
    with pytest.raises(BadInput, match="no files"):
        (tmp_path / "empty").mkdir()
        push_package(
            tmp_path / "empty",
            "someacr01.azurecr.io/app:v1",
            endpoint=sandbox.endpoint,
            ca_cert=sandbox.ca_cert,
            token=sandbox.token,
        )


def test_deleting_registry_or_group_deletes_packages(
    sandbox: Sandbox,
    acr: ContainerRegistryManagementClient,
    resource_client: ResourceManagementClient,
    tmp_path: Path,
) -> None:
    group = unique("rg-test-")
    resource_client.resource_groups.create_or_update(group, {"location": "westeurope"})
    by_delete = _registry(acr, group)
    by_group = _registry(acr, group)
    for name in (by_delete, by_group):
        push_package(
            _package(tmp_path / name),
            f"{name}.azurecr.io/app:v1",
            endpoint=sandbox.endpoint,
            ca_cert=sandbox.ca_cert,
            token=sandbox.token,
        )
    packages_root = sandbox.state_dir / "providers" / "microsoft.containerregistry" / "packages"
    assert (packages_root / by_delete).is_dir() and (packages_root / by_group).is_dir()

    acr.registries.begin_delete(group, by_delete).result()
    assert not (packages_root / by_delete).exists()
    assert (packages_root / by_group).is_dir()

    resource_client.resource_groups.begin_delete(group).result()
    assert not (packages_root / by_group).exists()
    # Recreating the name starts empty: packages went with the registry.
    assert _get(sandbox, by_group, "_catalog", headers=_bearer(sandbox)).status_code == 404


def test_cli_push(
    sandbox: Sandbox,
    acr: ContainerRegistryManagementClient,
    group: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = _registry(acr, group)
    package = _package(tmp_path / "pkg")
    state = str(sandbox.state_dir)

    code = _push_command("sandbox", package, f"{name}.azurecr.io/app:v1", state)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == f"{name}.azurecr.io/app:v1@{package_digest(package)}"

    code = _push_command("package", package, f"{name}.azurecr.io/app:v2", state)
    assert code == 0
    capsys.readouterr()
    tags = _get(sandbox, name, "app/tags/list", headers=_bearer(sandbox))
    assert tags.json()["tags"] == ["v1", "v2"]

    code = _push_command("sandbox", package, "not-a-reference", state)
    out, err = capsys.readouterr()
    assert code == 2 and "error: --image" in err and "Traceback" not in err

    missing = unique("ghost")
    code = _push_command("sandbox", package, f"{missing}.azurecr.io/app:v1", state)
    out, err = capsys.readouterr()
    assert code == 2 and f"registry {missing} does not exist" in err

    code = _push_command("sandbox", tmp_path / "nope", f"{name}.azurecr.io/app:v1", state)
    out, err = capsys.readouterr()
    assert code == 2 and "is not a folder" in err

    code = _push_command("sandbox", package, f"{name}.azurecr.io/app:v1", tmp_path / "no-sandbox")
    out, err = capsys.readouterr()
    assert code == 2 and "no sandbox is running" in err


def test_failed_provisioning_carries_the_arm_code(tmp_path: Path) -> None:
    faults = {
        "rules": [
            {
                "method": "PUT",
                "path": "/registries/broken",
                "fail_provisioning": True,
                "code": "RegistryQuotaExceeded",
                "message": "The registry quota was exceeded.",
            }
        ]
    }
    with Sandbox.start(tmp_path / "state", latency="fast", faults=faults) as sb:
        rm = mgmt(ResourceManagementClient, sb)
        acr = mgmt(ContainerRegistryManagementClient, sb)
        rm.resource_groups.create_or_update("rg", {"location": "westeurope"})
        name = unique("broken")
        with pytest.raises(HttpResponseError) as caught:
            acr.registries.begin_create(
                "rg", name, {"location": "westeurope", "sku": {"name": "Basic"}}
            ).result()
        assert caught.value.error is not None
        assert caught.value.error.code == "RegistryQuotaExceeded"
        failed = acr.registries.get("rg", name)
        assert failed.properties is not None
        assert failed.properties.provisioning_state == "Failed"


def test_cli_push_to_a_sandbox_in_another_process(tmp_path: Path) -> None:
    """`sandbox serve` in one process, `sandbox push` in another: the push goes over HTTPS."""
    import json

    from app.sandbox import SandboxProcess, connect

    state = tmp_path / "state"
    serve = SandboxProcess.start(state)
    try:
        info = json.loads(serve.ready_line)
        conn = connect(state)
        assert conn.endpoint == info["endpoint"]
        rm = mgmt(ResourceManagementClient, conn)
        acr = mgmt(ContainerRegistryManagementClient, conn)
        rm.resource_groups.create_or_update("rg", {"location": "westeurope"})
        name = _registry(acr, "rg")
        package = _package(tmp_path / "pkg")

        pushed = run_cli(
            "sandbox",
            "push",
            str(package),
            "--image",
            f"{name}.azurecr.io/app:v1",
            "--state-dir",
            str(state),
            timeout=120,
        )
        assert pushed.returncode == 0, pushed.stderr
        assert pushed.stdout.strip() == f"{name}.azurecr.io/app:v1@{package_digest(package)}"
        tags = _get(conn, name, "app/tags/list", headers=_bearer(conn))
        assert tags.json() == {"name": "app", "tags": ["v1"]}
    finally:
        serve.stop()


def test_listing_helpers(
    sandbox: Sandbox, acr: ContainerRegistryManagementClient, group: str, tmp_path: Path
) -> None:
    name = _registry(acr, group)
    where = {"endpoint": sandbox.endpoint, "ca_cert": sandbox.ca_cert}
    assert list_repositories(name, token=sandbox.token, **where) == []
    assert list_tags(name, "app", token=sandbox.token, **where) == []
    push_package(
        _package(tmp_path / "p"), f"{name}.azurecr.io/app:v1", token=sandbox.token, **where
    )
    creds = acr.registries.list_credentials(group, name)
    assert creds.passwords is not None
    basic = {"username": name, "password": creds.passwords[1].value}
    assert list_repositories(name, **basic, **where) == ["app"]
    assert list_tags(name, "app", **basic, **where) == ["v1"]
    with pytest.raises(BadInput, match="refused the credentials"):
        list_repositories(name, username=name, password="wrong", **where)
    with pytest.raises(BadInput, match="does not exist"):
        list_tags(unique("ghost"), "app", token=sandbox.token, **where)


def test_a_registry_whose_provisioning_failed_is_provisioned_again_by_the_same_put(
    sandbox: Sandbox, acr: ContainerRegistryManagementClient, group: str
) -> None:
    from app.sandbox.faults import parse_rules

    name = unique("acr")
    sandbox.context.faults.rules = parse_rules({"rules": [{
        "method": "PUT", "path": f"/registries/{name}$", "count": 1,
        "fail_provisioning": True}]}).rules
    try:
        with pytest.raises(HttpResponseError):
            _registry(acr, group, name=name)
    finally:
        sandbox.context.faults.rules = []
    failed = acr.registries.get(group, name)
    assert failed.provisioning_state == "Failed"
    _registry(acr, group, name=name)  # asserts Succeeded
    login_server = acr.registries.get(group, name).login_server
    # Its loginServer answers now, as any registry's does once it is Succeeded.
    answer = requests.get(f"https://{login_server}/v2/", verify=str(sandbox.ca_cert), timeout=10)
    assert answer.status_code == 401
