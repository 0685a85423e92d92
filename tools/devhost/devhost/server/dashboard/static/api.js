// Thin fetch wrappers for the Durable HTTP API and devhost's own /devhost/api routes.
// Every non-2xx answer becomes an ApiError carrying the server's message, so views can show it.

export const DURABLE = "/runtime/webhooks/durabletask";
export const DEVHOST = "/devhost/api";

export class ApiError extends Error {
  constructor(status, message, body) {
    super(`${status}: ${message}`);
    this.status = status;
    this.body = body;
  }
}

export async function request(method, url, { body, headers = {}, json = true } = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = json ? JSON.stringify(body) : body;
    init.headers["Content-Type"] = "application/json";
  }
  let resp;
  try {
    resp = await fetch(url, init);
  } catch (err) {
    throw new ApiError(0, `network error: ${err.message}`, null);
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!resp.ok) {
    const message = (data && (data.Message || data.message)) || resp.statusText || "request failed";
    throw new ApiError(resp.status, message, data);
  }
  return { status: resp.status, data, headers: resp.headers };
}

const enc = encodeURIComponent;

/** One page of orchestration instances from devhost's route: the Durable API's list also holds the
 * entities' `@name@key` instances (as Azure's does), which the Entities tab shows instead. */
export async function listInstances(filters, token, top) {
  const params = new URLSearchParams();
  params.set("top", String(top));
  if (filters.status) params.set("runtimeStatus", filters.status);
  if (filters.prefix) params.set("instanceIdPrefix", filters.prefix);
  if (filters.from) params.set("createdTimeFrom", new Date(filters.from).toISOString());
  if (filters.to) params.set("createdTimeTo", new Date(filters.to).toISOString());
  if (filters.name) params.set("name", filters.name);
  const base = `${DEVHOST}/instances`;
  const headers = token ? { "x-ms-continuation-token": token } : {};
  const resp = await request("GET", `${base}?${params}`, { headers });
  return { items: resp.data || [], next: resp.headers.get("x-ms-continuation-token") };
}

export async function listEntities(token, top) {
  const headers = token ? { "x-ms-continuation-token": token } : {};
  const resp = await request("GET", `${DURABLE}/entities?fetchState=true&top=${top}`, { headers });
  return { items: resp.data || [], next: resp.headers.get("x-ms-continuation-token") };
}

export const getStatus = (id) => request("GET", `${DURABLE}/instances/${enc(id)}?showInput=true`).then((r) => r.data);
export const getHistory = (id) => request("GET", `${DEVHOST}/instances/${enc(id)}/history`).then((r) => r.data);

/** Always a JSON body (`null` when no data): the extension answers 400 to a raise without JSON content. */
export function raiseEvent(id, name, value) {
  return request("POST", `${DURABLE}/instances/${enc(id)}/raiseEvent/${enc(name)}`,
    { body: value === undefined ? null : value });
}

/** DELETE /instances?createdTimeFrom=...: with no status, Azure purges EVERY instance created in the range,
 * running ones and entities included; callers must warn first (PURGE_ALL_WARNING). */
export function purgeByFilter(createdFrom, createdTo, statuses = []) {
  const params = new URLSearchParams({ createdTimeFrom: createdFrom });
  if (createdTo) params.set("createdTimeTo", createdTo);
  if (statuses.length) params.set("runtimeStatus", statuses.join(","));
  return request("DELETE", `${DURABLE}/instances?${params}`);
}

export const PURGE_ALL_WARNING = "No finished status is selected, so this purges EVERY instance created in the range: "
  + "running, pending and suspended ones and entities too, as Azure does. Their history is deleted and cannot be "
  + "recovered.";

export const PURGE_RUNNING_WARNING = "This instance is not finished. Purging deletes its history while it runs "
  + "(as Azure does); whatever it was doing stops being tracked.";

/** terminate | suspend | resume | rewind | restart */
export function control(id, op, reason) {
  const q = reason ? `?reason=${enc(reason)}` : "";
  return request("POST", `${DURABLE}/instances/${enc(id)}/${op}${q}`);
}

export const purge = (id) => request("DELETE", `${DURABLE}/instances/${enc(id)}`);

export function fork(id, atEvent, newInstanceId) {
  const body = { atEvent };
  if (newInstanceId) body.newInstanceId = newInstanceId;
  return request("POST", `${DEVHOST}/instances/${enc(id)}/fork`, { body });
}
