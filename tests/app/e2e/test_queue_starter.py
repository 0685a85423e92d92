"""The Service Bus starter through devhost's admin API (`POST /admin/functions/{name}`), as the
Functions host invokes it locally; plus the instance ids it derives from message ids."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starters.queue_starter import instance_id_for
from update_service.requests import ID_PATTERN

from .support import AppHost, unique, wait_for

FUNCTION = "/admin/functions/start_update_from_queue"


def send(host: AppHost, message: dict[str, Any] | str, message_id: str | None = None) -> None:
    text = message if isinstance(message, str) else json.dumps(message)
    body: dict[str, Any] = {"input": text}
    if message_id is not None:
        body["messageId"] = message_id  # devhost's admin API: the Service Bus message id to use
    resp = host.post(FUNCTION, body)
    assert resp.status == 202, resp.text


def request(update_id: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {
        "package": "agent",
        "version": "3.0.0",
        "targets": [unique("q")],
        "healthCheck": {"intervalSeconds": 1, "timeoutMinutes": 0},
        **extra,
    }
    return body if update_id is None else {"updateId": update_id, **body}


def executed(host: AppHost, outcome: str = "") -> int:
    return host.log().count(f"Executed 'Functions.start_update_from_queue' ({outcome}")


def test_a_message_starts_a_rollout_once_per_update_id(app_host: AppHost) -> None:
    update_id = unique("queued")
    message = request(update_id)
    calls, failures = executed(app_host), executed(app_host, "Failed")
    with ThreadPoolExecutor(3) as pool:  # the same request, delivered three times at once
        list(pool.map(lambda _: send(app_host, message), range(3)))
    wait_for(lambda: executed(app_host) >= calls + 3, "three invocations")
    assert executed(app_host, "Failed") == failures  # duplicates are ignored, not errors

    view = app_host.wait_done(update_id)
    assert view["outcome"] == "Succeeded"
    assert view["report"]["targets"] == {
        message["targets"][0]: {"status": "updated", "wave": 1, "previousVersion": "1.0.0"}
    }
    assert app_host.get(f"/api/simulator/targets/{message['targets'][0]}").body["calls"] == 1

    send(app_host, message)  # redelivered after the rollout finished
    wait_for(lambda: executed(app_host) >= calls + 4, "the redelivery")
    assert app_host.log().count(f"update {update_id} already exists; message") == 3
    listed = app_host.get("/api/updates?top=100").body["updates"]
    assert [u["updateId"] for u in listed].count(update_id) == 1


def test_a_message_without_update_id_uses_its_message_id(app_host: AppHost) -> None:
    package = unique("pkg")
    send(app_host, request(package=package))
    started = re.compile(r"started update (\S+) from message (\S+)")

    def find() -> tuple[str, str] | None:
        for match in started.finditer(app_host.log()):
            update_id = match.group(1)
            resp = app_host.get(f"/api/updates/{update_id}")
            if resp.status == 200 and (resp.body["report"] or {}).get("package") == package:
                return update_id, match.group(2)
        return None

    update_id, message_id = wait_for(find, f"the rollout of {package} to finish")
    assert update_id == instance_id_for(message_id)


def test_a_redelivered_message_without_update_id_starts_nothing_new(app_host: AppHost) -> None:
    message_id = unique("msg")
    message = request(package=unique("pkg"))
    calls = executed(app_host)
    send(app_host, message, message_id)
    update_id = instance_id_for(message_id)
    wait_for(lambda: app_host.get(f"/api/updates/{update_id}").status == 200, "the rollout to start")
    view = app_host.wait_done(update_id)
    assert view["outcome"] == "Succeeded"
    send(app_host, message, message_id)  # Service Bus delivers it again (e.g. after a lock expired)
    wait_for(lambda: executed(app_host) >= calls + 2, "the redelivery")
    assert f"update {instance_id_for(message_id)} already exists; message {message_id} ignored" in app_host.log()
    assert app_host.get(f"/api/simulator/targets/{message['targets'][0]}").body["calls"] == 1


def test_a_reused_update_id_with_another_request_is_dead_lettered_not_ignored(app_host: AppHost) -> None:
    """As the HTTP start answers 409: a message whose updateId already runs another request fails its
    invocation (Service Bus retries, then dead-letters it) with the reason logged; the first body runs."""
    update_id = unique("reused")
    first = request(update_id)
    send(app_host, first)
    wait_for(lambda: app_host.get(f"/api/updates/{update_id}").status == 200, "the rollout to start")
    failures = executed(app_host, "Failed")
    other = request(update_id, version="4.0.0")
    send(app_host, other)
    wait_for(lambda: executed(app_host, "Failed") > failures, "the conflicting message's invocation to fail")
    assert (
        f"conflicts with update {update_id}, which already exists with a different request, and will be dead-lettered"
    ) in app_host.log()
    send(app_host, first)  # the same request again is still a harmless duplicate
    wait_for(lambda: app_host.log().count(f"update {update_id} already exists; message") >= 1, "the duplicate")
    view = app_host.wait_done(update_id)
    assert view["outcome"] == "Succeeded" and view["report"]["version"] == "3.0.0", view
    assert app_host.get(f"/api/simulator/targets/{other['targets'][0]}").body["calls"] == 0
    assert executed(app_host, "Failed") == failures + 1


def test_invalid_messages_fail_the_invocation_and_start_nothing(app_host: AppHost) -> None:
    update_id, marker = unique("invalid"), unique("bad target")
    failures = executed(app_host, "Failed")
    send(app_host, request(update_id, targets=[marker], version=""))
    wait_for(lambda: executed(app_host, "Failed") > failures, "the invocation to fail")
    reasons = next(line for line in app_host.log().splitlines() if marker in line)
    assert "is invalid and will be dead-lettered: 'version' is required" in reasons
    assert app_host.get(f"/api/updates/{update_id}").status == 404

    send(app_host, "{this is not json")
    wait_for(lambda: executed(app_host, "Failed") > failures + 1, "the second invocation to fail")
    assert "is invalid and will be dead-lettered: not JSON" in app_host.log()
    assert app_host.get(f"/api/updates/{update_id}").status == 404


def test_instance_ids_from_message_ids_are_stable_and_valid() -> None:
    assert instance_id_for("3f2a9c1e") == "3f2a9c1e"  # a usable message id is the instance id
    for message_id in ("has spaces", "x" * 200, "", None, "../etc"):
        derived = instance_id_for(message_id)
        assert ID_PATTERN.match(derived) and derived.startswith("msg-")
        assert derived == instance_id_for(message_id)  # a redelivery maps to the same rollout
    assert instance_id_for("a b") != instance_id_for("a c")
