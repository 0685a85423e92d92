"""Rollout bookkeeping kept inside the orchestrator: per-target outcomes, counts,
timings, the custom status shown while running and the final report.

Pure and deterministic (times come from `context.current_utc_datetime`), so it is
safe to rebuild on every replay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Target states, in the order a target moves through them.
PENDING = "pending"
BUSY = "busy"  # reserved by another rollout: reported, not updated
UPDATED = "updated"
FAILED = "failed"
UNHEALTHY = "unhealthy"
ROLLED_BACK = "rolled_back"
ROLLBACK_FAILED = "rollback_failed"
SKIPPED = "skipped"  # never reached: the rollout stopped first

FAILURE_STATES = frozenset({FAILED, UNHEALTHY})


def first_line(error: Any) -> str:
    """Activity errors carry a traceback after the message; a report needs the message."""
    text = str(error).strip()
    return text.splitlines()[0][:500] if text else "unknown error"


@dataclass
class Progress:
    update_id: str
    package: str
    version: str
    targets: list[str]
    requested_at: datetime
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    waves: list[dict[str, Any]] = field(default_factory=list)
    approval: dict[str, Any] | None = None
    total_waves: int = 0

    def __post_init__(self) -> None:
        for target in self.targets:
            self.outcomes.setdefault(target, {"status": PENDING})

    def mark(self, target: str, status: str, **details: Any) -> None:
        self.outcomes[target] = {"status": status, **details}

    def record_wave(
        self, number: int, results: dict[str, dict[str, Any]], started: datetime, finished: datetime
    ) -> None:
        for target, result in results.items():
            self.mark(target, result["status"], wave=number, **{k: v for k, v in result.items() if k != "status"})
        self.waves.append(
            {
                "wave": number,
                "targets": len(results),
                "startedAt": started.isoformat(),
                "finishedAt": finished.isoformat(),
            }
        )

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes.values():
            counts[outcome["status"]] = counts.get(outcome["status"], 0) + 1
        return counts

    def failure_ratio(self) -> float:
        """Failed share of the targets an update was attempted on so far."""
        attempted = [o for o in self.outcomes.values() if o["status"] in FAILURE_STATES | {UPDATED}]
        if not attempted:
            return 0.0
        return sum(1 for o in attempted if o["status"] in FAILURE_STATES) / len(attempted)

    def targets_in(self, *states: str) -> list[str]:
        return [t for t in self.targets if self.outcomes[t]["status"] in states]

    def status(self, phase: str, **extra: Any) -> dict[str, Any]:
        """The custom status: small (counts, not per-target) so it stays cheap to poll."""
        return {"phase": phase, "wave": len(self.waves), "waves": self.total_waves, "counts": self.counts(), **extra}

    def report(self, outcome: str, finished_at: datetime, reason: str | None = None) -> dict[str, Any]:
        for target in self.targets_in(PENDING):
            self.mark(target, SKIPPED)
        return {
            "updateId": self.update_id,
            "package": self.package,
            "version": self.version,
            "outcome": outcome,
            "reason": reason,
            "counts": self.counts(),
            "approval": self.approval,
            "timings": {
                "requestedAt": self.requested_at.isoformat(),
                "finishedAt": finished_at.isoformat(),
                "waves": self.waves,
            },
            "targets": self.outcomes,
        }
