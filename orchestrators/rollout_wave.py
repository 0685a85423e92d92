"""One wave: update its targets in parallel (with retries), then watch their health.

A sub-orchestration per wave keeps each history short (the parent replays one event
per wave, not one per target) and shows the wave as its own instance in monitoring.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from update_service.progress import FAILED, UNHEALTHY, UPDATED, first_line

from .retry_policies import TARGET_CALL
from .settle import settle

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context", orchestration="rollout_wave")
def rollout_wave(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    wave: dict[str, Any] = context.get_input()
    update = {"updateId": wave["updateId"], "package": wave["package"], "version": wave["version"]}
    applied = yield from settle(
        context,
        {
            target: context.call_activity_with_retry("apply_update", TARGET_CALL, {**update, "target": target})
            for target in wave["targets"]
        },
    )
    results: dict[str, dict[str, Any]] = {}
    for target, (kind, value) in applied.items():
        if kind == "ok":
            results[target] = {"status": UPDATED, "previousVersion": (value or {}).get("previousVersion")}
        else:
            results[target] = {"status": FAILED, "error": first_line(value)}

    # Health monitor: poll with durable timers until every updated target is healthy
    # or the deadline passes. Timers cost nothing while waiting (no process is held).
    check = wave.get("healthCheck") or {}
    interval = timedelta(seconds=int(check.get("intervalSeconds", 30)))
    deadline = context.current_utc_datetime + timedelta(minutes=int(check.get("timeoutMinutes", 10)))
    watching = [t for t, r in results.items() if r["status"] == UPDATED]
    while watching:
        health = yield from settle(context, {t: context.call_activity("check_health", {"target": t}) for t in watching})
        watching = [t for t in watching if not (health[t][0] == "ok" and health[t][1].get("healthy"))]
        if not watching or context.current_utc_datetime >= deadline:
            break
        yield context.create_timer(min(context.current_utc_datetime + interval, deadline))
    for target in watching:
        results[target] = {
            **results[target],
            "status": UNHEALTHY,
            "error": f"not healthy within {check.get('timeoutMinutes', 10)} minutes",
        }
    return results
