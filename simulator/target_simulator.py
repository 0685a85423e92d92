"""Simulated targets, so retries, health monitoring and rollbacks can be seen locally.

Each target behaves as configured with `PUT /api/simulator/targets/{id}/behaviour`
(`{"behaviour": "ok" | "transient" | "fail" | "unhealthy", "failures": 2}`), or by its
id when not configured: ids containing `flaky` fail twice then succeed, `broken`
always fail, `sick` update fine but never become healthy; all others just work.
State lives in this process (a local tool, not a database).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from update_service.secrets import SecretNotFound, get_secret
from update_service.settings import Settings
from update_service.targets_api import API_KEY_HEADER

bp = df.Blueprint()
BEHAVIOURS = ("ok", "transient", "fail", "unhealthy")
_lock = threading.Lock()
_targets: dict[str, dict[str, Any]] = {}


def _default_behaviour(target: str) -> dict[str, Any]:
    if "flaky" in target:
        return {"behaviour": "transient", "failures": 2}
    if "broken" in target:
        return {"behaviour": "fail"}
    if "sick" in target:
        return {"behaviour": "unhealthy"}
    return {"behaviour": "ok"}


def _state(target: str) -> dict[str, Any]:
    state = _targets.get(target)
    if state is None:
        state = _targets[target] = {**_default_behaviour(target), "version": "1.0.0", "calls": 0, "history": []}
    return state


def _json(body: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


def _json_object(req: func.HttpRequest, required: bool) -> dict[str, Any] | func.HttpResponse:
    """The request's JSON object body, or the 400 to answer (an empty body is `{}` unless `required`).

    RecursionError: JSON nested too deeply to decode is bad JSON like any other."""
    if not req.get_body().strip():
        return _json({"error": "The request body must be a JSON object."}, 400) if required else {}
    try:
        body = req.get_json()
    except (ValueError, RecursionError):
        return _json({"error": "The request body is not valid JSON."}, 400)
    if not isinstance(body, dict):
        return _json({"error": "The request body must be a JSON object."}, 400)
    return body


def _authorized(req: func.HttpRequest) -> bool:
    try:
        expected = get_secret(Settings.from_env().target_api_key_secret_name)
    except SecretNotFound:
        return False
    return req.headers.get(API_KEY_HEADER) == expected


@bp.route(route="simulator/targets/{target}/update", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def simulate_update(req: func.HttpRequest) -> func.HttpResponse:
    if not _authorized(req):
        return _json({"error": "missing or wrong API key"}, 401)
    target = req.route_params["target"]
    body = _json_object(req, required=True)
    if isinstance(body, func.HttpResponse):
        return body
    with _lock:
        state = _state(target)
        state["calls"] += 1
        if state["behaviour"] == "fail":
            return _json(
                {"error": f"{target}: package {body.get('package')} {body.get('version')} is incompatible"}, 409
            )
        if state["behaviour"] == "transient" and state["calls"] <= int(state.get("failures", 2)):
            return _json({"error": f"{target} is restarting, try again"}, 503)
        previous = state["version"]
        state["version"] = body.get("version")
        state["history"].append({"op": "update", "from": previous, "to": state["version"]})
    return _json({"target": target, "version": state["version"], "previousVersion": previous})


@bp.route(route="simulator/targets/{target}/health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def simulate_health(req: func.HttpRequest) -> func.HttpResponse:
    if not _authorized(req):
        return _json({"error": "missing or wrong API key"}, 401)
    target = req.route_params["target"]
    with _lock:
        state = _state(target)
    healthy = state["behaviour"] != "unhealthy"
    return _json({"target": target, "healthy": healthy, "reason": None if healthy else "service not responding"})


@bp.route(route="simulator/targets/{target}/rollback", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def simulate_rollback(req: func.HttpRequest) -> func.HttpResponse:
    if not _authorized(req):
        return _json({"error": "missing or wrong API key"}, 401)
    target = req.route_params["target"]
    body = _json_object(req, required=False)
    if isinstance(body, func.HttpResponse):
        return body
    with _lock:
        state = _state(target)
        previous = state["version"]
        state["version"] = body.get("version") or "1.0.0"
        state["history"].append({"op": "rollback", "from": previous, "to": state["version"]})
    return _json({"target": target, "version": state["version"]})


@bp.route(route="simulator/targets/{target}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def simulated_target(req: func.HttpRequest) -> func.HttpResponse:
    target = req.route_params["target"]
    with _lock:
        return _json({"target": target, **_state(target)})


@bp.route(route="simulator/targets/{target}/behaviour", methods=["PUT"], auth_level=func.AuthLevel.ANONYMOUS)
def configure_target(req: func.HttpRequest) -> func.HttpResponse:
    target = req.route_params["target"]
    body = _json_object(req, required=True)
    if isinstance(body, func.HttpResponse):
        return body
    behaviour = body.get("behaviour")
    if behaviour not in BEHAVIOURS:
        return _json({"error": f"'behaviour' must be one of {', '.join(BEHAVIOURS)}."}, 400)
    failures = body.get("failures", 2)
    if not isinstance(failures, int) or isinstance(failures, bool) or not 0 <= failures <= 1000:
        return _json({"error": "'failures' must be a whole number from 0 to 1000."}, 400)
    with _lock:
        state = _state(target)
        state.update(behaviour=behaviour, failures=failures, calls=0)
        return _json({"target": target, **state})
