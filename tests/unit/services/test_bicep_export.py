"""The Bicep and azd exports describe what the ARM export describes, resource by resource.

The Bicep file is read back and compiled to ARM's shape (`bicep_subset`), then
compared with `arm_template` for the same spec: types, api versions, names,
scopes, every property, parameters and outputs; every `dependsOn` of the ARM
template is one Bicep has (inferred from a reference, or written explicitly).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.services.arm_expressions import Str, parse, render
from app.services.bicep import bicep_from_arm
from app.services.export import arm_template, bicep_text, export_files
from app.spec import DeploymentSpec, load_spec
from tests.unit.services.bicep_subset import (
    Compiler,
    normal_arm,
    normal_bicep,
    read_bicep,
)

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"


def _keyless_managed() -> DeploymentSpec:
    return load_spec(EXAMPLES / "digits-sandbox.json")  # Azure Managed Redis, Entra


def _classic_keys() -> DeploymentSpec:
    spec = load_spec(EXAMPLES / "digits-classic-sandbox.json")
    spec.function_app.auth = "keys"
    spec.cache.auth = "access-keys"
    return spec


def _classic_keyless() -> DeploymentSpec:
    spec = load_spec(EXAMPLES / "digits-classic-sandbox.json")
    spec.cache.auth = "entra"
    return spec


def _existing_image() -> DeploymentSpec:
    return load_spec(EXAMPLES / "digits-azure.toml")  # premium, rdb, zones, packaged image


def _classic_options() -> DeploymentSpec:
    spec = _existing_image()
    spec.cache.persistence, spec.cache.persistence_frequency = "rdb", "15"
    spec.cache.replicas, spec.cache.update_channel = 2, "Preview"
    return spec


def _managed_options() -> DeploymentSpec:
    spec = _keyless_managed()
    spec.cache.persistence, spec.cache.persistence_frequency = "rdb", "6h"
    spec.cache.eviction_policy, spec.cache.modules = "NoEviction", ["RediSearch", "RedisJSON"]
    return spec


SPECS = {
    "classic-portal-options": _classic_options,
    "managed-portal-options": _managed_options,
    "keyless-managed-redis": _keyless_managed,
    "classic-access-keys": _classic_keys,
    "classic-entra": _classic_keyless,
    "existing-image": _existing_image,
}


def _compare(template: dict[str, Any], bicep: str) -> None:
    apis = {r["type"]: r["apiVersion"] for r in template["resources"]}
    compiled = read_bicep(bicep)
    compiler = Compiler(compiled)
    got = compiler.resources()
    want = template["resources"]
    assert [(r["type"], r["apiVersion"]) for r in got] == \
        [(r["type"], r["apiVersion"]) for r in want]
    for mine, theirs in zip(got, want, strict=True):
        header = ("type", "apiVersion", "dependsOn")  # types and versions compared above
        expected = {k: v for k, v in theirs.items() if k not in header}
        actual = {k: v for k, v in mine.items() if k not in header}
        assert normal_bicep(actual) == normal_arm(expected, apis), theirs["type"]
        needed = {normal_arm(d, apis) for d in theirs.get("dependsOn", [])}
        assert needed <= mine["dependsOn"], (theirs["type"], needed - mine["dependsOn"])
    # Parameters: the same names, types and defaults.
    assert list(compiled.params) == list(template["parameters"])
    for name, (bicep_type, default) in compiled.params.items():
        param = template["parameters"][name]
        assert bicep_type == param["type"]
        assert normal_bicep(compiler.value(default, set())) == \
            normal_arm(param["defaultValue"], apis)
    # Outputs: the host names, as ARM reads them.
    assert list(compiled.outputs) == list(template["outputs"])
    for name, (_, value) in compiled.outputs.items():
        assert normal_bicep(compiler.value(value, set())) == \
            normal_arm(template["outputs"][name]["value"], apis)


@pytest.mark.parametrize("make", list(SPECS.values()), ids=list(SPECS))
def test_bicep_compiles_back_to_the_arm_template(make: Any) -> None:
    spec = make()
    _compare(arm_template(spec), bicep_text(spec))


def test_the_comparison_notices_a_changed_property() -> None:
    """The check above would fail if the two exports disagreed on one value."""
    template = arm_template(_classic_keys())
    bicep = bicep_from_arm(template)
    changed = bicep.replace("minimumTlsVersion: 'TLS1_2'", "minimumTlsVersion: 'TLS1_0'")
    assert changed != bicep
    with pytest.raises(AssertionError):
        _compare(template, changed)
    # An explicit dependsOn Bicep cannot infer (the site names the storage account only
    # by its name parameter, keyless) is needed: without it the check fails.
    managed = arm_template(_keyless_managed())
    bicep = bicep_from_arm(managed)
    explicit = "  dependsOn: [\n    storageAccount\n    registry\n  ]\n"
    assert explicit in bicep
    with pytest.raises(AssertionError):
        _compare(managed, bicep.replace(explicit, ""))


def test_bicep_uses_symbols_existing_parent_and_scope() -> None:
    managed = bicep_text(_keyless_managed())
    assert "resource database 'Microsoft.Cache/redisEnterprise/databases@2025-07-01' = {\n" \
           "  parent: redisEnterprise\n  name: 'default'" in managed
    assert "  scope: storageAccount\n" in managed
    assert "principalId: site.identity.principalId" in managed
    assert "serverFarmId: serverfarm.id" in managed
    assert "linuxFxVersion: 'DOCKER|${image}'" in managed
    assert "output functionHostName string = site.properties.defaultHostName" in managed
    assert "output cacheHostName string = redisEnterprise.properties.hostName" in managed
    # A resource name Azure must know when the deployment starts: no identity in it.
    assert "name: replace(guid(database.id, site.id, 'default'), '-', '')" in managed
    assert "reference(" not in managed and "resourceId(" not in managed
    image = bicep_text(_existing_image())
    # The packaged image's registry is not created: it is an `existing` one in its group.
    assert ("resource registryExisting 'Microsoft.ContainerRegistry/registries@2023-07-01' "
            "existing = {\n  name: registryName\n  scope: resourceGroup(registryResourceGroup)"
            ) in image
    assert "value: 'https://${registryExisting.properties.loginServer}'" in image
    keys = bicep_text(_classic_keys())
    assert "value: redis.listKeys().primaryKey" in keys
    assert "value: registryExisting.listCredentials().username" in keys


def test_arm_expressions_read_and_written_back() -> None:
    for text in ("[format('{0}/default', parameters('cacheName'))]",
                 "[listKeys(resourceId('Microsoft.Storage/storageAccounts', "
                 "parameters('s')), '2023-05-01').keys[0].value]",
                 "[replace(guid(resourceGroup().id, 'it''s'), '-', '')]"):
        assert f"[{render(parse(text))}]" == text
    assert parse("plain") == Str("plain") and parse("[[x]") == Str("[x]")


def test_export_bicep_and_azd_from_the_command_line(tmp_path: Path) -> None:
    spec = EXAMPLES / "digits-sandbox.json"
    out = tmp_path / "main.bicep"
    proc = subprocess.run(
        [sys.executable, "-m", "app", "export", str(spec), "--format", "bicep", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == bicep_text(load_spec(spec))
    folder = tmp_path / "azd"
    proc = subprocess.run(
        [sys.executable, "-m", "app", "export", str(spec), "--format", "azd", "--out",
         str(folder)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (folder / "infra" / "main.bicep").read_text() == out.read_text()
    azure_yaml = (folder / "azure.yaml").read_text()
    for line in ('name: "digits-scoring-demo"', "infra:", "  path: infra", "  module: main",
                 "  scoring:", "    host: function", "    language: python",
                 '    resourceName: "digits-scoring-demo"'):
        assert line in azure_yaml.splitlines(), line
    project = next(line.split(": ", 1)[1] for line in azure_yaml.splitlines()
                   if line.startswith("    project:"))
    assert (folder / json.loads(project) / "score.py").exists() or \
        (folder / json.loads(project)).is_dir()
    parameters = json.loads((folder / "infra" / "main.parameters.json").read_text())
    assert parameters["parameters"]["location"] == {"value": "${AZURE_LOCATION}"}
    assert parameters["parameters"]["tags"]["value"]["azd-env-name"] == "${AZURE_ENV_NAME}"
    # Every parameter it sets is one the template declares.
    declared = read_bicep(out.read_text()).params
    assert set(parameters["parameters"]) <= set(declared)
    proc = subprocess.run(
        [sys.executable, "-m", "app", "export", str(spec), "--format", "azd"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--out DIR" in proc.stderr


def test_azd_layout_files() -> None:
    files = export_files(_existing_image(), "azd")
    assert set(files) == {"azure.yaml", "infra/main.bicep", "infra/main.parameters.json"}
    assert 'resourceGroup: "rg-digits-prod"' in files["azure.yaml"]


@pytest.mark.parametrize("make", list(SPECS.values()), ids=list(SPECS))
def test_an_independent_bicep_parser_reads_the_same_resources(make: Any) -> None:
    """pycep-parser (a Bicep grammar of its own, not this project's reader) parses the
    file and finds the ARM export's resources, parameters and outputs in it."""
    from pycep import BicepParser

    spec = make()
    template = arm_template(spec)
    parsed = BicepParser().parse(text=bicep_text(spec))
    declared = [(r["type"], r["api_version"]) for r in parsed["resources"].values()
                if not r["existing"]]
    assert declared == [(r["type"], r["apiVersion"]) for r in template["resources"]]
    assert list(parsed["parameters"]) == list(template["parameters"])
    assert list(parsed["outputs"]) == list(template["outputs"])
    # A resource whose values are all literals reads back as the ARM export's values.
    storage = next(r for r in parsed["resources"].values()
                   if r["type"] == "Microsoft.Storage/storageAccounts")["config"]
    arm_storage = next(r for r in template["resources"]
                       if r["type"] == "Microsoft.Storage/storageAccounts")
    for key in ("sku", "kind", "properties"):
        assert storage[key] == arm_storage[key]
