"""Activities that talk to the targets: apply an update, check health, roll back."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from update_service.secrets import get_secret
from update_service.settings import Settings
from update_service.targets_api import TargetError, TargetsApi

bp = df.Blueprint()


def _api() -> TargetsApi:
    settings = Settings.from_env()
    return TargetsApi(settings.targets_base_url, get_secret(settings.target_api_key_secret_name))


@bp.activity_trigger(input_name="request", activity="apply_update")
async def apply_update(request: dict[str, Any]) -> dict[str, Any]:
    """Raises on failure so the orchestrator's retry policy applies."""
    return await _api().apply(request["target"], request["package"], request["version"], request["updateId"])


@bp.activity_trigger(input_name="request", activity="check_health")
async def check_health(request: dict[str, Any]) -> dict[str, Any]:
    """Never raises: an unreachable target is simply not healthy (yet)."""
    try:
        result = await _api().health(request["target"])
    except TargetError as error:
        return {"healthy": False, "reason": str(error)}
    return {"healthy": bool(result.get("healthy")), "reason": result.get("reason")}


@bp.activity_trigger(input_name="request", activity="rollback")
async def rollback(request: dict[str, Any]) -> dict[str, Any]:
    return await _api().rollback(
        request["target"], request["package"], request.get("previousVersion"), request["updateId"]
    )
