"""Secrets: Key Vault in Azure (managed identity), environment variables locally.

When KEY_VAULT_URL is set the value comes from Key Vault through DefaultAzureCredential
(the function app's managed identity) and is cached for a few minutes, so a rollout
of 1,000 targets makes one Key Vault call, not 3,000. Without it (local runs), the
secret `target-api-key` is read from the environment variable TARGET_API_KEY.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient

from .settings import KEY_VAULT_URL

DEFAULT_TTL_SECONDS = 300.0


class SecretNotFound(LookupError):
    pass


def env_name(secret_name: str) -> str:
    """`target-api-key` -> `TARGET_API_KEY` (Key Vault names allow only letters, digits, '-')."""
    return secret_name.replace("-", "_").upper()


class SecretReader:
    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        client_factory: Callable[[str], Any] | None = None,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._env = os.environ if env is None else env
        self._client_factory = client_factory or (
            lambda url: SecretClient(vault_url=url, credential=DefaultAzureCredential())
        )
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, str]] = {}
        self._client: Any = None
        self._lock = threading.Lock()

    def get(self, name: str) -> str:
        vault_url = self._env.get(KEY_VAULT_URL)
        if not vault_url:
            value = self._env.get(env_name(name))
            if value is None:
                raise SecretNotFound(f"secret '{name}': set {KEY_VAULT_URL}, or {env_name(name)} for local runs")
            return value
        with self._lock:
            cached = self._cache.get(name)
            now = self._clock()
            if cached and cached[0] > now:
                return cached[1]
            if self._client is None:
                self._client = self._client_factory(vault_url)
            secret = self._client.get_secret(name)
            if secret.value is None:
                raise SecretNotFound(f"secret '{name}' in {vault_url} has no value")
            self._cache[name] = (now + self._ttl, secret.value)
            return str(secret.value)


_default: SecretReader | None = None


def get_secret(name: str) -> str:
    """The process-wide reader (one Key Vault client, one cache)."""
    global _default
    if _default is None:
        _default = SecretReader()
    return _default.get(name)
