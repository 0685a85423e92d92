// The history as a timeline: one row per activity, timer, sub-orchestration, entity call, event or episode,
// placed on a time axis. Rows are virtualized (only the visible ones are in the DOM), so a 5,000-event
// history stays responsive. Clicking a row shows its events (input/result) and "Fork from here" buttons.

import { fmtTime, h, instanceHref, pretty } from "./dom.js";

export const EVENT_NAMES = ["ExecutionStarted", "ExecutionCompleted", "ExecutionFailed", "ExecutionTerminated",
  "TaskScheduled", "TaskCompleted", "TaskFailed", "SubOrchestrationInstanceCreated",
  "SubOrchestrationInstanceCompleted", "SubOrchestrationInstanceFailed", "TimerCreated", "TimerFired",
  "OrchestratorStarted", "OrchestratorCompleted", "EventSent", "EventRaised", "ContinueAsNew", "GenericEvent",
  "HistoryState", "ExecutionSuspended", "ExecutionResumed", "ExecutionRewound"];
const T = Object.fromEntries(EVENT_NAMES.map((n, i) => [n, i]));
const STATUS_NAMES = { 0: "Running", 1: "Completed", 2: "ContinuedAsNew", 3: "Failed", 4: "Canceled",
  5: "Terminated", 6: "Pending", 7: "Suspended" };
const ROW = 26;

export const typeName = (ev) => (typeof ev.EventType === "number" ? EVENT_NAMES[ev.EventType] : ev.EventType);
const ms = (ts) => (ts ? Date.parse(ts) : NaN);

/** Timeline items from the store's full-fidelity events (history_view.export_instance). */
export function buildItems(history) {
  const items = [];
  const open = new Map(); // "kind:seq" -> item waiting for its completion
  const requests = new Map(); // entity request id -> item
  const attempts = new Map(); // activity/sub "name|input" -> count, to label retries
  let episode = null;
  let episodes = 0;
  let previous = null; // the last non-framing event, to tell retry timers apart
  history.forEach((ev, index) => {
    const t = T[typeName(ev)];
    const at = ms(ev.Timestamp);
    const add = (item) => { items.push({ index, events: [index], start: at, end: at, status: "ok", ...item }); return items[items.length - 1]; };
    const close = (key, status) => {
      const item = open.get(key);
      if (!item) return;
      open.delete(key);
      item.end = at;
      item.status = status;
      item.events.push(index);
    };
    switch (t) {
      case T.OrchestratorStarted:
        episodes += 1;
        episode = add({ kind: "episode", label: `episode ${episodes}`, status: "episode" });
        return;
      case T.OrchestratorCompleted:
        if (episode) { episode.end = at; episode.events.push(index); }
        return;
      case T.ExecutionStarted:
        add({ kind: "start", label: `started ${ev.Name || ""}` });
        break;
      case T.ExecutionCompleted: {
        const status = STATUS_NAMES[ev.OrchestrationStatus] || String(ev.OrchestrationStatus);
        add({ kind: "end", label: status.toLowerCase(), status: status === "Completed" ? "ok" : "failed" });
        break;
      }
      case T.TaskScheduled:
      case T.SubOrchestrationInstanceCreated: {
        const sub = t === T.SubOrchestrationInstanceCreated;
        const key = `${ev.Name}|${ev.Input ?? ""}`;
        const n = (attempts.get(key) || 0) + 1;
        attempts.set(key, n);
        const label = `${sub ? "sub-orchestration" : "activity"} ${ev.Name}${n > 1 ? ` (attempt ${n})` : ""}`;
        const item = add({ kind: sub ? "sub" : "activity", label, status: "pending", child: sub ? ev.InstanceId : null });
        open.set(`${sub ? "sub" : "task"}:${ev.EventId}`, item);
        break;
      }
      case T.TaskCompleted: close(`task:${ev.TaskScheduledId}`, "ok"); break;
      case T.TaskFailed: close(`task:${ev.TaskScheduledId}`, "failed"); break;
      case T.SubOrchestrationInstanceCompleted: close(`sub:${ev.TaskScheduledId}`, "ok"); break;
      case T.SubOrchestrationInstanceFailed: close(`sub:${ev.TaskScheduledId}`, "failed"); break;
      case T.TimerCreated: {
        const retry = previous && (previous.t === T.TaskFailed || previous.t === T.SubOrchestrationInstanceFailed);
        const item = add({ kind: "timer", label: retry ? "retry delay" : `timer until ${fmtTime(ev.FireAt)}`,
          status: "pending", due: ms(ev.FireAt) });
        open.set(`timer:${ev.EventId}`, item);
        break;
      }
      case T.TimerFired: close(`timer:${ev.TimerId}`, "ok"); break;
      case T.EventSent: {
        let request = {};
        try { request = JSON.parse(ev.Input || "{}"); } catch { /* not an entity request */ }
        const signal = request.signal;
        const item = add({ kind: "entity", label: `${signal ? "signal" : "call"} ${ev.InstanceId} ${request.op || ev.Name || ""}`,
          status: signal ? "ok" : "pending" });
        if (!signal && request.id) requests.set(request.id, item);
        break;
      }
      case T.EventRaised: {
        const call = requests.get(ev.Name);
        if (call) {
          requests.delete(ev.Name);
          call.end = at;
          call.status = "ok";
          call.events.push(index);
        } else {
          add({ kind: "event", label: `event ${ev.Name}` });
        }
        break;
      }
      default:
        add({ kind: "control", label: (typeName(ev) || "event").replace(/^Execution/, "").toLowerCase() });
    }
    previous = { t };
  });
  if (items.some((it) => it.kind === "end")) {
    // The run is over: what never completed was abandoned (e.g. a cancelled timeout timer), not pending.
    for (const it of items) if (it.status === "pending") { it.status = "abandoned"; it.label += " (never completed)"; }
  }
  return items;
}

/** Mount a virtualized timeline for `history` into `root`; `onFork(index)` is called from the details panel. */
export function renderTimeline(root, history, { onFork }) {
  const items = buildItems(history);
  let t0 = Infinity;
  let t1 = -Infinity;
  for (const it of items) {
    if (Number.isFinite(it.start)) t0 = Math.min(t0, it.start);
    if (Number.isFinite(it.end)) t1 = Math.max(t1, it.end);
  }
  if (!Number.isFinite(t0)) { t0 = 0; t1 = 1; }
  // A run still in progress: the axis ends now, so pending work visibly grows.
  if (!items.some((it) => it.kind === "end")) t1 = Math.max(t1, Date.now());
  const span = Math.max(1, t1 - t0);
  const pct = (v) => `${(((v - t0) / span) * 100).toFixed(3)}%`;

  const inner = h("div", { class: "tl-inner", style: `height:${items.length * ROW}px` });
  const scroller = h("div", { class: "tl-scroll", id: "timeline-scroll",
    style: `height:${Math.min(420, items.length * ROW + 2)}px` }, inner);
  const details = h("div", { class: "tl-details", id: "event-details" },
    h("p", { class: "muted" }, "Select a row to see its events, inputs and results."));
  const axis = h("div", { class: "tl-axis" }, h("span", { class: "tl-axis-label" }, ""),
    h("div", { class: "tl-ticks" }, [0, 0.25, 0.5, 0.75, 1].map((f) =>
      h("span", { style: `left:${f * 100}%` }, `+${((span * f) / 1000).toFixed(span < 10000 ? 2 : 0)}s`))));
  let selected = null;

  function rowEl(item, i) {
    const bar = item.kind === "episode" || item.start === item.end && item.status !== "pending" && item.status !== "abandoned"
      ? h("span", { class: `point k-${item.kind} s-${item.status}`, style: `left:${pct(item.start)}` })
      : h("span", { class: `bar k-${item.kind} s-${item.status}`, style: `left:${pct(item.start)};width:max(3px, ${
        (((item.status === "pending" || item.status === "abandoned" ? t1 : item.end) - item.start) / span * 100).toFixed(3)}%)` });
    return h("div", {
      class: `tl-row${selected === item ? " selected" : ""}${item.kind === "episode" ? " episode" : ""}`,
      style: `top:${i * ROW}px`, dataset: { index: item.index, kind: item.kind }, title: hint(history[item.index]),
      onclick: () => select(item),
    }, h("span", { class: "tl-idx mono" }, `#${item.index}`),
    h("span", { class: `tl-label s-${item.status}`, title: item.label }, item.label),
    h("span", { class: "tl-track" }, bar));
  }

  function paint() {
    const first = Math.max(0, Math.floor(scroller.scrollTop / ROW) - 10);
    const last = Math.min(items.length, first + Math.ceil((scroller.clientHeight || 480) / ROW) + 20);
    const rows = [];
    for (let i = first; i < last; i++) rows.push(rowEl(items[i], i));
    inner.replaceChildren(...rows);
  }

  function select(item) {
    selected = item;
    paint();
    const newId = h("input", { id: "fork-new-id", placeholder: "new instance id (optional)" });
    details.replaceChildren(...[
      h("h3", {}, item.label),
      item.child ? h("p", {}, "Child: ", h("a", { href: instanceHref(item.child), class: "mono" }, item.child)) : null,
      h("label", { class: "inline" }, "Fork to: ", newId),
      ...item.events.map((idx) => {
        const ev = history[idx];
        return h("div", { class: "tl-event" },
          h("div", { class: "tl-event-head" },
            h("strong", {}, `#${idx} ${typeName(ev)}`), h("span", { class: "muted" }, fmtTime(ev.Timestamp)),
            h("button", {
              type: "button", class: "fork", dataset: { forkAt: idx },
              title: "Start a new instance with this history up to the start of this event's episode",
              onclick: () => onFork(idx, newId.value.trim()),
            }, "Fork from here")),
          h("pre", { class: "json" }, pretty(detailsOf(ev))));
      })].filter(Boolean));
  }

  scroller.addEventListener("scroll", () => requestAnimationFrame(paint), { passive: true });
  root.replaceChildren(
    h("div", { class: "tl-meta muted", id: "timeline-meta" },
      `${history.length} events · ${items.length} rows · ${fmtTime(new Date(t0).toISOString())} → ${fmtTime(new Date(t1).toISOString())}`),
    axis, scroller, details);
  paint();
  return { items, scroller };
}

function hint(ev) {
  const text = ev.Input ?? ev.Result ?? ev.Reason ?? "";
  return typeof text === "string" ? text.slice(0, 300) : JSON.stringify(text).slice(0, 300);
}

function detailsOf(ev) {
  const out = {};
  for (const [k, v] of Object.entries(ev)) {
    if (v === null || k === "IsPlayed") continue;
    out[k] = typeof v === "string" && /^[[{"]/.test(v) ? safeParse(v) : v;
  }
  out.EventType = typeName(ev);
  return out;
}

function safeParse(text) {
  try { return JSON.parse(text); } catch { return text; }
}
