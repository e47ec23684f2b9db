"""The ARM template and az CLI script: same resources as the plan, no secrets inside."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.services.export import arm_template, azcli_script, bicep_text
from app.spec import load_spec

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"


def test_arm_template_for_a_build_has_every_resource_and_tags() -> None:
    spec = load_spec(EXAMPLES / "digits-classic-sandbox.json")
    template = arm_template(spec)
    types = [r["type"] for r in template["resources"]]
    assert types == [
        "Microsoft.Cache/redis",
        "Microsoft.Storage/storageAccounts",
        "Microsoft.Web/serverfarms",
        "Microsoft.ContainerRegistry/registries",
        "Microsoft.OperationalInsights/workspaces",
        "Microsoft.Insights/components",
        "Microsoft.Web/sites",
        "Microsoft.Authorization/roleAssignments",  # three data roles on the storage account
        "Microsoft.Authorization/roleAssignments",
        "Microsoft.Authorization/roleAssignments",
        "Microsoft.Authorization/roleAssignments",  # AcrPull on the registry
        "Microsoft.Authorization/roleAssignments",  # Monitoring Metrics Publisher
    ]
    tags = template["parameters"]["tags"]["defaultValue"]
    assert tags == {"project": "digits", "owner": "data-science", "created-by": "mlcache-deploy"}
    cache = template["resources"][0]["properties"]
    assert cache["sku"] == {"name": "Standard", "family": "C", "capacity": 1}
    assert cache["enableNonSslPort"] is False and cache["minimumTlsVersion"] == "1.2"
    site = template["resources"][6]
    assert site["identity"] == {"type": "SystemAssigned"}
    config = site["properties"]["siteConfig"]
    assert config["acrUseManagedIdentityCreds"] is True
    settings = {s["name"]: s["value"] for s in config["appSettings"]}
    assert settings["FUNCTIONS_EXTENSION_VERSION"] == "~4"
    # Keyless: the account by name, no password of the registry or the storage account.
    assert settings["AzureWebJobsStorage__accountName"] == "[parameters('storageAccountName')]"
    assert "AzureWebJobsStorage" not in settings
    assert not any(k.startswith("DOCKER_REGISTRY_SERVER_USER") or "PASSWORD" in k
                   for k in settings)
    assert "REDIS_CA_BUNDLE" not in settings
    fx = config["linuxFxVersion"]
    assert fx == "[format('DOCKER|{0}', parameters('image'))]"
    roles = [r for r in template["resources"] if r["type"].endswith("roleAssignments")]
    assert roles[-2]["scope"].startswith("[format('Microsoft.ContainerRegistry/registries/")
    assert roles[-2]["properties"]["roleDefinitionId"].endswith(
        "'7f951dda-4ed3-4680-a7ca-43fe172d538d')]")
    assert all(".identity.principalId]" in r["properties"]["principalId"] for r in roles)
    # The cache keeps its key where the spec says so (cache.auth, its own choice).
    assert (spec.cache.auth == "access-keys") == ("listKeys(" in json.dumps(template))


def test_arm_template_that_keeps_keys_reads_them_at_deployment_time() -> None:
    spec = load_spec(EXAMPLES / "digits-classic-sandbox.json")
    spec.function_app.auth = "keys"
    spec.cache.auth = "access-keys"
    template = arm_template(spec)
    assert not any(r["type"].endswith("roleAssignments") for r in template["resources"])
    site = next(r for r in template["resources"] if r["type"] == "Microsoft.Web/sites")
    config = site["properties"]["siteConfig"]
    assert config["acrUseManagedIdentityCreds"] is False
    settings = {s["name"]: s["value"] for s in config["appSettings"]}
    assert settings["REDIS_KEY"].startswith("[listKeys(")
    assert "listKeys(" in settings["AzureWebJobsStorage"]
    assert settings["DOCKER_REGISTRY_SERVER_PASSWORD"].startswith("[listCredentials(")
    registry = next(r for r in template["resources"] if "ContainerRegistry" in r["type"])
    assert registry["properties"]["adminUserEnabled"] is True


def test_arm_template_with_entra_grants_the_identity_the_cache() -> None:
    spec = load_spec(EXAMPLES / "digits-classic-sandbox.json")
    spec.cache.auth = "entra"
    template = arm_template(spec)
    cache = template["resources"][0]["properties"]
    assert cache["redisConfiguration"]["aad-enabled"] == "true"
    assert cache["disableAccessKeyAuthentication"] is True
    access = [r for r in template["resources"]
              if r["type"] == "Microsoft.Cache/redis/accessPolicyAssignments"]
    assert len(access) == 1
    assert access[0]["properties"]["accessPolicyName"] == "Data Contributor"
    site = next(r for r in template["resources"] if r["type"] == "Microsoft.Web/sites")
    settings = {s["name"]: s["value"] for s in site["properties"]["siteConfig"]["appSettings"]}
    assert "REDIS_KEY" not in settings and settings["REDIS_AUTH"] == "entra"
    assert "listKeys(" not in json.dumps(template)


def test_arm_template_for_premium_options() -> None:
    spec = load_spec(EXAMPLES / "digits-azure.toml")
    template = arm_template(spec)
    redis = template["resources"][0]
    assert redis["zones"] == ["1", "2"]
    assert redis["properties"]["shardCount"] == 2
    config = redis["properties"]["redisConfiguration"]
    assert config["rdb-backup-enabled"] == "true"
    assert "listKeys(" in config["rdb-storage-connection-string"]
    assert redis["dependsOn"] == [
        "[resourceId('Microsoft.Storage/storageAccounts', parameters('storageAccountName'))]"
    ]
    script = azcli_script(spec)
    assert script.index("az storage account create") < script.index("az redis create")
    assert '\\"rdb-storage-connection-string\\":\\"$storage_connection\\"' in script
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    assert template["parameters"]["image"]["defaultValue"].startswith(
        "digitsprodacr.azurecr.io/package@sha256:"
    )
    assert all(r["type"] != "Microsoft.ContainerRegistry/registries" for r in template["resources"])


def test_azcli_script_reads_keys_into_variables() -> None:
    spec = load_spec(EXAMPLES / "digits-classic-sandbox.json")
    script = azcli_script(spec)
    assert script.startswith("#!/usr/bin/env bash")
    for command in ("az group create", "az redis create", "az storage account create",
                    "az appservice plan create --resource-group rg-digits-demo "
                    "--name plan-digits-demo --location westeurope --is-linux --sku B1",
                    "az acr create", "az acr import", "az acr build", "az functionapp create",
                    "az functionapp config appsettings set"):
        assert command in script
    assert 'REDIS_KEY="$redis_key"' in script
    assert "created-by=mlcache-deploy" in script
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


@pytest.mark.parametrize("fmt", ["arm", "azcli"])
def test_export_command_writes_the_file(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"plan.{fmt}"
    proc = subprocess.run(
        [sys.executable, "-m", "app", "export", str(EXAMPLES / "digits-classic-sandbox.json"),
         "--format", fmt, "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.exists() and out.stat().st_size > 500
    if fmt == "arm":
        json.loads(out.read_text())


def test_export_of_a_spec_breaking_a_rule_is_refused_as_validate_refuses_it(
        tmp_path: Path) -> None:
    data = json.loads((EXAMPLES / "digits-classic-sandbox.json").read_text())
    data["cache"]["size"] = "P9"
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps(data))
    proc = subprocess.run(
        [sys.executable, "-m", "app", "export", str(spec)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1  # a rule problem, as in `validate`
    assert "cache.size" in proc.stderr and "Traceback" not in proc.stderr


def _resource(template: dict[str, object], rtype: str) -> dict[str, object]:
    resources = template["resources"]
    assert isinstance(resources, list)
    return next(r for r in resources if r["type"] == rtype)


def test_classic_portal_options_reach_the_template_and_the_script() -> None:
    spec = load_spec(EXAMPLES / "digits-azure.toml")  # Premium
    spec.cache.persistence, spec.cache.persistence_frequency = "rdb", "360"
    spec.cache.replicas, spec.cache.update_channel = 3, "Preview"
    props = _resource(arm_template(spec), "Microsoft.Cache/redis")["properties"]
    assert isinstance(props, dict)
    assert props["replicasPerMaster"] == 3 and props["updateChannel"] == "Preview"
    config = props["redisConfiguration"]
    assert config["rdb-backup-enabled"] == "true" and config["rdb-backup-frequency"] == "360"
    script = azcli_script(spec)
    assert "--replicas-per-master 3" in script and "--update-channel Preview" in script
    assert '\\"rdb-backup-frequency\\":\\"360\\"' in script


def test_classic_defaults_leave_the_new_properties_out() -> None:
    spec = load_spec(EXAMPLES / "digits-classic-sandbox.json")
    props = _resource(arm_template(spec), "Microsoft.Cache/redis")["properties"]
    assert isinstance(props, dict)
    assert "replicasPerMaster" not in props and "updateChannel" not in props
    assert "--replicas-per-master" not in azcli_script(spec)


def test_managed_portal_options_reach_the_database_and_the_script() -> None:
    spec = load_spec(EXAMPLES / "digits-sandbox.json")  # Azure Managed Redis
    spec.cache.persistence, spec.cache.persistence_frequency = "aof", "always"
    spec.cache.clustering_policy, spec.cache.eviction_policy = "EnterpriseCluster", "NoEviction"
    spec.cache.modules = ["RediSearch", "RedisBloom"]
    props = _resource(arm_template(spec), "Microsoft.Cache/redisEnterprise/databases")[
        "properties"]
    assert isinstance(props, dict)
    assert props["evictionPolicy"] == "NoEviction"
    assert props["clusteringPolicy"] == "EnterpriseCluster"
    assert props["modules"] == [{"name": "RediSearch"}, {"name": "RedisBloom"}]
    assert props["persistence"] == {"aofEnabled": True, "aofFrequency": "always"}
    script = azcli_script(spec)
    assert "--modules name=RediSearch --modules name=RedisBloom" in script
    assert "--eviction-policy NoEviction" in script
    assert "--persistence aof-enabled=true aof-frequency=always" in script


def test_managed_defaults_are_the_products_own() -> None:
    spec = load_spec(EXAMPLES / "digits-sandbox.json")
    props = _resource(arm_template(spec), "Microsoft.Cache/redisEnterprise/databases")[
        "properties"]
    assert isinstance(props, dict)
    assert (props["clusteringPolicy"], props["evictionPolicy"]) == (
        "EnterpriseCluster", "VolatileLRU")
    assert "modules" not in props


def _site_settings(template: dict[str, Any]) -> dict[str, str]:
    (site,) = [r for r in template["resources"] if r["type"] == "Microsoft.Web/sites"]
    return {s["name"]: s["value"] for s in site["properties"]["siteConfig"]["appSettings"]}


def test_export_wires_application_insights_keyless_with_the_publisher_role() -> None:
    spec = load_spec(EXAMPLES / "digits-classic-sandbox.json")
    template = arm_template(spec)
    by_type = {r["type"]: r for r in template["resources"]}
    component = by_type["Microsoft.Insights/components"]
    assert component["kind"] == "web"
    assert component["properties"]["IngestionMode"] == "LogAnalytics"
    assert component["properties"]["WorkspaceResourceId"] == (
        "[resourceId('Microsoft.OperationalInsights/workspaces', parameters('workspaceName'))]")
    assert template["parameters"]["workspaceName"]["defaultValue"] == \
        f"{spec.function_app.name}-logs"
    settings = _site_settings(template)
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == (
        "[reference(resourceId('Microsoft.Insights/components', parameters('insightsName')), "
        "'2020-02-02').ConnectionString]")
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "Authorization=AAD"
    publisher = [r for r in template["resources"]
                 if r["type"] == "Microsoft.Authorization/roleAssignments"
                 and "3913510d-42f4-4e42-8a64-420c390055eb" in r["properties"]["roleDefinitionId"]]
    assert [r["scope"] for r in publisher] == [
        "[format('Microsoft.Insights/components/{0}', parameters('insightsName'))]"]
    bicep = bicep_text(spec)
    assert "resource component 'Microsoft.Insights/components@2020-02-02'" in bicep
    assert "value: component.properties.ConnectionString" in bicep
    assert "scope: component" in bicep


def test_export_with_keys_has_the_connection_string_only_and_no_monitoring_nothing() -> None:
    spec = load_spec(EXAMPLES / "digits-classic-sandbox.json")
    spec.function_app.auth = "keys"
    settings = _site_settings(arm_template(spec))
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING" in settings
    assert "APPLICATIONINSIGHTS_AUTHENTICATION_STRING" not in settings
    spec.monitoring.enabled = False
    template = arm_template(spec)
    types = {r["type"] for r in template["resources"]}
    assert not types & {"Microsoft.Insights/components", "Microsoft.OperationalInsights/workspaces"}
    assert not any(k.startswith("APPLICATIONINSIGHTS") for k in _site_settings(template))
    script = azcli_script(spec)
    assert "az monitor app-insights" not in script and "log-analytics" not in script
    assert "--disable-app-insights true" in script
