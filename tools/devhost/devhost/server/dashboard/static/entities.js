// Entities with their state, a page at a time.

import { listEntities } from "./api.js";
import { fmtTime, h, pretty, showResult } from "./dom.js";

export function renderEntities(view) {
  const tokens = [null];
  let page = 0;
  const rows = h("tbody", { id: "entity-rows" });
  const message = h("div");
  const prev = h("button", { type: "button", onclick: () => go(page - 1) }, "← Previous");
  const next = h("button", { type: "button", onclick: () => go(page + 1) }, "Next →");

  async function go(p) {
    if (p < 0 || (p > 0 && !tokens[p])) return;
    page = p;
    try {
      const { items, next: token } = await listEntities(tokens[page], 50);
      tokens[page + 1] = token || undefined;
      rows.replaceChildren(...items.map((e) => h("tr", {},
        h("td", { class: "mono" }, e.entityId.name), h("td", { class: "mono" }, e.entityId.key),
        h("td", {}, fmtTime(e.lastOperationTime)), h("td", {}, h("pre", { class: "state" }, pretty(e.state))))));
      if (!items.length) rows.append(h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No entities on this page.")));
      prev.disabled = page === 0;
      next.disabled = !token;
    } catch (err) {
      showResult(message, false, `Listing entities failed: ${err.message}`);
    }
  }

  view.replaceChildren(h("h1", {}, "Entities"), message,
    h("table", { class: "grid" }, h("thead", {}, h("tr", {},
      ["Entity", "Key", "Last operation", "State"].map((t) => h("th", {}, t)))), rows),
    h("div", { class: "pager" }, prev, next));
  go(0);
}
