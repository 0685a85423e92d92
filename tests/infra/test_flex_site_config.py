"""A Flex Consumption app sets no siteConfig property that Flex rejects or ignores.

Flex Consumption moved the runtime and scale settings into `functionAppConfig`, and ARM
now fails the whole deployment (error 51021, "The following site configuration property
(Site.SiteConfig.X) for Flex Consumption sites is invalid") when a template still sends
them. Enforcement is per region stamp, so a template that deploys in one region can fail
in the next: nothing short of this check catches it before `azd up`.

The rule is an allow-list: a Flex app's siteConfig may only hold the properties Flex
documents or Microsoft's Flex samples set. The deny-lists below say *why* a common
App Service property is not allowed, with the public report of the failure.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.bicep_parser import BicepFile, Resource, parse
from tests.infra.infra_files import all_bicep_paths, bicep, function_app

# Properties ARM rejects on Flex Consumption sites with error 51021, as quoted verbatim in:
#   Azure/azure-cli#31414 and microsoft/azure-pipelines-tasks#21032 (ftpsState,
#   use32BitWorkerProcess, preWarmedInstanceCount, netFrameworkVersion,
#   functionsRuntimeScaleMonitoringEnabled); Azure/terraform-azurerm-avm-res-web-site#283
#   (linuxFxVersion); Azure/azure-functions-host#10643 (functionAppScaleLimit).
# The AVM terraform web-site module strips these for FC1 apps (its PR #345).
FLEX_REJECTED = {
    "ftpsState",
    "use32BitWorkerProcess",
    "preWarmedInstanceCount",
    "netFrameworkVersion",
    "functionsRuntimeScaleMonitoringEnabled",
    "linuxFxVersion",
    "functionAppScaleLimit",
}

# Properties that do not apply to Flex Consumption: the platform ignores them today (or
# rejects them on newer stamps), so setting one is at best dead configuration.
FLEX_IGNORED = {
    "alwaysOn",  # always-ready instances replace it (functionAppConfig.scaleAndConcurrency)
    "http20Enabled",  # App Service front-end option; no Flex reference sets it, the Flex portal hides it
    "http20ProxyFlag",
    "numberOfWorkers",  # scale is functionAppConfig.scaleAndConcurrency.maximumInstanceCount
    "minimumElasticInstanceCount",  # Elastic Premium only
    "elasticWebAppScaleLimit",
    "healthCheckPath",  # no App Service health check on Flex
    "windowsFxVersion",  # Flex is Linux only
    "pythonVersion",  # runtime is functionAppConfig.runtime
    "nodeVersion",
    "javaVersion",
    "powerShellVersion",
    "phpVersion",
    "remoteDebuggingEnabled",
    "remoteDebuggingVersion",
    "webSocketsEnabled",
    "managedPipelineMode",
}

# What a Flex app's siteConfig may hold: settings, TLS floor, CORS and access restrictions.
# Add a property here only with a Flex document or sample that sets it.
FLEX_SITE_CONFIG_ALLOWED = {
    "appSettings",
    "minTlsVersion",
    "scmMinTlsVersion",
    "cors",
    "ipSecurityRestrictions",
    "ipSecurityRestrictionsDefaultAction",
    "scmIpSecurityRestrictions",
    "scmIpSecurityRestrictionsDefaultAction",
    "scmIpSecurityRestrictionsUseMain",
}


def _is_flex_app(file: BicepFile, site: Resource) -> bool:
    """functionAppConfig exists only on Flex apps; or the app's plan is an FC1 plan in the same file."""
    props = site.body.get("properties", {})
    if "functionAppConfig" in props:
        return True
    farm = props.get("serverFarmId")
    for plan in file.resources_of_type("Microsoft.Web/serverfarms"):
        if getattr(farm, "text", None) == f"{plan.symbol}.id":
            sku: Any = plan.body.get("sku", {})
            return isinstance(sku, dict) and sku.get("tier") == "FlexConsumption"
    return False


def flex_site_config_violations(file: BicepFile) -> list[str]:
    """`<symbol>.siteConfig.<property>: <why>` for every property a Flex app must not set."""
    found = []
    for site in file.resources_of_type("Microsoft.Web/sites"):
        if site.existing or not _is_flex_app(file, site):
            continue
        site_config = site.body.get("properties", {}).get("siteConfig", {})
        for prop in site_config:
            if prop in FLEX_REJECTED:
                found.append(f"{site.symbol}.siteConfig.{prop}: rejected by ARM (51021) on Flex Consumption")
            elif prop in FLEX_IGNORED:
                found.append(f"{site.symbol}.siteConfig.{prop}: does not apply to Flex Consumption")
            elif prop not in FLEX_SITE_CONFIG_ALLOWED:
                found.append(f"{site.symbol}.siteConfig.{prop}: not known to be valid on Flex Consumption")
    return found


def test_the_lists_do_not_contradict_each_other() -> None:
    assert FLEX_SITE_CONFIG_ALLOWED.isdisjoint(FLEX_REJECTED | FLEX_IGNORED)


def test_the_template_has_a_flex_app_to_check() -> None:
    functionapp = bicep("modules/functionapp.bicep")
    assert _is_flex_app(functionapp, function_app())


def test_no_flex_app_sets_a_rejected_or_ignored_site_config_property() -> None:
    violations = [f"{path}: {v}" for path in all_bicep_paths() for v in flex_site_config_violations(bicep(path))]
    assert not violations, "\n".join(violations)


_FLEX_APP = """
resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
}
resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: 'app'
  properties: {
    serverFarmId: plan.id
    siteConfig: {
      minTlsVersion: '1.2'
      %s
    }
  }
}
"""


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("ftpsState: 'Disabled'", "rejected by ARM"),
        ("linuxFxVersion: 'Python|3.11'", "rejected by ARM"),
        ("http20Enabled: true", "does not apply"),
        ("alwaysOn: false", "does not apply"),
        ("someNewProperty: true", "not known to be valid"),
    ],
)
def test_the_check_catches_each_kind_of_property(line: str, reason: str) -> None:
    (violation,) = flex_site_config_violations(parse(_FLEX_APP % line))
    assert reason in violation


def test_the_check_leaves_non_flex_apps_alone() -> None:
    premium = _FLEX_APP.replace("'FC1'", "'EP1'").replace("'FlexConsumption'", "'ElasticPremium'")
    assert flex_site_config_violations(parse(premium % "ftpsState: 'Disabled'")) == []
    assert flex_site_config_violations(parse(_FLEX_APP % "")) == []
