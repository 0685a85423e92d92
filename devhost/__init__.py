"""devhost: a local durable host that runs function_app.py on the real Durable SDK.

It replaces the Functions host + Durable extension for local runs and tests; see
../shared/docs/architecture.md in the project and devhost/README.md.
"""

from .harness import DurableHarness, OrchestrationStatus
from .history import RuntimeStatus

__all__ = ["DurableHarness", "OrchestrationStatus", "RuntimeStatus"]
