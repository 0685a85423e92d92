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


# What DTFx's `BlobPartitionLeaseManager` (Partitioning/BlobPartitionLeaseManager.cs 30, 55) writes to
# `{hub}-leases`: the hub's info blob, and one lease blob per control queue under the lease type
# ("default", or "intent" with partition manager V2).
DTFX_LEASE_MARKERS = ("taskhub.json", "default/", "intent/")


class HubInUse(Exception):
    """Another devhost holds the task hub's lease: two hosts on one hub would fight over messages."""


class HubOfAnotherHost(HubInUse):
    """The hub was written by the Azure Functions host (DTFx leases): its formats are not devhost's."""


class HubLease:
    def __init__(self, blobs: BlobServiceClient, layout: HubLayout) -> None:
        self._blobs = blobs
        self._layout = layout
        self._lease: BlobLeaseClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._seconds = LEASE_SECONDS

    @property
    def held(self) -> bool:
        """While held, no other host writes to the hub: this process's cache is the truth."""
        return self._lease is not None

    async def acquire(self, lease_seconds: int = LEASE_SECONDS) -> None:
        """Take the hub's blob lease (renewed in the background); HubInUse if another devhost has it.

        `lease_seconds` (15-60) is how long a crashed devhost keeps others off the hub."""
        hub = self._layout.hub
        container = self._blobs.get_container_client(self._layout.leases_container)
        async for found in container.list_blobs():
            if found.name.startswith(DTFX_LEASE_MARKERS):
                raise HubOfAnotherHost(
                    f"Task hub '{hub}' belongs to the Azure Functions host (its lease blob '{found.name}' is in "
                    f"{self._layout.leases_container}); devhost keeps its own format and cannot share a hub: "
                    "use another hub name (host.json extensions.durableTask.hubName) or delete that hub."
                )
        blob = self._blobs.get_blob_client(self._layout.leases_container, LEASE_BLOB)
        with contextlib.suppress(ResourceExistsError):
            await blob.upload_blob(
                json.dumps({"TaskHubName": hub, "PartitionCount": self._layout.partition_count}), overwrite=False
            )
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
        self._seconds = lease_seconds
        self._task = asyncio.ensure_future(self._renew(lease, min(LEASE_RENEW_SECONDS, lease_seconds / 3)))

    async def _renew(self, lease: BlobLeaseClient, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await lease.renew()
            except Exception as exc:  # keep trying: a blip must not make us give up the hub
                if await self._take_again(lease):
                    continue
                log.error(
                    "devhost: renewing the lease on task hub %s failed: %s",
                    self._layout.hub,
                    (str(exc).splitlines() or [type(exc).__name__])[0],
                )

    async def _take_again(self, lease: BlobLeaseClient) -> bool:
        """A storage restart that lost the lease (or its blob and container): take it again, same lease id."""
        try:
            with contextlib.suppress(ResourceExistsError):
                await self._blobs.create_container(self._layout.leases_container)
            blob = self._blobs.get_blob_client(self._layout.leases_container, LEASE_BLOB)
            with contextlib.suppress(ResourceExistsError):
                await blob.upload_blob(
                    json.dumps({"TaskHubName": self._layout.hub, "PartitionCount": self._layout.partition_count}),
                    overwrite=False,
                )
            await lease.acquire(lease_duration=self._seconds)
        except Exception:
            return False
        log.warning("devhost: the lease on task hub %s was lost (storage restarted?); taken again", self._layout.hub)
        return True

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
