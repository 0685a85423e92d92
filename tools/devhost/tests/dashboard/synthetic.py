"""Synthetic hub contents for scale tests: many instances (as the rows the Azure store writes for them), and
one very long history.

Tests internals (not devhost's public API): imports `devhost.history`, `devhost.model`, `devhost.store.azure`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from devhost import history as h
from devhost.history import Event, RuntimeStatus
from devhost.model import Instance, new_guid
from devhost.store.azure import rows
from devhost.store.azure.layout import HubLayout, sanitize_key


def long_history(instance_id: str, events: int, start: datetime) -> list[Event]:
    """A completed sequence orchestration with about `events` events: 4 per activity episode."""
    execution_id = new_guid()
    hist: list[Event] = [
        h.orchestrator_started(start),
        h.execution_started(
            start,
            instance_id=instance_id,
            execution_id=execution_id,
            name="update_rollout",
            input_text=json.dumps({"n": events}),
        ),
    ]
    seq = 0
    now = start
    while len(hist) < events - 4:
        hist.append(h.task_scheduled(now, seq, "update_target", json.dumps({"target": f"t{seq}"})))
        hist.append(h.orchestrator_completed(now))
        now += timedelta(milliseconds=40)
        hist.append(h.orchestrator_started(now))
        hist.append(h.task_completed(now, seq, json.dumps({"ok": True, "seq": seq})))
        seq += 1
    hist.append(h.execution_completed(now, seq, RuntimeStatus.COMPLETED, json.dumps({"done": seq})))
    hist.append(h.orchestrator_completed(now))
    return hist


def instance_with(
    instance_id: str, name: str, status: RuntimeStatus, created: datetime, history: list[Event] | None = None
) -> Instance:
    execution_id = new_guid()
    if history:
        execution_id = history[1]["OrchestrationInstance"]["ExecutionId"]
    return Instance(
        instance_id=instance_id,
        name=name,
        runtime_status=status,
        execution_id=execution_id,
        created_time=created,
        last_updated_time=created,
        input=json.dumps({"i": instance_id}),
        output=json.dumps("ok") if status == RuntimeStatus.COMPLETED else None,
        history=history or [],
    )


def many_instances(count: int, prefix: str, start: datetime) -> Iterator[Instance]:
    """`count` finished instances `{prefix}{i:05d}`, alternating names and statuses.

    All finished: a running instance would be loaded and checked by the host's start-up recovery, which is
    not what the scale tests are about."""
    statuses = [RuntimeStatus.COMPLETED, RuntimeStatus.FAILED, RuntimeStatus.TERMINATED]
    for i in range(count):
        yield instance_with(
            f"{prefix}{i:05d}",
            "scale_even" if i % 2 == 0 else "scale_odd",
            statuses[i % 3],
            start + timedelta(milliseconds=i),
        )


def hub_tables(hub: str, instances: Iterator[Instance], now: datetime) -> dict[str, list[dict[str, Any]]]:
    """The History sentinels and Instances rows the Azure store writes for `instances` (its own row codec),
    by table name: what a hub holds after creating them through the store, to be written in one go."""
    uploads: dict[str, str] = {}
    sentinels = [
        rows.sentinel_row(inst, sanitize_key(inst.instance_id), uploads, complete=True, now=now) for inst in instances
    ]
    assert not uploads, "synthetic instances are small: nothing goes to blobs"
    layout = HubLayout(hub)
    return {layout.history_table: sentinels, layout.instances_table: [rows.instance_row(s, hub) for s in sentinels]}
