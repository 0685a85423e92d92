"""devhost: a local durable host that runs any Durable Functions Python app on the real SDK.

It plays the Functions host plus the Durable extension for local runs and tests; see README.md and
docs/architecture.md in this distribution (tools/devhost).

The names below are devhost's public face, grouped by what you use them for. Modules and names not
listed here are internal and may change without notice (the way `temporalio.worker` lists its public
names over private modules).

* Test harness: `DurableHarness` runs orchestrations on a memory hub with virtual time; its results are
  `OrchestrationStatus` (history events typed by `EventType`); its operations raise `ClientError` and
  its subclasses; `Versioning` holds host.json's defaultVersion and version-match settings. Its pytest
  plugin: `pytest_plugins = ["devhost.pytest_plugin"]` in your conftest.py
  gives the `durable`, `durable_app` and `azurite_connection_string` fixtures.
* Replay checker: `replay_history` / `assert_replays` replay a recorded history against the current code
  and report the first divergence (`ReplayReport`, `NondeterminismError`); `load_recording` reads a
  recording, `export_instance` makes a full one from a harness or store instance; `replay_deployed` checks
  every running instance of a deployed app (the pre-deploy check).
* Server: `serve` runs an app folder as `devhost start` does; `DevhostProcess` runs `devhost start` as a child
  process for end-to-end tests (free port, log file, wait until serving, stop or kill; `DevhostExited` when it
  ends before it serves).
* Azurite: `start_azurite` starts a private Azurite (`Azurite`; `AzuriteMissing` when it is not installed).
"""

from .loader import import_sdk

import_sdk()  # before anything imports the SDK from the caller's directory (its host.json check reads cwd)

from .azurite import Azurite, AzuriteMissing, start_azurite  # noqa: E402
from .cli import serve  # noqa: E402
from .client import ClientError, Conflict, Gone, NotFound  # noqa: E402
from .harness import DurableHarness, OrchestrationStatus  # noqa: E402
from .history import EventType, RuntimeStatus  # noqa: E402
from .history_view import export_instance  # noqa: E402
from .process import DevhostExited, DevhostProcess  # noqa: E402
from .replay import (  # noqa: E402
    NondeterminismError,
    Recording,
    ReplayReport,
    assert_replays,
    load_recording,
    replay_deployed,
    replay_history,
)
from .versioning import Versioning  # noqa: E402

__all__ = [
    # Test harness (pytest plugin: devhost.pytest_plugin)
    "DurableHarness",
    "OrchestrationStatus",
    "RuntimeStatus",
    "EventType",
    "Versioning",
    "ClientError",
    "NotFound",
    "Gone",
    "Conflict",
    # Replay checker
    "replay_history",
    "assert_replays",
    "replay_deployed",
    "ReplayReport",
    "NondeterminismError",
    "load_recording",
    "Recording",
    "export_instance",
    # Server
    "serve",
    "DevhostProcess",
    "DevhostExited",
    # Azurite
    "start_azurite",
    "Azurite",
    "AzuriteMissing",
]
