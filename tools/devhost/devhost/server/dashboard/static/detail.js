// One instance: summary, actions, parent/child links, the timeline and the raw history.

import { PURGE_RUNNING_WARNING, control, fork, getHistory, getStatus, purge, raiseEvent } from "./api.js";
import { Poller, fmtTime, h, instanceHref, pretty, showResult, statusBadge } from "./dom.js";
import { renderTimeline, typeName } from "./timeline.js";

const TERMINAL = new Set(["Completed", "Failed", "Terminated", "Canceled"]);

export function renderInstance(view, id, cleanup) {
  const head = h("div", { class: "inst-head" });
  const summary = h("div", { class: "summary", id: "summary" });
  const links = h("div", { class: "links", id: "links" });
  const result = h("div", { id: "action-result" });
  const timeline = h("div", { class: "timeline", id: "timeline" }, h("p", { class: "muted" }, "Loading history…"));
  const raw = h("pre", { class: "json raw", id: "raw-history" });
  const rawBox = h("details", { id: "raw-box", ontoggle: () => { if (rawBox.open) raw.textContent = JSON.stringify(last.history, null, 2); } },
    h("summary", {}, "Raw history JSON (full fidelity)"), raw);
  const auto = h("input", { id: "detail-auto-refresh", type: "checkbox", checked: true });
  const last = { status: null, history: [], key: "" };

  let latest = 0; // answers can overtake each other (auto-refresh vs. after an action): keep the newest
  async function load(force = false) {
    const mine = ++latest;
    let status;
    let hist;
    try {
      [status, hist] = await Promise.all([getStatus(id), getHistory(id)]);
      if (mine !== latest) return;
    } catch (err) {
      if (mine !== latest) return;
      head.replaceChildren(h("h1", { class: "mono" }, id));
      showResult(summary, false, `Loading the instance failed: ${err.message}`);
      return;
    }
    const key = `${status.runtimeStatus}|${status.lastUpdatedTime}|${hist.history.length}`;
    if (!force && key === last.key) return;
    last.key = key;
    last.status = status;
    last.history = hist.history;
    renderHead(status, hist);
    renderSummary(status, hist);
    renderLinks(hist);
    const top = timeline.querySelector(".tl-scroll")?.scrollTop || 0;
    renderTimeline(timeline, hist.history, { onFork });
    const scroller = timeline.querySelector(".tl-scroll");
    if (scroller) scroller.scrollTop = top;
    if (rawBox.open) raw.textContent = JSON.stringify(hist.history, null, 2);
    if (TERMINAL.has(status.runtimeStatus)) poller.stop();
  }

  function renderHead(status, hist) {
    head.replaceChildren(
      h("h1", {}, h("span", { class: "mono", id: "instance-id" }, id), " ", statusBadge(status.runtimeStatus)),
      h("p", { class: "muted" }, `${status.name} · created ${fmtTime(status.createdTime)} · last updated ${fmtTime(status.lastUpdatedTime)}`,
        hist.version ? h("span", { id: "instance-version" }, ` · version ${hist.version}`) : null));
  }

  function renderSummary(status, hist) {
    const end = [...hist.history].reverse().find((ev) => typeName(ev) === "ExecutionCompleted");
    const failed = status.runtimeStatus === "Failed";
    summary.replaceChildren(
      block("Input", status.input),
      failed
        ? block("Failure", end && end.Details ? `${status.output}\n\n${end.Details}` : status.output, "failure")
        : block("Output", status.output),
      block("Custom status", status.customStatus));
  }

  function renderLinks(hist) {
    const children = hist.history.filter((ev) => typeName(ev) === "SubOrchestrationInstanceCreated")
      .map((ev) => ev.InstanceId);
    links.replaceChildren(...[
      hist.parentInstanceId
        ? h("p", {}, "Parent: ", h("a", { href: instanceHref(hist.parentInstanceId), class: "mono", id: "parent-link" }, hist.parentInstanceId))
        : null,
      children.length
        ? h("p", { id: "child-links" }, "Children: ", ...children.flatMap((c, i) => [i ? ", " : "",
          h("a", { href: instanceHref(c), class: "mono child-link" }, c)]))
        : null].filter(Boolean));
  }

  async function act(label, fn, after, warning = "") {
    if (!window.confirm(`${label} instance ${id}?${warning ? `\n\n${warning}` : ""}`)) return;
    try {
      const resp = await fn();
      showResult(result, true, `${label}: accepted (HTTP ${resp.status})${after ? ` · ${after(resp)}` : ""}`);
      poller.start();
      setTimeout(() => load(true), 300);
    } catch (err) {
      showResult(result, false, `${label} failed: ${err.message}`);
    }
  }

  async function onFork(index, newId) {
    if (!window.confirm(`Fork ${id} at event #${index}? A new instance keeps the episodes before that event's episode and carries on with the current code.`)) return;
    try {
      const resp = await fork(id, index, newId || undefined);
      const d = resp.data;
      result.replaceChildren(h("div", { class: "result ok", role: "status" },
        `Forked at #${d.cutAt} (${d.episodesKept} episodes kept, ${d.pendingSent} pending re-sent): `,
        h("a", { href: instanceHref(d.instanceId), class: "mono", id: "fork-link" }, d.instanceId)));
    } catch (err) {
      showResult(result, false, `Fork failed: ${err.message}`);
    }
    window.scrollTo(0, 0);
  }

  const eventName = h("input", { id: "event-name", placeholder: "event name", value: "Approval" });
  const eventData = h("textarea", { id: "event-data", rows: 2 }, '{"approved": true}');
  const reason = h("input", { id: "reason", placeholder: "reason (optional)" });
  const button = (label, onclick, idName) => h("button", { type: "button", id: idName, onclick }, label);
  const actions = h("div", { class: "actions" },
    h("div", { class: "raise" }, eventName, eventData, button("Raise event", () => {
      let value;
      try {
        value = eventData.value.trim() ? JSON.parse(eventData.value) : undefined;
      } catch (err) {
        showResult(result, false, `The event data is not JSON: ${err.message}`);
        return;
      }
      act(`Raise '${eventName.value}' on`, () => raiseEvent(id, eventName.value.trim(), value));
    }, "raise-event")),
    h("div", { class: "ops" }, reason,
      button("Terminate", () => act("Terminate", () => control(id, "terminate", reason.value)), "op-terminate"),
      button("Suspend", () => act("Suspend", () => control(id, "suspend", reason.value)), "op-suspend"),
      button("Resume", () => act("Resume", () => control(id, "resume", reason.value)), "op-resume"),
      button("Rewind", () => act("Rewind", () => control(id, "rewind", reason.value)), "op-rewind"),
      button("Restart", () => act("Restart", () => control(id, "restart"),
        (r) => `new instance ${r.data && r.data.id}`), "op-restart"),
      button("Purge", () => act("Purge", () => purge(id), (r) => `${r.data.instancesDeleted} deleted`,
        last.status && !TERMINAL.has(last.status.runtimeStatus) ? PURGE_RUNNING_WARNING : ""), "op-purge"),
      h("label", { class: "inline" }, auto, "auto-refresh")));

  const poller = new Poller(() => load(), 1500);
  auto.addEventListener("change", () => (auto.checked ? poller.start() : poller.stop()));
  cleanup.push(() => poller.stop());
  view.replaceChildren(h("p", {}, h("a", { href: "#/" }, "← all instances")), head, result, actions, summary, links,
    h("h2", {}, "Timeline"), timeline, rawBox);
  load(true);
  poller.start();
}

function block(title, value, cls = "") {
  const text = value === null || value === undefined ? "" : pretty(value);
  return h("div", { class: `block ${cls}` }, h("h3", {}, title),
    text ? h("pre", { class: "json" }, text) : h("p", { class: "muted" }, "(none)"));
}
