"""Purge the history of finished instances older than RETENTION_DAYS, on a schedule."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus as Status

from update_service.settings import RETENTION_SCHEDULE, Settings

bp = df.Blueprint()
log = logging.getLogger(__name__)
FINISHED = [Status.Completed, Status.Failed, Status.Terminated, Status.Canceled]
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@bp.timer_trigger(arg_name="timer", schedule=f"%{RETENTION_SCHEDULE}%", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def purge_old_history(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    days = Settings.from_env().retention_days
    cutoff = datetime.now(UTC) - timedelta(days=days)
    result = await client.purge_instance_history_by(
        created_time_from=EPOCH, created_time_to=cutoff, runtime_status=FINISHED
    )
    log.info(
        "retention: purged %s finished instance(s) created before %s (%s days)",
        result.instances_deleted,
        cutoff.isoformat(),
        days,
    )
