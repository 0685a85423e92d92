"""devhost: a local durable host that runs function_app.py on the real Durable SDK.

It replaces the Functions host + Durable extension for local runs and tests; see
docs/architecture.md and README.md in this distribution (tools/devhost).
"""

from .harness import DurableHarness, OrchestrationStatus
from .history import RuntimeStatus

__all__ = ["DurableHarness", "OrchestrationStatus", "RuntimeStatus"]
