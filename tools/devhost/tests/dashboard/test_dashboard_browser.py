"""The dashboard in a real browser (system Chromium via Playwright) against devhost on Azurite.

devhost runs the real function_app.py as a subprocess with the Azure Storage store on the session's Azurite;
its target simulator serves the targets. Each page visited is kept as a screenshot in .artifacts/screenshots/.

Tests internals (not devhost's public API): imports `devhost.history`, `devhost.store.azure`.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devhost.history import RuntimeStatus

from .browser import CHROMIUM, CHROMIUM_ARGS, Host, devhost_on_azurite, shot
from .synthetic import instance_with, long_history

sync_api = pytest.importorskip("playwright.sync_api")  # pinned in requirements-dev.txt

HUB = f"Dash{uuid.uuid4().hex[:8]}"
REPORTS = f"reports-{HUB.lower()}"


@pytest.fixture(scope="module")
def host(azurite_connection_string: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    logs = tmp_path_factory.mktemp("dashboard")
    with devhost_on_azurite(azurite_connection_string, HUB, logs, REPORTS_CONTAINER=REPORTS) as running:
        yield running


@pytest.fixture(scope="module")
def memory_host(azurite_connection_string: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """The same app on devhost's memory store (the entity list needs it until the Azure store bug is fixed)."""
    logs = tmp_path_factory.mktemp("dashboard-memory")
    with devhost_on_azurite(
        azurite_connection_string, HUB, logs, DEVHOST_STORE="memory", REPORTS_CONTAINER=REPORTS
    ) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/bootstrap.sh (it installs chromium with apt)", pytrace=False)
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: dialog.accept())  # every action asks for confirmation
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _start_rollout(host: Host, **body: Any) -> str:
    status, payload, _ = host.call(
        "POST", "/api/updates", {"package": "agent", "version": "2.0.0", "targets": ["web-1", "web-2"], **body}
    )
    assert status == 202, payload
    return str(payload["id"])


def test_find_open_approve_and_watch_it_complete(host: Host, page: Any) -> None:
    update_id = _start_rollout(host, approval={"required": True})
    host.wait_status(update_id, {"Running"})
    page.goto(f"{host.base}/dashboard")
    page.fill("#f-prefix", update_id)
    page.click("#apply-filters")
    row = page.locator(f'#instance-rows tr[data-instance-id="{update_id}"]')
    row.wait_for()
    page.locator("#instance-rows").get_by_text("awaiting_approval").first.wait_for()  # custom status in the list
    shot(page, "01-instance-list")

    row.locator("a").click()
    page.locator("#summary").get_by_text("awaiting_approval").first.wait_for()
    page.locator(".tl-row[data-kind=timer]").first.wait_for()
    shot(page, "02-instance-awaiting-approval")

    page.fill("#event-name", "Approval")
    page.fill("#event-data", '{"approved": true, "by": "browser-test"}')
    page.click("#raise-event")
    page.locator(".result.ok").wait_for()
    page.locator(".inst-head .badge.st-completed").wait_for(timeout=60_000)
    page.locator(".tl-row[data-kind=sub]").first.wait_for()
    page.locator(".tl-row").get_by_text("activity store_report").first.wait_for()
    page.locator(".tl-row[data-kind=sub]").first.click()
    page.locator("#event-details").get_by_text("SubOrchestrationInstanceCompleted").first.wait_for()
    shot(page, "03-instance-completed-timeline")

    child = page.locator("#child-links a").first
    assert child.inner_text() == f"{update_id}:wave:1"
    child.click()
    page.locator("#parent-link").wait_for()
    assert page.locator("#parent-link").inner_text() == update_id
    page.locator(".inst-head .badge.st-completed").wait_for()
    shot(page, "04-child-wave")

    page.click("text=← all instances")
    page.select_option("#f-status", "Completed")
    page.fill("#f-prefix", "")
    page.fill("#f-name", "update_rollout")
    page.click("#apply-filters")
    # the previous (prefix) filter listed the child wave too; the name filter drops it
    sync_api.expect(page.locator(f'#instance-rows tr[data-instance-id="{update_id}:wave:1"]')).to_have_count(0)
    page.locator(f'#instance-rows tr[data-instance-id="{update_id}"]').wait_for()
    page.uncheck("#auto-refresh")  # pausing auto-refresh is a plain checkbox
    shot(page, "04b-list-filtered-by-name-and-status")
    assert host.wait_status(update_id, {"Completed"})["output"]["outcome"] == "Succeeded"


def _lease_report_blob(connection_string: str, update_id: str) -> Any:
    """Hold the rollout's report blob under someone else's lease, so `store_report` fails (and the run Fails)."""
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(connection_string)
    try:
        service.create_container(REPORTS)
    except ResourceExistsError:
        pass
    blob = service.get_blob_client(REPORTS, f"{update_id}.json")
    blob.upload_blob(b"{}", overwrite=True)
    return blob.acquire_lease(lease_duration=-1)


def test_fork_a_failed_run_from_a_timeline_event(host: Host, page: Any, azurite_connection_string: str) -> None:
    update_id = f"fail-{uuid.uuid4().hex[:8]}"
    lease = _lease_report_blob(azurite_connection_string, update_id)
    try:
        _start_rollout(host, updateId=update_id, approval={"required": False})
        failed = host.wait_status(update_id, {"Completed", "Failed"})
        assert failed["runtimeStatus"] == "Failed", failed
    finally:
        lease.release()
    page.goto(f"{host.base}/dashboard#/instances/{update_id}")
    page.locator(".inst-head .badge.st-failed").wait_for()
    page.locator(".block.failure").get_by_text("store_report").first.wait_for()

    store_report = page.locator(".tl-row[data-kind=activity]").filter(has_text="store_report")
    store_report.scroll_into_view_if_needed()
    store_report.click()
    fork_at = page.locator("#event-details button.fork").last  # the TaskFailed event
    assert "TaskFailed" in page.locator("#event-details .tl-event").last.inner_text()
    fork_id = f"{update_id}-fork"
    page.fill("#fork-new-id", fork_id)
    shot(page, "06-failed-run-fork-chosen-event")
    fork_at.click()
    page.locator("#fork-link").wait_for()
    assert page.locator("#fork-link").inner_text() == fork_id
    page.click("#fork-link")
    page.locator(".inst-head .badge.st-completed").wait_for(timeout=60_000)
    page.locator(".tl-row").get_by_text("activity store_report").first.wait_for()
    shot(page, "07-fork-completed")

    done = host.wait_status(fork_id, {"Completed"})
    assert done["output"]["outcome"] == "Succeeded"
    _, export, _ = host.call("GET", f"/devhost/api/instances/{fork_id}/history")
    created = [ev for ev in export["history"] if ev["EventType"] == 7]  # SubOrchestrationInstanceCreated
    # the wave ran once, in the original: the fork links to that child instead of running it again
    assert [ev["InstanceId"] for ev in created] == [f"{update_id}:wave:1"]

    # The cause is gone (the blob lease was released): rewinding the original re-runs the failed
    # store_report from the page, and the original completes too.
    page.goto(f"{host.base}/dashboard#/instances/{update_id}")
    page.locator(".inst-head .badge.st-failed").wait_for()
    page.click("#op-rewind")
    page.locator(".result.ok").get_by_text("Rewind").first.wait_for()
    page.locator(".inst-head .badge.st-completed").wait_for(timeout=60_000)
    shot(page, "05-failed-run-rewound")
    assert host.wait_status(update_id, {"Completed"})["output"]["outcome"] == "Succeeded"


def test_actions_show_results_and_errors(host: Host, page: Any) -> None:
    update_id = _start_rollout(host, approval={"required": True})
    host.wait_status(update_id, {"Running"})
    page.goto(f"{host.base}/dashboard#/instances/{update_id}")
    page.locator(".inst-head .badge.st-running").wait_for()
    page.click("#op-suspend")
    page.locator(".inst-head .badge.st-suspended").wait_for()
    page.click("#op-suspend")  # already suspended: the API's 409 is shown
    page.locator(".result.err").get_by_text("409").first.wait_for()
    page.click("#op-resume")
    page.locator(".inst-head .badge.st-running").wait_for()
    page.fill("#event-data", "{not json")
    page.click("#raise-event")
    page.locator(".result.err").get_by_text("not JSON").first.wait_for()
    page.click("#op-terminate")
    page.locator(".inst-head .badge.st-terminated").wait_for()
    page.click("#op-restart")
    page.locator(".result.ok").get_by_text("new instance").first.wait_for()
    shot(page, "08-actions")
    page.click("#op-purge")
    page.locator(".result.ok").get_by_text("1 deleted").first.wait_for()
    status, _, _ = host.call("GET", f"/runtime/webhooks/durabletask/instances/{update_id}")
    assert status == 404


def _entities_page(host: Host, page: Any, name: str) -> None:
    update_id = _start_rollout(host, approval={"required": True}, targets=["db-1"])
    host.wait_status(update_id, {"Running"})
    host.call("POST", f"/runtime/webhooks/durabletask/instances/{update_id}/raiseEvent/Approval", {"approved": True})
    host.wait_status(update_id, {"Completed"})
    page.goto(f"{host.base}/dashboard#/entities")
    page.locator("#entity-rows tr").first.wait_for()
    shot(page, name)
    page.locator("#entity-rows").get_by_text("target_lock").first.wait_for(timeout=5_000)


def test_entities_page_lists_locks_with_state_memory_store(memory_host: Host, page: Any) -> None:
    _entities_page(memory_host, page, "09-entities")


def test_entities_page_lists_locks_with_state_azure_store(host: Host, page: Any) -> None:
    _entities_page(host, page, "09b-entities-azure-store")


def test_a_5000_event_history_renders_and_scrolls(host: Host, page: Any, azurite_connection_string: str) -> None:
    from devhost.store.azure import open_store

    iid = f"big-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC) - timedelta(minutes=5)
    events = long_history(iid, 5000, now)

    async def write() -> None:
        store = await open_store({"AzureWebJobsStorage": azurite_connection_string}, HUB)
        try:
            await store.create(instance_with(iid, "update_rollout", RuntimeStatus.COMPLETED, now, events))
        finally:
            await store.close()

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API owns this thread's event loop
        pool.submit(asyncio.run, write()).result()
    page.goto(f"{host.base}/dashboard#/instances/{iid}")
    page.locator("#timeline-meta").get_by_text(f"{len(events)} events").wait_for(timeout=60_000)
    rendered = page.locator(".tl-row").count()
    assert 0 < rendered < 200  # virtualized: only the visible rows are in the DOM
    page.eval_on_selector("#timeline-scroll", "el => { el.scrollTop = el.scrollHeight; }")
    page.locator(f'.tl-row[data-index="{len(events) - 2}"]').wait_for()  # the final ExecutionCompleted row
    page.locator(".tl-row").last.click()
    page.locator("#event-details").get_by_text("ExecutionCompleted").first.wait_for()
    shot(page, "10-history-5000-events")
    page.click("#raw-box summary")
    page.locator("#raw-history").get_by_text('"EventType": 1,').first.wait_for()


def test_missing_instance_shows_the_api_error(host: Host, page: Any) -> None:
    page.goto(f"{host.base}/dashboard#/instances/no-such-instance")
    page.locator(".result.err").get_by_text("404").first.wait_for()


def test_purge_by_range_warns_that_running_work_is_deleted(host: Host, browser: Any) -> None:
    """Purge by filter without a finished status deletes every instance in the range on Azure
    (AzureTableTrackingStore.cs 843, OrchestrationInstanceStatusQueryCondition.cs 133, DTFx AzureStorage), so the
    dashboard says so before sending it; dismissing it sends nothing."""
    update_id = _start_rollout(host, approval={"required": True})
    host.wait_status(update_id, {"Running"})
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    messages: list[str] = []

    def dismiss(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    try:
        page.goto(f"{host.base}/dashboard#/")
        page.fill("#f-from", "2000-01-01T00:00")
        page.select_option("#f-status", "Running")  # not a finished status: Azure drops it, so no filter at all
        page.click("#purge-range")
        page.select_option("#f-status", "Completed")
        page.click("#purge-range")
    finally:
        context.close()
    assert len(messages) == 2, messages
    assert "ALL instances" in messages[0] and "EVERY instance" in messages[0] and "running" in messages[0]
    assert "Completed instances" in messages[1] and "EVERY" not in messages[1]
    status, _, _ = host.call("GET", f"/runtime/webhooks/durabletask/instances/{update_id}")
    assert status == 202  # nothing was purged
