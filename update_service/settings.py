"""Every app setting the service reads, in one place.

The names here are the contract with `infra/` (the Bicep app settings) and with
`local.settings.json`; a test checks both directions, so a renamed setting cannot
silently go missing in Azure.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

# Storage for the task hub, report blobs and the Functions runtime itself.
STORAGE_CONNECTION = "AzureWebJobsStorage"
# Service Bus connection *prefix* used by the queue trigger (identity-based in Azure:
# ServiceBusConnection__fullyQualifiedNamespace).
SERVICE_BUS_CONNECTION = "ServiceBusConnection"
UPDATE_REQUESTS_QUEUE = "update-requests"

TASK_HUB_NAME = "TASK_HUB_NAME"
KEY_VAULT_URL = "KEY_VAULT_URL"
TARGET_API_KEY_SECRET_NAME = "TARGET_API_KEY_SECRET_NAME"
TARGETS_BASE_URL = "TARGETS_BASE_URL"
TARGET_SIMULATOR_ENABLED = "TARGET_SIMULATOR_ENABLED"
REPORTS_CONTAINER = "REPORTS_CONTAINER"
RETENTION_DAYS = "RETENTION_DAYS"
RETENTION_SCHEDULE = "RETENTION_SCHEDULE"
TARGET_RETRY_INTERVAL_SECONDS = "TARGET_RETRY_INTERVAL_SECONDS"

# Settings the app reads directly (connections are read by trigger bindings).
APP_SETTING_NAMES: tuple[str, ...] = (
    TASK_HUB_NAME,
    KEY_VAULT_URL,
    TARGET_API_KEY_SECRET_NAME,
    TARGETS_BASE_URL,
    TARGET_SIMULATOR_ENABLED,
    REPORTS_CONTAINER,
    RETENTION_DAYS,
    RETENTION_SCHEDULE,
    TARGET_RETRY_INTERVAL_SECONDS,
)
CONNECTION_NAMES: tuple[str, ...] = (STORAGE_CONNECTION, SERVICE_BUS_CONNECTION)


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    key_vault_url: str | None
    target_api_key_secret_name: str
    targets_base_url: str
    simulator_enabled: bool
    reports_container: str
    retention_days: int
    # Wait before retrying a failed target call (then the same again): the end-to-end tests shorten it.
    target_retry_interval_seconds: float

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            key_vault_url=env.get(KEY_VAULT_URL) or None,
            target_api_key_secret_name=env.get(TARGET_API_KEY_SECRET_NAME) or "target-api-key",
            targets_base_url=(env.get(TARGETS_BASE_URL) or "http://127.0.0.1:7071/api/simulator").rstrip("/"),
            simulator_enabled=_flag(env.get(TARGET_SIMULATOR_ENABLED)),
            reports_container=env.get(REPORTS_CONTAINER) or "reports",
            retention_days=int(env.get(RETENTION_DAYS) or "30"),
            target_retry_interval_seconds=float(env.get(TARGET_RETRY_INTERVAL_SECONDS) or "5"),
        )
