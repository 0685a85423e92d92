"""Retry policies shared by the orchestrators (the Durable host runs the retries)."""

import azure.durable_functions as df

from update_service.settings import Settings

# Target calls fail transiently (restarts, throttling): three tries, TARGET_RETRY_INTERVAL_SECONDS (5 s) apart.
# Read once at import: the interval is fixed for the life of the worker process.
_INTERVAL_MS = max(1, round(Settings.from_env().target_retry_interval_seconds * 1000))
TARGET_CALL = df.RetryOptions(first_retry_interval_in_milliseconds=_INTERVAL_MS, max_number_of_attempts=3)
