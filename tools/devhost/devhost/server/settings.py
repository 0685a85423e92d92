"""What a Functions host reads before it starts: local.settings.json and host.json.

Core Tools copies `local.settings.json` `Values` into the worker's environment without
overriding variables that are already set (so a shell export wins), and reads the
route prefix, task hub and concurrency limits from host.json. We do the same so an app
behaves identically under devhost and under `func start`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..dispatcher import DispatcherOptions
from ..versioning import Versioning
from .queues import QueueOptions, parse_timespan

DEFAULT_HUB = "TestHubName"
DEFAULT_ROUTE_PREFIX = "api"
_SETTING_REF = re.compile(r"%([^%]+)%")

# host.json log levels (Microsoft.Extensions.Logging names) to Python levels.
_LOG_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "information": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "none": logging.CRITICAL + 10,
}


class SettingsError(Exception):
    """A configuration file is present but unusable; the message says which and why."""


def _read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object file; a missing file is an empty object (both files are optional)."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise SettingsError(f"{path.name} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path.name} must contain a JSON object")
    return data


def load_local_settings(script_root: Path, environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Copy `Values` of local.settings.json into `environ` (default os.environ) without overriding.

    Returns the `Values` as read, so callers can tell which settings came from the file."""
    env = os.environ if environ is None else environ
    data = _read_json(script_root / "local.settings.json")
    raw = data.get("Values") or {}
    if not isinstance(raw, dict):
        raise SettingsError("local.settings.json: 'Values' must be an object")
    values = {str(k): "" if v is None else str(v) for k, v in raw.items()}
    for key, value in values.items():
        env.setdefault(key, value)
    return values


def resolve_setting_refs(text: str, settings: Mapping[str, str]) -> str:
    """Expand `%NAME%` references (as the host does for hubName and timer schedules)."""

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in settings:
            raise SettingsError(f"setting '{name}' referenced as %{name}% is not defined")
        return settings[name]

    return _SETTING_REF.sub(repl, text)


@dataclass
class HostConfig:
    """The parts of host.json devhost honours."""

    route_prefix: str = DEFAULT_ROUTE_PREFIX
    hub_name: str = DEFAULT_HUB
    dispatcher: DispatcherOptions = field(default_factory=DispatcherOptions)
    log_level: int = logging.INFO
    queues: QueueOptions = field(default_factory=QueueOptions)
    # extensions.durableTask.storageProvider.type ("" = the default, Azure Storage).
    storage_provider: str = ""
    versioning: Versioning = field(default_factory=Versioning)

    @classmethod
    def load(cls, script_root: Path, settings: Mapping[str, str] | None = None) -> HostConfig:
        """Read host.json in `script_root`; `settings` resolves %SETTING% references (default os.environ)."""
        env = os.environ if settings is None else settings
        data = _read_json(script_root / "host.json")
        extensions = data.get("extensions") or {}
        http = extensions.get("http") or {}
        durable = extensions.get("durableTask") or {}
        config = cls()
        prefix = http.get("routePrefix", DEFAULT_ROUTE_PREFIX)
        config.route_prefix = str(prefix if prefix is not None else "").strip("/")
        hub = durable.get("hubName")
        if hub:
            config.hub_name = resolve_setting_refs(str(hub), env)
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,44}", config.hub_name):
            raise SettingsError(
                f"host.json: task hub name {config.hub_name!r} must be 3-45 letters/digits and start with a letter"
            )
        options = DispatcherOptions()
        for key, attr in (
            ("maxConcurrentActivityFunctions", "max_concurrent_activities"),
            ("maxConcurrentOrchestratorFunctions", "max_concurrent_orchestrations"),
        ):
            if key in durable:
                value = durable[key]
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise SettingsError(f"host.json: extensions.durableTask.{key} must be a positive integer")
                setattr(options, attr, value)
        config.dispatcher = options
        try:
            config.versioning = Versioning.from_durable_task(durable)
        except ValueError as exc:
            raise SettingsError(f"host.json: {exc}") from None
        config.queues = _queue_options(extensions.get("queues") or {})
        provider = durable.get("storageProvider") or {}
        if isinstance(provider, dict) and provider.get("type"):
            config.storage_provider = str(provider["type"])
        levels = (data.get("logging") or {}).get("logLevel") or {}
        if isinstance(levels, dict):
            default = levels.get("default")
            # The level for user code's logging (the root logger); devhost's own execution
            # lines stay on, as Core Tools prints them whatever the app's level.
            if isinstance(default, str) and default.lower() in _LOG_LEVELS:
                config.log_level = _LOG_LEVELS[default.lower()]
        return config


# Storage providers the Durable extension supports besides Azure Storage, by host.json `type`.
_OTHER_PROVIDERS = {
    "azuremanaged": "the Durable Task Scheduler",
    "mssql": "the MSSQL provider",
    "netherite": "Netherite",
}


def storage_provider_notice(provider: str, store: str) -> str | None:
    """One line when host.json asks for a storage provider devhost does not emulate, naming what it uses."""
    if not provider or provider.lower() == "azurestorage":
        return None
    what = _OTHER_PROVIDERS.get(provider.lower(), "a storage provider")
    return (
        f"host.json asks for storageProvider type '{provider}' ({what}), which devhost does not emulate; "
        f"this run keeps the task hub in {store} instead (orchestration behaviour is the same; the "
        "provider's own limits, scaling and connection settings are not)"
    )


def _queue_options(raw: Mapping[str, Any]) -> QueueOptions:
    """host.json `extensions.queues`; unknown keys are ignored as the host ignores them."""
    options = QueueOptions()
    try:
        if "messageEncoding" in raw:
            encoding = str(raw["messageEncoding"]).lower()
            if encoding not in ("base64", "none"):
                raise SettingsError("host.json: extensions.queues.messageEncoding must be 'base64' or 'none'")
            options.message_encoding = encoding
        for key, attr in (("maxDequeueCount", "max_dequeue_count"), ("batchSize", "batch_size")):
            if key in raw:
                value = raw[key]
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise SettingsError(f"host.json: extensions.queues.{key} must be a positive integer")
                setattr(options, attr, min(value, 32) if key == "batchSize" else value)
        if "visibilityTimeout" in raw:
            options.visibility_timeout = parse_timespan(raw["visibilityTimeout"], "extensions.queues.visibilityTimeout")
        if "maxPollingInterval" in raw:
            options.max_polling_interval = max(
                0.1, parse_timespan(raw["maxPollingInterval"], "extensions.queues.maxPollingInterval")
            )
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    return options
