"""The rollout HTTP API end to end: devhost on Azurite, targets served by the app's simulator."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from .support import AppHost, unique

FAST_HEALTH = {"intervalSeconds": 1, "timeoutMinutes": 0}


def rollout(update_id: str, targets: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "updateId": update_id,
        "package": "agent",
        "version": "2.4.1",
        "targets": targets,
        "healthCheck": FAST_HEALTH,
        **extra,
    }


def report_blob(host: AppHost, update_id: str) -> Any:
    with BlobServiceClient.from_connection_string(host.storage) as service:
        return json.loads(service.get_blob_client("reports", f"{update_id}.json").download_blob().readall())


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {target: outcome["status"] for target, outcome in report["targets"].items()}


def test_a_rollout_is_accepted_runs_to_success_and_stores_its_report(app_host: AppHost) -> None:
    update_id = unique("happy")
    targets = [unique("web"), unique("web"), unique("db")]
    resp = app_host.post("/api/updates", rollout(update_id, targets, waveSize=2))

    assert resp.status == 202, resp.text
    links = resp.body
    assert links["id"] == update_id
    assert resp.headers["Location"] == links["statusQueryGetUri"]
    for name in ("statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "purgeHistoryDeleteUri"):
        assert links[name].startswith(app_host.base) and update_id in links[name]

    view = app_host.wait_done(update_id)
    assert view["runtimeStatus"] == "Completed" and view["phase"] == "done"
    assert view["outcome"] == "Succeeded" and view["error"] is None
    report = view["report"]
    assert report["updateId"] == update_id and report["outcome"] == "Succeeded"
    assert (report["package"], report["version"]) == ("agent", "2.4.1")
    assert statuses(report) == {t: "updated" for t in targets}
    assert report["counts"] == {"updated": 3}
    assert [w["targets"] for w in report["timings"]["waves"]] == [2, 1]
    assert report_blob(app_host, update_id) == report

    # The Durable status link works too, and the targets really run the new version.
    durable = app_host.get(links["statusQueryGetUri"].removeprefix(app_host.base))
    assert durable.status == 200 and durable.body["runtimeStatus"] == "Completed"
    assert durable.body["output"] == report
    for target in targets:
        assert app_host.get(f"/api/simulator/targets/{target}").body["version"] == "2.4.1"


@pytest.fixture(scope="module")
def faulty_rollouts(app_host: AppHost) -> dict[str, Any]:
    """Rollouts whose flaky/broken targets wait on retry timers, started together so they wait concurrently.

    While `cancel` is still retrying its flaky target, a second rollout asks for that target
    (it is reserved: `busy`) and `cancel` is cancelled."""
    started: dict[str, Any] = {}
    plans: dict[str, tuple[dict[str, str], dict[str, Any]]] = {
        "mixed": ({"flaky": unique("flaky"), "sick": unique("sick"), "ok": unique("node")}, {"maxFailureRatio": 1}),
        "rollback": ({"broken": unique("broken"), "fine": unique("node")}, {"maxFailureRatio": 0.2}),
        "cancel": ({"flaky": unique("flaky"), "ok": unique("node")}, {}),
    }
    for name, (targets, extra) in plans.items():
        update_id = unique(f"r-{name}")
        resp = app_host.post("/api/updates", rollout(update_id, list(targets.values()), **extra))
        assert resp.status == 202, resp.text
        started[name] = (update_id, targets)

    cancel_id, cancel_targets = started["cancel"]
    app_host.wait_phase(cancel_id, "rolling_out")
    busy_id, busy_targets = unique("r-busy"), {"taken": cancel_targets["flaky"], "free": unique("node")}
    assert app_host.post("/api/updates", rollout(busy_id, list(busy_targets.values()))).status == 202
    started["busy"] = (busy_id, busy_targets)
    app_host.wait_done(busy_id)
    resp = app_host.post(f"/api/updates/{cancel_id}/cancel")
    assert resp.status == 202 and resp.body == {"updateId": cancel_id, "accepted": "cancel"}
    return started


def test_flaky_target_is_retried_and_sick_target_reported_unhealthy(
    app_host: AppHost, faulty_rollouts: dict[str, Any]
) -> None:
    update_id, targets = faulty_rollouts["mixed"]
    view = app_host.wait_done(update_id)
    report = view["report"]
    assert view["outcome"] == report["outcome"] == "CompletedWithFailures"
    assert statuses(report) == {targets["flaky"]: "updated", targets["sick"]: "unhealthy", targets["ok"]: "updated"}
    assert "not healthy" in report["targets"][targets["sick"]]["error"]
    flaky = app_host.get(f"/api/simulator/targets/{targets['flaky']}").body
    assert flaky["calls"] == 3 and flaky["version"] == "2.4.1"  # two 503s, then success on the last try
    assert report_blob(app_host, update_id) == report


def test_too_many_failures_roll_back_every_touched_target(app_host: AppHost, faulty_rollouts: dict[str, Any]) -> None:
    update_id, targets = faulty_rollouts["rollback"]
    view = app_host.wait_done(update_id)
    report = view["report"]
    assert view["outcome"] == report["outcome"] == "RolledBack"
    assert "failure ratio 50% exceeded the maximum 20%" in report["reason"]
    broken, fine = report["targets"][targets["broken"]], report["targets"][targets["fine"]]
    assert broken["status"] == fine["status"] == "rolled_back"
    assert broken["was"] == "failed" and "incompatible" in broken["error"]
    assert fine["was"] == "updated"
    assert app_host.get(f"/api/simulator/targets/{targets['broken']}").body["calls"] == 3  # retried, then gave up
    assert app_host.get(f"/api/simulator/targets/{targets['fine']}").body["version"] == "1.0.0"  # restored
    assert report_blob(app_host, update_id) == report


def test_a_target_reserved_by_another_rollout_is_reported_busy(
    app_host: AppHost, faulty_rollouts: dict[str, Any]
) -> None:
    update_id, targets = faulty_rollouts["busy"]
    report = app_host.wait_done(update_id)["report"]
    assert report["outcome"] == "CompletedWithFailures"
    assert statuses(report) == {targets["taken"]: "busy", targets["free"]: "updated"}
    assert report["targets"][targets["taken"]]["error"] == "reserved by another rollout"


def test_cancel_during_the_rollout_rolls_back_what_was_updated(
    app_host: AppHost, faulty_rollouts: dict[str, Any]
) -> None:
    update_id, targets = faulty_rollouts["cancel"]
    view = app_host.wait_done(update_id)
    report = view["report"]
    assert view["outcome"] == report["outcome"] == "Cancelled"
    assert "rolled back" in report["reason"]
    assert statuses(report) == {t: "rolled_back" for t in targets.values()}
    for target in targets.values():
        state = app_host.get(f"/api/simulator/targets/{target}").body
        assert state["version"] == "1.0.0" and [h["op"] for h in state["history"]] == ["update", "rollback"]
    assert app_host.post(f"/api/updates/{update_id}/cancel").status == 409  # already finished


def started_events(host: AppHost, update_id: str) -> list[dict[str, Any]]:
    """The ExecutionStarted events in the rollout's history (Durable HTTP API, showHistory)."""
    status = host.get(f"/runtime/webhooks/durabletask/instances/{update_id}?showHistory=true&showInput=true")
    assert status.status in (200, 202), status.text  # 202 while it runs
    return [ev for ev in status.body["historyEvents"] if ev["EventType"] == "ExecutionStarted"]


def started_input(event: dict[str, Any]) -> Any:
    value = json.loads(event["Input"])
    return json.loads(value) if isinstance(value, str) else value  # the Python SDK sends JSON text


def test_the_same_update_id_starts_one_rollout(app_host: AppHost) -> None:
    update_id = unique("idem")
    body = rollout(update_id, [unique("t")], approval={"required": True})
    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda _: app_host.post("/api/updates", body), range(20)))

    assert sorted(r.status for r in responses) == [200] * 19 + [202], [r.text for r in responses]
    app_host.wait_phase(update_id, "awaiting_approval")
    assert len(started_events(app_host, update_id)) == 1  # one start in the history, not one per request
    for again in (r for r in responses if r.status == 200):
        assert again.body["existing"] is True and again.body["id"] == update_id
        assert again.body["runtimeStatus"] in ("Running", "Pending")
        assert again.headers["Location"] == again.body["statusQueryGetUri"]
    listed = app_host.get("/api/updates?status=Running,Pending&top=100").body["updates"]
    assert [u["updateId"] for u in listed].count(update_id) == 1

    assert app_host.post(f"/api/updates/{update_id}/cancel").status == 202
    assert app_host.wait_done(update_id)["outcome"] == "Cancelled"
    after = app_host.post("/api/updates", body)
    assert after.status == 200 and after.body["existing"] is True and after.body["runtimeStatus"] == "Completed"


def test_an_update_id_reused_with_another_request_is_409_and_one_body_runs(app_host: AppHost) -> None:
    """Concurrent starts of one updateId with different bodies: exactly one is accepted (202), the
    others get 409 with the existing rollout's links, and the body that runs is the accepted one."""
    update_id = unique("clash")
    bodies = [rollout(update_id, [unique(f"t{i}")], approval={"required": True}) for i in range(8)]
    with ThreadPoolExecutor(len(bodies)) as pool:
        responses = list(pool.map(lambda b: app_host.post("/api/updates", b), bodies))

    assert sorted(r.status for r in responses) == [202] + [409] * 7, [r.text for r in responses]
    winner = bodies[[r.status for r in responses].index(202)]
    for refused in (r for r in responses if r.status == 409):
        assert refused.body["existing"] is True and refused.body["id"] == update_id
        assert "different request" in refused.body["error"]
        assert refused.headers["Location"] == refused.body["statusQueryGetUri"]
    app_host.wait_phase(update_id, "awaiting_approval")
    started = started_events(app_host, update_id)
    assert len(started) == 1
    assert started_input(started[0])["targets"] == winner["targets"]
    # Later: the same body is the existing rollout (200), another body is still refused (409).
    assert app_host.post("/api/updates", winner).status == 200
    assert app_host.post("/api/updates", rollout(update_id, [unique("late")])).status == 409
    assert app_host.post(f"/api/updates/{update_id}/cancel").status == 202
    assert app_host.wait_done(update_id)["outcome"] == "Cancelled"


VALID = {"package": "agent", "version": "2.4.1", "targets": ["a"]}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{not json", ["The request body is not valid JSON."]),
        (b"", ["The request body is not valid JSON."]),
        (b"[" * 100_000, ["The request body is not valid JSON."]),
        (b"\xff\xfe", ["The request body is not valid JSON."]),
        (b"[1, 2]", ["The request body must be a JSON object."]),
        (b"null", ["The request body must be a JSON object."]),
    ],
    ids=["malformed", "empty", "deeply-nested", "not-utf8", "array", "null"],
)
def test_unreadable_bodies_are_400(app_host: AppHost, raw: bytes, expected: list[str]) -> None:
    resp = app_host.post("/api/updates", raw=raw)
    assert resp.status == 400, resp.text
    assert resp.body["problems"] == expected


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ({}, ["'package' is required", "'version' is required", "'targets' is required"]),
        (
            {"package": 7, "version": ["1"], "targets": "a,b", "waveSize": "2", "maxFailureRatio": "0.1"},
            [
                "'package' is required",
                "'version' is required",
                "'targets' is required",
                "'waveSize' must be an integer",
                "'maxFailureRatio' must be a number",
            ],
        ),
        ({**VALID, "targets": []}, ["'targets' is required: a list of 1 to 1000 target ids."]),
        (
            {**VALID, "targets": ["a", "b", "a", "b"]},
            ["targets[2] 'a' is a duplicate.", "targets[3] 'b' is a duplicate."],
        ),
        (
            {**VALID, "targets": [f"t{i}" for i in range(1001)]},
            ["'targets' has 1001 entries; at most 1000 are allowed."],
        ),
        (
            {**VALID, "targets": ["ok", 5, "has space"]},
            ["targets[1] must be a target id", "targets[2] must be a target id"],
        ),
        ({**VALID, "updateId": "no spaces allowed"}, ["'updateId' must be 1-64 characters"]),
        ({**VALID, "updateId": "x" * 65}, ["'updateId' must be 1-64 characters"]),
        ({**VALID, "updateId": 42}, ["'updateId' must be 1-64 characters"]),
        (
            {**VALID, "waveSize": 0, "maxFailureRatio": 1.5, "colour": "red"},
            [
                "Unknown field 'colour'.",
                "'waveSize' must be between 1 and 1000, got 0.",
                "'maxFailureRatio' must be a number",
            ],
        ),
        (
            {**VALID, "approval": {"required": "yes", "timeoutMinutes": 0}, "healthCheck": []},
            [
                "'approval.required' must be true or false.",
                "'approval.timeoutMinutes' must be between 1",
                "'healthCheck' must be an object",
            ],
        ),
    ],
    ids=[
        "empty-object",
        "wrong-types",
        "no-targets",
        "duplicates",
        "1001-targets",
        "bad-target-ids",
        "bad-update-id",
        "long-update-id",
        "numeric-update-id",
        "out-of-range",
        "bad-approval-and-health",
    ],
)
def test_invalid_requests_list_every_problem(app_host: AppHost, body: dict[str, Any], fragments: list[str]) -> None:
    resp = app_host.post("/api/updates", body)
    assert resp.status == 400, resp.text
    problems = resp.body["problems"]
    assert len(problems) == len(fragments), problems
    for fragment, problem in zip(fragments, problems):
        assert fragment in problem
    assert resp.body["error"] == (problems[0] if len(problems) == 1 else "The request is invalid.")
    update_id = body.get("updateId")
    if isinstance(update_id, str) and update_id.isalnum():
        assert app_host.get(f"/api/updates/{update_id}").status == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", ""),
        ("POST", "/approve"),
        ("POST", "/reject"),
        ("POST", "/cancel"),
    ],
)
def test_unknown_update_is_404(app_host: AppHost, method: str, path: str) -> None:
    for update_id in (unique("missing"), "not%20an%20id"):
        resp = (
            app_host.get(f"/api/updates/{update_id}{path}")
            if method == "GET"
            else app_host.post(f"/api/updates/{update_id}{path}", {})
        )
        assert resp.status == 404, resp.text
        assert "No update with id" in resp.body["error"]


def test_approve_runs_the_rollout_and_a_second_decision_is_409(app_host: AppHost) -> None:
    update_id, target = unique("approve"), unique("t")
    assert app_host.post("/api/updates", rollout(update_id, [target], approval={"required": True})).status == 202
    waiting = app_host.wait_phase(update_id, "awaiting_approval")
    assert waiting["runtimeStatus"] == "Running" and "approvalDeadline" in waiting["progress"]

    bad = app_host.post(f"/api/updates/{update_id}/approve", raw=b"{oops")
    assert bad.status == 400
    resp = app_host.post(f"/api/updates/{update_id}/approve", {"by": "ana", "comment": "go"})
    assert resp.status == 202 and resp.body == {"updateId": update_id, "accepted": "approve"}

    report = app_host.wait_done(update_id)["report"]
    assert report["outcome"] == "Succeeded" and statuses(report) == {target: "updated"}
    assert report["approval"]["approved"] is True
    assert (report["approval"]["by"], report["approval"]["comment"]) == ("ana", "go")
    for action in ("approve", "reject"):
        again = app_host.post(f"/api/updates/{update_id}/{action}", {})
        assert again.status == 409 and "not waiting for approval" in again.body["error"]
    assert app_host.post(f"/api/updates/{update_id}/cancel").status == 409


def test_approving_a_rollout_that_needs_no_approval_is_409(app_host: AppHost) -> None:
    update_id = unique("noapproval")
    assert app_host.post("/api/updates", rollout(update_id, [unique("t")])).status == 202
    resp = app_host.post(f"/api/updates/{update_id}/approve", {})
    assert resp.status == 409, resp.text
    assert app_host.wait_done(update_id)["outcome"] == "Succeeded"


def test_reject_and_cancel_end_a_waiting_rollout_without_touching_targets(app_host: AppHost) -> None:
    rejected, cancelled = unique("reject"), unique("cancel")
    targets = {rejected: unique("t"), cancelled: unique("t")}
    for update_id, target in targets.items():
        assert app_host.post("/api/updates", rollout(update_id, [target], approval={"required": True})).status == 202
        app_host.wait_phase(update_id, "awaiting_approval")

    assert app_host.post(f"/api/updates/{rejected}/reject", {"by": "bob", "comment": "not today"}).status == 202
    assert app_host.post(f"/api/updates/{cancelled}/cancel").status == 202

    report = app_host.wait_done(rejected)["report"]
    assert (report["outcome"], report["reason"]) == ("Rejected", "not today")
    assert report["approval"]["approved"] is False and report["approval"]["by"] == "bob"
    assert statuses(report) == {targets[rejected]: "skipped"}
    report = app_host.wait_done(cancelled)["report"]
    assert report["outcome"] == "Cancelled" and statuses(report) == {targets[cancelled]: "skipped"}
    for target in targets.values():
        assert app_host.get(f"/api/simulator/targets/{target}").body["calls"] == 0


def test_list_filters_by_status_and_pages(app_host: AppHost) -> None:
    waiting = [unique("list") for _ in range(3)]
    for update_id in waiting:
        body = rollout(update_id, [unique("t")], approval={"required": True})
        assert app_host.post("/api/updates", body).status == 202
    for update_id in waiting:
        app_host.wait_phase(update_id, "awaiting_approval")

    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        query = "status=running&top=2" + (f"&continuationToken={token}" if token else "")
        resp = app_host.get(f"/api/updates?{query}")
        assert resp.status == 200, resp.text
        page = resp.body["updates"]
        assert 1 <= len(page) <= 2 and all(u["runtimeStatus"] == "Running" for u in page)
        seen += [u["updateId"] for u in page]
        pages += 1
        token = resp.body["continuationToken"]
        if token is None:
            break
    assert set(waiting) <= set(seen) and len(seen) == len(set(seen)) and pages >= 2

    completed = app_host.get("/api/updates?status=Completed&top=100").body["updates"]
    assert all(u["runtimeStatus"] == "Completed" and u["report"] for u in completed)
    assert not set(waiting) & {u["updateId"] for u in completed}
    everything = {u["updateId"] for u in app_host.get("/api/updates?top=100").body["updates"]}
    assert set(waiting) <= everything and not any(":wave:" in u for u in everything)

    for update_id in waiting:
        assert app_host.post(f"/api/updates/{update_id}/cancel").status == 202


@pytest.mark.parametrize(
    "query",
    [
        "status=bogus",
        "status=Running,Nope",
        "top=0",
        "top=101",
        "top=two",
        "continuationToken=abc",
        "continuationToken=-2",
    ],
)
def test_bad_list_queries_are_400(app_host: AppHost, query: str) -> None:
    resp = app_host.get(f"/api/updates?{query}")
    assert resp.status == 400, resp.text
    assert resp.body["problems"]


def test_list_returns_every_rollout_beyond_the_first_hundred_instances(app_host: AppHost) -> None:
    """The Durable API pages instance queries by 100; the list must follow its continuation tokens."""
    ids = [unique("many") for _ in range(101)]

    def start(update_id: str) -> int:
        return app_host.post("/api/updates", rollout(update_id, ["t"], approval={"required": True})).status

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(start, ids)) == {202}
    listed: list[str] = []
    token: str | None = None
    while True:
        page = app_host.get("/api/updates?top=100" + (f"&continuationToken={token}" if token else "")).body
        listed += [u["updateId"] for u in page["updates"]]
        token = page["continuationToken"]
        if token is None:
            break
    assert set(ids) <= set(listed) and len(listed) == len(set(listed))
    active = "/api/updates?status=Running,Pending&top=100"  # just started: some may not have run yet
    running = {u["updateId"] for u in app_host.get(active).body["updates"]}
    running |= {u["updateId"] for u in app_host.get(active + "&continuationToken=100").body["updates"]}
    assert set(ids) <= running
