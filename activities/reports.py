"""Activity that stores the final rollout report as a blob."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from update_service.report_store import save_report
from update_service.settings import Settings

bp = df.Blueprint()


@bp.activity_trigger(input_name="report", activity="store_report")
def store_report(report: dict[str, Any]) -> str:
    return save_report(report, Settings.from_env().reports_container)
