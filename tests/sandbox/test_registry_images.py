"""OCI images in sandbox registries: the base-image stand-in, importImage, blob uploads,
mounts and image manifests, driven by the real azure-containerregistry client and the
real management client.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import site as python_site
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from azure.containerregistry import ContainerRegistryClient
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.containerregistry import ContainerRegistryManagementClient
from azure.mgmt.containerregistry.models import ImportImageParameters, ImportSource

from app.sandbox import Sandbox
from app.sandbox.api import SandboxConnection

from .conftest import mgmt, unique

BASE_REPO = "azure-functions/python"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def acr(sandbox: Sandbox) -> ContainerRegistryManagementClient:
    return mgmt(ContainerRegistryManagementClient, sandbox)


def new_registry(acr: ContainerRegistryManagementClient, group: str) -> tuple[str, str]:
    name = unique("acr")
    created = acr.registries.begin_create(
        group, name, {"location": "westeurope", "sku": {"name": "Basic"}}
    ).result()
    return name, str(created.properties.login_server)


def data_client(sandbox: Sandbox, server: str) -> ContainerRegistryClient:
    """As the product reaches a registry: its ARM token, exchanged by the SDK itself."""
    return ContainerRegistryClient(
        endpoint=f"https://{server}",
        credential=sandbox.credential(),
        audience="https://management.azure.com",
        connection_verify=str(sandbox.ca_cert),
    )


def import_base(
    acr: ContainerRegistryManagementClient, group: str, name: str, uri: str,
    tag: str = "4-python3.11", mode: str = "Force",
) -> None:
    acr.registries.begin_import_image(
        group, name,
        ImportImageParameters(
            source=ImportSource(registry_uri=uri, source_image=f"{BASE_REPO}:{tag}"),
            target_tags=[f"{BASE_REPO}:{tag}"],
            mode=mode,
        ),
        polling_interval=0.05,
    ).result()


@pytest.fixture
def registry(
    sandbox: Sandbox, acr: ContainerRegistryManagementClient, group: str
) -> Iterator[tuple[str, str, ContainerRegistryClient]]:
    name, server = new_registry(acr, group)
    with data_client(sandbox, server) as client:
        yield name, server, client


# -- the base-registry stand-in -----------------------------------------------------


def test_the_base_registry_serves_stand_in_images_anonymously(sandbox: Sandbox) -> None:
    host = sandbox.base_registry
    assert host.startswith("127.0.0.1:")
    verify = str(sandbox.ca_cert)
    assert requests.get(f"https://{host}/v2/", verify=verify, timeout=30).status_code == 200
    answer = requests.get(f"https://{host}/v2/{BASE_REPO}/manifests/4-python3.11",
                          verify=verify, timeout=30)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/vnd.docker.distribution.manifest.v2+json"
    digest = "sha256:" + hashlib.sha256(answer.content).hexdigest()
    assert answer.headers["Docker-Content-Digest"] == digest
    manifest = answer.json()
    config = requests.get(f"https://{host}/v2/{BASE_REPO}/blobs/{manifest['config']['digest']}",
                          verify=verify, timeout=30).json()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    assert (config["os"], config["architecture"]) == ("linux", arch)
    env = dict(e.split("=", 1) for e in config["config"]["Env"])
    assert env["PYTHON_VERSION"] == ".".join(map(str, sys.version_info[:3]))
    assert env["AzureWebJobsScriptRoot"] == "/home/site/wwwroot"
    assert env["FUNCTIONS_WORKER_RUNTIME"] == "python"
    layer = requests.get(f"https://{host}/v2/{BASE_REPO}/blobs/{manifest['layers'][0]['digest']}",
                         verify=verify, timeout=30).content
    import gzip

    assert config["rootfs"]["diff_ids"] == [
        "sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest()
    ]
    # Same bytes every time: the digest of each tag is stable.
    again = requests.head(f"https://{host}/v2/{BASE_REPO}/manifests/4-python3.11",
                          verify=verify, timeout=30)
    assert again.headers["Docker-Content-Digest"] == digest
    unknown = requests.get(f"https://{host}/v2/{BASE_REPO}/manifests/3-python2.7",
                           verify=verify, timeout=30)
    assert unknown.status_code == 404
    assert unknown.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


def test_an_old_connection_file_without_the_base_registry_still_loads(sandbox: Sandbox) -> None:
    data = sandbox.connection.as_json()
    assert data["base_registry"] == sandbox.base_registry
    del data["base_registry"]
    old = SandboxConnection.from_json(data, sandbox.connection.state_dir)
    assert old.base_registry == ""
    assert old.endpoint == sandbox.endpoint


# -- importImage ----------------------------------------------------------------------


def test_import_copies_the_base_image_with_its_digest(
    sandbox: Sandbox, acr: ContainerRegistryManagementClient, group: str,
    registry: tuple[str, str, ContainerRegistryClient],
) -> None:
    name, _, client = registry
    import_base(acr, group, name, "mcr.microsoft.com")
    source = requests.get(f"https://{sandbox.base_registry}/v2/{BASE_REPO}/manifests/4-python3.11",
                          verify=str(sandbox.ca_cert), timeout=30)
    got = client.get_manifest(BASE_REPO, "4-python3.11")
    assert got.digest == source.headers["Docker-Content-Digest"]
    assert got.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    config = client.download_blob(BASE_REPO, got.manifest["config"]["digest"])
    assert json.loads(b"".join(config))["os"] == "linux"
    assert "azure-functions/python" in list(client.list_repository_names())
    props = client.get_manifest_properties(BASE_REPO, "4-python3.11")
    assert props.digest == got.digest
    assert props.tags == ["4-python3.11"]


def test_import_by_the_stand_in_host_and_noforce_on_an_existing_tag(
    sandbox: Sandbox, acr: ContainerRegistryManagementClient, group: str,
    registry: tuple[str, str, ContainerRegistryClient],
) -> None:
    name, _, client = registry
    import_base(acr, group, name, sandbox.base_registry, tag="4-python3.12", mode="NoForce")
    assert client.get_manifest(BASE_REPO, "4-python3.12").digest.startswith("sha256:")
    with pytest.raises(HttpResponseError) as refused:
        import_base(acr, group, name, sandbox.base_registry, tag="4-python3.12", mode="NoForce")
    assert "already exists in target registry" in str(refused.value)
    import_base(acr, group, name, sandbox.base_registry, tag="4-python3.12", mode="Force")


def test_import_of_an_unknown_source_image_fails(
    acr: ContainerRegistryManagementClient, group: str,
    registry: tuple[str, str, ContainerRegistryClient],
) -> None:
    name, _, client = registry
    with pytest.raises(HttpResponseError) as failed:
        import_base(acr, group, name, "mcr.microsoft.com", tag="0-python2.7")
    assert "not found" in str(failed.value)
    assert "InvalidParameters" in str(failed.value)
    assert BASE_REPO not in list(client.list_repository_names())


# -- blobs and manifests through the SDK --------------------------------------------


def blob_bytes(text: str) -> bytes:
    return text.encode("utf-8")


def test_upload_mount_set_and_get_an_oci_manifest(
    sandbox: Sandbox, acr: ContainerRegistryManagementClient, group: str,
    registry: tuple[str, str, ContainerRegistryClient],
) -> None:
    name, server, client = registry
    import_base(acr, group, name, "mcr.microsoft.com")
    base = client.get_manifest(BASE_REPO, "4-python3.11").manifest
    repo = "ml/app"
    layer = blob_bytes("a layer of the app\n" * 1000)
    digest, size = client.upload_blob(repo, io.BytesIO(layer))
    assert digest == "sha256:" + hashlib.sha256(layer).hexdigest()
    assert size == len(layer)
    # A second upload of the same bytes: same digest, and the blob is there.
    assert client.upload_blob(repo, io.BytesIO(layer))[0] == digest
    blob_ops = client._client.container_registry_blob
    blob_ops.check_blob_exists(repo, digest)  # raises unless 200
    with pytest.raises(ResourceNotFoundError):
        blob_ops.check_blob_exists(repo, "sha256:" + "0" * 64)
    # Mount the base layers from the imported repository (201: no upload needed).
    for descriptor in [base["config"], *base["layers"]]:
        headers = blob_ops.mount_blob(
            repo, from_parameter=BASE_REPO, mount=descriptor["digest"],
            cls=lambda pipeline, body, headers: headers,
        )
        assert headers["Docker-Content-Digest"] == descriptor["digest"]
        blob_ops.check_blob_exists(repo, descriptor["digest"])
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    config_digest, _ = client.upload_blob(repo, io.BytesIO(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": [
            *base["layers"],
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
             "digest": digest, "size": len(layer)},
        ],
    }
    manifest_digest = client.set_manifest(repo, manifest, tag="v1", media_type=OCI_MANIFEST)
    by_digest = client.get_manifest(repo, manifest_digest)
    assert by_digest.digest == manifest_digest
    assert by_digest.manifest == manifest
    assert by_digest.media_type == OCI_MANIFEST
    assert client.get_manifest(repo, "v1").digest == manifest_digest
    assert b"".join(client.download_blob(repo, digest)) == layer
    assert [t.name for t in client.list_tag_properties(repo)] == ["v1"]
    assert repo in list(client.list_repository_names())
    # The blob requests went through the request log.
    log = (sandbox.connection.state_dir / "requests.log").read_text(encoding="utf-8")
    entries = [json.loads(line) for line in log.splitlines()]
    paths = [str(e.get("path", "")) for e in entries if e.get("host") == server]
    assert any(p.startswith(f"/v2/{repo}/blobs/uploads/") for p in paths)
    assert any(p == f"/v2/{repo}/manifests/v1" for p in paths)


def test_a_wrong_digest_and_a_missing_blob_are_refused(
    registry: tuple[str, str, ContainerRegistryClient],
) -> None:
    _, _, client = registry
    repo = "ml/bad"
    blob_ops = client._client.container_registry_blob
    start = blob_ops.start_upload(repo, cls=lambda pipeline, body, headers: headers)
    chunk = blob_ops.upload_chunk(start["Location"], io.BytesIO(b"some bytes"),
                                  cls=lambda pipeline, body, headers: headers)
    assert chunk["Range"] == "0-9"
    with pytest.raises(HttpResponseError) as wrong:
        blob_ops.complete_upload(digest="sha256:" + "1" * 64, next_link=chunk["Location"])
    assert wrong.value.status_code == 400
    assert "DIGEST_INVALID" in str(wrong.value)
    missing = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + "2" * 64, "size": 2},
        "layers": [],
    }
    with pytest.raises(HttpResponseError) as unknown:
        client.set_manifest(repo, missing, tag="v1", media_type=OCI_MANIFEST)
    assert unknown.value.status_code == 400
    assert "MANIFEST_BLOB_UNKNOWN" in str(unknown.value)
    with pytest.raises(ResourceNotFoundError):
        client.get_manifest(repo, "v1")


def test_push_needs_pull_and_push_scope(
    sandbox: Sandbox, registry: tuple[str, str, ContainerRegistryClient]
) -> None:
    _, server, _ = registry
    answer = requests.post(f"https://{server}/v2/ml/app/blobs/uploads/",
                           verify=str(sandbox.ca_cert), timeout=30)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].endswith(
        ',scope="repository:ml/app:pull,push"'
    )
    detail = answer.json()["errors"][0]["detail"]
    assert [d["Action"] for d in detail] == ["pull", "push"]


def test_deleting_the_repository_removes_its_images(
    acr: ContainerRegistryManagementClient, group: str,
    registry: tuple[str, str, ContainerRegistryClient],
) -> None:
    name, _, client = registry
    import_base(acr, group, name, "mcr.microsoft.com")
    client.delete_repository(BASE_REPO)
    assert BASE_REPO not in list(client.list_repository_names())
    with pytest.raises(ResourceNotFoundError):
        client.get_manifest(BASE_REPO, "4-python3.11")


# -- a site running an image's layers -----------------------------------------------


def layer_of(files: dict[str, bytes]) -> bytes:
    """A gzip'd tar layer holding `files` (folders made as needed)."""
    import gzip
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


APP = b'''\
import importlib.util
import json
import os
import sys

import azure.functions as func
import imgpkg
import tomli_w

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="hello")
def hello(req: func.HttpRequest) -> func.HttpResponse:
    here = os.path.dirname(os.path.abspath(__file__))
    return func.HttpResponse(json.dumps({
        "pkg": imgpkg.VALUE,
        "shadowed": getattr(tomli_w, "FROM_IMAGE", False),
        "greeting": os.environ.get("GREETING"),
        "image_only": os.environ.get("IMAGE_ONLY"),
        "script_root": os.environ.get("AzureWebJobsScriptRoot"),
        "here": here,
        "stale": os.path.exists(os.path.join(here, "stale.txt")),
        "sys_path": sys.path,
        # Installed where the sandbox runs, absent from the image: not importable.
        "redis": importlib.util.find_spec("redis") is not None,
        "sklearn": importlib.util.find_spec("sklearn") is not None,
    }))
'''


def test_a_site_runs_an_image_from_its_layers(
    sandbox: Sandbox, acr: ContainerRegistryManagementClient, group: str,
) -> None:
    from azure.mgmt.web import WebSiteManagementClient

    from .test_registry_tasks import wait_until

    name = unique("acr")
    server = str(acr.registries.begin_create(
        group, name, {"location": "westeurope", "sku": {"name": "Basic"},
                      "properties": {"adminUserEnabled": True}},
    ).result().properties.login_server)
    import_base(acr, group, name, "mcr.microsoft.com")
    repo = "ml/site"
    site_packages = "home/site/wwwroot/.python_packages/lib/site-packages"
    lower = layer_of({"home/site/wwwroot/stale.txt": b"from a lower layer\n"})
    upper = layer_of({
        "home/site/wwwroot/host.json": b'{"version": "2.0"}\n',
        "home/site/wwwroot/function_app.py": APP,
        "home/site/wwwroot/.wh.stale.txt": b"",
        f"{site_packages}/imgpkg/__init__.py": b'VALUE = "from the image"\n',
        f"{site_packages}/tomli_w/__init__.py": b"FROM_IMAGE = True\n",
    })
    with data_client(sandbox, server) as client:
        base = client.get_manifest(BASE_REPO, "4-python3.11").manifest
        config_blob = client.download_blob(BASE_REPO, base["config"]["digest"])
        base_config = json.loads(b"".join(config_blob))
        blob_ops = client._client.container_registry_blob
        for descriptor in base["layers"]:
            blob_ops.mount_blob(repo, from_parameter=BASE_REPO, mount=descriptor["digest"])
        layers = []
        for data in (lower, upper):
            digest, size = client.upload_blob(repo, io.BytesIO(data))
            layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                           "digest": digest, "size": size})
        config = dict(base_config)
        config["config"] = dict(base_config["config"])
        config["config"]["Env"] = [
            *base_config["config"]["Env"],
            f"PYTHONPATH=/{site_packages}",
            "GREETING=from the image",
            "IMAGE_ONLY=yes",
        ]
        config_bytes = json.dumps(config).encode()
        config_digest, _ = client.upload_blob(repo, io.BytesIO(config_bytes))
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": len(config_bytes)},
            "layers": [*base["layers"], *layers],
        }
        digest = client.set_manifest(repo, manifest, tag="v1", media_type=OCI_MANIFEST)
    password = acr.registries.list_credentials(group, name).passwords[0].value

    web = mgmt(WebSiteManagementClient, sandbox)
    plan = web.app_service_plans.begin_create_or_update(
        group, unique("plan-"),
        {"location": "westeurope", "kind": "linux", "properties": {"reserved": True},
         "sku": {"name": "B1", "tier": "Basic"}},
    ).result()
    site = web.web_apps.begin_create_or_update(
        group, unique("func-"),
        {
            "location": "westeurope",
            "kind": "functionapp,linux,container",
            "properties": {
                "serverFarmId": plan.id,
                "siteConfig": {
                    "linuxFxVersion": f"DOCKER|{server}/{repo}:v1",
                    "appSettings": [
                        {"name": "DOCKER_REGISTRY_SERVER_URL", "value": f"https://{server}"},
                        {"name": "DOCKER_REGISTRY_SERVER_USERNAME", "value": name},
                        {"name": "DOCKER_REGISTRY_SERVER_PASSWORD", "value": password},
                        {"name": "GREETING", "value": "from the settings"},
                    ],
                },
            },
        },
    ).result()
    runtime = next(p for p in sandbox.context.providers if hasattr(p, "runtime")).runtime

    def answer() -> Any:
        try:
            return wait_until(
                lambda: (a := requests.get(f"https://{site.default_host_name}/api/hello",
                                           verify=str(sandbox.ca_cert), timeout=30))
                .status_code == 200 and a,
                "the site to serve the image",
                timeout=120,
            ).json()
        except AssertionError:
            log = runtime.log_file(site.name)
            raise AssertionError(log.read_text() if log.exists() else "no site log") from None

    got = answer()
    assert got["pkg"] == "from the image"
    assert got["shadowed"] is True  # the image's package, not the sandbox venv's
    assert got["greeting"] == "from the settings"  # app settings win over the image's Env
    assert got["image_only"] == "yes"
    assert got["stale"] is False  # the upper layer's whiteout removed it
    tree = runtime.rootfs_cache / digest.removeprefix("sha256:")
    assert got["here"] == str(tree / "rootfs" / "home" / "site" / "wwwroot")
    assert got["script_root"] == got["here"]
    # The app's sys.path is the image's: its script root and PYTHONPATH, then the
    # standard library; nothing of the sandbox's environment.
    assert got["sys_path"][:2] == [got["here"], str(tree / "rootfs" / site_packages)]
    ours = {*python_site.getsitepackages(), python_site.getusersitepackages()}
    assert not set(got["sys_path"]) & ours
    assert got["redis"] is False and got["sklearn"] is False
    log = runtime.log_file(site.name).read_text()
    assert f"Pull Image successful, Image: {server}/{repo}:v1, {digest}" in log
    # A restart runs the same tree again: unpacked once per digest, never copied.
    marker = (tree / ".complete").stat().st_ino
    web.web_apps.restart(group, site.name, synchronous=True)
    assert answer()["pkg"] == "from the image"
    assert (tree / ".complete").stat().st_ino == marker


def test_a_mount_of_a_blob_the_source_lacks_starts_an_upload(
    registry: tuple[str, str, ContainerRegistryClient],
) -> None:
    _, _, client = registry
    blob_ops = client._client.container_registry_blob
    digest, _ = client.upload_blob("ml/one", io.BytesIO(b"only in ml/one"))
    # The SDK's mount_blob expects 201; the raw answer for an absent blob is 202.
    with pytest.raises(HttpResponseError) as started:
        blob_ops.mount_blob("ml/two", from_parameter="ml/other", mount=digest)
    assert started.value.status_code == 202
    assert started.value.response.headers["Location"].startswith("/v2/ml/two/blobs/uploads/")
    with pytest.raises(ResourceNotFoundError):
        blob_ops.check_blob_exists("ml/two", digest)


def test_import_from_another_sandbox_registry_keeps_the_digest(
    sandbox: Sandbox, acr: ContainerRegistryManagementClient, group: str,
    registry: tuple[str, str, ContainerRegistryClient],
) -> None:
    source_name, source_client = registry[0], registry[2]
    import_base(acr, group, source_name, "mcr.microsoft.com")
    digest = source_client.get_manifest(BASE_REPO, "4-python3.11").digest
    target, target_server = new_registry(acr, group)
    source_id = acr.registries.get(group, source_name).id
    acr.registries.begin_import_image(
        group, target,
        ImportImageParameters(
            source=ImportSource(resource_id=source_id, source_image=f"{BASE_REPO}@{digest}"),
            target_tags=["copied/python:v1"],
        ),
        polling_interval=0.05,
    ).result()
    with data_client(sandbox, target_server) as client:
        got = client.get_manifest("copied/python", "v1")
        assert got.digest == digest
        for layer in got.manifest["layers"]:
            client._client.container_registry_blob.check_blob_exists(
                "copied/python", layer["digest"]
            )


def test_base_registry_requests_are_logged(sandbox: Sandbox) -> None:
    host = sandbox.base_registry
    requests.get(f"https://{host}/v2/{BASE_REPO}/manifests/4-python3.13",
                 verify=str(sandbox.ca_cert), timeout=30)
    log = (sandbox.connection.state_dir / "requests.log").read_text(encoding="utf-8")
    entries = [json.loads(line) for line in log.splitlines()]
    assert any(
        e["host"] == host and e["path"] == f"/v2/{BASE_REPO}/manifests/4-python3.13"
        and e["status"] == 200
        for e in entries
    )
