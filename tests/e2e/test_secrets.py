"""No secret leaves the cloud: scan everything a deploy/test/status/export/cleanup run wrote.

The real key values are read from the sandbox through ARM while the deployment
exists; afterwards the deployment logs, exported files and every byte of the
commands' stdout/stderr are searched for them (and their URL-encoded forms).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import pytest

from app.sandbox import Sandbox

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]

ROOT = Path(__file__).resolve().parents[2]


def _clients(sandbox: Sandbox) -> dict[str, Any]:
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient
    from azure.mgmt.redis import RedisManagementClient
    from azure.mgmt.storage import StorageManagementClient
    from azure.mgmt.web import WebSiteManagementClient

    kwargs = {
        "base_url": sandbox.endpoint,
        "credential_scopes": [sandbox.credential_scope],
        "connection_verify": str(sandbox.ca_cert),
    }
    credential, sub = sandbox.credential(), sandbox.subscription_id
    return {
        "redis": RedisManagementClient(credential, sub, **kwargs),
        "storage": StorageManagementClient(credential, sub, **kwargs),
        "web": WebSiteManagementClient(credential, sub, **kwargs),
        "registry": ContainerRegistryManagementClient(credential, sub, **kwargs),
    }


def read_secrets(sandbox: Sandbox, spec: dict[str, Any]) -> set[str]:
    clients = _clients(sandbox)
    group = spec["resource_group"]["name"]
    app = spec["function_app"]
    redis_keys = clients["redis"].redis.list_keys(group, spec["cache"]["name"])
    storage_keys = clients["storage"].storage_accounts.list_keys(group, app["storage_account"])
    registry = clients["registry"].registries.list_credentials(group, spec["image"]["registry"])
    host_keys = clients["web"].web_apps.list_host_keys(group, app["name"])
    settings = clients["web"].web_apps.list_application_settings(group, app["name"]).properties
    values = {
        redis_keys.primary_key,
        redis_keys.secondary_key,
        *(k.value for k in storage_keys.keys_property),
        *(p.value for p in registry.passwords),
        host_keys.master_key,
        *host_keys.function_keys.values(),
        settings["AzureWebJobsStorage"],
        settings["REDIS_KEY"],
        settings["DOCKER_REGISTRY_SERVER_PASSWORD"],
        sandbox.token,
    }
    secrets = {v for v in values if v}
    assert len(secrets) >= 9, "expected every kind of secret to be present"
    return secrets


def forms(secret: str) -> set[str]:
    return {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}


def test_no_secret_reaches_logs_outputs_or_exports(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    spec: dict[str, Any] = {
        "version": 1,
        "target": "sandbox",
        "resource_group": {"name": f"rg-sec-{tag}"},
        "cache": {"kind": "azure-cache-for-redis", "name": f"cache-sec-{tag}", "tier": "Basic",
                  "size": "C0", "auth": "access-keys"},
        "image": {
            "build_from": str(ROOT / "resources" / "sample-model"),
            "registry": f"acrsec{tag}",
            "repository": "digits",
            "tag": "v1",
        },
        "function_app": {
            "name": f"func-sec-{tag}",
            "plan_name": f"plan-sec-{tag}",
            "storage_account": f"stsec{tag}",
            # Keys kept: every kind of secret exists, so each can be looked for.
            "auth": "keys",
        },
    }
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    data_home = tmp_path / "data"
    exports = tmp_path / "exports"
    exports.mkdir()
    env = {**os.environ, "XDG_DATA_HOME": str(data_home)}
    outputs: list[str] = []

    def run(*argv: str, code: int = 0) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "app", *argv],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=150,
        )
        outputs.extend([result.stdout, result.stderr])
        assert result.returncode == code, result.stdout[-2000:] + result.stderr[-2000:]

    with Sandbox.start(tmp_path / "sandbox", latency="fast") as sandbox:
        state = ["--sandbox-state", str(sandbox.state_dir)]
        run("deploy", str(spec_path), *state)  # terminal-less progress lines
        run("deploy", str(spec_path), "--json", *state)  # the resume path, as JSON events
        run("test", str(spec_path), "--repeat", "2", *state)
        run("test", str(spec_path), "--json", *state)
        run("status", str(spec_path), "--json", *state)
        run("export", str(spec_path), "--format", "arm", "--out", str(exports / "plan.json"))
        run("export", str(spec_path), "--format", "azcli", "--out", str(exports / "plan.sh"))
        secrets = read_secrets(sandbox, spec)
        run("cleanup", str(spec_path), "--confirm", spec["resource_group"]["name"], *state)

    logs = sorted((data_home / "mlcache-deploy" / "deployments").glob("*.jsonl"))
    assert len(logs) == 2
    log_text = "\n".join(p.read_text() for p in logs)
    # The scan is only meaningful if the logs hold the run: events, settings step, key reads.
    assert '"step_succeeded"' in log_text and "REDIS_KEY" in log_text
    written = {str(p): p.read_text() for p in [*logs, *exports.iterdir()]}
    written.update({f"output {i}": text for i, text in enumerate(outputs)})
    assert any("predictions" in text for text in outputs)

    leaks = [
        (where, secret[:4] + "…")
        for where, text in written.items()
        for secret in secrets
        for form in forms(secret)
        if form in text
    ]
    assert leaks == []
