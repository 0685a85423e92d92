"""The targets' HTTP API, as the activities call it.

Errors are split the way a retry policy cares about: `TransientTargetError` (timeouts,
5xx, 429: try again) and `TargetRejected` (4xx: the target refused the update).
"""

from __future__ import annotations

from typing import Any

import aiohttp

API_KEY_HEADER = "x-api-key"
TIMEOUT = aiohttp.ClientTimeout(total=30, connect=5)


class TargetError(Exception):
    pass


class TransientTargetError(TargetError):
    pass


class TargetRejected(TargetError):
    pass


class TargetsApi:
    def __init__(self, base_url: str, api_key: str) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {API_KEY_HEADER: api_key}

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self._base}/{path}"
        try:
            async with aiohttp.ClientSession(timeout=TIMEOUT, headers=self._headers) as session:
                async with session.request(method, url, json=body) as resp:
                    text = await resp.text()
                    if resp.status == 429 or resp.status >= 500:
                        raise TransientTargetError(f"{method} {url} -> {resp.status}: {text[:200]}")
                    if resp.status >= 400:
                        raise TargetRejected(f"{method} {url} -> {resp.status}: {text[:200]}")
                    return await resp.json(content_type=None) if text else {}
        except (aiohttp.ClientConnectionError, TimeoutError) as error:
            raise TransientTargetError(f"{method} {url}: {error}") from error

    async def apply(self, target: str, package: str, version: str, update_id: str) -> dict[str, Any]:
        return await self._call(
            "POST", f"targets/{target}/update", {"package": package, "version": version, "updateId": update_id}
        )

    async def health(self, target: str) -> dict[str, Any]:
        return await self._call("GET", f"targets/{target}/health")

    async def rollback(self, target: str, package: str, previous_version: str | None, update_id: str) -> dict[str, Any]:
        return await self._call(
            "POST",
            f"targets/{target}/rollback",
            {"package": package, "version": previous_version, "updateId": update_id},
        )
