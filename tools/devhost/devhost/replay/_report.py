"""What a replay found: the report, the pytest error, and the signal that stops a replay."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ReplayReport:
    """The outcome of a replay.

    `divergence` names the episode (1-based, counting OrchestratorStarted episodes in the full format and
    replayed events in the HTTP format), the sequence number when there is one, what the recording did and
    what the current code did instead. `notes` flag fidelity limits of the recording (e.g. an HTTP history
    without outputs) that do not make the replay fail but may explain a divergence. `warnings` are differences
    only devhost's stricter check sees (`orchestration.Severity.WARNING`: a moved wait, another entity
    operation or target): Azure replays such code without complaint, so they do not make the replay fail.
    """

    ok: bool
    divergence: str | None
    episodes: int
    format: str
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for people: what the CLI prints."""
        if self.ok and self.warnings:
            return f"OK with {len(self.warnings)} warning(s): replayed {self.episodes} episodes; " + "; ".join(
                self.warnings
            )
        if self.ok:
            return f"OK: replayed {self.episodes} episodes"
        return f"DIVERGENCE: {self.divergence}"

    def __str__(self) -> str:
        return self.summary()


class NondeterminismError(AssertionError):
    """Raised by `assert_replays`; an AssertionError so pytest reports it as a plain test failure."""

    def __init__(self, report: ReplayReport) -> None:
        super().__init__("\n".join([str(report.divergence), *(f"note: {note}" for note in report.notes)]))
        self.report = report


class Diverged(Exception):
    """Stops a replay at the first divergence (also used by fork.py to refuse a cut that no longer replays)."""
