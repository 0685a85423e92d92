"""The rollout request: parsing and validation shared by the HTTP API, the queue starter
and the orchestrator. Every problem is reported at once, so a client fixes its request
in one round trip.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

MAX_TARGETS = 1000
MAX_APPROVAL_TIMEOUT_MINUTES = 60 * 24 * 30
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
VERSION_PATTERN = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$")


class InvalidRequest(ValueError):
    """The request cannot be accepted; `problems` lists each reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Approval:
    required: bool = False
    timeout_minutes: int = 24 * 60


@dataclass(frozen=True)
class HealthCheck:
    interval_seconds: int = 30
    timeout_minutes: int = 10


@dataclass(frozen=True)
class UpdateRequest:
    update_id: str | None
    package: str
    version: str
    targets: tuple[str, ...]
    wave_size: int
    max_failure_ratio: float
    approval: Approval = Approval()
    health_check: HealthCheck = HealthCheck()

    def to_json(self) -> dict[str, Any]:
        """The orchestrator's input: plain JSON with the API's camelCase names."""
        return {
            "updateId": self.update_id,
            "package": self.package,
            "version": self.version,
            "targets": list(self.targets),
            "waveSize": self.wave_size,
            "maxFailureRatio": self.max_failure_ratio,
            "approval": {"required": self.approval.required, "timeoutMinutes": self.approval.timeout_minutes},
            "healthCheck": {
                "intervalSeconds": self.health_check.interval_seconds,
                "timeoutMinutes": self.health_check.timeout_minutes,
            },
        }

    def with_id(self, update_id: str) -> UpdateRequest:
        return UpdateRequest(
            **{**asdict(self), "update_id": update_id, "approval": self.approval, "health_check": self.health_check}
        )


def _int(value: Any, name: str, low: int, high: int, problems: list[str]) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"'{name}' must be an integer between {low} and {high}.")
        return None
    if not low <= value <= high:
        problems.append(f"'{name}' must be between {low} and {high}, got {value}.")
        return None
    return value


def parse_update_request(body: Any) -> UpdateRequest:
    """Validate a decoded JSON body; raise InvalidRequest listing every problem."""
    if not isinstance(body, dict):
        raise InvalidRequest(["The request body must be a JSON object."])
    problems: list[str] = []
    known = {"updateId", "package", "version", "targets", "waveSize", "maxFailureRatio", "approval", "healthCheck"}
    for key in sorted(set(body) - known):
        problems.append(f"Unknown field '{key}'.")

    update_id = body.get("updateId")
    if update_id is not None and (not isinstance(update_id, str) or not ID_PATTERN.match(update_id)):
        problems.append(
            "'updateId' must be 1-64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit."
        )
    package = body.get("package")
    if not isinstance(package, str) or not ID_PATTERN.match(package):
        problems.append("'package' is required: 1-64 characters of letters, digits, '.', '_' or '-'.")
    version = body.get("version")
    if not isinstance(version, str) or not VERSION_PATTERN.match(version):
        problems.append("'version' is required: a version string such as '2.4.1'.")

    targets = body.get("targets")
    target_ids: list[str] = []
    if not isinstance(targets, list) or not targets:
        problems.append(f"'targets' is required: a list of 1 to {MAX_TARGETS} target ids.")
    elif len(targets) > MAX_TARGETS:
        problems.append(f"'targets' has {len(targets)} entries; at most {MAX_TARGETS} are allowed.")
    else:
        seen: set[str] = set()
        for i, target in enumerate(targets):
            if not isinstance(target, str) or not ID_PATTERN.match(target):
                problems.append(f"targets[{i}] must be a target id (letters, digits, '.', '_', '-'), got {target!r}.")
            elif target in seen:
                problems.append(f"targets[{i}] '{target}' is a duplicate.")
            else:
                seen.add(target)
                target_ids.append(target)

    wave_size = _int(body.get("waveSize", 10), "waveSize", 1, MAX_TARGETS, problems)
    ratio = body.get("maxFailureRatio", 0.2)
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
        problems.append("'maxFailureRatio' must be a number between 0 and 1.")
        ratio = None

    approval = Approval()
    raw_approval = body.get("approval")
    if raw_approval is not None:
        if not isinstance(raw_approval, dict):
            problems.append('\'approval\' must be an object like {"required": true, "timeoutMinutes": 60}.')
        else:
            required = raw_approval.get("required", True)
            if not isinstance(required, bool):
                problems.append("'approval.required' must be true or false.")
                required = True
            timeout = _int(
                raw_approval.get("timeoutMinutes", 24 * 60),
                "approval.timeoutMinutes",
                1,
                MAX_APPROVAL_TIMEOUT_MINUTES,
                problems,
            )
            approval = Approval(required, timeout or 1)

    health = HealthCheck()
    raw_health = body.get("healthCheck")
    if raw_health is not None:
        if not isinstance(raw_health, dict):
            problems.append('\'healthCheck\' must be an object like {"intervalSeconds": 30, "timeoutMinutes": 10}.')
        else:
            interval = _int(raw_health.get("intervalSeconds", 30), "healthCheck.intervalSeconds", 1, 3600, problems)
            timeout = _int(raw_health.get("timeoutMinutes", 10), "healthCheck.timeoutMinutes", 0, 24 * 60, problems)
            health = HealthCheck(interval or 1, timeout if timeout is not None else 0)

    if problems:
        raise InvalidRequest(problems)
    assert wave_size is not None and ratio is not None and isinstance(package, str) and isinstance(version, str)
    return UpdateRequest(
        update_id=update_id,
        package=package,
        version=version,
        targets=tuple(target_ids),
        wave_size=wave_size,
        max_failure_ratio=float(ratio),
        approval=approval,
        health_check=health,
    )
