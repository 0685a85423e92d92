"""Connecting to a storage account: settings, clients and retry policy (DTFx's `StorageAccountDetails` /
`AzureStorageClient` set-up). A connection string, `UseDevelopmentStorage=true` (Azurite) or
identity-based settings (`{connection}__accountName`, `__tableServiceUri`, ...) as the Functions host reads them.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from azure.core.pipeline.policies import RetryMode
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables.aio import TableServiceClient
from azure.storage.blob.aio import BlobServiceClient, LinearRetry
from azure.storage.queue.aio import QueueServiceClient

log = logging.getLogger("devhost.store")

# Azurite's well-known development account (public; Microsoft documents it).
_DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEVELOPMENT_CONNECTION_STRING = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + _DEV_KEY + ";"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)


class StorageUnavailable(Exception):
    """Azure Storage (or Azurite) cannot be reached or refused us; the message names the endpoint."""


def _setting(settings: Mapping[str, str], name: str) -> str | None:
    for key in (name, name.replace("__", ":")):
        value = settings.get(key)
        if value:
            return value
    return None


@dataclass
class Endpoints:
    tables: TableServiceClient
    queues: QueueServiceClient
    blobs: BlobServiceClient
    credential: Any = None


# Azurite on this machine is back within seconds of a restart, while the storage SDKs wait 18 s,
# then 24 s and 42 s between attempts: retry local queues and blobs every second for about a
# minute instead, and say so (at most every 10 s), so a host stalled on storage explains itself.
_LOOPBACK = re.compile(r"//(127\.0\.0\.1|localhost|\[::1\])[:/]", re.IGNORECASE)
_LOCAL_RETRIES = 60
_TABLE_RETRIES = 5


class _LocalStorageRetry(LinearRetry):
    last_note = 0.0
    # Requests that failed and were retried, in this process: a store compares it with what it saw
    # last (`AzureStorageStore.outage_ended`), as Azurite restarted may have lost acknowledged writes.
    failures = 0

    def __init__(self) -> None:
        super().__init__(backoff=1, random_jitter_range=1, retry_total=_LOCAL_RETRIES, retry_connect=_LOCAL_RETRIES)

    async def sleep(self, settings: dict[str, Any], transport: Any) -> None:
        _LocalStorageRetry.failures += 1
        now = time.monotonic()
        if now - _LocalStorageRetry.last_note >= 10:
            _LocalStorageRetry.last_note = now
            history = settings.get("history") or []
            error = getattr(history[-1], "error", None) if history else None
            reason = (str(error).splitlines() or [""])[0] if error else "no usable answer"
            log.warning("devhost: Azure Storage request failed (%s); retrying every second", reason)
        await super().sleep(settings, transport)


def retried_failures() -> int:
    """How many storage requests to a local endpoint failed and were retried so far."""
    return _LocalStorageRetry.failures


def _retry_options(local: bool) -> dict[str, Any]:
    return {"retry_policy": _LocalStorageRetry()} if local else {}


def _table_retry_options(local: bool) -> dict[str, Any]:
    """The tables client's own policy, every second for a local Azurite (its default backs off
    exponentially, so after a restart a checkpoint could sleep seconds longer than needed). Only
    five tries: a status read must answer 503 within seconds while storage is away; the
    dispatcher retries its work items itself."""
    if not local:
        return {}
    return {
        "retry_mode": RetryMode.Fixed,
        "retry_backoff_factor": 1.0,
        "retry_total": _TABLE_RETRIES,
        "retry_connect": _TABLE_RETRIES,
    }


def shared_transport(local: bool) -> AioHttpTransport:
    """One transport (so one aiohttp session and connection pool, opened on first use) for the
    table, queue and blob clients. For loopback endpoints without the environment's proxy and
    netrc settings: with them aiohttp reads ~/.netrc in a worker thread before every request
    (~1 ms and a thread hand-off per checkpoint), and no proxy stands between us and a local
    Azurite. Remote endpoints keep the environment's settings (a proxy may be required)."""
    return AioHttpTransport(use_env_settings=not local)


def clients(settings: Mapping[str, str], connection: str) -> Endpoints:
    """Clients from a connection string, `UseDevelopmentStorage=true` or identity settings."""
    text = _setting(settings, connection)
    if text:
        if text.replace(" ", "").lower().startswith("usedevelopmentstorage=true"):
            text = DEVELOPMENT_CONNECTION_STRING
        local = bool(_LOOPBACK.search(text))
        transport = shared_transport(local)
        return Endpoints(
            TableServiceClient.from_connection_string(text, transport=transport, **_table_retry_options(local)),
            QueueServiceClient.from_connection_string(text, transport=transport, **_retry_options(local)),
            BlobServiceClient.from_connection_string(text, transport=transport, **_retry_options(local)),
        )
    account = _setting(settings, f"{connection}__accountName")
    uris = {svc: _setting(settings, f"{connection}__{svc}ServiceUri") for svc in ("table", "queue", "blob")}
    if not account and not all(uris.values()):
        raise StorageUnavailable(
            f"No storage connection configured: set '{connection}' (a connection string, or "
            f"UseDevelopmentStorage=true for Azurite) or '{connection}__accountName' for identity-based access."
        )
    from azure.identity.aio import DefaultAzureCredential

    client_id = _setting(settings, f"{connection}__clientId")
    credential = DefaultAzureCredential(managed_identity_client_id=client_id) if client_id else DefaultAzureCredential()
    table_uri = uris["table"] or f"https://{account}.table.core.windows.net"
    queue_uri = uris["queue"] or f"https://{account}.queue.core.windows.net"
    blob_uri = uris["blob"] or f"https://{account}.blob.core.windows.net"
    transport = shared_transport(all(_LOOPBACK.search(uri + "/") for uri in (table_uri, queue_uri, blob_uri)))
    return Endpoints(
        TableServiceClient(table_uri, credential=credential, transport=transport),
        QueueServiceClient(queue_uri, credential=credential, transport=transport),
        BlobServiceClient(blob_uri, credential=credential, transport=transport),
        credential,
    )


async def probe(url: str, timeout: float = 5.0) -> None:
    """Fail fast with one clear line when nothing listens at `url` (the SDKs would retry for minutes)."""
    import aiohttp

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.get(url) as response:
                await response.read()
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        hint = "; is Azurite running?" if "//127.0.0.1:" in url or "//localhost:" in url else ""
        raise StorageUnavailable(f"Azure Storage is not reachable at {url}: {reason}{hint}") from None
