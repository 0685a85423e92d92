"""JSON responses for the HTTP API: every error says what is wrong, in a list."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json", headers=headers)


def problem(status: int, *problems: str) -> func.HttpResponse:
    return json_response(
        {"error": problems[0] if len(problems) == 1 else "The request is invalid.", "problems": list(problems)}, status
    )
