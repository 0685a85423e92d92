"""A test harness for orchestrations: the real SDK replay on a memory hub with virtual time.

    harness = DurableHarness(function_app.app)
    harness.fake_activity("send_email", lambda payload: "sent")
    iid = harness.start("approval_flow", {"amount": 10})
    status = harness.run(iid)            # auto-skips timers when nothing else can happen
    assert status.runtime_status == "Completed"

Every method has an `a`-prefixed coroutine twin for async tests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar, overload

from azure.durable_functions.models.utils.df_serialization import df_dumps

from .activities import ActivityImpl
from .client import TaskHubClient
from .clock import VirtualClock
from .dispatcher import Dispatcher, DispatcherOptions
from .history import Event, RuntimeStatus
from .index import AppIndex
from .jsontext import parse_json_text
from .model import Instance
from .orchestration import EngineOptions
from .store.memory import MemoryStore
from .versioning import Versioning, version_of

T = TypeVar("T")


def to_json_text(value: Any) -> str:
    """Serialize with the SDK's own codec (custom objects with `to_json` become envelopes)."""
    return str(df_dumps(value))


@dataclass
class OrchestrationStatus:
    instance_id: str
    name: str
    runtime_status: RuntimeStatus
    input: Any
    output: Any
    custom_status: Any
    created_time: datetime
    last_updated_time: datetime
    history: list[Event] = field(default_factory=list)

    @property
    def is_done(self) -> bool:
        return self.runtime_status.is_terminal

    @property
    def version(self) -> str | None:
        """The orchestration's version (`context.version`; None when unversioned)."""
        return version_of(self.history)

    @classmethod
    def from_instance(cls, inst: Instance) -> OrchestrationStatus:
        raw_input = parse_json_text(inst.input)
        if isinstance(raw_input, str):  # started through the SDK client: JSON text inside a string
            raw_input = parse_json_text(raw_input)
        return cls(
            instance_id=inst.instance_id,
            name=inst.name,
            runtime_status=inst.runtime_status,
            input=raw_input,
            output=parse_json_text(inst.output),
            custom_status=parse_json_text(inst.custom_status),
            created_time=inst.created_time,
            last_updated_time=inst.last_updated_time,
            history=list(inst.history),
        )


class DurableHarness:
    def __init__(
        self,
        app: Any,
        *,
        start_time: datetime | None = None,
        activities: dict[str, ActivityImpl] | None = None,
        engine: EngineOptions | None = None,
        max_concurrent_activities: int = 8,
        versioning: Versioning | None = None,
        replay: str | None = None,
    ) -> None:
        """`versioning`: host.json's defaultVersion and version-match settings (`Versioning`); with the
        Reject strategy an instance newer than the host waits, so give `run` a timeout then.
        `replay`: "full" (every episode replays the whole history, as Azure does) or "incremental"
        (a running instance's SDK executor is fed only new events; a full replay re-checks the actions
        when history has doubled and at the end); default `EngineOptions.replay` (DEVHOST_REPLAY)."""
        self.index = app if isinstance(app, AppIndex) else AppIndex.from_app(app)
        if replay is not None:
            if replay not in ("full", "incremental"):
                raise ValueError(f"replay must be 'full' or 'incremental', not {replay!r}")
            engine = replace(engine or EngineOptions(), replay=replay)
        if versioning is not None:
            engine = replace(engine or EngineOptions(), versioning=versioning)
        self.clock = VirtualClock(start_time)
        self.store = MemoryStore(self.clock)
        self.dispatcher = Dispatcher(
            self.index,
            self.store,
            engine=engine,
            activity_overrides=activities,
            options=DispatcherOptions(max_concurrent_activities=max_concurrent_activities),
        )
        self.client = TaskHubClient(self.index, self.store, versioning or Versioning())
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------- set-up
    def fake_activity(self, name: str, impl: ActivityImpl) -> None:
        """Replace activity `name` with `impl(input)` (sync or async) for this harness."""
        self.dispatcher.activity_overrides[name.lower()] = impl

    @property
    def now(self) -> datetime:
        return self.clock.peek()

    # -------------------------------------------------------------- async
    async def astart(
        self, name: str, input: Any = None, instance_id: str | None = None, version: str | None = None
    ) -> str:
        """Start like `client.start_new(name, instance_id, input, version)` does."""
        text = None if input is None else json.dumps(to_json_text(input))
        return await self.client.start(name, text, instance_id, version=version)

    async def araise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """Deliver `data` to `wait_for_external_event(name)` as that value.

        (The SDK's own client double-encodes, so there the orchestrator receives the JSON
        text as a string: Azure/azure-functions-durable-python#295.)"""
        await self.client.raise_event(instance_id, name, to_json_text(data))

    async def aterminate(self, instance_id: str, reason: str | None = None) -> None:
        await self.client.terminate(instance_id, reason)

    async def asuspend(self, instance_id: str, reason: str | None = None) -> None:
        await self.client.suspend(instance_id, reason)

    async def aresume(self, instance_id: str, reason: str | None = None) -> None:
        await self.client.resume(instance_id, reason)

    async def arewind(self, instance_id: str, reason: str | None = None) -> None:
        """Run a failed instance again from its failure (see `TaskHubClient.rewind`)."""
        await self.client.rewind(instance_id, reason)

    async def asignal_entity(self, name: str, key: str, operation: str, input: Any = None) -> None:
        await self.client.signal_entity(name, key, operation, None if input is None else to_json_text(input))

    async def aentity_state(self, name: str, key: str) -> Any:
        exists, state = await self.client.read_entity(name, key)
        return parse_json_text(state) if exists else None

    async def astatus(self, instance_id: str) -> OrchestrationStatus:
        inst = await self.store.load(instance_id)
        if inst is None:
            raise KeyError(f"no instance {instance_id!r}")
        return OrchestrationStatus.from_instance(inst)

    @overload
    async def arun(
        self, instance_id: str, *, timeout: timedelta | None = None, auto_advance: bool = True
    ) -> OrchestrationStatus: ...

    @overload
    async def arun(
        self, instance_id: None = None, *, timeout: timedelta | None = None, auto_advance: bool = True
    ) -> None: ...

    async def arun(
        self, instance_id: str | None = None, *, timeout: timedelta | None = None, auto_advance: bool = True
    ) -> OrchestrationStatus | None:
        """Run until `instance_id` finishes, or until nothing can happen without an outside event.

        With `auto_advance`, virtual time jumps to the next timer whenever all other work
        is done; `timeout` bounds how far virtual time may move in this call. Work that only
        comes back rejected by versioning (versionFailureStrategy Reject: it waits for a host of
        another version, with back-off) is not waited for: a round in which nothing but such
        rejections happened ends the call, as no amount of virtual time would change it."""
        limit = self.clock.peek() + timeout if timeout is not None else None
        stats = self.dispatcher.stats
        while True:
            before = (stats["episodes"], stats["activities"], stats["entity_operations"], stats["version_rejections"])
            await self.dispatcher.run_until_idle()
            if instance_id is not None:
                inst = await self.store.load(instance_id, history=False)
                if inst is not None and inst.runtime_status.is_terminal:
                    break
            after = (stats["episodes"], stats["activities"], stats["entity_operations"], stats["version_rejections"])
            if after[:3] == before[:3] and after[3] > before[3]:
                break  # only version rejections: nothing this host can run
            nxt = await self._next_due()
            if not auto_advance or nxt is None:
                break
            if limit is not None and nxt > limit:
                self.clock.advance_to(limit)
                break
            self.clock.advance_to(nxt)
        return await self.astatus(instance_id) if instance_id is not None else None

    async def aadvance(self, delta: timedelta) -> None:
        """Move virtual time forward by `delta`, firing every timer due on the way in order."""
        target = self.clock.peek() + delta
        while True:
            await self.dispatcher.run_until_idle()
            nxt = await self._next_due()
            if nxt is None or nxt > target:
                break
            self.clock.advance_to(nxt)
        self.clock.advance_to(target)
        await self.dispatcher.run_until_idle()

    async def _next_due(self) -> datetime | None:
        candidates = (await self.store.next_visible_at("control"), await self.store.next_visible_at("work"))
        times = [t for t in candidates if t is not None]
        return min(times) if times else None

    # --------------------------------------------------------------- sync
    def _sync(self, coro: Awaitable[T]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            close = getattr(coro, "close", None)
            if close:
                close()
            raise RuntimeError("an event loop is running: use the harness's `a...` coroutine methods in async tests")
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    def start(self, name: str, input: Any = None, instance_id: str | None = None, version: str | None = None) -> str:
        return self._sync(self.astart(name, input, instance_id, version))

    def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        self._sync(self.araise_event(instance_id, name, data))

    def terminate(self, instance_id: str, reason: str | None = None) -> None:
        self._sync(self.aterminate(instance_id, reason))

    def suspend(self, instance_id: str, reason: str | None = None) -> None:
        self._sync(self.asuspend(instance_id, reason))

    def resume(self, instance_id: str, reason: str | None = None) -> None:
        self._sync(self.aresume(instance_id, reason))

    def rewind(self, instance_id: str, reason: str | None = None) -> None:
        self._sync(self.arewind(instance_id, reason))

    def signal_entity(self, name: str, key: str, operation: str, input: Any = None) -> None:
        self._sync(self.asignal_entity(name, key, operation, input))

    def entity_state(self, name: str, key: str) -> Any:
        return self._sync(self.aentity_state(name, key))

    def status(self, instance_id: str) -> OrchestrationStatus:
        return self._sync(self.astatus(instance_id))

    @overload
    def run(
        self, instance_id: str, *, timeout: timedelta | None = None, auto_advance: bool = True
    ) -> OrchestrationStatus: ...

    @overload
    def run(self, instance_id: None = None, *, timeout: timedelta | None = None, auto_advance: bool = True) -> None: ...

    def run(
        self, instance_id: str | None = None, *, timeout: timedelta | None = None, auto_advance: bool = True
    ) -> OrchestrationStatus | None:
        """`arun`: the instance's status when one is named (typed so tests need no None check)."""
        if instance_id is None:
            return self._sync(self.arun(None, timeout=timeout, auto_advance=auto_advance))
        return self._sync(self.arun(instance_id, timeout=timeout, auto_advance=auto_advance))

    def run_to_completion(self, name: str, input: Any = None, instance_id: str | None = None) -> OrchestrationStatus:
        iid = self.start(name, input, instance_id)
        return self.run(iid)

    def advance(self, delta: timedelta) -> None:
        self._sync(self.aadvance(delta))

    def close(self) -> None:
        self.dispatcher.close()
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def __enter__(self) -> DurableHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Factory = Callable[..., DurableHarness]
