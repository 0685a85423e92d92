"""Runs orchestration, entity and activity work from a store, with bounded concurrency.

Per work item it follows DTFx's order (docs/durable-protocol.md §7.7): send outbound messages,
then checkpoint the instance guarded by its etag, then delete the consumed messages.
A crash anywhere repeats work but loses nothing; the engine drops the duplicates.

Activities are the exception to "send first": like Netherite, the checkpointed
TaskScheduled event is their durable record. The activity runs in this process right
after the checkpoint and its result goes straight back to the orchestration; a host
that starts (or restarts after a crash) first re-runs every TaskScheduled that has no
result in its instance's history (`recover`). That saves three storage round trips per
activity and keeps the hub's queues shallow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from azure.core.exceptions import ServiceRequestError

from . import history as h
from . import sdk_speedups, tracing
from .activities import ActivityImpl, run_activity
from .entities import process_entity
from .fork import pending_messages
from .history import EventType, RuntimeStatus
from .index import AppIndex
from .model import Instance, Message, is_entity_id
from .orchestration import EngineOptions, process_orchestration
from .store.base import ConcurrencyError, Store

log = logging.getLogger("devhost")
_ACTIVITY_RESULTS = frozenset({EventType.TASK_COMPLETED, EventType.TASK_FAILED})


@dataclass
class DispatcherOptions:
    max_concurrent_orchestrations: int = 16
    max_concurrent_activities: int = 16
    control_batch_size: int = 32
    # Messages that keep failing are set aside after this many deliveries.
    max_dequeue_count: int = 10
    # Longest time activity results for an instance are held back so that one replay
    # applies many of them (fan-in). The hold never exceeds the instance's last replay
    # cost (x3), so replay stays a bounded share of the work.
    max_batch_wait_seconds: float = 0.25
    # How long a received (or self-claimed) message stays hidden while it is worked on. After
    # a crash, the messages the dead process held come back only after this long (DTFx: 5 min).
    visibility_seconds: float = 300.0


class Dispatcher:
    def __init__(
        self,
        app: AppIndex,
        store: Store,
        *,
        engine: EngineOptions | None = None,
        options: DispatcherOptions | None = None,
        activity_overrides: dict[str, ActivityImpl] | None = None,
        on_finished: Callable[[str, str, RuntimeStatus], None] | None = None,
    ) -> None:
        sdk_speedups.apply()
        tracing.setup()
        self.app = app
        self.store = store
        self.engine = engine or EngineOptions()
        self.options = options or DispatcherOptions()
        self.activity_overrides: dict[str, ActivityImpl] = {k.lower(): v for k, v in (activity_overrides or {}).items()}
        self.on_finished = on_finished
        self._executor = ThreadPoolExecutor(
            max_workers=self.options.max_concurrent_activities, thread_name_prefix="devhost-activity"
        )
        # Orchestrator and entity steps call user code that is always sync (the SDK wraps it in a sync
        # handler), so they run on worker threads as the Python worker runs sync functions
        # (azure_functions_worker/dispatcher.py 664-674: run_in_executor on its ThreadPoolExecutor),
        # never on this loop: user code may block, or run its own loop (Runner.run_sync).
        # `_busy` keeps one step per instance at a time; each step works on its own Instance copy.
        self._user_threads = ThreadPoolExecutor(
            max_workers=self.options.max_concurrent_orchestrations, thread_name_prefix="devhost-orchestrator"
        )
        self._orch_tasks: set[asyncio.Task[Any]] = set()
        self._activity_tasks: set[asyncio.Task[Any]] = set()
        self._busy: set[str] = set()
        self._waiting: dict[str, list[Message]] = defaultdict(list)
        # Activity results still to come per instance (sent work minus received results).
        self._expected: dict[str, int] = defaultdict(int)
        self._drained: dict[str, asyncio.Event] = {}
        self._replay_cost: dict[str, float] = {}
        self._backlog: deque[Message] = deque()  # claimed work waiting for an activity slot
        self._background: set[asyncio.Task[Any]] = set()
        self._stopping = False  # draining: finish what runs, start nothing new locally
        self._recovered = False
        # Checkpoint conflicts in a row per instance (back-off), and the resume sweep that runs after
        # storage failed or went back in time (see `_request_resume`).
        self._conflicts: dict[str, int] = {}
        self._version_logged: set[str] = set()  # instances whose version-check rejection was logged
        self._resume: asyncio.Task[None] | None = None
        self._resume_again = False
        self._outage = False
        # Activities running here or waiting for a slot (`_run_local` adds them, `_run_activity` ends them).
        self._running_work: set[tuple[str, str | None, int]] = set()
        # In-process results this host still holds (see `_held_results`): groups being processed, and
        # results waiting out a storage outage.
        self._in_process: dict[str, list[Message]] = {}
        self._redelivering: dict[int, list[Message]] = {}
        self.poisoned: list[Message] = []  # own work that kept failing inside devhost
        self.stats = {"episodes": 0, "activities": 0, "entity_operations": 0, "work_items": 0, "version_rejections": 0}

    # ------------------------------------------------------------------ loop
    @property
    def in_flight(self) -> int:
        return len(self._orch_tasks) + len(self._activity_tasks) + len(self._backlog)

    async def pump(self) -> bool:
        """Receive what can be started now and start it; True if anything was received."""
        if not self._recovered:
            self._recovered = True
            if await self.recover():
                return True
        started = False
        free_orch = self.options.max_concurrent_orchestrations - len(self._orch_tasks)
        if free_orch > 0:
            msgs = await self.store.dequeue("control", self.options.control_batch_size, self.options.visibility_seconds)
            if msgs:
                started = True
                groups: dict[str, list[Message]] = defaultdict(list)
                for m in msgs:
                    groups[m.instance_id].append(m)
                for iid, group in groups.items():
                    self._deliver(iid, group)
        while self._backlog and len(self._activity_tasks) < self.options.max_concurrent_activities:
            started = True
            self._spawn(self._activity_tasks, self._run_activity(self._backlog.popleft()))
        free_act = self.options.max_concurrent_activities - len(self._activity_tasks)
        if free_act > 0:
            work = await self.store.dequeue("work", free_act, self.options.visibility_seconds)
            for m in work:
                started = True
                self._spawn(self._activity_tasks, self._run_activity(m))
        return started

    def _deliver(self, iid: str, group: list[Message], counted: bool = False) -> None:
        """Hand messages to their instance: now, or after the work item it is running.

        `counted`: results already taken off `_expected` (a redelivery)."""
        if self._stopping:  # results of activities finishing during shutdown: via the queue
            local = [m for m in group if m.is_local]
            if local:
                self._spawn(self._background, self._durable(local))
            group = [m for m in group if not m.is_local]
            if not group:
                return
        for m in [] if counted else group:
            if m.event["EventType"] in _ACTIVITY_RESULTS and self._expected.get(iid):
                self._expected[iid] -= 1
                if self._expected[iid] <= 0:
                    self._expected.pop(iid, None)
                    drained = self._drained.get(iid)
                    if drained is not None:
                        drained.set()
        if iid in self._busy:
            self._waiting[iid].extend(group)
        else:
            self._start_instance(iid, group)

    async def recover(self) -> int:
        """Re-derive the outstanding work of every unfinished instance from the history storage holds.

        Needed once per host start: activities scheduled by a host that stopped or crashed before
        their results were checkpointed exist only as TaskScheduled events. And after storage
        failed or went back in time (Azurite persists on an interval, so a restart can lose writes
        it acknowledged, messages included): pending timers, sub-orchestration starts and entity
        calls are sent again too. Receivers drop what they already have (§7.7), so repeating is safe.
        Returns how many activities it re-ran."""
        work: list[Message] = []
        sends: list[Message] = []
        for iid in await self.store.unfinished():
            if is_entity_id(iid):
                continue
            inst = await self.store.load(iid)
            if inst is None:
                continue
            outbox = [Message.from_json(data) for data in inst.engine.outbox]
            sends += outbox  # a crash may have come between the checkpoint and these sends
            if inst.runtime_status.is_terminal:
                if outbox:
                    await self.store.enqueue(outbox)
                    inst.engine.outbox = []
                    await self.store.checkpoint(inst, new_events_from=len(inst.history), history_reset=False)
                continue
            held = self._held_results()  # now, not before the awaits above: a held result may have landed since
            for msg in pending_messages(inst):
                if msg.queue == "work":
                    key = (iid, inst.execution_id, int(msg.event["EventId"]))
                    if key not in self._running_work and key not in held:
                        work.append(msg)
                        self._expected[iid] += 1
                elif msg.event["EventType"] == EventType.EXECUTION_STARTED:
                    sends.append(await self._child_outcome(inst, msg) or msg)
                else:
                    sends.append(msg)
        if sends:
            await self.store.enqueue(sends)
        if work:
            log.info(
                "devhost: re-running %d unfinished activit%s of %d instance(s)",
                len(work),
                "y" if len(work) == 1 else "ies",
                len({m.instance_id for m in work}),
            )
            self._run_local(work)
        return len(work)

    def _held_results(self) -> set[tuple[str, str | None, int]]:
        """Activities whose in-process result this host still holds, not yet checkpointed: waiting for
        their instance's running step, in the step being processed, or waiting out a storage outage.
        Each is delivered (or, if its step fails, sent through the queue), so `recover` need not run
        the activity again (it would only produce a duplicate the engine drops)."""
        groups = [*self._waiting.values(), *self._in_process.values(), *self._redelivering.values()]
        return {
            (m.instance_id, m.execution_id, int(m.event["TaskScheduledId"]))
            for group in groups
            for m in group
            if m.is_local and m.event["EventType"] in _ACTIVITY_RESULTS and "TaskScheduledId" in m.event
        }

    async def _child_outcome(self, parent: Instance, start: Message) -> Message | None:
        """For a sub-orchestration that already finished: its result for the parent (the one it sent
        may be what storage lost); None while it has not (the start is sent again instead)."""
        child = await self.store.load(start.instance_id, history=False)
        if child is None or child.execution_id != start.execution_id or not child.runtime_status.is_terminal:
            return None
        seq = int((start.event.get("ParentInstance") or {}).get("TaskScheduleId") or 0)
        now = self.store.clock.now()
        if child.runtime_status == RuntimeStatus.COMPLETED:
            ev = h.sub_orchestration_completed(now, seq, child.output)
        else:
            ev = h.sub_orchestration_failed(now, seq, child.output or "", None)
        return Message(parent.instance_id, ev, execution_id=parent.execution_id, sender=child.instance_id)

    def _request_resume(self, why: str) -> None:
        """Run `recover` again (once at a time, again if asked meanwhile), from storage, not the cache."""
        if self._stopping:
            return
        if self._resume is not None and not self._resume.done():
            self._resume_again = True
            return
        self._resume = asyncio.ensure_future(self._resume_from_storage(why))

    async def _resume_from_storage(self, why: str) -> None:
        delay = 1.0
        while not self._stopping:
            self._resume_again = False
            try:
                await self.store.resync()
                self.store.forget()
                rerun = await self.recover()
            except Exception as exc:  # storage still away: try again, backing off
                log.warning("devhost: resuming from storage failed (%s); retrying in %.0fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            log.warning(
                "devhost: %s; resumed every unfinished instance from storage (%d activit%s re-run)",
                why,
                rerun,
                "y" if rerun == 1 else "ies",
            )
            if not self._resume_again:
                return

    def _run_local(self, work: list[Message]) -> None:
        """Run activities in this process, without a trip through the work-item queue."""
        if self._stopping:  # shutting down: queued work goes back; our own is re-run by `recover`
            queued = [m for m in work if m.origin == "queue"]
            if queued:
                self._spawn(self._background, self.store.abandon(queued, delay_seconds=0))
            return
        for m in work:
            event_id = m.event.get("EventId")
            self._running_work.add((m.instance_id, m.execution_id, -1 if event_id is None else int(event_id)))
            if len(self._activity_tasks) < self.options.max_concurrent_activities:
                self._spawn(self._activity_tasks, self._run_activity(m))
            else:
                self._backlog.append(m)

    def _spawn(self, bucket: set[asyncio.Task[Any]], coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        bucket.add(task)
        task.add_done_callback(bucket.discard)

    def _start_instance(self, iid: str, group: list[Message]) -> None:
        self._busy.add(iid)
        self._spawn(self._orch_tasks, self._run_instance(iid, group, self._hold_time(iid, group)))

    def _hold_time(self, iid: str, group: list[Message]) -> float:
        """How long to wait for more activity results before replaying (fan-in batching).

        Only activity results are held, only while more results of the same instance are
        still to come, and never longer than three times its last replay took."""
        if not self._expected.get(iid):
            return 0.0
        if any(m.event["EventType"] not in _ACTIVITY_RESULTS for m in group):
            return 0.0
        return min(3 * self._replay_cost.get(iid, 0.0), self.options.max_batch_wait_seconds)

    async def run_until_idle(self) -> None:
        """Process until nothing is visible and nothing is running (timers may be pending)."""
        while True:
            if await self.pump():
                continue
            pending = self._orch_tasks | self._activity_tasks | self._background
            if not pending:
                return
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set: the long-running form used by `devhost start`."""
        changed = self.store.changed
        delay = 0.01
        while not stop.is_set():
            changed.clear()  # before receiving: a send from here on wakes the wait below
            try:
                progressed = await self.pump()
            except Exception as exc:  # storage hiccup: back off and retry, never die
                log.warning(
                    "devhost: receiving work failed (%s); retrying in %.1fs",
                    (str(exc).splitlines() or [type(exc).__name__])[0],
                    delay,
                )
                progressed = False
                delay = min(delay * 2, 5.0)
                self._outage = True
            else:
                if self.store.outage_ended() or self._outage:
                    self._outage = False
                    self._request_resume("storage did not answer for a while (a restart may have lost writes)")
            if progressed:
                delay = 0.01
                continue
            waiters: list[Any] = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(changed.wait())]
            pending = list(self._orch_tasks | self._activity_tasks)
            # Messages this process did not send (visibility timeouts, other processes) are found
            # by polling: the stores throttle empty receives themselves.
            timeout = max(delay, 0.05)
            await asyncio.wait(waiters + pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
        await self.drain()

    async def drain(self) -> None:
        """Stop starting work, let running work finish, hand the rest back to the store."""
        self._stopping = True
        if self._resume is not None:
            self._resume.cancel()
            with contextlib.suppress(BaseException):
                await self._resume
        if self._backlog:
            backlog, self._backlog = list(self._backlog), deque()
            self._spawn(self._background, self.store.abandon(backlog, delay_seconds=0))
        while self._orch_tasks or self._activity_tasks or self._background:
            await asyncio.gather(*(self._orch_tasks | self._activity_tasks | self._background), return_exceptions=True)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._user_threads.shutdown(wait=False, cancel_futures=True)

    # ---------------------------------------------------------- orchestrations
    async def _run_instance(self, iid: str, group: list[Message], hold: float = 0.0) -> None:
        try:
            while group:
                self._in_process[iid] = group
                if hold > 0:
                    # Results that arrived while the last step ran on its thread are held too (fan-in).
                    drained = self._drained.setdefault(iid, asyncio.Event())
                    try:
                        await asyncio.wait_for(drained.wait(), hold)
                    except TimeoutError:
                        pass
                    self._drained.pop(iid, None)
                    group = self._in_process[iid] = group + self._waiting.pop(iid, [])
                started = time.perf_counter()
                await self._process_group(iid, group)
                self._replay_cost[iid] = time.perf_counter() - started
                group = self._waiting.pop(iid, [])
                hold = self._hold_time(iid, group) if group else 0.0
        finally:
            self._in_process.pop(iid, None)
            self._busy.discard(iid)
            self._drained.pop(iid, None)

    async def _process_group(self, iid: str, group: list[Message]) -> None:
        store = self.store
        started = time.perf_counter()
        loaded: tuple[str, int] | None = None  # (execution, history length) as loaded: the step mutates inst
        try:
            inst = await store.load(iid)
            if inst is not None:
                loaded = (inst.execution_id, len(inst.history))
            now = store.clock.now()
            if is_entity_id(iid):
                eresult = await asyncio.get_running_loop().run_in_executor(
                    self._user_threads, process_entity, self.app, inst, group, now
                )
                if tracing.active is not None:
                    tracing.active.after_entity(group, eresult, time.perf_counter() - started)
                self.stats["entity_operations"] += eresult.operations
                if eresult.outbound:
                    await store.enqueue(eresult.outbound)
                if eresult.instance is not None and eresult.operations:
                    await store.checkpoint(eresult.instance, new_events_from=0, history_reset=False)
                for _msg, why in eresult.dropped:
                    log.debug("devhost: dropped message for %s: %s", iid, why)
                await self._ack(group)
                return
            spans = tracing.active
            old_start = spans.execution_started(inst) if spans is not None else None
            result = await asyncio.get_running_loop().run_in_executor(
                self._user_threads, process_orchestration, self.app, inst, group, now, self.engine
            )
            if spans is not None:  # trace context into new events before they are sent and stored
                spans.after_orchestration(old_start, result)
            self.stats["episodes"] += result.episodes
            self.stats["work_items"] += 1
            # Activities are recorded by the checkpoint (TaskScheduled) and run here after it.
            work = [m for m in result.outbound if m.queue == "work"]
            others = [m for m in result.outbound if m.queue != "work"]
            done = result.instance
            if done is not None and done.engine.outbox:
                done.engine.outbox = []  # sent: by this host after its checkpoint, or again by `recover`
            if done is not None and any(m.instance_id != iid for m in others) and any(m.is_local for m in group):
                # In-process activity results exist only in memory until checkpointed, and a crash
                # before that re-runs the activity, which may return another value: what is derived
                # from them must not reach another instance first. So here (only) the checkpoint
                # comes first, holding the messages in an outbox that `recover` sends again after a
                # crash. (DTFx gets this for free: a result is a queue message before the
                # orchestrator sees it, so a replay re-sends the same messages.)
                done.engine.outbox = [m.to_json() for m in others]
                await store.checkpoint(done, new_events_from=result.new_events_from, history_reset=result.history_reset)
                await store.enqueue(others)
                if done.runtime_status.is_terminal:  # no later step of it clears the outbox
                    done.engine.outbox = []
                    await store.checkpoint(done, new_events_from=len(done.history), history_reset=False)
            else:
                if others:
                    await store.enqueue(others)
                if done is not None and (
                    result.episodes
                    or result.history_reset
                    or done.buffered
                    or inst is None
                    or done.engine != inst.engine
                ):
                    await store.checkpoint(
                        done, new_events_from=result.new_events_from, history_reset=result.history_reset
                    )
            for text in result.new_warnings:  # about the user's code, once per instance (checkpointed)
                log.warning("%s", text)
            if work:
                self._expected[iid] += len(work)
                self._run_local(work)
            self._conflicts.pop(iid, None)
            deferred_ids = {m.id for m in result.deferred}
            consumed = [m for m in group if m.id not in deferred_ids]
            await self._ack(consumed)
            if result.version_rejected is not None:
                self.stats["version_rejections"] += 1
                # DTFx abandons the work item (TaskOrchestrationDispatcher.cs 428-431 on main); Azure Storage
                # hides its messages for 2^DequeueCount seconds, at most 600 (TaskHubQueue.cs 244-249).
                if iid not in self._version_logged:
                    self._version_logged.add(iid)
                    log.warning("devhost: %s", result.version_rejected)
                tries = max((m.dequeue_count for m in result.deferred), default=1)
                await self._abandon(result.deferred, delay_seconds=float(min(2 ** min(tries, 10), 600)))
            elif result.deferred:
                await self._abandon(result.deferred, delay_seconds=1.0)
            for msg, why in result.dropped:
                if msg.event["EventType"] == EventType.EXECUTION_STARTED:  # a duplicate start: say so
                    log.info("devhost: dropped ExecutionStarted %s for %s: %s", msg.id, iid, why)
                else:
                    log.debug("devhost: dropped message for %s: %s", iid, why)
            for fin_iid, name, status in result.finished:
                self._expected.pop(fin_iid, None)
                self._replay_cost.pop(fin_iid, None)
                elapsed = (time.perf_counter() - started) * 1000
                log.info("devhost: orchestration %s (%s) %s [%.1f ms]", name, fin_iid, status.value, elapsed)
                if self.on_finished:
                    self.on_finished(fin_iid, name, status)
        except ConcurrencyError as exc:
            # Usually a client's first write racing our first checkpoint: retry from a fresh load (the
            # store dropped its cached copy). Storage that lost acknowledged writes conflicts too: then
            # the lost work is re-derived from what it holds. Repeated conflicts back off.
            tries = self._conflicts[iid] = self._conflicts.get(iid, 0) + 1
            delay = 0.0 if tries == 1 else min(0.1 * 2 ** (tries - 2), 10.0)
            log.info("devhost: %s; retrying the work item%s", exc, f" in {delay:.1f}s" if delay else "")
            with contextlib.suppress(ServiceRequestError, OSError):
                await self._after_failed_checkpoint(iid, loaded)
            await self._abandon(group, delay_seconds=delay)
        except (ServiceRequestError, OSError) as exc:  # storage unreachable: one line, then retry
            log.warning("devhost: storage unreachable while processing %s (%s); will retry", iid, exc)
            self._outage = True
            local = [m for m in group if m.is_local]
            if local:  # held here: they exist nowhere else until checkpointed
                self._spawn(self._background, self._redeliver_later(iid, local))
            with contextlib.suppress(ServiceRequestError, OSError):
                await self.store.abandon([m for m in group if not m.is_local], delay_seconds=1.0)
        except Exception:
            log.exception("devhost: processing messages for %s failed", iid)
            try:  # e.g. a checkpoint whose answer was lost
                await self._after_failed_checkpoint(iid, loaded)
            except Exception as exc:
                log.warning("devhost: checking %s against storage failed: %s", iid, exc)
            await self._abandon_or_poison(group)

    async def _after_failed_checkpoint(self, iid: str, cached: tuple[str, int] | None) -> None:
        """After a work item failed, compare what storage holds with what this host had loaded
        (`cached`: its execution and history length).

        Behind it: storage lost writes it had acknowledged (a restarted Azurite); this host's copy is
        the truth, so it is written back. Ahead of it: the checkpoint committed although it was
        reported failed (its answer was lost, or a retry of it conflicted); the activities it
        scheduled, which run only after a checkpoint returns, are started now. The retried messages
        are then duplicates and dropped."""
        stored = await self.store.load(iid)
        if (
            cached is not None
            and cached[1]
            and (stored is None or (stored.execution_id == cached[0] and len(stored.history) < cached[1]))
        ):
            restored = await self.store.resync()  # this host's copies are the truth: written back
            log.warning(
                "devhost: storage lost the last writes of %s (it held %d of %d history events); %s",
                iid,
                0 if stored is None else len(stored.history),
                cached[1],
                "written back" if iid in restored else "not in this host's copies",
            )
            self._request_resume("storage lost writes it had acknowledged")
            return
        if stored is None or not stored.history or stored.runtime_status.is_terminal or is_entity_id(iid):
            return
        if cached is not None and stored.execution_id == cached[0] and len(stored.history) <= cached[1]:
            return  # nothing of this work item landed
        work = [
            m
            for m in pending_messages(stored)
            if m.queue == "work" and (iid, stored.execution_id, int(m.event["EventId"])) not in self._running_work
        ]
        if work:
            log.info(
                "devhost: the checkpoint of %s committed although it failed; running the %d activit%s it scheduled",
                iid,
                len(work),
                "y" if len(work) == 1 else "ies",
            )
            self._expected[iid] += len(work)
            self._run_local(work)

    async def _redeliver_later(self, iid: str, local: list[Message], delay: float = 1.0) -> None:
        self._redelivering[id(local)] = local
        try:
            await asyncio.sleep(delay)
        finally:
            self._redelivering.pop(id(local), None)
        self._deliver(iid, local, counted=True)

    async def _ack(self, consumed: list[Message]) -> None:
        """Delete consumed messages; for local results, the work items they came from.

        Work-item acks run in the background: the result is already checkpointed, so a
        lost ack only means the activity runs again and its result is dropped."""
        queued = [m for m in consumed if not m.is_local]
        local = [m.answers for m in consumed if m.answers is not None and m.answers.origin == "queue"]
        if queued:
            await self.store.ack(queued)
        if local:
            self._spawn(self._background, self.store.ack(local))

    async def _durable(self, local: list[Message], delay_seconds: float = 0.0) -> None:
        """Local results that cannot be applied now go through the queue like any other."""
        if local:
            visible_at = self.store.clock.now() + timedelta(seconds=delay_seconds) if delay_seconds else None
            await self.store.enqueue(
                [Message(m.instance_id, m.event, execution_id=m.execution_id, visible_at=visible_at) for m in local]
            )
            queued = [m.answers for m in local if m.answers is not None and m.answers.origin == "queue"]
            if queued:
                await self.store.ack(queued)

    async def _abandon(self, messages: list[Message], delay_seconds: float) -> None:
        await self._durable([m for m in messages if m.is_local], delay_seconds)
        queued = [m for m in messages if not m.is_local]
        if queued:
            await self.store.abandon(queued, delay_seconds=delay_seconds)

    async def _abandon_or_poison(self, group: list[Message]) -> None:
        await self._durable([m for m in group if m.is_local])
        group = [m for m in group if not m.is_local]
        poison = [m for m in group if m.dequeue_count >= self.options.max_dequeue_count]
        retry = [m for m in group if m.dequeue_count < self.options.max_dequeue_count]
        if poison:
            log.error(
                "devhost: %d poison message(s) set aside after %d attempts: %s",
                len(poison),
                self.options.max_dequeue_count,
                ", ".join(m.id for m in poison),
            )
            await self.store.poison(poison)
        if retry:
            await self.store.abandon(retry, delay_seconds=min(2 ** max(m.dequeue_count for m in retry), 600))

    # -------------------------------------------------------------- activities
    async def _run_activity(self, msg: Message) -> None:
        started = time.perf_counter()
        spans = tracing.active
        span = spans.activity_starts(msg) if spans is not None else None  # current while the function runs
        event_id = msg.event.get("EventId")
        key = (msg.instance_id, msg.execution_id, -1 if event_id is None else int(event_id))
        self._running_work.add(key)
        try:
            completion = await run_activity(
                self.app, msg, self.store.clock.now, self._executor, self.activity_overrides
            )
            self.stats["activities"] += 1
            if spans is not None:
                spans.after_activity(msg, completion, time.perf_counter() - started, span)
            # Straight to the orchestration; the work item is acked once the result is checkpointed.
            result = Message(msg.instance_id, completion, execution_id=msg.execution_id, answers=msg)
            self._running_work.discard(key)
            self._deliver(msg.instance_id, [result])
            # One line per activity execution, in the same shape as the server's function lines.
            failed = completion["EventType"] == EventType.TASK_FAILED
            log.info(
                "Executed 'Functions.%s' (%s, Id=%s, Duration=%.0fms, InstanceId=%s, TaskId=%s)%s",
                msg.event.get("Name"),
                "Failed" if failed else "Succeeded",
                msg.id,
                (time.perf_counter() - started) * 1000,
                msg.instance_id,
                msg.event.get("EventId"),
                f": {completion.get('Reason')}\n{completion.get('Details') or ''}".rstrip() if failed else "",
            )
        except Exception:
            self._running_work.discard(key)
            log.exception("devhost: activity work item %s failed", msg.id)
            if msg.origin == "queue":
                await self._abandon_or_poison([msg])
            else:
                self._spawn(self._background, self._retry_local(msg))

    async def _retry_local(self, msg: Message) -> None:
        """Our own work failed inside devhost (not in the activity): back off, then try again."""
        msg.dequeue_count += 1
        if msg.dequeue_count >= self.options.max_dequeue_count:
            log.error(
                "devhost: activity %s of %s failed %d times inside devhost; it runs again when the host restarts",
                msg.event.get("Name"),
                msg.instance_id,
                msg.dequeue_count,
            )
            self.poisoned.append(msg)
            return
        await asyncio.sleep(min(2**msg.dequeue_count * 0.1, 30))
        self._run_local([msg])
