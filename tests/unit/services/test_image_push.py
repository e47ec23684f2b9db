"""The image the layer builder pushes: the base's config and layers with the model's
appended, written the same way every time."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from app.services.image_layers import Layer
from app.services.image_push import (
    OCI_MANIFEST,
    BaseImage,
    base_tag,
    canonical_json,
    image_config,
    image_manifest,
)

# The shape of a Docker-built image config (fields as `docker image inspect` and the
# OCI image spec's config example name them), trimmed.
BASE_CONFIG = {
    "architecture": "amd64",
    "os": "linux",
    "created": "2026-11-20T08:15:02.123456789Z",
    "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "PYTHON_VERSION=3.11.14",
                       "HOME=/home", "AzureWebJobsScriptRoot=/home/site/wwwroot"],
               "Cmd": ["/opt/startup/start_nonappservice.sh"]},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64, "sha256:" + "2" * 64]},
    "history": [{"created": "2026-11-20T08:10:00Z", "created_by": "/bin/sh -c #(nop) ADD"},
                {"created": "2026-11-20T08:15:02Z", "created_by": "RUN install host"}],
}
BASE_LAYERS = [
    {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
     "digest": "sha256:" + "a" * 64, "size": 29_150_000},
    {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
     "digest": "sha256:" + "b" * 64, "size": 180_000_000},
]


def _layers() -> list[Layer]:
    return [Layer(Path("p.tar.gz"), "sha256:" + "c" * 64, "sha256:" + "d" * 64, 68_000_000, 4000),
            Layer(Path("a.tar.gz"), "sha256:" + "e" * 64, "sha256:" + "f" * 64, 90_000, 9)]


def test_the_config_appends_the_models_layers_and_where_its_packages_are() -> None:
    config = image_config(BASE_CONFIG, _layers())
    assert config["rootfs"]["diff_ids"] == [*BASE_CONFIG["rootfs"]["diff_ids"],  # type: ignore[index]
                                            "sha256:" + "d" * 64, "sha256:" + "f" * 64]
    assert len(config["history"]) == 4
    assert all(not entry.get("empty_layer") for entry in config["history"][2:])
    env = dict(item.split("=", 1) for item in config["config"]["Env"])
    assert env["PYTHONPATH"] == "/home/site/wwwroot/.python_packages/lib/site-packages"
    assert env["PYTHON_VERSION"] == "3.11.14" and env["PATH"].startswith("/usr/local/bin")
    assert config["config"]["Cmd"] == BASE_CONFIG["config"]["Cmd"]  # type: ignore[index]
    assert BASE_CONFIG["rootfs"]["diff_ids"][-1] == "sha256:" + "2" * 64  # type: ignore[index]


def test_the_manifest_keeps_the_base_layers_and_names_the_config_by_its_bytes() -> None:
    base = BaseImage("azure-functions/python", base_tag("3.11"), "sha256:" + "9" * 64,
                     {"layers": BASE_LAYERS}, BASE_CONFIG, imported=True)
    config = canonical_json(image_config(BASE_CONFIG, _layers()))
    manifest = image_manifest(base, config, _layers())
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"]["digest"] == f"sha256:{hashlib.sha256(config).hexdigest()}"
    assert manifest["config"]["size"] == len(config)
    assert manifest["layers"][:2] == BASE_LAYERS
    assert [d["digest"] for d in manifest["layers"][2:]] == ["sha256:" + "c" * 64,
                                                            "sha256:" + "e" * 64]
    assert canonical_json(manifest) == canonical_json(json.loads(canonical_json(manifest)))
    assert base.platform.describe() == "linux/amd64, CPython 3.11"
