"""Rewind: a failed instance runs again from its failure once the cause is fixed."""

from __future__ import annotations

from collections import Counter

import azure.durable_functions as df
import pytest

from devhost import Conflict, DurableHarness, EventType, Gone, RuntimeStatus

# A rewind replays in full in incremental mode too (its history is not an extension of the session's).
pytestmark = pytest.mark.devhost_replay()

app = df.DFApp()
BROKEN: set[str] = set()
CALLS: Counter[str] = Counter()


@app.orchestration_trigger(context_name="ctx")
def pipeline(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    key = ctx.get_input()
    first = yield ctx.call_activity("work", f"{key}-first")
    second = yield ctx.call_activity("work", f"{key}-second")
    child = yield ctx.call_sub_orchestrator("child_pipeline", key, f"{key}-child")
    return [first, second, child]


@app.orchestration_trigger(context_name="ctx")
def child_pipeline(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    key = ctx.get_input()
    return (yield ctx.call_activity("work", f"{key}-in-child"))


@app.activity_trigger(input_name="name")
def work(name: str) -> str:
    CALLS[name] += 1
    if name in BROKEN:
        raise RuntimeError(f"{name} is broken")
    return name.upper()


@pytest.fixture
def harness():
    BROKEN.clear()
    CALLS.clear()
    with DurableHarness(app) as h:
        yield h


def test_a_failed_activity_runs_again_and_the_instance_completes(harness: DurableHarness) -> None:
    BROKEN.add("a-second")
    failed = harness.run_to_completion("pipeline", "a", "a")
    assert failed.runtime_status == RuntimeStatus.FAILED
    assert "a-second is broken" in failed.output

    BROKEN.clear()
    harness.rewind("a", "fixed")
    done = harness.run("a")
    assert done.runtime_status == RuntimeStatus.COMPLETED
    assert done.output == ["A-FIRST", "A-SECOND", "A-IN-CHILD"]
    assert CALLS["a-first"] == 1  # what succeeded is not run again
    assert CALLS["a-second"] == 2
    rewound = [ev["Reason"] for ev in done.history if ev["EventType"] == EventType.GENERIC]
    assert rewound == ["Rewound: TaskScheduled", "Rewound: TaskFailed", "Rewound: ExecutionCompleted"]
    # the task is scheduled again under its old sequence number
    assert [ev["EventId"] for ev in done.history if ev["EventType"] == EventType.TASK_SCHEDULED] == [0, 1]


def test_a_failed_child_is_rewound_with_its_parent(harness: DurableHarness) -> None:
    BROKEN.add("b-in-child")
    failed = harness.run_to_completion("pipeline", "b", "b")
    assert failed.runtime_status == RuntimeStatus.FAILED
    assert harness.status("b-child").runtime_status == RuntimeStatus.FAILED

    BROKEN.clear()
    harness.rewind("b")
    assert harness.run("b").output == ["B-FIRST", "B-SECOND", "B-IN-CHILD"]
    assert harness.status("b-child").runtime_status == RuntimeStatus.COMPLETED
    assert CALLS["b-in-child"] == 2


def test_only_failed_instances_can_be_rewound(harness: DurableHarness) -> None:
    harness.run_to_completion("pipeline", "c", "c")
    with pytest.raises(Gone):
        harness.rewind("c")
    BROKEN.add("d-first")
    harness.start("pipeline", "d", "d")
    with pytest.raises(Conflict):
        harness.rewind("d")  # still pending


def test_still_broken_fails_again(harness: DurableHarness) -> None:
    BROKEN.add("e-first")
    harness.run_to_completion("pipeline", "e", "e")
    harness.rewind("e")
    again = harness.run("e")
    assert again.runtime_status == RuntimeStatus.FAILED
    assert CALLS["e-first"] == 2
