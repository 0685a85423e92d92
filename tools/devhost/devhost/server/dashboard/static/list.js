// The instance list: filters, one page at a time (continuation tokens, never a full scan), auto-refresh.

import { PURGE_ALL_WARNING, listInstances, purgeByFilter } from "./api.js";
import { Poller, fmtTime, h, instanceHref, pretty, showResult, statusBadge } from "./dom.js";

const STATUSES = ["", "Pending", "Running", "Suspended", "Completed", "Failed", "Terminated", "ContinuedAsNew"];

// Kept across navigations so "back" from an instance returns to the same filters and page.
const state = { filters: { status: "", name: "", prefix: "", from: "", to: "" }, top: 25, tokens: [null], page: 0 };

export function renderInstanceList(view, cleanup) {
  const message = h("div", { id: "list-message" });
  const rows = h("tbody", { id: "instance-rows" });
  const pageInfo = h("span", { id: "page-info", class: "muted" });
  const prev = h("button", { id: "prev-page", type: "button", onclick: () => go(state.page - 1) }, "← Previous");
  const next = h("button", { id: "next-page", type: "button", onclick: () => go(state.page + 1) }, "Next →");
  const field = (label, input) => h("label", {}, label, input);
  const f = state.filters;
  const status = h("select", { id: "f-status" }, STATUSES.map((s) => h("option", { value: s }, s || "any")));
  status.value = f.status;
  const name = h("input", { id: "f-name", placeholder: "orchestrator name", value: f.name });
  const prefix = h("input", { id: "f-prefix", placeholder: "instance id prefix", value: f.prefix });
  const from = h("input", { id: "f-from", type: "datetime-local", value: f.from });
  const to = h("input", { id: "f-to", type: "datetime-local", value: f.to });
  const top = h("select", { id: "f-top" }, [10, 25, 50, 100].map((n) => h("option", { value: n }, n)));
  top.value = String(state.top);
  const auto = h("input", { id: "auto-refresh", type: "checkbox", checked: true });
  const form = h("form", {
    class: "filters", onsubmit: (e) => {
      e.preventDefault();
      Object.assign(state.filters, { status: status.value, name: name.value.trim(), prefix: prefix.value.trim(),
        from: from.value, to: to.value });
      state.top = Number(top.value);
      state.tokens = [null];
      go(0);
    },
  }, field("Status", status), field("Name", name), field("Id prefix", prefix), field("Created from", from),
  field("to", to), field("Page size", top), h("button", { type: "submit", id: "apply-filters" }, "Apply"),
  h("button", { type: "button", id: "purge-range", onclick: () => purgeRange() }, "Purge created range…"),
  h("label", { class: "inline" }, auto, "auto-refresh"));

  /** The Durable API's purge by filter over the "Created from/to" inputs and the selected status. */
  async function purgeRange() {
    if (!from.value) {
      showResult(message, false, "Set 'Created from' (and optionally 'to') to purge a range.");
      return;
    }
    const fromIso = new Date(from.value).toISOString();
    const toIso = to.value ? new Date(to.value).toISOString() : "";
    // Azure drops unfinished statuses from the filter; none left means no status filter at all.
    const finished = ["Completed", "Failed", "Terminated", "Canceled"].includes(status.value);
    const what = finished ? `${status.value} instances` : "ALL instances";
    const warning = finished ? "Their history is deleted and cannot be recovered." : PURGE_ALL_WARNING;
    if (!window.confirm(`Purge ${what} created from ${fromIso}${toIso ? ` to ${toIso}` : ""}?\n\n${warning}`)) return;
    try {
      const resp = await purgeByFilter(fromIso, toIso, finished ? [status.value] : []);
      showResult(message, true, `Purged ${resp.data.instancesDeleted} instance(s).`);
    } catch (err) {
      showResult(message, false, err.status === 404 ? "Nothing matched the purge filter." : `Purge failed: ${err.message}`);
    }
    load();
  }

  let latest = 0; // a slow answer for old filters or an old page must not overwrite a newer one
  async function load() {
    const mine = ++latest;
    try {
      const { items, next: token } = await listInstances(state.filters, state.tokens[state.page], state.top);
      if (mine !== latest) return;
      state.tokens[state.page + 1] = token || undefined;
      state.tokens.length = state.page + 2;
      rows.replaceChildren(...items.map(row));
      if (!items.length) {
        rows.append(h("tr", {}, h("td", { colspan: 6, class: "muted" },
          token ? "No matches on this page; try the next page." : "No instances match.")));
      }
      pageInfo.textContent = `page ${state.page + 1} · ${items.length} shown${token ? " · more available" : ""}`;
      prev.disabled = state.page === 0;
      next.disabled = !token;
      message.replaceChildren();
    } catch (err) {
      if (mine === latest) showResult(message, false, `Listing failed: ${err.message}`);
    }
  }

  function go(page) {
    if (page < 0 || (page > 0 && !state.tokens[page])) return;
    state.page = page;
    load();
  }

  function row(inst) {
    return h("tr", { dataset: { instanceId: inst.instanceId } },
      h("td", {}, statusBadge(inst.runtimeStatus)),
      h("td", {}, inst.name),
      h("td", {}, h("a", { href: instanceHref(inst.instanceId), class: "mono" }, inst.instanceId)),
      h("td", {}, fmtTime(inst.createdTime)),
      h("td", {}, fmtTime(inst.lastUpdatedTime)),
      h("td", { class: "custom mono", title: pretty(inst.customStatus) }, summarize(inst.customStatus)));
  }

  const poller = new Poller(load, 3000);
  auto.addEventListener("change", () => (auto.checked ? poller.start() : poller.stop()));
  cleanup.push(() => poller.stop());

  view.replaceChildren(
    h("h1", {}, "Orchestration instances"), form, message,
    h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, ["Status", "Name", "Instance id", "Created", "Last updated", "Custom status"]
        .map((t) => h("th", {}, t)))),
      rows),
    h("div", { class: "pager" }, prev, pageInfo, next));
  load();
  poller.start();
}

function summarize(value) {
  if (value === null || value === undefined) return "";
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}
