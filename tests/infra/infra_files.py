"""Paths and parsed files shared by the infra tests (each file is parsed once)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from tests.infra.bicep_parser import BicepFile, Expr, Resource, parse_file

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
MAIN = "main.bicep"


@cache
def bicep(relative: str) -> BicepFile:
    """A Bicep file under infra/, e.g. bicep('modules/storage.bicep')."""
    return parse_file(INFRA / relative)


def all_bicep_paths() -> list[str]:
    return sorted(str(p.relative_to(INFRA)) for p in INFRA.rglob("*.bicep"))


def module_file(symbol: str) -> BicepFile:
    """The file behind `module <symbol> '...'` in main.bicep."""
    return bicep(bicep(MAIN).modules[symbol].path)


def module_params(symbol: str) -> dict[str, Any]:
    """What main.bicep passes to a module's params."""
    params = bicep(MAIN).modules[symbol].body["params"]
    assert isinstance(params, dict)
    return params


def one_resource(relative: str, resource_type: str, *, existing: bool = False) -> Resource:
    matches = [r for r in bicep(relative).resources_of_type(resource_type) if r.existing == existing]
    assert len(matches) == 1, f"{relative}: expected one {resource_type}, found {[r.symbol for r in matches]}"
    return matches[0]


def function_app() -> Resource:
    return one_resource("modules/functionapp.bicep", "Microsoft.Web/sites")


# main.bicep's durableBackend values; the default first.
DURABLE_BACKENDS = ("AzureStorage", "DurableTaskScheduler")
APP_SETTINGS_EXPR = "concat(commonAppSettings, durableBackendAppSettings[durableBackend])"


def function_app_settings(backend: str = DURABLE_BACKENDS[0]) -> dict[str, Any]:
    """App settings of the function app for one durableBackend: name -> value (literal or Expr).

    functionapp.bicep builds them as `concat(<common list>, <per-backend map>[durableBackend])`;
    this resolves exactly that shape and fails on any other, so a test never reads settings
    it did not understand.
    """
    assert backend in DURABLE_BACKENDS, backend
    functionapp = bicep("modules/functionapp.bicep")
    expression = function_app().body["properties"]["siteConfig"]["appSettings"]
    assert expr_text(expression) == APP_SETTINGS_EXPR, f"unexpected appSettings shape: {expression!r}"
    per_backend = functionapp.variables["durableBackendAppSettings"]
    assert set(per_backend) == set(DURABLE_BACKENDS), "durableBackendAppSettings must cover every backend"
    entries = [*functionapp.variables["commonAppSettings"], *per_backend[backend]]
    settings: dict[str, Any] = {}
    for entry in entries:
        name = entry["name"]
        assert isinstance(name, str), f"app setting names must be literals, got {name!r}"
        assert name not in settings, f"app setting {name} is set twice"
        settings[name] = entry["value"]
    return settings


def expr_text(value: Any) -> str:
    assert isinstance(value, Expr), f"expected an expression, got {value!r}"
    return value.text


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


# An app setting `AzureFunctionsJobHost__a__b` overrides host.json's `a.b` in Azure
# (https://learn.microsoft.com/azure/azure-functions/functions-host-json#override-hostjson-values).
HOST_OVERRIDE_PREFIX = "AzureFunctionsJobHost__"


def host_json() -> dict[str, Any]:
    data = load_json(REPO / "host.json")
    assert isinstance(data, dict)
    return data


def effective_host_setting(path: str, app_settings: dict[str, Any]) -> Any:
    """The host's value for `a.b.c`: an overriding app setting, else host.json, else None."""
    override = HOST_OVERRIDE_PREFIX + path.replace(".", "__")
    if override in app_settings:
        return app_settings[override]
    node: Any = host_json()
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node
