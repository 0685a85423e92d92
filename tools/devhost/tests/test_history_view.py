"""Shapes of the HTTP API's simplified history (docs/durable-protocol.md §6.3) and of devhost's full export.

Tests internals (not devhost's public API): imports `devhost.history`, `devhost.history_view`,
`devhost.model`.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devhost import history as h
from devhost.history import RuntimeStatus
from devhost.history_view import EXPORT_KEYS, export_instance, parse_json_token, to_http_history
from devhost.model import Instance

T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)


def ts(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def at(seconds: float) -> str:
    return h.format_ts(ts(seconds))


def sample_history() -> list[dict[str, Any]]:
    """Every kind of event the view treats specially, in a DTFx-shaped three-and-a-bit episode history."""
    parent = {
        "OrchestrationInstance": {"InstanceId": "p", "ExecutionId": "pe"},
        "Name": "root",
        "Version": "",
        "TaskScheduleId": 3,
    }
    return [
        h.orchestrator_started(ts(1)),
        h.execution_started(
            ts(0),
            instance_id="i1",
            execution_id="e1",
            name="hello",
            input_text='"{\\"city\\": \\"Tokyo\\"}"',
            parent=parent,
            tags={"team": "a"},
        ),
        h.task_scheduled(ts(1), 0, "say", '"Tokyo"'),
        h.orchestrator_completed(ts(1)),
        h.orchestrator_started(ts(2)),
        h.task_completed(ts(2), 0, '"Hello Tokyo"'),
        h.sub_orchestration_created(ts(2), 1, "child", "i1:1", "null"),
        h.task_scheduled(ts(2), 2, "never_done", '"x"'),
        h.timer_created(ts(2), 3, ts(60)),
        h.task_scheduled(ts(2), 4, "fails", "null"),
        h.orchestrator_completed(ts(2)),
        h.orchestrator_started(ts(61)),
        h.sub_orchestration_completed(ts(3), 1, '{"ok": 1}'),
        h.task_failed(ts(4), 4, "Activity function 'fails' failed: ValueError: boom", "Traceback ..."),
        h.timer_fired(ts(60), 3, ts(60)),
        h.event_raised(ts(5), "Go", "true"),
        h.event_sent(ts(61), 5, "@counter@k1", "op", '{"op": "add", "id": "r1", "signal": true}'),
        h.execution_terminated(ts(61), "enough"),
        h.execution_completed(ts(61), 6, RuntimeStatus.TERMINATED, "enough"),
        h.orchestrator_completed(ts(61)),
    ]


def test_http_history_without_input_or_output() -> None:
    events = sample_history()
    original = copy.deepcopy(events)
    view = to_http_history(events, show_input=False, show_output=False)
    assert events == original, "the stored events must not be modified"
    assert view == [
        {
            "EventType": "ExecutionStarted",
            "Timestamp": at(0),
            "Correlation": None,
            "ParentTraceContext": None,
            "ScheduledStartTime": None,
            "Generation": 0,
            "GenerateNewTrace": False,
            "FunctionName": "hello",
        },
        {"EventType": "TaskCompleted", "Timestamp": at(2), "ScheduledTime": at(1), "FunctionName": "say"},
        {"EventType": "TaskScheduled", "Timestamp": at(2), "Name": "never_done", "Tags": None},
        {"EventType": "TimerCreated", "Timestamp": at(2), "FireAt": at(60)},
        {
            "EventType": "SubOrchestrationInstanceCompleted",
            "Timestamp": at(3),
            "ScheduledTime": at(2),
            "FunctionName": "child",
        },
        {
            "EventType": "TaskFailed",
            "Timestamp": at(4),
            "Reason": "Activity function 'fails' failed: ValueError: boom",
            "Details": "Traceback ...",
            "FailureDetails": None,
            "ScheduledTime": at(2),
            "FunctionName": "fails",
        },
        {"EventType": "TimerFired", "Timestamp": at(60), "FireAt": at(60)},
        {"EventType": "EventRaised", "Timestamp": at(5), "Name": "Go", "ParentTraceContext": None},
        {"EventType": "EventSent", "Timestamp": at(61), "InstanceId": "@counter@k1", "Name": "op"},
        {"EventType": "ExecutionTerminated", "Timestamp": at(61)},
        {
            "EventType": "ExecutionCompleted",
            "Timestamp": at(61),
            "OrchestrationStatus": "Terminated",
            "FailureDetails": None,
        },
    ]


def test_http_history_with_input_and_output() -> None:
    view = to_http_history(sample_history(), show_input=True, show_output=True)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for item in view:
        by_type.setdefault(item["EventType"], []).append(item)

    started = by_type["ExecutionStarted"][0]
    assert started["Input"] == '"{\\"city\\": \\"Tokyo\\"}"'  # stays JSON text, as stored
    removed = {"Name", "OrchestrationInstance", "ParentInstance", "Version", "Tags", "EventId", "IsPlayed"}
    assert not removed & set(started)

    completed = by_type["TaskCompleted"][0]
    assert completed == {
        "EventType": "TaskCompleted",
        "Timestamp": at(2),
        "Result": "Hello Tokyo",
        "ScheduledTime": at(1),
        "FunctionName": "say",
        "Input": '"Tokyo"',
    }
    sub = by_type["SubOrchestrationInstanceCompleted"][0]
    assert sub["Result"] == {"ok": 1} and sub["Input"] == "null" and sub["FunctionName"] == "child"
    assert "TaskScheduledId" not in sub
    failed = by_type["TaskFailed"][0]
    assert "Result" not in failed and failed["Input"] == "null"
    assert by_type["TaskScheduled"] == [
        {"EventType": "TaskScheduled", "Timestamp": at(2), "Name": "never_done", "Input": '"x"', "Tags": None}
    ]
    assert by_type["EventRaised"][0]["Input"] == "true"
    assert by_type["ExecutionTerminated"][0]["Input"] == "enough"
    # A Result that is not JSON (a reason) stays text.
    assert by_type["ExecutionCompleted"][0]["Result"] == "enough"
    assert "SubOrchestrationInstanceCreated" not in by_type


def test_http_history_completed_output_is_parsed_and_names_accepted() -> None:
    events = [
        h.orchestrator_started(ts(0)),
        h.execution_started(ts(0), instance_id="i", execution_id="e", name="n", input_text=None),
        h.execution_completed(ts(0), 0, RuntimeStatus.COMPLETED, '["Hello Tokyo", true]'),
        h.orchestrator_completed(ts(0)),
    ]
    named = [{**ev, "EventType": h.EVENT_NAMES[ev["EventType"]]} for ev in events]  # as some exports spell it
    for source in (events, named):
        view = to_http_history(source, show_input=False, show_output=True)
        assert [item["EventType"] for item in view] == ["ExecutionStarted", "ExecutionCompleted"]
        assert view[1]["OrchestrationStatus"] == "Completed"
        assert view[1]["Result"] == ["Hello Tokyo", True]
    assert "Result" not in to_http_history(events, show_input=False, show_output=False)[1]


def test_completion_without_its_scheduling_event_is_kept_as_is() -> None:
    """A truncated history: nothing to merge, but TaskScheduledId is still dropped (as the extension does)."""
    view = to_http_history([h.task_completed(ts(1), 7, "1")], show_input=True, show_output=True)
    assert view == [{"EventType": "TaskCompleted", "Timestamp": at(1), "Result": 1}]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (None, None),
        ("", ""),
        ("  ", ""),
        ('{"a": 1}', {"a": 1}),
        ("3", 3),
        ("not json", "not json"),
        ([1], [1]),
    ],
)
def test_parse_json_token(text: Any, value: Any) -> None:
    assert parse_json_token(text) == value


def test_export_instance_is_full_fidelity() -> None:
    events = sample_history()
    inst = Instance(
        instance_id="i1",
        name="hello",
        runtime_status=RuntimeStatus.TERMINATED,
        execution_id="e1",
        created_time=T0,
        last_updated_time=T0,
        input=events[1]["Input"],
        history=events,
    )
    export = export_instance(inst)
    assert tuple(export) == EXPORT_KEYS
    assert export["instanceId"] == "i1" and export["name"] == "hello" and export["executionId"] == "e1"
    assert export["input"] == '"{\\"city\\": \\"Tokyo\\"}"'
    assert export["history"] == events
    export["history"][0]["Timestamp"] = "changed"
    assert events[0]["Timestamp"] != "changed", "the export is a copy"
