"""Fake target activities for orchestration tests: behaviour per target, and a call log.

They replace only the activities (the I/O edge); the orchestrators, sub-orchestrations,
entities and retries run for real on devhost's harness.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from devhost import DurableHarness


class FakeTargets:
    def __init__(self, behaviour: dict[str, str] | None = None, failures: int = 2) -> None:
        self.behaviour = behaviour or {}
        self.failures = failures
        self.calls: Counter[tuple[str, str]] = Counter()
        self.reports: list[dict[str, Any]] = []

    def install(self, harness: DurableHarness) -> None:
        harness.fake_activity("apply_update", self.apply_update)
        harness.fake_activity("check_health", self.check_health)
        harness.fake_activity("rollback", self.rollback)
        harness.fake_activity("store_report", self.store_report)

    def apply_update(self, request: dict[str, Any]) -> dict[str, Any]:
        target = request["target"]
        self.calls["apply", target] += 1
        kind = self.behaviour.get(target, "ok")
        if kind == "fail":
            raise RuntimeError(f"{target}: package incompatible")
        if kind == "transient" and self.calls["apply", target] <= self.failures:
            raise ConnectionError(f"{target} is restarting")
        return {"previousVersion": "1.0.0"}

    def check_health(self, request: dict[str, Any]) -> dict[str, Any]:
        target = request["target"]
        self.calls["health", target] += 1
        return {"healthy": self.behaviour.get(target) != "unhealthy"}

    def rollback(self, request: dict[str, Any]) -> dict[str, Any]:
        self.calls["rollback", request["target"]] += 1
        return {"version": request.get("previousVersion")}

    def store_report(self, report: dict[str, Any]) -> str:
        self.reports.append(report)
        return f"reports/{report['updateId']}.json"

    def count(self, op: str) -> int:
        return sum(n for (kind, _), n in self.calls.items() if kind == op)
