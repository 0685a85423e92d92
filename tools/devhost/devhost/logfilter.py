"""Orchestrator log lines once, not once per replay.

Every episode replays the orchestrator from the start, so a plain `logging.info` in it
would print again on each replay. This handler filter drops records logged by
orchestrator code while the SDK's context says it is replaying. It only looks while an
episode runs (a context variable the engine sets), finding the orchestration context
among the locals of the frames that led to the logging call.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Iterator
from types import FrameType

from azure.durable_functions import DurableOrchestrationContext

_IN_EPISODE: contextvars.ContextVar[bool] = contextvars.ContextVar("devhost_in_episode", default=False)
_MAX_FRAMES = 40


@contextlib.contextmanager
def episode() -> Iterator[None]:
    """Mark the orchestrator call the engine is about to make."""
    token = _IN_EPISODE.set(True)
    try:
        yield
    finally:
        _IN_EPISODE.reset(token)


class ReplaySilencer(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not _IN_EPISODE.get():
            return True
        frame: FrameType | None = sys._getframe(1)
        for _ in range(_MAX_FRAMES):
            if frame is None:
                break
            for value in frame.f_locals.values():
                if isinstance(value, DurableOrchestrationContext):
                    return not value.is_replaying
            frame = frame.f_back
        return True


def install(handler: logging.Handler) -> None:
    """Silence replayed orchestrator logs on this handler (idempotent)."""
    if not any(isinstance(f, ReplaySilencer) for f in handler.filters):
        handler.addFilter(ReplaySilencer())
