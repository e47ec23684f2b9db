"""The model package end to end on the sandbox: build, push, run in a site, MISS then HIT.

Every part is real: the `package build` / `package push` commands, the sandbox's
ARM endpoint driven by the Azure SDK clients, a redis-server behind the cache
resource, and the function host the sandbox starts for the site.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from app.paths import resources_dir
from app.sandbox import Sandbox
from app.sandbox.processes import processes_mentioning
from app.sandbox.sample_site import deploy_sample_site

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]

SAMPLE = resources_dir() / "sample-model"


def _post(url: str, body: bytes, ca: Path) -> tuple[int, dict[str, str], bytes]:
    context = ssl.create_default_context(cafile=str(ca))
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return (
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                response.read(),
            )
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def _wait_serving(base: str, ca: Path, timeout: float = 60.0) -> dict[str, Any]:
    """The site's host starts after the create returns (as on Azure): wait for health."""
    context = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/api/health", context=context, timeout=5) as r:
                health: dict[str, Any] = json.loads(r.read())
                return health
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"the site never answered /api/health: {last}")


def test_sample_package_served_by_a_sandbox_site_misses_then_hits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "sandbox"
    package = tmp_path / "package"
    assert main(["package", "build", str(SAMPLE), "--out", str(package)]) == 0

    def push(image: str, username: str, password: str) -> None:
        # `package push` with the sandbox token; the site pulls with the admin user.
        capsys.readouterr()
        assert (
            main(["package", "push", str(package), "--image", image, "--state-dir", str(state)])
            == 0
        )
        assert "sha256:" in capsys.readouterr().out

    with Sandbox.start(state, latency="fast") as sb:
        site = deploy_sample_site(sb, "pkg-e2e", push)
        function_key = site.function_key
        base = site.base_url

        health = _wait_serving(base, sb.ca_cert)
        assert health["model_loaded"] is True and health["cache"] == "reachable"

        body = (package / "sample-request.json").read_bytes()
        assert _post(f"{base}/api/score", body, sb.ca_cert)[0] == 401
        status1, headers1, answer1 = _post(
            f"{base}/api/score?code={function_key}", body, sb.ca_cert
        )
        status2, headers2, answer2 = _post(
            f"{base}/api/score?code={function_key}", body, sb.ca_cert
        )

        assert (status1, status2) == (200, 200)
        assert (headers1["x-cache"], headers2["x-cache"]) == ("MISS", "HIT")
        assert json.loads(answer1) == json.loads(answer2) == {"predictions": [2]}

    assert processes_mentioning(str(state)) == [], "the sandbox left processes behind"
