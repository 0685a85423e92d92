// The dashboard's entry point: a hash router over three views. Plain ES modules, no build step.

import { renderEntities } from "./entities.js";
import { renderInstance } from "./detail.js";
import { renderInstanceList } from "./list.js";

const view = document.getElementById("view");
let cleanup = [];

function route() {
  for (const fn of cleanup) fn();
  cleanup = [];
  const hash = location.hash || "#/";
  const match = hash.match(/^#\/instances\/(.+)$/);
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active",
    a.dataset.nav === (hash.startsWith("#/entities") ? "entities" : "instances")));
  if (match) renderInstance(view, decodeURIComponent(match[1]), cleanup);
  else if (hash.startsWith("#/entities")) renderEntities(view);
  else renderInstanceList(view, cleanup);
  window.scrollTo(0, 0);
}

window.addEventListener("hashchange", route);
route();
