"""main.bicep, its modules, main.parameters.json and azure.yaml fit together.

Without the Bicep CLI nothing else would catch a misspelled module parameter or
output before `azd provision`, so these are checked here.
"""

from __future__ import annotations

import re

from tests.infra.infra_files import INFRA, MAIN, REPO, bicep, expr_text, function_app, load_json, module_file

AZD_OUTPUTS = {
    "AZURE_RESOURCE_GROUP",
    "AZURE_FUNCTION_APP_NAME",
    "AZURE_FUNCTION_APP_URL",
    "SERVICE_BUS_NAMESPACE_FQDN",
    "AZURE_KEY_VAULT_NAME",
    "AZURE_KEY_VAULT_URL",
}


def test_subscription_scope_creates_the_resource_group() -> None:
    main = bicep(MAIN)
    assert main.target_scope == "subscription"
    (rg,) = main.resources_of_type("Microsoft.Resources/resourceGroups")
    assert expr_text(rg.body["name"]) == "'rg-${environmentName}'"
    for symbol, module in main.modules.items():
        assert expr_text(module.body["scope"]) == rg.symbol, f"module {symbol} must deploy into {rg.symbol}"


def test_parameters_file_supplies_the_azd_environment() -> None:
    main = bicep(MAIN)
    values = {name: entry["value"] for name, entry in load_json(INFRA / "main.parameters.json")["parameters"].items()}
    assert values["environmentName"] == "${AZURE_ENV_NAME}"
    assert values["location"] == "${AZURE_LOCATION}"
    assert values["principalId"] == "${AZURE_PRINCIPAL_ID}"
    assert values["principalType"] == "${AZURE_PRINCIPAL_TYPE=User}"  # CI sets ServicePrincipal
    assert set(values) <= set(main.params), "main.parameters.json sets parameters main.bicep does not declare"
    required = {name for name, param in main.params.items() if not param.has_default}
    assert required <= set(values), f"required parameters missing from main.parameters.json: {required - set(values)}"
    # The deployer principal is optional: without it no deployer role is assigned.
    assert main.params["principalId"].default == ""
    assert any("type: 'location'" in d for d in main.params["location"].decorators), "azd location prompt metadata"


def test_every_module_call_matches_the_module_parameters() -> None:
    main = bicep(MAIN)
    for symbol, module in main.modules.items():
        assert (INFRA / module.path).is_file(), module.path
        declared = module_file(symbol).params
        passed = set(module.body["params"])
        required = {name for name, param in declared.items() if not param.has_default}
        assert passed <= set(declared), f"{symbol}: unknown params {passed - set(declared)}"
        assert required <= passed, f"{symbol}: missing params {required - passed}"


def test_module_outputs_used_by_main_exist() -> None:
    main_text = (INFRA / MAIN).read_text(encoding="utf-8")
    used = set(re.findall(r"\b(\w+)\.outputs\.(\w+)", main_text))
    assert used, "main.bicep reads no module outputs?"
    for symbol, output in used:
        assert output in module_file(symbol).outputs, f"{symbol}.outputs.{output} is not declared"


def test_outputs_azd_and_the_readme_use() -> None:
    outputs = bicep(MAIN).outputs
    assert AZD_OUTPUTS <= set(outputs), f"missing outputs: {AZD_OUTPUTS - set(outputs)}"
    for name in AZD_OUTPUTS:
        assert outputs[name].type == "string"


def _simple_yaml(text: str) -> dict[str, object]:
    """Nested mappings of scalars: all azure.yaml uses. Anything else fails loudly."""
    root: dict[str, object] = {}
    stack: list[tuple[int, dict[str, object]]] = [(-1, root)]
    for raw in text.splitlines():
        line = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        match = re.fullmatch(r"([A-Za-z0-9_.-]+):(?: (.*))?", line.strip())
        assert match, f"unsupported azure.yaml line: {raw!r}"
        while indent <= stack[-1][0]:
            stack.pop()
        key, value = match.group(1), match.group(2)
        if value is None:
            child: dict[str, object] = {}
            stack[-1][1][key] = child
            stack.append((indent, child))
        else:
            stack[-1][1][key] = value.strip().strip("'\"")
    return root


def test_azure_yaml_deploys_the_repo_root_as_the_tagged_function_app() -> None:
    config = _simple_yaml((REPO / "azure.yaml").read_text(encoding="utf-8"))
    services = config["services"]
    assert isinstance(services, dict) and len(services) == 1
    ((service_name, service),) = services.items()
    assert service == {"project": ".", "language": "python", "host": "function"}
    assert config["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    # azd deploys a service to the resource tagged azd-service-name=<service>.
    assert f"'azd-service-name': '{service_name}'" in expr_text(function_app().body["tags"])
