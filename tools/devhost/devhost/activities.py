"""Running one activity work item and turning its outcome into a completion event.

Encoding follows the worker (docs/durable-protocol.md §3.1): the action's input text goes through
`ActivityTriggerConverter.decode`, the return value through `encode`.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import json
import os
import traceback
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Executor
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from azure.functions.durable_functions import ActivityTriggerConverter
from azure.functions.meta import Datum

from . import history as h
from .actions import HTTP_ACTIVITY_NAME
from .history import Event
from .index import AppIndex, FunctionInfo
from .model import Message

ActivityImpl = Callable[..., Any]


class ActivityError(Exception):
    """Why an activity produced no result: turned into a TaskFailed event."""


def decode_input(text: str | None) -> Any:
    if text is None:
        return None
    return ActivityTriggerConverter.decode(Datum(value=text, type="string"), trigger_metadata=None)


def encode_output(value: Any) -> str | None:
    if value is None:
        return None
    datum = ActivityTriggerConverter.encode(value, expected_type=None)
    return datum.value if datum is not None else None


def _call_args(info: FunctionInfo, arg: Any, invocation_id: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {info.trigger_param: arg}
    if _takes_context(info.handler) and info.trigger_param != "context":
        kwargs["context"] = _context(info, invocation_id)
    return kwargs


@functools.lru_cache(maxsize=1024)
def _takes_context(handler: Callable[..., Any]) -> bool:
    """Whether the function declares a `context` parameter (read once per function, as the worker
    reads a function's signature once when it indexes it, not per invocation)."""
    return "context" in inspect.signature(handler).parameters


def _context(info: FunctionInfo, invocation_id: str) -> Any:
    """The fields of `func.Context` that activity code reads."""
    return SimpleNamespace(
        invocation_id=invocation_id,
        function_name=info.function_name,
        function_directory="",
        trace_context=None,
        retry_context=None,
    )


async def run_activity(
    app: AppIndex,
    msg: Message,
    now: Callable[[], datetime],
    executor: Executor | None = None,
    overrides: dict[str, ActivityImpl] | None = None,
) -> Event:
    """Run the activity a work-item message names; return TaskCompleted or TaskFailed."""
    scheduled = msg.event
    task_id = scheduled["EventId"]
    name = scheduled.get("Name") or ""
    try:
        if overrides and name.lower() in overrides:
            arg = decode_input(scheduled.get("Input"))
            value = overrides[name.lower()](arg)
            if inspect.isawaitable(value):
                value = await value
        elif name == HTTP_ACTIVITY_NAME:
            value = await _http_activity(scheduled.get("Input"))
            return h.task_completed(now(), task_id, json.dumps(value))
        else:
            info = app.activity(name)
            if info is None:
                raise ActivityError(
                    f"The function '{name}' doesn't exist, is disabled, or is not an activity function."
                )
            arg = decode_input(scheduled.get("Input"))
            kwargs = _call_args(info, arg, msg.id)
            if info.is_async:
                value = await info.handler(**kwargs)
            else:
                loop = asyncio.get_running_loop()
                # In the caller's context (as asyncio.to_thread): a span it made current stays current.
                call = contextvars.copy_context().run
                value = await loop.run_in_executor(executor, lambda: call(lambda: info.handler(**kwargs)))
        result = encode_output(value)
    except Exception as exc:
        reason = f"Activity function '{name}' failed: {type(exc).__name__}: {exc}"
        return h.task_failed(now(), task_id, reason, failure_details(exc))
    return h.task_completed(now(), task_id, result)


# Frames of the host, not of the user's code: the worker's traceback shows only the function's own.
_HOST_DIRS = tuple(str(Path(p).resolve().parent) + os.sep for p in (__file__, asyncio.__file__, futures.__file__))


def failure_details(exc: BaseException) -> str:
    """The failure's traceback as the worker reports it: the message, the user's frames, and the chained
    cause or context, without devhost's (or asyncio's and the thread pool's) own frames."""
    te = traceback.TracebackException.from_exception(exc)
    seen: set[int] = set()
    todo: list[traceback.TracebackException | None] = [te]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        item.stack = traceback.StackSummary.from_list(
            [f for f in item.stack if not str(Path(f.filename).resolve()).startswith(_HOST_DIRS)]
        )
        todo += [item.__cause__, item.__context__]
    return "".join(te.format())


async def _http_activity(request_text: str | None) -> dict[str, Any]:
    """`call_http`: one request, the first response (no 202 polling; docs/durable-protocol.md §2.6)."""
    import aiohttp

    request = json.loads(request_text or "{}")
    headers = {k: (v[0] if isinstance(v, list) else v) for k, v in (request.get("headers") or {}).items()}
    async with aiohttp.ClientSession() as session:
        async with session.request(
            request.get("method", "GET"), request["uri"], data=request.get("content"), headers=headers
        ) as resp:
            body = await resp.text()
            return {"statusCode": resp.status, "headers": dict(resp.headers), "content": body}
