"""`update_rollout`: roll a package version out to many targets, safely.

validate -> (approval, raced against a timeout) -> reserve targets (entity locks)
-> waves (sub-orchestrations: fan-out with retries + health monitor)
-> roll back what was updated when too many fail or a Cancel arrives
-> release locks -> store the report -> return it.
Progress is published in the custom status at every phase.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from update_service.progress import (
    BUSY,
    FAILURE_STATES,
    ROLLBACK_FAILED,
    ROLLED_BACK,
    UPDATED,
    Progress,
    first_line,
)
from update_service.requests import parse_update_request

from .retry_policies import TARGET_CALL
from .settle import settle

bp = df.Blueprint()

APPROVAL_EVENT = "Approval"
CANCEL_EVENT = "Cancel"
LOCK_ENTITY = "target_lock"
# The longest timer the SDK creates as one timer (the host's maximumShortTimerDuration), so cancel() works.
MAX_CANCELLABLE_TIMER = timedelta(days=6)


def decision_of(payload: Any) -> dict[str, Any]:
    """Approval payloads arrive as a dict (HTTP API) or as JSON text (the Python durable
    client encodes event data twice: Azure/azure-functions-durable-python#295)."""
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            payload = {"approved": payload.lower() in {"true", "yes", "approved"}}
    if isinstance(payload, bool):
        payload = {"approved": payload}
    if not isinstance(payload, dict):
        payload = {}
    return {"approved": bool(payload.get("approved")), "by": payload.get("by"), "comment": payload.get("comment")}


@bp.orchestration_trigger(context_name="context", orchestration="update_rollout")
def update_rollout(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    request = parse_update_request(context.get_input())  # deterministic: same input, same result
    update_id = context.instance_id
    progress = Progress(
        update_id, request.package, request.version, list(request.targets), requested_at=context.current_utc_datetime
    )
    cancel = context.wait_for_external_event(CANCEL_EVENT)

    def finish(outcome: str, reason: str | None = None):  # type: ignore[no-untyped-def]
        report = progress.report(outcome, context.current_utc_datetime, reason)
        context.set_custom_status(progress.status("storing_report", outcome=outcome))
        yield context.call_activity("store_report", report)
        context.set_custom_status(progress.status("done", outcome=outcome))
        return report

    # --- human approval, raced against a durable timer (and a Cancel) -------------
    if request.approval.required:
        deadline = context.current_utc_datetime + timedelta(minutes=request.approval.timeout_minutes)
        context.set_custom_status(progress.status("awaiting_approval", approvalDeadline=deadline.isoformat()))
        approval = context.wait_for_external_event(APPROVAL_EVENT)
        # The window is raced in parts of at most 6 days: the SDK splits a longer timer into 3-day parts
        # and its cancel() never reaches them, so the instance would stay Running until one fired.
        while True:
            part_end = min(deadline, context.current_utc_datetime + MAX_CANCELLABLE_TIMER)
            timeout = context.create_timer(part_end)
            winner = yield context.task_any([approval, timeout, cancel])
            if winner is not timeout:
                timeout.cancel()
                break
            if context.current_utc_datetime >= deadline:
                break
        if winner is timeout:
            return (yield from finish("Expired", f"no approval within {request.approval.timeout_minutes} minutes"))
        if winner is cancel:
            return (yield from finish("Cancelled", "cancelled while awaiting approval"))
        decision = decision_of(approval.result)
        progress.approval = {**decision, "at": context.current_utc_datetime.isoformat()}
        if not decision["approved"]:
            return (yield from finish("Rejected", decision.get("comment") or "approval rejected"))

    # --- reserve each target so two rollouts never update one target at once --------
    context.set_custom_status(progress.status("reserving"))
    grants = yield context.task_all(
        [context.call_entity(df.EntityId(LOCK_ENTITY, target), "acquire", update_id) for target in request.targets]
    )
    reserved = [t for t, granted in zip(request.targets, grants) if granted]
    for target in request.targets:
        if target not in reserved:
            progress.mark(target, BUSY, error="reserved by another rollout")

    # --- waves ---------------------------------------------------------------------
    waves = [reserved[i : i + request.wave_size] for i in range(0, len(reserved), request.wave_size)]
    progress.total_waves = len(waves)
    stop_reason: str | None = None
    cancelled = False
    for number, targets in enumerate(waves, start=1):
        context.set_custom_status(progress.status("rolling_out", currentWave=number))
        started = context.current_utc_datetime
        wave = context.call_sub_orchestrator(
            "rollout_wave",
            {
                "updateId": update_id,
                "wave": number,
                "package": request.package,
                "version": request.version,
                "targets": targets,
                "healthCheck": {
                    "intervalSeconds": request.health_check.interval_seconds,
                    "timeoutMinutes": request.health_check.timeout_minutes,
                },
            },
            instance_id=f"{update_id}:wave:{number}",
        )
        winner = yield context.task_any([wave, cancel])
        if winner is cancel:
            cancelled = True  # cooperative: let the running wave finish, then compensate
            yield wave
        progress.record_wave(number, wave.result, started, context.current_utc_datetime)
        if cancelled:
            stop_reason = "cancelled"
            break
        if progress.failure_ratio() > request.max_failure_ratio:
            stop_reason = (
                f"failure ratio {progress.failure_ratio():.0%} exceeded the maximum {request.max_failure_ratio:.0%}"
            )
            break

    # --- compensation: roll back every target this rollout touched -------------------
    if stop_reason is not None:
        context.set_custom_status(progress.status("rolling_back", reason=stop_reason))
        touched = progress.targets_in(UPDATED, *FAILURE_STATES)
        rolled = yield from settle(
            context,
            {
                target: context.call_activity_with_retry(
                    "rollback",
                    TARGET_CALL,
                    {
                        "updateId": update_id,
                        "target": target,
                        "package": request.package,
                        "previousVersion": progress.outcomes[target].get("previousVersion"),
                    },
                )
                for target in touched
            },
        )
        for target, (kind, value) in rolled.items():
            before = progress.outcomes[target]
            if kind == "ok":
                progress.mark(
                    target, ROLLED_BACK, wave=before.get("wave"), was=before["status"], error=before.get("error")
                )
            else:
                progress.mark(target, ROLLBACK_FAILED, wave=before.get("wave"), error=first_line(value))

    # --- release the reservations (fire-and-forget signals) ---------------------------
    for target in reserved:
        context.signal_entity(df.EntityId(LOCK_ENTITY, target), "release", update_id)

    if cancelled:
        return (yield from finish("Cancelled", "cancelled during the rollout; updated targets rolled back"))
    if stop_reason is not None:
        return (yield from finish("RolledBack", stop_reason))
    failures = progress.targets_in(*FAILURE_STATES, BUSY)
    return (yield from finish("CompletedWithFailures" if failures else "Succeeded"))
