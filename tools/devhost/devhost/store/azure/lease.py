"""The hub lease: one devhost per task hub (DTFx's `BlobPartitionLeaseManager` takes one lease per
control-queue partition in `{hub}-leases`; devhost runs all partitions in one process, so it takes a
single lease on `devhost.lock` in the same container)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.blob.aio import BlobLeaseClient, BlobServiceClient

from .layout import HubLayout

log = logging.getLogger("devhost.store")

LEASE_SECONDS = 30
LEASE_RENEW_SECONDS = 10
LEASE_BLOB = "devhost.lock"


class HubInUse(Exception):
    """Another devhost holds the task hub's lease: two hosts on one hub would fight over messages."""


class HubLease:
    def __init__(self, blobs: BlobServiceClient, layout: HubLayout) -> None:
        self._blobs = blobs
        self._layout = layout
        self._lease: BlobLeaseClient | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def held(self) -> bool:
        """While held, no other host writes to the hub: this process's cache is the truth."""
        return self._lease is not None

    async def acquire(self, lease_seconds: int = LEASE_SECONDS) -> None:
        """Take the hub's blob lease (renewed in the background); HubInUse if another devhost has it.

        `lease_seconds` (15-60) is how long a crashed devhost keeps others off the hub."""
        hub = self._layout.hub
        blob = self._blobs.get_blob_client(self._layout.leases_container, LEASE_BLOB)
        with contextlib.suppress(ResourceExistsError):
            await blob.upload_blob(json.dumps({"TaskHubName": hub, "PartitionCount": self._layout.partition_count}),
                                   overwrite=False)
        lease = BlobLeaseClient(blob)
        try:
            await lease.acquire(lease_duration=lease_seconds)
        except ResourceExistsError:
            raise HubInUse(
                f"Task hub '{hub}' is in use by another devhost (lease on {blob.url}); stop it, or wait "
                f"{lease_seconds}s if it crashed, or use a different hub name."
            ) from None
        except HttpResponseError as exc:
            if exc.status_code == 409:
                raise HubInUse(f"Task hub '{hub}' is in use by another devhost (lease on {blob.url}).") from None
            raise
        self._lease = lease
        self._task = asyncio.ensure_future(self._renew(lease, min(LEASE_RENEW_SECONDS, lease_seconds / 3)))

    async def _renew(self, lease: BlobLeaseClient, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await lease.renew()
            except Exception as exc:  # keep trying: a blip must not make us give up the hub
                log.error("devhost: renewing the lease on task hub %s failed: %s", self._layout.hub, exc)

    async def release(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        lease, self._lease = self._lease, None
        if lease is not None:
            with contextlib.suppress(Exception):
                await lease.release()
