"""Retry policies shared by the orchestrators (the Durable host runs the retries)."""

import azure.durable_functions as df

# Target calls fail transiently (restarts, throttling): three tries, 5 s apart.
TARGET_CALL = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=3)
