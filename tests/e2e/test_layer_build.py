"""The default image builder end to end on the sandbox: the base imported by ACR's
import operation, the model's layers pushed over the registry's data plane, and
nothing uploaded that the registry already has."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.e2e.test_azure_answers import requests_logged
from tests.e2e.test_cli import SAMPLE_MODEL, Cli, events, finished, make_spec, tail_log


def _image_outputs(stdout: str) -> dict[str, str]:
    done = next(e for e in events(stdout)
                if e["event"] == "step_succeeded" and e["step"] == "image")
    return dict(done["outputs"])


def _uploads(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Finished blob uploads (the PUT that closes one) on a registry host."""
    return [e for e in entries if e["method"] == "PUT" and "/blobs/uploads/" in e["path"]
            and e["status"] == 201]


def _deploy(cli: Cli, spec: Path) -> str:
    result = cli("deploy", str(spec), "--json", timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert finished(result.stdout)["succeeded"]
    return result.stdout


def test_the_default_build_imports_the_base_pushes_layers_and_reuses_them(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    sandbox = sandbox_factory()
    model = tmp_path / "model"
    shutil.copytree(SAMPLE_MODEL, model)
    spec, data = make_spec(tmp_path)
    data["image"]["build_from"] = str(model)
    spec.write_text(json.dumps(data))
    registry = data["image"]["registry"]

    first = _deploy(cli, spec)
    outputs = _image_outputs(first)
    assert outputs["builder"] == "layer"
    logged = requests_logged(sandbox)
    imports = [e for e in logged if e["method"] == "POST"
               and e["path"].endswith(f"/registries/{registry}/importImage")]
    assert imports and imports[0]["status"] == 202
    uploads = _uploads(logged)
    # The packages layer, the app layer and the image config; the base's layers were
    # mounted, not uploaded.
    assert len(uploads) == 3
    # Each chunk is sent once: the access token is reused, not asked for per request.
    chunks = [e for e in logged if e["method"] == "PATCH"]
    assert chunks and sum(e["status"] == 401 for e in chunks) == 0
    assert any(e["method"] == "POST" and "/blobs/uploads/" in e["path"] for e in logged)
    assert any(e["method"] == "PUT" and "/manifests/v1" in e["path"] for e in logged)
    assert int(outputs["uploaded_bytes"]) > int(outputs["packages_layer_bytes"])

    tested = cli("test", str(spec), "--json", "--repeat", "2")
    assert tested.returncode == 0, tested.stderr
    assert [c["cache"] for c in events(tested.stdout)] == ["MISS", "HIT"]

    # Unchanged: no blob bytes, the same digest, the site neither updated nor restarted.
    lines, _offset = tail_log(sandbox, spec)
    starts = sum("Starting container" in line for line in lines)
    before = len(requests_logged(sandbox))
    again = _deploy(cli, spec)
    repeat = _image_outputs(again)
    assert repeat["uploaded_bytes"] == "0"
    assert repeat["digest"] == outputs["digest"]
    assert _uploads(requests_logged(sandbox)[before:]) == []
    site = next(e for e in events(again) if e["event"] == "step_succeeded"
                and e["step"] == "function-app")
    assert site["adopted"] is True
    later, _ = tail_log(sandbox, spec)
    assert sum("Starting container" in line for line in later) == starts
    # The base is not imported again while the registry holds its digest.
    assert not [e for e in requests_logged(sandbox)[before:] if e["path"].endswith("/importImage")]

    # One file of the model folder changed: the app layer and the config, nothing else.
    request = model / "sample-request.json"
    request.write_text(request.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    before = len(requests_logged(sandbox))
    changed = _image_outputs(_deploy(cli, spec))
    assert len(_uploads(requests_logged(sandbox)[before:])) == 2
    assert changed["packages_layer"] == outputs["packages_layer"]
    assert changed["app_layer"] != outputs["app_layer"]
    assert 0 < int(changed["uploaded_bytes"]) < int(outputs["packages_layer_bytes"])
    assert changed["digest"] != outputs["digest"]
    tested = cli("test", str(spec), "--json")
    assert tested.returncode == 0, tested.stderr


def test_a_requirement_without_a_linux_wheel_stops_before_any_upload(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    from tests.unit.services.test_image_layers import _wheel

    sandbox = sandbox_factory()
    model = tmp_path / "model"
    shutil.copytree(SAMPLE_MODEL, model)
    with (model / "requirements.txt").open("a", encoding="utf-8") as handle:
        handle.write("mlcache-source-only-pkg==1.0\n")
    # pip's own configuration adds a folder where that package exists as source only.
    links = tmp_path / "links"
    _wheel(links, "unrelatedpkg")
    (links / "mlcache-source-only-pkg-1.0.tar.gz").write_bytes(b"")
    cli.env["PIP_FIND_LINKS"] = str(links)
    spec, data = make_spec(tmp_path)
    data["image"]["build_from"] = str(model)
    spec.write_text(json.dumps(data))

    result = cli("deploy", str(spec), "--json", timeout=400)
    assert result.returncode != 0
    failure = next(e for e in events(result.stdout) if e["event"] == "step_failed")
    assert failure["step"] == "image"
    assert "mlcache-source-only-pkg" in failure["message"]
    assert "has no wheel for linux/" in failure["message"]
    assert "acr-tasks" in failure["hint"]
    assert _uploads(requests_logged(sandbox)) == []
    assert not any("/manifests/" in e["path"] and e["method"] == "PUT"
                   for e in requests_logged(sandbox))
