"""The replay cache (devhost.sdk_replay) hands the SDK what the context JSON would.

Tests internals (not devhost's public API): imports `devhost.sdk_replay`, `devhost.orchestration`.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from azure.durable_functions.models import DurableOrchestrationContext

from devhost.harness import DurableHarness
from devhost.history import EventType
from devhost.orchestration import EngineOptions
from devhost.sdk_replay import ReplayCache

from .apps.feature_app import app


def _sdk_view(objects: list[Any]) -> list[dict[str, Any]]:
    return [dict(vars(o)) for o in objects]


def _json_route(history: list[dict[str, Any]]) -> list[Any]:
    text = json.dumps({"history": history, "instanceId": "x", "isReplaying": False, "parentInstanceId": None})
    return list(DurableOrchestrationContext.from_json(text).histories)


def _run(name: str, cache: bool, events: tuple[str, ...] = (), input: Any = "in") -> tuple[Any, list[dict[str, Any]]]:
    counter = itertools.count()
    engine = EngineOptions(new_id=lambda: f"{next(counter):032x}")
    if not cache:
        engine.replay_cache = None
    with DurableHarness(app, engine=engine) as harness:
        iid = harness.start(name, input, instance_id="fixed")
        for event in events:
            harness.run(iid)
            harness.raise_event(iid, event)
        status = harness.run(iid)
        return status.output, status.history


def _normal(result: tuple[Any, list[dict[str, Any]]]) -> Any:
    """Execution ids (the client draws them at random) by order of appearance; no times (the virtual
    clock ticks per read, and activity threads read it in any order)."""
    text = json.dumps(result)
    for n, eid in enumerate(dict.fromkeys(ev["OrchestrationInstance"]["ExecutionId"] for ev in result[1]
                                          if ev.get("OrchestrationInstance"))):
        text = text.replace(eid, f"execution-{n}")
    return json.loads(re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "<time>", text))


def test_cached_events_are_what_the_json_route_builds() -> None:
    _output, history = _run("hello_sequence", cache=True)
    cache = ReplayCache()
    objects, recorded = cache.sync("i", history)
    assert _sdk_view(objects) == _sdk_view(_json_route(history))
    assert set(recorded) == {ev["EventId"] for ev in history if ev["EventType"] == EventType.TASK_SCHEDULED}


def test_played_flag_follows_the_replaced_event_without_decoding_again() -> None:
    _output, history = _run("hello_sequence", cache=True)
    unplayed = [{**ev, "IsPlayed": False} for ev in history]
    cache = ReplayCache()
    cache.sync("i", unplayed)
    objects, _ = cache.sync("i", history)
    assert cache.stats["decoded"] == len(history)  # the second sync decoded nothing
    assert [o.is_played for o in objects] == [ev["IsPlayed"] for ev in history]
    assert _sdk_view(objects) == _sdk_view(_json_route(history))


def test_a_history_that_is_not_an_extension_is_decoded_again() -> None:
    _output, history = _run("hello_sequence", cache=True)
    cache = ReplayCache()
    cache.sync("i", history)
    at = next(i for i, ev in enumerate(history) if ev["EventType"] == EventType.TASK_SCHEDULED)
    changed = [*history[:at], {**history[at], "Name": "another"}, *history[at + 1:]]
    objects, recorded = cache.sync("i", changed)
    assert _sdk_view(objects) == _sdk_view(_json_route(changed))
    assert recorded[history[at]["EventId"]]["Name"] == "another"
    shorter, _ = cache.sync("i", history[:2])
    assert len(shorter) == 2


def test_the_cache_is_bounded() -> None:
    _output, history = _run("hello_sequence", cache=True)
    cache = ReplayCache(size=2)
    for iid in "abc":
        cache.sync(iid, history)
    before = cache.stats["decoded"]
    cache.sync("a", history)  # evicted: decoded again
    assert cache.stats["decoded"] == before + len(history)


def test_histories_with_and_without_the_cache_are_identical() -> None:
    cases: list[tuple[str, Any, tuple[str, ...]]] = [
        ("replay_values", "in", ("Go",)),  # new_uuid, current_utc_datetime, custom status, event, activity, timer
        ("activity_error_handled", "in", ()),
        ("counter_generations", {"n": 0, "limit": 2}, ()),  # continue-as-new: a new execution, same cache entry
    ]
    for name, input, events in cases:
        assert _normal(_run(name, True, events, input)) == _normal(_run(name, False, events, input)), name
