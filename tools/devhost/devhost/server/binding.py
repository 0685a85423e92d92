"""The durable client binding JSON the extension hands to `durable_client_input` functions.

The SDK builds `DurableOrchestrationClient` from this string (docs/durable-protocol.md §5.2): it
calls `rpcBaseUrl` + path for every operation (so the trailing slash matters), and
copies `managementUrls` into check-status responses, swapping in the caller's origin.
Here the RPC base and the public webhook are the same routes on the same server.
"""

from __future__ import annotations

import json
from urllib.parse import quote

WEBHOOK_PATH = "/runtime/webhooks/durabletask"
DEFAULT_CONNECTION = "Storage"
INSTANCE_PLACEHOLDER = "INSTANCEID"


def management_query(hub: str, connection: str | None) -> str:
    """The query suffix the extension puts on management URLs (values URL-encoded)."""
    return f"taskHub={quote(hub, safe='')}&connection={quote(connection or DEFAULT_CONNECTION, safe='')}"


def management_urls(origin: str, hub: str, connection: str | None, instance_id: str) -> dict[str, str]:
    """The management URL set for one instance, in the extension's key order.

    `origin` is `scheme://host[:port]` of the request, so links work for whoever asked."""
    base = f"{origin.rstrip('/')}{WEBHOOK_PATH}/instances/{instance_id}"
    q = management_query(hub, connection)
    return {
        "id": instance_id,
        "statusQueryGetUri": f"{base}?{q}",
        "sendEventPostUri": f"{base}/raiseEvent/{{eventName}}?{q}",
        "terminatePostUri": f"{base}/terminate?reason={{text}}&{q}",
        "rewindPostUri": f"{base}/rewind?reason={{text}}&{q}",
        "purgeHistoryDeleteUri": f"{base}?{q}",
        "restartPostUri": f"{base}/restart?{q}",
        "suspendPostUri": f"{base}/suspend?reason={{text}}&{q}",
        "resumePostUri": f"{base}/resume?reason={{text}}&{q}",
    }


def check_status_payload(origin: str, hub: str, connection: str | None, instance_id: str) -> dict[str, str]:
    """The body of the extension's own 202 start response (no rewindPostUri, §6.4)."""
    urls = management_urls(origin, hub, connection, instance_id)
    urls.pop("rewindPostUri")
    return urls


def client_binding_json(*, origin: str, rpc_base_url: str, hub: str, connection: str | None = None) -> str:
    """The binding string for a `durableClient` input: what `DurableOrchestrationClient(...)` parses."""
    if not rpc_base_url.endswith("/"):
        rpc_base_url += "/"
    webhook = f"{origin.rstrip('/')}{WEBHOOK_PATH}"
    create = f"{webhook}/orchestrators/{{functionName}}[/{{instanceId}}]"
    return json.dumps(
        {
            "taskHubName": hub,
            "connectionName": connection,
            "creationUrls": {
                "createNewInstancePostUri": f"{create}?",
                "createAndWaitOnNewInstancePostUri": (
                    f"{create}?timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}&"
                ),
            },
            "managementUrls": management_urls(origin, hub, connection, INSTANCE_PLACEHOLDER),
            "baseUrl": webhook,
            "requiredQueryStringParameters": "",
            "rpcBaseUrl": rpc_base_url,
            "httpBaseUrl": None,
        }
    )
