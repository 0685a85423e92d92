"""The task hub on Azure Storage (or Azurite): tables, queues and blobs in DTFx's layout.

Split along DurableTask.AzureStorage's own seams:

* `layout`: table, queue and container names, key sanitation, size limits (pure);
* `connection`: settings to clients, retry policy, the reachability probe;
* `rows`: the row codec (history events, sentinel and Instances rows; pure encoding);
* `blobs`: the large-messages container;
* `history_table`: history rows, the sentinel-guarded checkpoint, the instance cache;
* `instances_table`: the query index, written off the critical path;
* `queues`: control and work-item queues;
* `lease`: one devhost per hub;
* `store`: the `Store` facade and `open_store`.
"""

from __future__ import annotations

from ...model import Receipt
from ..base import ConcurrencyError
from .connection import DEVELOPMENT_CONNECTION_STRING, StorageUnavailable
from .layout import control_queue_name, new_hub_name, sanitize_key, unsanitize_key
from .lease import HubInUse, HubOfAnotherHost
from .store import AzureStorageStore, open_store

__all__ = [
    "DEVELOPMENT_CONNECTION_STRING",
    "AzureStorageStore",
    "ConcurrencyError",
    "HubInUse",
    "HubOfAnotherHost",
    "Receipt",
    "StorageUnavailable",
    "control_queue_name",
    "new_hub_name",
    "open_store",
    "sanitize_key",
    "unsanitize_key",
]
