"""`mlcache-deploy validate` as a script sees it: exit codes and output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True,
                          text=True, timeout=60)


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("mlcache-deploy ")


def test_valid_spec_passes() -> None:
    result = run("validate", str(EXAMPLES / "digits-sandbox.json"))
    assert (result.returncode, result.stdout) == (0, "Validation passed\n")
    result = run("validate", "--json", str(EXAMPLES / "digits-azure.toml"))
    assert result.returncode == 0
    assert json.loads(result.stdout) == []


@pytest.fixture
def bad_spec(tmp_path: Path) -> Path:
    data = json.loads((EXAMPLES / "digits-classic-sandbox.json").read_text())
    data["cache"]["size"] = "C7"
    data["cache"]["minimum_tls_version"] = "1.0"
    data["function_app"]["name"] = ""
    data["image"]["reference"] = "digitsdemoacr.azurecr.io/x:1"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return path


def test_rule_problems_exit_1_one_line_each(bad_spec: Path) -> None:
    result = run("validate", str(bad_spec))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "cache.size: a Standard cache takes sizes C0, C1, C2, C3, C4, C5, C6 (got 'C7')",
        "cache.minimum_tls_version: must be 1.2; TLS 1.0 is retired on Azure's Redis caches",
        "image: give either reference, or build_from with registry, repository and tag, "
        "not both",
        "function_app.name: must not be empty",
    ]
    as_json = json.loads(run("validate", "--json", str(bad_spec)).stdout)
    assert [p["field"] for p in as_json] == ["cache.size", "cache.minimum_tls_version",
                                             "image", "function_app.name"]


@pytest.mark.parametrize(
    ("content", "name", "fragment"),
    [
        (None, "missing.json", "no such file"),
        ('{"version": 1,\n  "cache": }', "syntax.json", "line 2, column 12"),
        ("version = 1\ncache = [", "syntax.toml", "invalid TOML"),
        ('{"version": 1, "cache": {"name": "x"}}', "nosection.json", "missing section"),
        ("[]", "list.json", "table of sections"),
    ],
)
def test_bad_files_exit_2_without_traceback(tmp_path: Path, content: str | None, name: str,
                                            fragment: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    result = run("validate", str(path))
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_no_monitoring_lifts_the_workspace_name_rule(tmp_path: Path) -> None:
    data = json.loads((EXAMPLES / "digits-sandbox.json").read_text())
    data["function_app"]["name"] = "f" * 60
    spec = tmp_path / "long.json"
    spec.write_text(json.dumps(data))
    refused = run("validate", str(spec))
    assert refused.returncode == 1 and "monitoring.enabled" in refused.stdout
    allowed = run("validate", "--no-monitoring", str(spec))
    assert (allowed.returncode, allowed.stdout) == (0, "Validation passed\n")
