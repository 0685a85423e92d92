"""Noticing that the hub's tables, queues or containers are gone from storage.

Azurite persists on an interval: killed before it first saved a hub, it restarts without the hub's
resources at all (a deleted table or queue looks the same). Every request then fails with
TableNotFound, QueueNotFound or ContainerNotFound, for ever unless someone recreates them, which
a store does (idempotently, as at start-up) when it sees one of these codes. Pure: no I/O.
"""

from __future__ import annotations

from azure.core.exceptions import ServiceRequestError

# Storage's error codes for a missing table (Table service), queue (Queue service) and container
# (Blob service). A missing entity, message or blob has other codes (ResourceNotFound,
# MessageNotFound, BlobNotFound) and means nothing of the sort.
MISSING_RESOURCE_CODES = frozenset({"TableNotFound", "QueueNotFound", "ContainerNotFound"})


class HubResourcesMissing(ServiceRequestError):
    """A hub table, queue or container did not exist; the store has recreated them.

    A `ServiceRequestError`, so callers treat it as storage having been away: the dispatcher retries
    the work item and resumes every instance from storage (where the store writes back what it
    holds in its cache), the HTTP layer answers 503 with Retry-After."""


def missing_resource(exc: BaseException | None) -> str | None:
    """The error code if `exc`, or an exception it was raised from or while handling (a
    `ConcurrencyError` hides the `TableTransactionError` that caused it), says that a table, queue
    or container does not exist; None otherwise."""
    seen = 0
    while exc is not None and seen < 8:
        code = getattr(exc, "error_code", None)
        text = str(getattr(code, "value", code)) if code is not None else ""
        if text in MISSING_RESOURCE_CODES:
            return text
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None
