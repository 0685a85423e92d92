"""Writes rollout reports as blobs `{container}/{updateId}.json` in the app's storage.

Uses the same storage connection as the Functions runtime (AzureWebJobsStorage):
a connection string locally (Azurite), identity-based in Azure: `__blobServiceUri`
(the account's primary blob endpoint, set by infra/ from the account itself, so the
right DNS suffix in every Azure cloud) with the managed identity in `__clientId`.
No endpoint is ever built from an account name here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient, ContentSettings

from .settings import STORAGE_CONNECTION


def blob_service(env: Mapping[str, str] | None = None) -> BlobServiceClient:
    env = os.environ if env is None else env
    conn = env.get(STORAGE_CONNECTION)
    if conn:
        return BlobServiceClient.from_connection_string(conn)
    prefix = f"{STORAGE_CONNECTION}__"
    url = env.get(prefix + "blobServiceUri")
    if not url:
        raise RuntimeError(
            f"set {STORAGE_CONNECTION} (a connection string) or {prefix}blobServiceUri"
            " (identity-based) to store reports"
        )
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    client_id = env.get(prefix + "clientId")
    credential = ManagedIdentityCredential(client_id=client_id) if client_id else DefaultAzureCredential()
    return BlobServiceClient(account_url=url, credential=credential)


def save_report(report: dict[str, Any], container: str, env: Mapping[str, str] | None = None) -> str:
    """Upload (overwrite: a replayed activity writes the same report again) and return the blob path."""
    service = blob_service(env)
    with service:
        try:
            service.create_container(container)
        except ResourceExistsError:
            pass
        name = f"{report['updateId']}.json"
        service.get_blob_client(container, name).upload_blob(
            json.dumps(report, indent=2),
            overwrite=True,
            content_settings=ContentSettings(content_type="application/json"),
        )
    return f"{container}/{name}"
