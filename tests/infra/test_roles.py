"""Role assignments: the right built-in roles, on the right scopes, for the right principals."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from tests.infra.bicep_parser import Resource
from tests.infra.infra_files import DURABLE_BACKENDS, bicep, expr_text, module_params

ROLES_FILE = "modules/roles.bicep"

# Built-in role definition ids, as listed in "Azure built-in roles"
# (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles). They are
# the same in every tenant; a typo here would assign nothing (or something else).
BUILT_IN_ROLES = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Azure Service Bus Data Receiver": "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0",
    "Azure Service Bus Data Sender": "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Key Vault Secrets Officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    # https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/integration#durable-task-data-contributor
    "Durable Task Data Contributor": "0ad04412-c4d5-4796-b79c-f76d14c8d402",
}

STORAGE = "Microsoft.Storage/storageAccounts"
QUEUE = "Microsoft.ServiceBus/namespaces/queues"
VAULT = "Microsoft.KeyVault/vaults"
INSIGHTS = "Microsoft.Insights/components"
TASK_HUB = "Microsoft.DurableTask/schedulers/taskHubs"

# What the app identity needs: Durable task hub + host storage, its Service Bus trigger,
# the API key secret, and Entra-authenticated telemetry. Nothing else.
APP_ROLES = {
    ("Storage Blob Data Owner", STORAGE),
    ("Storage Queue Data Contributor", STORAGE),
    ("Storage Table Data Contributor", STORAGE),
    ("Azure Service Bus Data Receiver", QUEUE),
    ("Key Vault Secrets User", VAULT),
    ("Monitoring Metrics Publisher", INSIGHTS),
}
# What the README asks the deployer to do: inspect storage, send test messages (and peek
# them), and set the API key secret.
DEPLOYER_ROLES = {
    ("Storage Blob Data Owner", STORAGE),
    ("Storage Queue Data Contributor", STORAGE),
    ("Storage Table Data Contributor", STORAGE),
    ("Azure Service Bus Data Sender", QUEUE),
    ("Azure Service Bus Data Receiver", QUEUE),
    ("Key Vault Secrets Officer", VAULT),
}
# With durableBackend DurableTaskScheduler, both also get the data role on the task hub
# (the app runs its orchestrations there; the deployer uses the scheduler's dashboard).
SCHEDULER_ROLES = {("Durable Task Data Contributor", TASK_HUB)}


@dataclass(frozen=True)
class Assignment:
    symbol: str
    role: str
    scope_type: str
    principal: str
    principal_type: str
    condition: str | None


def _role_name(guid: str) -> str:
    names = [name for name, known in BUILT_IN_ROLES.items() if known == guid]
    assert names, f"{guid} is not one of the verified built-in roles"
    return names[0]


def _assignment(resource: Resource) -> Assignment:
    roles = bicep(ROLES_FILE)
    role_ids = roles.variables["roleIds"]
    props = resource.body["properties"]
    definition = re.fullmatch(
        r"subscriptionResourceId\('Microsoft\.Authorization/roleDefinitions', roleIds\.(\w+)\)",
        expr_text(props["roleDefinitionId"]),
    )
    assert definition, f"{resource.symbol}: roleDefinitionId must be a built-in role from roleIds"
    role_key = definition.group(1)
    scope = expr_text(resource.body["scope"])
    principal = expr_text(props["principalId"])
    # Deterministic and unique per (scope, principal, role): re-deploys update in place.
    assert expr_text(resource.body["name"]) == f"guid({scope}.id, {principal}, roleIds.{role_key})", resource.symbol
    principal_type = props["principalType"]
    return Assignment(
        resource.symbol,
        _role_name(role_ids[role_key]),
        roles.resources[scope].type,
        principal,
        principal_type if isinstance(principal_type, str) else expr_text(principal_type),
        resource.condition,
    )


def _assignments() -> list[Assignment]:
    resources = bicep(ROLES_FILE).resources_of_type("Microsoft.Authorization/roleAssignments")
    return [_assignment(r) for r in resources]


def test_role_ids_are_the_verified_built_in_ids() -> None:
    role_ids = bicep(ROLES_FILE).variables["roleIds"]
    assert set(role_ids.values()) <= set(BUILT_IN_ROLES.values()), "unverified role id in roles.bicep"
    for guid in role_ids.values():
        assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", guid)


def _active(condition: str | None, *, scheduler: bool, deployer: bool) -> bool:
    """Evaluate an assignment's `if (...)`: the only conditions roles.bicep may use."""
    values = {"hasDeployer": deployer, "useScheduler": scheduler}
    if condition is None:
        return True
    terms = [term.strip() for term in condition.split("&&")]
    assert all(term in values for term in terms), f"unknown condition {condition!r}"
    return all(values[term] for term in terms)


def _roles(principal: str, *, backend: str, deployer: bool = True) -> set[tuple[str, str]]:
    scheduler = backend == "DurableTaskScheduler"
    active = [a for a in _assignments() if _active(a.condition, scheduler=scheduler, deployer=deployer)]
    return {(a.role, a.scope_type) for a in active if a.principal == principal}


def test_the_scheduler_roles_follow_the_durable_backend_end_to_end() -> None:
    roles = bicep(ROLES_FILE)
    assert expr_text(roles.variables["useScheduler"]) == "!empty(durableTaskSchedulerName)"
    assert roles.params["durableTaskSchedulerName"].default == ""
    # main.bicep passes the scheduler's name only when it deploys the scheduler.
    passed = module_params("roles")
    assert expr_text(passed["durableTaskSchedulerName"]) == "useDurableTaskScheduler ? durableTask.outputs.name : ''"
    assert expr_text(passed["durableTaskHubName"]) == ("useDurableTaskScheduler ? durableTask.outputs.taskHubName : ''")
    task_hub = roles.resources["taskHub"]
    assert task_hub.existing and expr_text(task_hub.body["parent"]) == "scheduler"
    assert expr_text(task_hub.body["name"]) == "durableTaskHubName"


@pytest.mark.parametrize("backend", DURABLE_BACKENDS)
def test_app_identity_roles(backend: str) -> None:
    expected = APP_ROLES | (SCHEDULER_ROLES if backend == "DurableTaskScheduler" else set())
    assert _roles("appPrincipalId", backend=backend) == expected
    app = [a for a in _assignments() if a.principal == "appPrincipalId"]
    assert len(app) == len(APP_ROLES | SCHEDULER_ROLES)
    assert all(a.principal_type == "ServicePrincipal" for a in app)
    # The app identity is the user-assigned identity the function app runs as.
    assert expr_text(module_params("roles")["appPrincipalId"]) == "identity.outputs.principalId"


@pytest.mark.parametrize("backend", DURABLE_BACKENDS)
def test_deployer_roles_only_when_a_principal_is_given(backend: str) -> None:
    expected = DEPLOYER_ROLES | (SCHEDULER_ROLES if backend == "DurableTaskScheduler" else set())
    assert _roles("deployerPrincipalId", backend=backend) == expected
    assert _roles("deployerPrincipalId", backend=backend, deployer=False) == set()
    deployer = [a for a in _assignments() if a.principal == "deployerPrincipalId"]
    assert len(deployer) == len(DEPLOYER_ROLES | SCHEDULER_ROLES)
    assert all(a.principal_type == "deployerPrincipalType" for a in deployer)
    roles = bicep(ROLES_FILE)
    assert expr_text(roles.variables["hasDeployer"]) == "!empty(deployerPrincipalId)"
    assert roles.params["deployerPrincipalId"].default == ""
    assert expr_text(module_params("roles")["deployerPrincipalId"]) == "principalId"


def test_every_assignment_is_for_the_app_or_the_deployer() -> None:
    assert {a.principal for a in _assignments()} == {"appPrincipalId", "deployerPrincipalId"}
