"""The update_rollout process on the real Durable replay (devhost harness, virtual time)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from devhost import RuntimeStatus

# Full replay (Azure's) and incremental replay (devhost.sdk_replay.Session) must behave alike.
pytestmark = pytest.mark.devhost_replay()


def request(targets, **extra):
    body = {
        "package": "agent",
        "version": "2.4.1",
        "targets": targets,
        "waveSize": 2,
        "maxFailureRatio": 0.25,
        "healthCheck": {"intervalSeconds": 30, "timeoutMinutes": 10},
    }
    body.update(extra)
    return body


def test_rolls_out_in_waves_and_reports(rollout):
    targets = [f"t{i}" for i in range(5)]
    status = rollout.run_to_completion("update_rollout", request(targets), "upd-1")
    assert status.runtime_status == RuntimeStatus.COMPLETED
    report = status.output
    assert report["outcome"] == "Succeeded"
    assert {t: o["status"] for t, o in report["targets"].items()} == {t: "updated" for t in targets}
    assert [w["wave"] for w in report["timings"]["waves"]] == [1, 2, 3]
    assert report["targets"]["t4"]["wave"] == 3
    assert status.custom_status["phase"] == "done"
    assert rollout.targets.reports == [report]
    # the locks were released
    assert rollout.entity_state("target_lock", "t0") is None


def test_approval_times_out_after_the_deadline(rollout):
    start = rollout.now
    status = rollout.run_to_completion(
        "update_rollout", request(["a"], approval={"required": True, "timeoutMinutes": 7 * 24 * 60}), "upd-exp"
    )
    assert status.output["outcome"] == "Expired"
    assert rollout.now - start >= timedelta(days=7)
    assert rollout.targets.count("apply") == 0


def test_approval_then_rollout(rollout):
    iid = rollout.start("update_rollout", request(["a", "b"], approval={"required": True}), "upd-ok")
    waiting = rollout.run(iid, auto_advance=False)
    assert waiting.custom_status["phase"] == "awaiting_approval"
    rollout.raise_event(iid, "Approval", {"approved": True, "by": "ana"})
    status = rollout.run(iid)
    assert status.output["outcome"] == "Succeeded"
    assert status.output["approval"]["by"] == "ana"


def test_approval_sent_by_the_python_client_arrives_as_json_text(rollout):
    """The SDK client double-encodes event data; the orchestrator must accept both forms."""
    iid = rollout.start("update_rollout", request(["a"], approval={"required": True}), "upd-txt")
    rollout.run(iid, auto_advance=False)
    rollout.raise_event(iid, "Approval", '{"approved": false, "comment": "not today"}')
    status = rollout.run(iid)
    assert status.output["outcome"] == "Rejected"
    assert status.output["reason"] == "not today"


def test_transient_failures_are_retried(rollout):
    rollout.targets.behaviour = {"t1": "transient"}
    status = rollout.run_to_completion("update_rollout", request(["t0", "t1"]), "upd-retry")
    assert status.output["outcome"] == "Succeeded"
    assert rollout.targets.calls["apply", "t1"] == 3  # two failures, then success


def test_too_many_failures_roll_back_everything_touched(rollout):
    rollout.targets.behaviour = {"t2": "fail", "t3": "fail"}
    targets = [f"t{i}" for i in range(6)]
    status = rollout.run_to_completion("update_rollout", request(targets), "upd-rb")
    report = status.output
    assert report["outcome"] == "RolledBack"
    assert "failure ratio" in report["reason"]
    states = {t: o["status"] for t, o in report["targets"].items()}
    # waves: [t0,t1] ok, [t2,t3] fail -> 50% > 25%: stop; t4,t5 never reached
    assert states == {
        "t0": "rolled_back",
        "t1": "rolled_back",
        "t2": "rolled_back",
        "t3": "rolled_back",
        "t4": "skipped",
        "t5": "skipped",
    }
    assert report["targets"]["t2"]["was"] == "failed"
    assert "incompatible" in report["targets"]["t2"]["error"]
    assert rollout.targets.calls["apply", "t2"] == 3  # retried before giving up
    assert rollout.targets.count("rollback") == 4


def test_unhealthy_targets_are_watched_until_the_deadline(rollout):
    rollout.targets.behaviour = {"sick": "unhealthy"}
    status = rollout.run_to_completion(
        "update_rollout",
        request(["ok1", "sick", "ok2", "ok3", "ok4", "ok5", "ok6", "ok7"], waveSize=8, maxFailureRatio=0.5),
        "upd-sick",
    )
    report = status.output
    assert report["outcome"] == "CompletedWithFailures"
    assert report["targets"]["sick"]["status"] == "unhealthy"
    # polled every 30 s for 10 minutes: the first check plus one per interval
    assert rollout.targets.calls["health", "sick"] == 21
    assert rollout.targets.calls["health", "ok1"] == 1


def test_a_target_in_use_by_another_rollout_is_reported_busy(rollout):
    rollout.targets.behaviour = {"shared": "unhealthy"}  # keeps rollout A in its health monitor
    a = rollout.start("update_rollout", request(["shared"], maxFailureRatio=1), "upd-a")
    rollout.run(a, auto_advance=False)
    assert rollout.status(a).custom_status["phase"] == "rolling_out"
    b = rollout.run_to_completion("update_rollout", request(["shared", "own"]), "upd-b")
    assert b.output["targets"]["shared"]["status"] == "busy"
    assert b.output["targets"]["own"]["status"] == "updated"
    assert b.output["outcome"] == "CompletedWithFailures"
    assert rollout.run(a).output["targets"]["shared"]["status"] == "unhealthy"


def test_cancel_while_awaiting_approval(rollout):
    iid = rollout.start("update_rollout", request(["a"], approval={"required": True}), "upd-c1")
    rollout.run(iid, auto_advance=False)
    rollout.raise_event(iid, "Cancel", {"requested": True})
    assert rollout.run(iid).output["outcome"] == "Cancelled"


def test_cancel_during_rollout_compensates(rollout):
    rollout.targets.behaviour = {"t1": "unhealthy"}  # wave 1 sits in its health monitor
    iid = rollout.start("update_rollout", request(["t0", "t1", "t2", "t3"], maxFailureRatio=1), "upd-c2")
    rollout.run(iid, auto_advance=False)
    rollout.raise_event(iid, "Cancel", {"requested": True})
    report = rollout.run(iid).output
    assert report["outcome"] == "Cancelled"
    assert {t: o["status"] for t, o in report["targets"].items()} == {
        "t0": "rolled_back",
        "t1": "rolled_back",
        "t2": "skipped",
        "t3": "skipped",
    }


def test_invalid_input_fails_the_orchestration_with_the_reasons(rollout):
    status = rollout.run_to_completion("update_rollout", {"package": "agent", "targets": []}, "upd-bad")
    assert status.runtime_status == RuntimeStatus.FAILED
    assert "'targets' is required" in status.output


@pytest.mark.slow  # 1,000 targets through the real SDK's replay: seconds of CPU
def test_a_thousand_targets(rollout):
    targets = [f"node-{i:04d}" for i in range(1000)]
    status = rollout.run_to_completion("update_rollout", request(targets, waveSize=100), "upd-big")
    assert status.output["outcome"] == "Succeeded"
    assert status.output["counts"] == {"updated": 1000}


def test_an_early_approval_of_a_long_approval_window_completes_at_once(rollout):
    # The SDK (azure-functions-durable 1.7) splits timers over 6 days into 3-day parts, and cancel() on such
    # a timer never reaches the part, so on Azure the instance would stay Running until the part fires
    # (devhost warns and holds it the same way). The approval window is therefore raced in parts of at
    # most 6 days, each cancelled when the decision arrives.
    start = rollout.now
    iid = rollout.start(
        "update_rollout", request(["a"], approval={"required": True, "timeoutMinutes": 20 * 24 * 60}), "upd-long"
    )
    assert rollout.run(iid, auto_advance=False).custom_status["phase"] == "awaiting_approval"
    rollout.raise_event(iid, "Approval", {"approved": True, "by": "ana"})
    status = rollout.run(iid)
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output["outcome"] == "Succeeded"
    assert rollout.now - start < timedelta(days=1)


def test_a_long_approval_window_expires_after_its_full_length(rollout):
    start = rollout.now
    status = rollout.run_to_completion(
        "update_rollout", request(["a"], approval={"required": True, "timeoutMinutes": 20 * 24 * 60}), "upd-exp20"
    )
    assert status.output["outcome"] == "Expired"
    assert timedelta(days=20) <= rollout.now - start < timedelta(days=21)


def test_an_approval_in_a_later_part_of_the_window_is_taken(rollout):
    start = rollout.now
    iid = rollout.start(
        "update_rollout", request(["a"], approval={"required": True, "timeoutMinutes": 20 * 24 * 60}), "upd-late"
    )
    rollout.run(iid, auto_advance=False)
    rollout.advance(timedelta(days=7))  # the first 6-day part has fired; the second is running
    assert rollout.status(iid).custom_status["phase"] == "awaiting_approval"
    rollout.raise_event(iid, "Approval", {"approved": True, "by": "ana"})
    status = rollout.run(iid)
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output["outcome"] == "Succeeded"
    assert rollout.now - start < timedelta(days=8)
