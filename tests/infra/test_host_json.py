"""host.json as the Functions host in Azure reads it (plus the app settings that override it).

An app setting `AzureFunctionsJobHost__a__b` overrides host.json's `a.b`
(https://learn.microsoft.com/azure/azure-functions/functions-host-json#override-hostjson-values),
so each check here looks at the effective value: host.json, then the Bicep app settings.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.infra.infra_files import DURABLE_BACKENDS, REPO, effective_host_setting, function_app_settings

effective = effective_host_setting


def timespan(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+):(\d{2}):(\d{2}(?:\.\d+)?)", text)
    assert match, f"{text!r} is not a [d.]hh:mm:ss TimeSpan"
    hours, minutes, seconds = match.groups()
    return timedelta(hours=int(hours), minutes=int(minutes), seconds=float(seconds))


def test_durable_queue_polling_suits_flex_consumption() -> None:
    # "Reduce the queue polling interval to 10 seconds or less" when Durable Functions run
    # on Flex Consumption; the default (30 s) delays every orchestration that wakes after
    # an idle period (durable-functions-azure-storage-provider#flex-consumption-plan).
    interval = effective("extensions.durableTask.storageProvider.maxQueuePollingInterval", function_app_settings())
    assert isinstance(interval, str), "set durableTask.storageProvider.maxQueuePollingInterval in host.json"
    assert timedelta(0) < timespan(interval) <= timedelta(seconds=10)


def test_timespan_reading() -> None:
    assert timespan("00:00:05") == timedelta(seconds=5)
    assert timespan("00:00:30") > timedelta(seconds=10)


@pytest.mark.parametrize("backend", DURABLE_BACKENDS)
def test_durable_distributed_tracing_v2_is_on(backend: str) -> None:
    # Durable Functions distributed tracing V2 correlates orchestrations, activities and
    # entities into one trace in Application Insights (durable-functions-diagnostics,
    # "Distributed tracing"), with either backend; V1 and "None" do not.
    app_settings = function_app_settings(backend)
    assert effective("extensions.durableTask.tracing.DistributedTracingEnabled", app_settings) is True
    assert effective("extensions.durableTask.tracing.Version", app_settings) == "V2"


@pytest.mark.parametrize("backend", DURABLE_BACKENDS)
def test_host_exports_opentelemetry_as_the_app_identity(backend: str) -> None:
    # opentelemetry-howto: host.json telemetryMode=OpenTelemetry plus the Application Insights
    # connection string. Application Insights has local auth disabled, so ingestion is
    # authenticated with Entra ID as the user-assigned identity.
    app_settings = function_app_settings(backend)
    assert effective("telemetryMode", app_settings) == "OpenTelemetry"
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING" in app_settings
    auth = app_settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
    assert getattr(auth, "text", None) == "'Authorization=AAD;ClientId=${identity.properties.clientId}'"


def test_python_worker_telemetry_and_requirements_agree() -> None:
    # PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true makes the worker import
    # azure-monitor-opentelemetry; without the distro installed it logs an import error on
    # every start. With the distro installed but the flag off, it is dead weight.
    enabled = function_app_settings()["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"]
    assert enabled in ("true", "false")
    requirements = (REPO / "requirements.txt").read_text(encoding="utf-8")
    pinned = bool(re.search(r"^azure-monitor-opentelemetry==\d", requirements, re.M))
    assert pinned == (enabled == "true"), "set the app setting to 'true' exactly when the distro is pinned"
