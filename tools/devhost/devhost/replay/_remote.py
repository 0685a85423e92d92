"""Replaying what is running in a deployed app: the pre-deploy check.

Before publishing new orchestrator code, every instance still in flight in the deployed app must replay on
it, or it fails with "Non-Deterministic workflow detected" after the deploy. `fetch_running` reads them from
the app's Durable HTTP API (the extension's webhook, `https://<app>.azurewebsites.net/runtime/webhooks/
durabletask`, authorised by the `durabletask_extension` system key as `code=`): the instance list filtered to
the non-terminal statuses, page by page (`top` and the `x-ms-continuation-token` header, as HttpApiHandler
pages queries), then each instance's status with `showHistory=true&showHistoryOutput=true&showInput=true`.
`replay_deployed` replays each of them against the local app with the HTTP-format replayer. Entities are
skipped (they have no history to replay).

I/O is plain `urllib` (blocking; this runs from a command line or a CI job).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ._checker import replay_history
from ._report import ReplayReport

RUNNING_STATUSES = ("Pending", "Running", "Suspended", "ContinuedAsNew")
CONTINUATION_HEADER = "x-ms-continuation-token"

# (url, headers) -> (status, response headers, body bytes); urllib by default, replaceable in tests.
Fetch = Callable[[str, dict[str, str]], tuple[int, dict[str, str], bytes]]


class RemoteError(Exception):
    """The Durable HTTP API could not be read (unreachable, refused the key, answered something unexpected)."""


@dataclass
class InstanceReport:
    """One deployed instance and how the local code replays it (`error`: its history could not be replayed,
    e.g. an orchestrator the local app no longer has; then `report` is None)."""

    instance_id: str
    name: str
    runtime_status: str
    report: ReplayReport | None
    error: str | None = None

    def summary(self) -> str:
        return f"error: {self.error}" if self.report is None else self.report.summary()


def urllib_fetch(url: str, headers: dict[str, str], timeout: float = 60.0) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Accept": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RemoteError(f"cannot reach {_redact(url)}: {reason}") from None


def fetch_running(
    base_url: str,
    code: str | None = None,
    *,
    task_hub: str | None = None,
    page_size: int = 100,
    fetch: Fetch | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the status payload, with history, of every non-terminal orchestration instance behind `base_url`."""
    get = fetch or urllib_fetch
    base = base_url.rstrip("/")
    common = {k: v for k, v in (("code", code), ("taskHub", task_hub)) if v}
    list_query = {**common, "runtimeStatus": ",".join(RUNNING_STATUSES), "top": str(page_size), "showInput": "false"}
    token: str | None = None
    while True:
        headers = {CONTINUATION_HEADER: token} if token else {}
        page, response_headers = _get_json(get, f"{base}/instances?{urllib.parse.urlencode(list_query)}", headers)
        if not isinstance(page, list):
            raise RemoteError(f"{_redact(base)}/instances answered {type(page).__name__}, not a list of instances")
        for item in page:
            iid = str(item.get("instanceId") or "") if isinstance(item, dict) else ""
            if not iid or iid.startswith("@"):
                continue  # entities: no orchestration history to replay
            detail_query = {**common, "showHistory": "true", "showHistoryOutput": "true", "showInput": "true"}
            url = f"{base}/instances/{urllib.parse.quote(iid, safe='')}?{urllib.parse.urlencode(detail_query)}"
            status, _ = _get_json(get, url, {})
            if isinstance(status, dict) and status.get("runtimeStatus") in RUNNING_STATUSES:
                yield status  # an instance that ended in between needs no check
        token = _header(response_headers, CONTINUATION_HEADER)
        if not token:
            return


def replay_deployed(
    app: Any,
    base_url: str,
    code: str | None = None,
    *,
    task_hub: str | None = None,
    page_size: int = 100,
    version: str | None = None,
    fetch: Fetch | None = None,
) -> Iterator[InstanceReport]:
    """Replay every running instance of a deployed app against `app`; yields one report per instance.

    `version`: the orchestration version to replay them under (`context.version`), which the HTTP API does
    not show: the deployed app's defaultVersion when its orchestrators branch on it."""
    for status in fetch_running(base_url, code, task_hub=task_hub, page_size=page_size, fetch=fetch):
        ids = str(status["instanceId"]), str(status.get("name") or ""), str(status.get("runtimeStatus"))
        try:
            yield InstanceReport(*ids, replay_history(app, status, version=version))
        except ValueError as exc:  # one unreadable history does not hide the others
            yield InstanceReport(*ids, None, str(exc))


def _get_json(get: Fetch, url: str, headers: dict[str, str]) -> tuple[Any, dict[str, str]]:
    status, response_headers, body = get(url, headers)
    if status in (401, 403):
        raise RemoteError(
            f"{_redact(url)} answered {status}: pass the app's durabletask_extension system key with --code"
        )
    if status != 200 and not (status == 202 and body):
        raise RemoteError(f"{_redact(url)} answered {status}: {body[:300].decode('utf-8', 'replace')}")
    try:
        return json.loads(body.decode("utf-8-sig")), response_headers
    except ValueError:
        raise RemoteError(f"{_redact(url)} did not answer JSON: {body[:200].decode('utf-8', 'replace')}") from None


def _header(headers: dict[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value or None
    return None


def _redact(url: str) -> str:
    """The URL without its query string, so a key never reaches a log or an error message."""
    return url.split("?", 1)[0]
