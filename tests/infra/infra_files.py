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


def function_app_settings() -> dict[str, Any]:
    """App settings of the function app: name -> value (literal or Expr)."""
    entries = function_app().body["properties"]["siteConfig"]["appSettings"]
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
