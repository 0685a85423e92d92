"""Orchestration versioning as the Durable extension does it: host.json's defaultVersion and the
version-match settings, applied where DTFx applies them.

* Every new orchestration gets a version for life: `?version=` on the HTTP start (the SDK client's
  `start_new(..., version=)` sends it), else host.json `extensions.durableTask.defaultVersion`
  (extension HttpApiHandler.cs, HandleStartOrchestratorRequestAsync:
  `queryNameValuePairs[VersionParameter] ?? this.config.Options.DefaultVersion`); a sub-orchestration
  gets the `version` its `call_sub_orchestrator` passed, else the defaultVersion (SDK 1.7.0's
  `call_sub_orchestrator` docstring; samples-v2/orchestration_versioning); continue-as-new keeps it
  (DTFx TaskOrchestrationDispatcher.cs 1075: `NewVersion ?? runtimeState.Version`). The SDK reads it
  back as `context.version` from ExecutionStarted's `Version`.
* Before running a work item, the version is matched against the defaultVersion
  (DTFx TaskOrchestrationDispatcher.cs 400-433, with the extension's settings, DurableTaskExtension.cs
  InitializeTaskHubWorker): `versionMatchStrategy` None (run everything), Strict (equal versions only),
  CurrentOrOlder (the default: not newer than defaultVersion, compared by `compare_versions`). On a
  mismatch `versionFailureStrategy` Reject (the default) leaves the work for a worker that matches (the
  instance does not move), Fail fails the orchestration ("VersionMismatch").

Pure: no I/O. An unversioned instance's Version is null (histories devhost wrote before versioning have "");
"" and None match alike, as they do in DTFx's CompareVersions.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

from .history import EventType

MISMATCH_MESSAGE = "Orchestration version did not comply with Worker Versioning"
_VERSION_PART = re.compile(r"\s*\+?\d+\s*")


class MatchStrategy(enum.StrEnum):
    """host.json `versionMatchStrategy` (DTFx VersioningSettings.cs 26-42)."""

    NONE = "None"
    STRICT = "Strict"
    CURRENT_OR_OLDER = "CurrentOrOlder"


class FailureStrategy(enum.StrEnum):
    """host.json `versionFailureStrategy` (DTFx VersioningSettings.cs 47-58)."""

    REJECT = "Reject"
    FAIL = "Fail"


@dataclass(frozen=True)
class Versioning:
    """The versioning settings of one host. The defaults are the extension's (DurableTaskOptions.cs:
    DefaultVersion unset, VersionMatchStrategy CurrentOrOlder, VersionFailureStrategy Reject)."""

    default_version: str | None = None
    match: MatchStrategy = MatchStrategy.CURRENT_OR_OLDER
    failure: FailureStrategy = FailureStrategy.REJECT

    @classmethod
    def from_durable_task(cls, section: dict[str, Any]) -> Versioning:
        """Read host.json's `extensions.durableTask` section. Raises ValueError with the setting's path.

        Enum names are matched case-insensitively, as .NET's configuration binder does."""
        default = section.get("defaultVersion")
        if default is not None and not isinstance(default, (str, int, float)):
            raise ValueError("extensions.durableTask.defaultVersion must be a string")
        return cls(
            default_version=None if default is None else str(default),
            match=_enum(
                MatchStrategy,
                section.get("versionMatchStrategy"),
                "versionMatchStrategy",
                MatchStrategy.CURRENT_OR_OLDER,
            ),
            failure=_enum(
                FailureStrategy, section.get("versionFailureStrategy"), "versionFailureStrategy", FailureStrategy.REJECT
            ),
        )

    def version_for_new(self, requested: str | None) -> str | None:
        """The version a new orchestration gets: the requested one, else the defaultVersion (None: unversioned,
        as DTFx's ExecutionStartedEvent.Version stays null; the SDK then gives `context.version` None)."""
        return requested if requested is not None else self.default_version

    def mismatch(self, instance_version: str | None) -> FailureStrategy | None:
        """What to do with a work item of an instance of this version: None to run it, else the strategy."""
        mine = self.default_version or ""
        theirs = instance_version or ""
        if self.match == MatchStrategy.STRICT:
            failed = mine != theirs
        elif self.match == MatchStrategy.CURRENT_OR_OLDER:
            failed = compare_versions(theirs, mine) > 0
        else:
            failed = False
        return self.failure if failed else None


def compare_versions(source: str | None, other: str | None) -> int:
    """DTFx VersioningSettings.CompareVersions (VersioningSettings.cs 89-117): <0, 0 or >0.

    Empty (or blank) versions are equal to each other and older than any defined one; two versions that
    parse as .NET `System.Version` (2-4 dot-separated non-negative integers; a missing build or
    revision counts as -1) compare numerically; anything else compares as text, ignoring case."""
    source_blank = not (source or "").strip()
    other_blank = not (other or "").strip()
    if source_blank and other_blank:
        return 0
    if source_blank:
        return -1
    if other_blank:
        return 1
    assert source is not None and other is not None
    a, b = _system_version(source), _system_version(other)
    if a is not None and b is not None:
        return (a > b) - (a < b)
    x, y = source.upper(), other.upper()
    return (x > y) - (x < y)


def _system_version(text: str) -> tuple[int, int, int, int] | None:
    parts = text.split(".")
    if not 2 <= len(parts) <= 4 or not all(_VERSION_PART.fullmatch(p) for p in parts):
        return None
    numbers = [int(p) for p in parts]
    if any(n > 2**31 - 1 for n in numbers):
        return None
    padded = numbers + [-1] * (4 - len(numbers))
    return padded[0], padded[1], padded[2], padded[3]


def _enum(kind: type[Any], value: Any, name: str, default: Any) -> Any:
    if value is None:
        return default
    for member in kind:
        if isinstance(value, str) and value.strip().lower() == member.value.lower():
            return member
    choices = ", ".join(m.value for m in kind)
    raise ValueError(f"extensions.durableTask.{name} must be one of {choices}, not {value!r}")


def version_of(history: list[dict[str, Any]]) -> str | None:
    """The version an execution runs under: its ExecutionStarted's `Version` (None or "": unversioned)."""
    for ev in history:
        if ev.get("EventType") == EventType.EXECUTION_STARTED:
            version = ev.get("Version")
            return None if version is None else str(version)
    return None
