"""The `{hub}-largemessages` container: values too large for a queue message or a table property,
gzip-compressed as DTFx's `MessageManager` stores them."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import Sequence

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient


class LargeMessages:
    def __init__(self, container: ContainerClient) -> None:
        self.container = container

    async def put(self, name: str, text: str) -> None:
        await self.container.upload_blob(name, gzip.compress(text.encode("utf-8"), compresslevel=5), overwrite=True)

    async def get(self, name: str) -> str:
        downloader = await self.container.download_blob(name)
        return gzip.decompress(await downloader.readall()).decode("utf-8")

    async def delete(self, names: Sequence[str]) -> None:
        """Delete blobs; missing ones are fine (and a failure only leaves garbage behind)."""

        async def one(name: str) -> None:
            with contextlib.suppress(ResourceNotFoundError):
                await self.container.delete_blob(name)

        if names:
            await asyncio.gather(*(one(n) for n in names), return_exceptions=True)

    async def names_under(self, prefix: str) -> list[str]:
        return [b.name async for b in self.container.list_blobs(name_starts_with=prefix)]

    async def close(self) -> None:
        await self.container.close()
