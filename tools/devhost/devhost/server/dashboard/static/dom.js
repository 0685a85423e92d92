// Tiny DOM helpers: build elements without innerHTML, so values from instances are never parsed as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function fmtTime(value) {
  if (!value) return "";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toISOString().replace("T", " ").replace(/\.\d+Z$|Z$/, "Z");
}

export function pretty(value) {
  if (value === undefined) return "";
  if (typeof value === "string") {
    try { return JSON.stringify(JSON.parse(value), null, 2); } catch { return value; }
  }
  return JSON.stringify(value, null, 2);
}

export function statusBadge(status) {
  return h("span", { class: `badge st-${String(status || "").toLowerCase()}` }, status || "?");
}

export const instanceHref = (id) => `#/instances/${encodeURIComponent(id)}`;

/** A message line for an action's outcome: ok (green) or error (red, with the server's message). */
export function showResult(target, ok, text) {
  target.replaceChildren(h("div", { class: ok ? "result ok" : "result err", role: "status" }, text));
}

/** setInterval that can be paused; `tick` may be async (overlapping ticks are skipped). */
export class Poller {
  constructor(tick, ms) {
    this.tick = tick;
    this.ms = ms;
    this.timer = null;
    this.busy = false;
  }
  start() {
    if (this.timer) return;
    this.timer = setInterval(async () => {
      if (this.busy) return;
      this.busy = true;
      try { await this.tick(); } finally { this.busy = false; }
    }, this.ms);
  }
  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }
  get running() { return this.timer !== null; }
}
