"""Stored JSON text back to values, shared by the server's payloads and the test harness.

The store keeps inputs, outputs, custom status and entity state as the JSON text the SDK wrote;
every reader that shows them (status payloads, the harness's OrchestrationStatus) needs the same
forgiving decode, so it lives here rather than in either of them.
"""

from __future__ import annotations

import json
from typing import Any


def parse_json_text(text: str | None) -> Any:
    """Stored JSON text back to a value; text that is not JSON (a failure reason) stays text."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text
