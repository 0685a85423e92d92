"""Layout and names of a task hub on Azure Storage, as DTFx's AzureStorage provider lays it out.

`{hub}History` holds one row per history event (RowKey = 16 upper-case hex position) plus a
`sentinel` row per instance, `{hub}Instances` one row per instance for queries,
`{hub}-control-NN` / `{hub}-workitems` the messages and `{hub}-largemessages` whatever is
too big for a queue message or a table property (docs/durable-protocol.md §7). Pure: no I/O.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

SENTINEL = "sentinel"
# A queue message body is at most 64 KiB; DTFx moves envelopes over 45 KiB to a blob.
MAX_QUEUE_MESSAGE_BYTES = 45 * 1024
# A table string property is at most 64 KiB of UTF-16; DTFx moves values over 60 KiB.
MAX_PROPERTY_UTF16_BYTES = 60 * 1024
# Queue visibility delays cannot exceed 7 days; longer timers are re-hidden on receive.
MAX_DELAY_SECONDS = 6 * 24 * 3600
# Entity-group transactions take at most 100 operations and 4 MiB; stay well below.
MAX_BATCH_OPS = 100
MAX_BATCH_BYTES = 2 * 1024 * 1024
RECEIVE_BATCH = 32
_HUB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,44}$")


def sanitize_key(key: str) -> str:
    """DTFx `KeySanitation`: table keys cannot hold / \\ # ? or control characters."""
    out: list[str] = []
    for ch in key:
        code = ord(ch)
        if ch == "^":
            out.append("^^")
        elif ch == "/":
            out.append("^0")
        elif ch == "\\":
            out.append("^1")
        elif ch == "#":
            out.append("^2")
        elif ch == "?":
            out.append("^3")
        elif code <= 0x1F or 0x7F <= code <= 0x9F:
            out.append("^" + chr(code + 0xC0))
        else:
            out.append(ch)
    return "".join(out)


def unsanitize_key(key: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(key):
        ch = key[i]
        if ch == "^" and i + 1 < len(key):
            nxt = key[i + 1]
            out.append({"^": "^", "0": "/", "1": "\\", "2": "#", "3": "?"}.get(nxt) or chr(ord(nxt) - 0xC0))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def fnv1a(text: str) -> int:
    h = 0x811C9DC5
    for b in text.encode("utf-8"):
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def control_queue_name(instance_id: str, hub: str, partitions: int = 4) -> str:
    """The control queue DTFx routes `instance_id` to (FNV-1a of the unescaped id)."""
    return f"{hub.lower()}-control-{fnv1a(instance_id) % partitions:02d}"


def row_key(position: int) -> str:
    return f"{position:016X}"


# The engine's action numbering (`EngineState.ids`, one entry per action) is stored in rows of
# IDS_CHUNK entries next to the sentinel, so a checkpoint rewrites only the chunk it appended to.
# Their keys sort after every history row ("0"-"F") and before the sentinel.
IDS_CHUNK = 256


def ids_row_key(chunk: int) -> str:
    return f"ids-{chunk:08X}"


def check_hub_name(hub: str) -> None:
    if not _HUB_NAME.match(hub):
        raise ValueError(f"Task hub name {hub!r} must be 3-45 letters or digits, starting with a letter.")


def new_hub_name(prefix: str = "devhost") -> str:
    """A fresh, valid task hub name (tests)."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class HubLayout:
    """Every table, queue and container name of one task hub."""

    hub: str
    partition_count: int = 4

    @property
    def instances_table(self) -> str:
        return f"{self.hub}Instances"

    @property
    def history_table(self) -> str:
        return f"{self.hub}History"

    @property
    def control_queues(self) -> list[str]:
        return [f"{self.hub.lower()}-control-{i:02d}" for i in range(self.partition_count)]

    @property
    def work_queue(self) -> str:
        return f"{self.hub.lower()}-workitems"

    @property
    def poison_queue(self) -> str:
        """Messages that failed `max_dequeue_count` times are parked here for inspection (devhost's own)."""
        return f"{self.hub.lower()}-poison"

    @property
    def large_messages_container(self) -> str:
        return f"{self.hub.lower()}-largemessages"

    @property
    def leases_container(self) -> str:
        return f"{self.hub.lower()}-leases"

    def control_queue_for(self, instance_id: str) -> str:
        return control_queue_name(instance_id, self.hub, self.partition_count)
