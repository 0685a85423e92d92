"""Secrets from Key Vault, tested at the SDK's own seams: a fake credential and a fake
HTTP transport under the real `SecretClient` (its challenge-auth flow included)."""

from __future__ import annotations

import json
import time

import pytest
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import HttpResponse, HttpTransport
from azure.keyvault.secrets import SecretClient

from update_service.secrets import SecretNotFound, SecretReader

VAULT = "https://rollout-kv.vault.azure.net"


class FakeCredential:
    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("fake-token", int(time.time()) + 3600)


class _Response(HttpResponse):
    def __init__(self, request, status: int, body: dict | None = None, headers: dict | None = None) -> None:
        super().__init__(request, None)
        self.status_code = status
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.reason = "OK" if status < 400 else "Error"
        self._body = json.dumps(body or {}).encode()

    def body(self) -> bytes:
        return self._body

    def text(self, encoding: str | None = None) -> str:
        return self._body.decode()

    def json(self) -> dict:
        return json.loads(self._body)

    def read(self) -> bytes:
        return self._body

    @property
    def content(self) -> bytes:
        return self._body


class FakeVault(HttpTransport):
    """Answers like Key Vault: 401 + challenge without a token, the secret with one."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.requests: list[str] = []

    def send(self, request, **kwargs):  # type: ignore[override]
        self.requests.append(f"{request.method} {request.url}")
        if "Authorization" not in request.headers:
            challenge = (
                'Bearer authorization="https://login.microsoftonline.com/tenant-id", resource="https://vault.azure.net"'
            )
            return _Response(request, 401, headers={"WWW-Authenticate": challenge})
        name = request.url.split("/secrets/")[1].split("/")[0].split("?")[0]
        if name not in self.secrets:
            return _Response(request, 404, {"error": {"code": "SecretNotFound", "message": name}})
        return _Response(
            request,
            200,
            {"value": self.secrets[name], "id": f"{VAULT}/secrets/{name}/v1", "attributes": {"enabled": True}},
        )

    def open(self) -> None: ...
    def close(self) -> None: ...
    def __enter__(self):
        return self

    def __exit__(self, *args: object) -> None: ...


def reader(vault: FakeVault, credential: FakeCredential, clock=time.monotonic) -> SecretReader:
    return SecretReader(
        {"KEY_VAULT_URL": VAULT},
        client_factory=lambda url: SecretClient(url, credential, transport=vault),
        clock=clock,
    )


def test_reads_from_key_vault_with_the_identity_and_caches() -> None:
    vault, credential = FakeVault({"target-api-key": "s3cret"}), FakeCredential()
    secrets = reader(vault, credential)
    assert secrets.get("target-api-key") == "s3cret"
    assert secrets.get("target-api-key") == "s3cret"
    assert sum("/secrets/target-api-key" in r for r in vault.requests) == 2  # challenge + one authorized read
    assert credential.scopes and credential.scopes[0] == ("https://vault.azure.net/.default",)


def test_cache_expires_after_its_ttl() -> None:
    now = [1000.0]
    vault = FakeVault({"target-api-key": "v1"})
    secrets = reader(vault, FakeCredential(), clock=lambda: now[0])
    assert secrets.get("target-api-key") == "v1"
    vault.secrets["target-api-key"] = "v2"
    assert secrets.get("target-api-key") == "v1"
    now[0] += 301
    assert secrets.get("target-api-key") == "v2"


def test_missing_secret_in_the_vault_is_an_error() -> None:
    from azure.core.exceptions import ResourceNotFoundError

    with pytest.raises(ResourceNotFoundError):
        reader(FakeVault({}), FakeCredential()).get("target-api-key")


def test_local_runs_read_the_environment() -> None:
    assert SecretReader({"TARGET_API_KEY": "local"}).get("target-api-key") == "local"
    with pytest.raises(SecretNotFound, match="TARGET_API_KEY"):
        SecretReader({}).get("target-api-key")
