"""Cross-check tests/infra/bicep_parser.py against pycep, the Bicep parser checkov uses.

Run by scripts/infra-checks.sh with .venv-infra's Python (pycep is not in the app's
.venv, where the pytest suite runs). Both parsers must agree on every declaration in
infra/ — names, resource types, API versions, `existing`, conditions, module paths and
the top-level properties of each body — so the pytest assertions rest on a reading of
the files that an independent parser confirms.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pycep import BicepParser  # type: ignore[import-not-found]

from tests.infra.bicep_parser import BicepFile, parse_file

INFRA = Path(__file__).resolve().parents[2] / "infra"


def _ours(parsed: BicepFile) -> dict[str, Any]:
    return {
        "scope": parsed.target_scope,
        "params": sorted(parsed.params),
        "variables": sorted(parsed.variables),
        "outputs": sorted(parsed.outputs),
        "resources": {
            symbol: (r.type, r.api_version, r.existing, r.condition is not None, sorted(r.body))
            for symbol, r in parsed.resources.items()
        },
        "modules": {symbol: (m.path, m.condition is not None, sorted(m.body)) for symbol, m in parsed.modules.items()},
    }


def _body(config: dict[str, Any]) -> tuple[bool, list[str]]:
    """pycep nests a conditional body as {condition, config}."""
    if "condition" in config and "config" in config and set(config) == {"condition", "config"}:
        return True, sorted(config["config"])
    return False, sorted(config)


def _theirs(template: dict[str, Any]) -> dict[str, Any]:
    resources = {}
    for symbol, r in template.get("resources", {}).items():
        conditional, keys = _body(r["config"])
        resources[symbol] = (r["type"], r["api_version"], r["existing"], conditional, keys)
    modules = {}
    for symbol, m in template.get("modules", {}).items():
        conditional, keys = _body(m["config"])
        modules[symbol] = (m["detail"]["path"], conditional, keys)
    return {
        "scope": template.get("globals", {}).get("scope", {}).get("value", "resourceGroup"),
        "params": sorted(template.get("parameters", {})),
        "variables": sorted(template.get("variables", {})),
        "outputs": sorted(template.get("outputs", {})),
        "resources": resources,
        "modules": modules,
    }


def main() -> int:
    pycep = BicepParser()
    failures = 0
    files = sorted(INFRA.rglob("*.bicep"))
    for path in files:
        ours = _ours(parse_file(path))
        theirs = _theirs(pycep.parse(text=path.read_text(encoding="utf-8")))
        for key in ours:
            if ours[key] != theirs[key]:
                failures += 1
                print(f"{path.relative_to(INFRA)}: {key} differ\n  ours:  {ours[key]}\n  pycep: {theirs[key]}")
    print(f"bicep_parser vs pycep: {len(files)} files, {failures} differences")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
