"""Orchestrator log lines appear once, not once per replay (with the filter devhost start installs).

Tests internals (not devhost's public API): imports `devhost.logfilter`.
"""

from __future__ import annotations

import logging

import azure.durable_functions as df
import pytest

from devhost import DurableHarness, logfilter

app = df.DFApp()
log = logging.getLogger("tests.replay_app")


@app.orchestration_trigger(context_name="ctx")
def steps(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    log.info("starting")
    for i in range(3):
        yield ctx.call_activity("noop", i)
        log.info("after step %d", i)
    return "done"


@app.activity_trigger(input_name="i")
def noop(i: int) -> int:
    log.info("activity %d", i)  # not orchestrator code: never silenced
    return i


def test_each_orchestrator_line_once(caplog: pytest.LogCaptureFixture) -> None:
    logfilter.install(caplog.handler)
    logfilter.install(caplog.handler)  # idempotent
    caplog.set_level(logging.INFO, logger="tests.replay_app")
    try:
        with DurableHarness(app) as harness:
            assert harness.run_to_completion("steps").output == "done"
    finally:
        silencers = [f for f in caplog.handler.filters if isinstance(f, logfilter.ReplaySilencer)]
        for silencer in silencers:
            caplog.handler.removeFilter(silencer)
    assert len(silencers) == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "tests.replay_app"]
    orchestrator_lines = [line for line in lines if not line.startswith("activity")]
    assert orchestrator_lines == ["starting", "after step 0", "after step 1", "after step 2"]
    assert sorted(line for line in lines if line.startswith("activity")) == ["activity 0", "activity 1", "activity 2"]


def test_without_the_filter_replays_repeat_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tests.replay_app")
    with DurableHarness(app) as harness:
        harness.run_to_completion("steps")
    lines = [r.getMessage() for r in caplog.records if r.name == "tests.replay_app"]
    assert lines.count("starting") == 4  # what the filter prevents: one per episode
