"""Durable entities: calls and signals from orchestrators, client signals, state."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from devhost import DurableHarness, RuntimeStatus

from .sdk_support import events, new_harness

# Full replay (Azure's) and incremental replay (devhost.sdk_replay.Session) must behave alike.
pytestmark = pytest.mark.devhost_replay()


@pytest.fixture
def harness() -> Iterator[DurableHarness]:
    yield from new_harness()


def test_orchestrator_calls_and_signals_an_entity(harness: DurableHarness) -> None:
    status = harness.run_to_completion("entity_user", "orders")

    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == {
        "after_add": 15,  # the signal (add 5) was applied before the call (add 10)
        "read": 15,
        "failure": "counter cannot divide by zero",
        "reset": 0,
        "final": 2,
    }
    assert harness.entity_state("Counter", "orders") == 2

    sent = events(status, "EventSent")
    assert [ev["EventId"] for ev in sent] == list(range(7))
    assert {ev["InstanceId"] for ev in sent} == {"@counter@orders"}
    requests = [json.loads(ev["Input"]) for ev in sent]
    assert [r["op"] for r in requests] == ["add", "add", "get", "fail", "reset", "add", "get"]
    assert [bool(r.get("signal")) for r in requests] == [True, False, False, False, False, True, False]
    # Every call got exactly one response, named by its request id; signals got none.
    responses = [ev["Name"] for ev in events(status, "EventRaised")]
    assert responses == [r["id"] for r in requests if not r.get("signal")]


def test_entity_operation_error_fails_an_orchestrator_that_does_not_catch_it(harness: DurableHarness) -> None:
    status = harness.run_to_completion("entity_failure_unhandled", "k")

    assert status.runtime_status == RuntimeStatus.FAILED
    assert status.output == "Orchestrator function 'entity_failure_unhandled' failed: counter cannot explode"


def test_client_signals_keep_entity_state_across_operations(harness: DurableHarness) -> None:
    assert harness.entity_state("Counter", "tally") is None  # never created

    harness.signal_entity("Counter", "tally", "add", 3)
    harness.signal_entity("Counter", "tally", "add", 4)
    harness.run()
    assert harness.entity_state("Counter", "tally") == 7

    harness.signal_entity("counter", "tally", "add", 10)  # entity names are case-insensitive
    harness.run()
    assert harness.entity_state("Counter", "tally") == 17

    harness.signal_entity("Counter", "tally", "reset")
    harness.run()
    assert harness.entity_state("Counter", "tally") == 0
    assert harness.entity_state("Counter", "other") is None  # keys are separate entities


def test_orchestrator_sees_state_set_by_client_signals(harness: DurableHarness) -> None:
    harness.signal_entity("Counter", "shared", "add", 100)
    harness.run()
    status = harness.run_to_completion("entity_user", "shared")

    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output["after_add"] == 115
    assert status.output["final"] == 2


def test_failed_operation_does_not_break_the_entity(harness: DurableHarness) -> None:
    harness.signal_entity("Counter", "sturdy", "add", 1)
    harness.signal_entity("Counter", "sturdy", "fail", "on purpose")
    harness.signal_entity("Counter", "sturdy", "add", 1)
    harness.run()
    assert harness.entity_state("Counter", "sturdy") == 2


def test_a_failed_operation_is_logged_as_the_extension_logs_it(
    harness: DurableHarness, caplog: pytest.LogCaptureFixture
) -> None:
    # TaskEntityShim.cs 651 -> EndToEndTraceHelper.cs 529-576 (OperationFailed), SanitizeString 61-66: the
    # error (the SDK's JSON text of str(e)) and the input are logged as their lengths; devhost adds the message.
    with caplog.at_level(logging.ERROR, logger="devhost"):
        harness.signal_entity("Counter", "loud", "fail", "on purpose")
        harness.run()
    (line,) = [r.getMessage() for r in caplog.records if "(Entity)" in r.getMessage()]
    error = json.dumps("counter cannot on purpose")
    assert line.startswith("@counter@loud: Function 'counter (Entity)' failed 'fail' operation ")
    assert f"ms with exception (Redacted {len(error)} characters). Input: (Redacted " in line
    assert line.endswith("devhost: the operation (signal) raised: counter cannot on purpose")


def test_parallel_entity_calls_in_task_all(harness: DurableHarness) -> None:
    status = harness.run_to_completion("entity_fan_out", ["p", "q", "r"])

    assert status.runtime_status == RuntimeStatus.COMPLETED
    results = status.output
    assert results[1:3] == [1, 1]  # q and r were each added to once
    # Three adds to p, applied one at a time in some order: each saw a different total.
    assert sorted([results[0], *results[3:]]) == [1, 2, 3]
    assert harness.entity_state("Counter", "p") == 3
    assert [ev["EventId"] for ev in events(status, "EventSent")] == list(range(5))
