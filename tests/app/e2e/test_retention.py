"""The retention timer, invoked through devhost's admin API with RETENTION_DAYS=0."""

from __future__ import annotations

from .support import AppHost, unique

DEVHOST_SETTINGS = {"RETENTION_DAYS": "0"}


def test_purge_removes_finished_rollouts_and_keeps_running_ones(app_host: AppHost) -> None:
    finished, waiting = unique("done"), unique("waiting")
    health = {"intervalSeconds": 1, "timeoutMinutes": 0}
    common = {"package": "agent", "version": "5.0.0", "healthCheck": health}
    assert app_host.post("/api/updates", {"updateId": finished, "targets": [unique("t")], **common}).status == 202
    assert (
        app_host.post(
            "/api/updates", {"updateId": waiting, "targets": [unique("t")], **common, "approval": {"required": True}}
        ).status
        == 202
    )
    assert app_host.wait_done(finished)["outcome"] == "Succeeded"
    app_host.wait_phase(waiting, "awaiting_approval")

    assert app_host.post("/admin/functions/purge_old_history", {}).status == 202
    app_host.wait_log("retention: purged")
    assert "(0 days)" in app_host.log()

    assert app_host.get(f"/api/updates/{finished}").status == 404
    assert app_host.get(f"/runtime/webhooks/durabletask/instances/{finished}").status == 404
    assert app_host.get(f"/api/updates/{waiting}").body["phase"] == "awaiting_approval"
    # The kept rollout still works after the purge.
    assert app_host.post(f"/api/updates/{waiting}/approve", {"by": "ops"}).status == 202
    assert app_host.wait_done(waiting)["outcome"] == "Succeeded"
