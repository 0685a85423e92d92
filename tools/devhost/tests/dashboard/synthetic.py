"""Synthetic hub contents for scale tests: many instances, and one very long history, written via the store.

Tests internals (not devhost's public API): imports `devhost.history`, `devhost.model`, `devhost.store.base`.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

from devhost import history as h
from devhost.history import Event, RuntimeStatus
from devhost.model import Instance, new_guid
from devhost.store.base import Store


def long_history(instance_id: str, events: int, start: datetime) -> list[Event]:
    """A completed sequence orchestration with about `events` events: 4 per activity episode."""
    execution_id = new_guid()
    hist: list[Event] = [h.orchestrator_started(start),
                         h.execution_started(start, instance_id=instance_id, execution_id=execution_id,
                                             name="update_rollout", input_text=json.dumps({"n": events}))]
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


def instance_with(instance_id: str, name: str, status: RuntimeStatus, created: datetime,
                  history: list[Event] | None = None) -> Instance:
    execution_id = new_guid()
    if history:
        execution_id = history[1]["OrchestrationInstance"]["ExecutionId"]
    return Instance(instance_id=instance_id, name=name, runtime_status=status, execution_id=execution_id,
                    created_time=created, last_updated_time=created, input=json.dumps({"i": instance_id}),
                    output=json.dumps("ok") if status == RuntimeStatus.COMPLETED else None,
                    history=history or [])


async def create_many(store: Store, count: int, prefix: str, start: datetime, concurrency: int = 64) -> None:
    """`count` instances `{prefix}{i:05d}`, alternating names and statuses, through the store's create API."""
    gate = asyncio.Semaphore(concurrency)
    statuses = [RuntimeStatus.COMPLETED, RuntimeStatus.FAILED, RuntimeStatus.RUNNING]

    async def one(i: int) -> None:
        inst = instance_with(f"{prefix}{i:05d}", "scale_even" if i % 2 == 0 else "scale_odd", statuses[i % 3],
                             start + timedelta(milliseconds=i))
        async with gate:
            await store.create(inst)

    await asyncio.gather(*(one(i) for i in range(count)))
