"""Calling a non-durable function the way the Python worker does, with one log line per call.

The worker passes exactly the parameters the function declares: the trigger value, a
binding value per input binding (for `durableClient`, the binding JSON string that the
SDK's middleware turns into a client), a `func.Out` per named output binding, and a
`context` when asked for. Sync functions run on a thread pool so that one slow function
never blocks the event loop that also serves the Durable API the function may call.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import azure.functions as func

from ..index import DURABLE_CLIENT, FunctionInfo

log = logging.getLogger("devhost.functions")

_OUT_DIRECTIONS = (1, "out", "OUT")


@dataclass
class InvocationContext:
    """The `func.Context` fields user code reads (the worker's own class is internal)."""

    invocation_id: str
    function_name: str
    function_directory: str
    trace_context: Any = None
    retry_context: Any = None
    thread_local_storage: Any = None


class OutValue(func.Out):  # type: ignore[type-arg]
    """A `func.Out` for a named output binding; devhost records the value and logs it."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


# origin, hub from the binding (or None), connection from the binding (or None) -> binding JSON
ClientBindingFactory = Callable[[str, "str | None", "str | None"], str]


class FunctionInvoker:
    """Invokes FunctionInfo handlers with worker-like argument binding and logging."""

    def __init__(self, executor: Executor, client_binding: ClientBindingFactory, function_directory: str = "") -> None:
        self.executor = executor
        self.client_binding = client_binding
        self.function_directory = function_directory

    def build_kwargs(
        self, info: FunctionInfo, trigger_value: Any, origin: str, invocation_id: str
    ) -> tuple[dict[str, Any], dict[str, OutValue]]:
        """The keyword arguments for one call, plus the output-binding holders to read afterwards."""
        params = inspect.signature(info.handler).parameters
        accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        kwargs: dict[str, Any] = {info.trigger_param: trigger_value}
        outs: dict[str, OutValue] = {}
        for binding in info.bindings:
            name = binding.get("name")
            if not name or name == info.trigger_param or name == "$return":
                continue
            if binding.get("type") == DURABLE_CLIENT:
                kwargs[name] = self.client_binding(origin, binding.get("taskHub"), binding.get("connectionName"))
            elif binding.get("direction") in _OUT_DIRECTIONS:
                outs[name] = OutValue()
                kwargs[name] = outs[name]
            elif name in params or accepts_any:
                log.warning(
                    "devhost: %s: input binding '%s' (%s) is not supported locally; passing None",
                    info.function_name,
                    name,
                    binding.get("type"),
                )
                kwargs[name] = None
        if "context" in params and "context" not in kwargs:
            kwargs["context"] = InvocationContext(invocation_id, info.function_name, self.function_directory)
        if not accepts_any:
            kwargs = {k: v for k, v in kwargs.items() if k in params}
        return kwargs, outs

    async def call(
        self,
        info: FunctionInfo,
        trigger_value: Any,
        *,
        origin: str,
        reason: str,
        instance_of: Callable[[Any], str | None] | None = None,
        convert: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Run the function; log `Executed ...` with duration; re-raise its exception after logging it.

        `convert` maps the return value to what the host sends on (an invalid return value
        fails the invocation, as in the worker); `instance_of` names the orchestration
        instance the call was about, for the log line."""
        invocation_id = str(uuid.uuid4())
        started = time.perf_counter()
        outcome = "Failed"
        instance: str | None = None
        try:
            kwargs, outs = self.build_kwargs(info, trigger_value, origin, invocation_id)
            if info.is_async:
                result = await info.handler(**kwargs)
            else:
                loop = asyncio.get_running_loop()
                # With the caller's context (as asyncio.to_thread): the request's span stays current,
                # so the SDK client's `traceparent` header links what the function starts to it.
                call = functools.partial(info.handler, **kwargs)
                result = await loop.run_in_executor(self.executor, contextvars.copy_context().run, call)
            if instance_of is not None:
                instance = instance_of(result)
            if convert is not None:
                result = convert(result)
            outcome = "Succeeded"
            for name, holder in outs.items():
                if holder.get() is not None:
                    log.info(
                        "devhost: %s: output binding '%s' was set (devhost does not deliver it): %.200r",
                        info.function_name,
                        name,
                        holder.get(),
                    )
            return result
        except Exception:
            log.exception(
                "Exception while executing 'Functions.%s' (Id=%s, Reason=%s)", info.function_name, invocation_id, reason
            )
            raise
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            extra = f", InstanceId={instance}" if instance else ""
            log.info(
                "Executed 'Functions.%s' (%s, Id=%s, Duration=%.0fms%s)",
                info.function_name,
                outcome,
                invocation_id,
                elapsed,
                extra,
            )
