// The console's page: reads /console/api/v1 every second with the key from sessionStorage.
// Everything from the API goes in as text (textContent, attributes of SVG points), never as
// markup: a request body full of <script> stays text.
"use strict";

const API = "/console/api/v1";
const KEY = "storefirst-console-key";
const POLL_MS = 1000;
const PAGE = 25;
const MAX_SHOWN = 100;

const $ = (id) => document.getElementById(id);
let shown = PAGE;
let timer = null;
/** Request ids whose details the reader opened: kept open across refreshes. */
const open = new Set();
/** The list's elements by request id, updated in place so focus and scroll stay. */
const rows = new Map();

function say(text) {
  $("connection").textContent = text;
}

async function call(path, init = {}) {
  const key = sessionStorage.getItem(KEY);
  const response = await fetch(API + path, {
    ...init,
    headers: { "x-api-key": key || "" },
    cache: "no-store",
  });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (response.status === 403) {
    throw Object.assign(new Error("refused"), { refused: true });
  }
  if (!response.ok) {
    const message = body && typeof body.message === "string" ? body.message : response.statusText;
    throw new Error(`${response.status}: ${message}`);
  }
  return body;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function time(ms) {
  const node = el("time", "", new Date(ms).toLocaleTimeString());
  node.dateTime = new Date(ms).toISOString();
  return node;
}

function duration(ms) {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60000)} min`;
}

function renderCounts(counts) {
  for (const status of ["pending", "succeeded", "failed"]) {
    $(`count-${status}`).textContent = String(counts[status]);
  }
}

function renderBacklog(backlog) {
  $("backlog-requests").textContent = String(backlog.requests);
  $("lag").textContent = duration(backlog.lag_ms);
  $("stream-records").textContent =
    backlog.stream_records === null ? "not counted" : String(backlog.stream_records);
}

function renderActivity(activity) {
  const svg = $("chart");
  const width = 300;
  const start = Math.floor(activity.since / 1000);
  const span = Math.max(1, Math.floor(activity.until / 1000) - start);
  const bySecond = new Map(activity.seconds.map((s) => [s.at, s]));
  const peak = Math.max(1, ...activity.seconds.map((s) => Math.max(s.accepted, s.processed)));
  const line = (field) => {
    const points = [];
    for (let i = 0; i <= span; i++) {
      const second = bySecond.get(start + i);
      const value = second ? second[field] : 0;
      points.push(`${((i / span) * width).toFixed(1)},${(78 - (value / peak) * 74).toFixed(1)}`);
    }
    const polyline = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    polyline.setAttribute("class", field);
    polyline.setAttribute("points", points.join(" "));
    return polyline;
  };
  svg.replaceChildren(line("accepted"), line("processed"));
  const recent = activity.seconds.filter((s) => s.at >= Math.floor(activity.until / 1000) - 60);
  const sum = (field) => recent.reduce((total, s) => total + s[field], 0);
  $("activity-summary").textContent =
    `Last minute: ${sum("accepted")} accepted, ${sum("processed")} processed ` +
    `(peak ${peak} per second in the last 5 minutes).`;
}

function renderDeadLetters(body) {
  const letters = body.dead_letters;
  $("dead-empty").hidden = letters.length > 0;
  $("dead-letters").replaceChildren(
    ...letters.map((letter) => {
      const item = el("li");
      item.append(
        el("p", "error", letter.reason),
        el("p", "meta", `Stream records ${letter.first} to ${letter.last}; requests: ${letter.request_ids.join(", ")}`),
      );
      return item;
    }),
  );
}

function requestRow(item) {
  const row = el("li");
  row.dataset.id = item.id;
  const head = el("div", "head");
  head.append(
    el("span", "id"),
    el("span", "status"),
    el("span", "meta attempts"),
    el("span", "meta times"),
    el("span", "meta webhook"),
  );
  const details = el("details");
  details.append(el("summary", "", "body, result, error"), el("div", "detail"));
  details.addEventListener("toggle", () => {
    if (details.open) open.add(item.id);
    else open.delete(item.id);
  });
  row.append(head, details);
  return row;
}

function fillRow(row, item) {
  const [id, status, attempts, times, webhook] = row.querySelector(".head").children;
  id.textContent = item.id;
  status.textContent = item.status;
  status.className = `status ${["pending", "succeeded", "failed"].includes(item.status) ? item.status : ""}`;
  attempts.textContent = `${item.attempts} attempt${item.attempts === 1 ? "" : "s"}`;
  times.replaceChildren("created ", time(item.created_at), ", updated ", time(item.updated_at));
  const callback = item.callback;
  webhook.textContent = callback
    ? `webhook ${callback.status} (${callback.attempts} attempt${callback.attempts === 1 ? "" : "s"})`
    : "";
  const details = row.querySelector("details");
  details.open = open.has(item.id);
  const parts = [el("p", "meta", "Body"), el("pre", "body", item.request)];
  if (item.result !== undefined) {
    parts.push(el("p", "meta", "Result"), el("pre", "result", JSON.stringify(item.result, null, 2)));
  }
  if (item.error !== undefined) {
    parts.push(el("p", "meta", "Error"), el("pre", "error", item.error));
  }
  if (callback) {
    parts.push(el("p", "meta", "Webhook"), el("pre", "webhook", callback.url));
    if (callback.error !== undefined) parts.push(el("pre", "error", callback.error));
  }
  // Rebuilt only when it changed: an open reader's selection survives the refresh.
  const signature = JSON.stringify([item.request, item.result, item.error, callback]);
  if (details.dataset.signature !== signature) {
    details.dataset.signature = signature;
    details.querySelector(".detail").replaceChildren(...parts);
  }
}

function renderRequests(page) {
  const list = $("requests");
  const ids = page.items.map((item) => item.id);
  for (const item of page.items) {
    if (!rows.has(item.id)) rows.set(item.id, requestRow(item));
    fillRow(rows.get(item.id), item);
  }
  for (const id of [...rows.keys()]) {
    if (!ids.includes(id)) rows.delete(id);
  }
  const current = [...list.children].map((row) => row.dataset.id);
  // Moving a node blurs it: the list is reordered only when its ids changed.
  if (current.join("\n") !== ids.join("\n")) {
    list.replaceChildren(...ids.map((id) => rows.get(id)));
  }
  $("requests-empty").hidden = ids.length > 0;
  $("more").hidden = page.next === undefined || shown >= MAX_SHOWN;
}

function listPath() {
  const query = new URLSearchParams({ limit: String(shown) });
  const status = $("filter-status").value;
  const prefix = $("filter-prefix").value;
  if (status) query.set("status", status);
  if (prefix) query.set("prefix", prefix);
  return `/requests?${query}`;
}

async function refresh() {
  const [counts, backlog, activity, dead, page] = await Promise.all([
    call("/counts"),
    call("/backlog"),
    call("/activity?minutes=5"),
    call("/dead-letters"),
    call(listPath()),
  ]);
  renderCounts(counts);
  renderBacklog(backlog);
  renderActivity(activity);
  renderDeadLetters(dead);
  renderRequests(page);
}

function disconnected(message) {
  clearTimeout(timer);
  timer = null;
  sessionStorage.removeItem(KEY);
  $("dashboard").hidden = true;
  $("forget").hidden = true;
  $("key-form").hidden = false;
  say(message);
  $("key").focus();
}

async function poll() {
  try {
    await refresh();
    say(`Connected: updated ${new Date().toLocaleTimeString()}.`);
    $("dashboard").hidden = false;
  } catch (error) {
    if (error.refused) {
      disconnected("The API refused this key (403): enter the API's x-api-key.");
      return;
    }
    say(`Cannot read the API: ${error.message}. Retrying.`);
  }
  timer = setTimeout(poll, POLL_MS);
}

function connect() {
  clearTimeout(timer);
  $("key-form").hidden = true;
  $("forget").hidden = false;
  say("Connecting…");
  poll();
}

async function runRedrive() {
  const button = $("redrive");
  const result = $("redrive-result");
  button.disabled = true;
  result.textContent = "Redriving…";
  try {
    const report = await call("/redrive", { method: "POST" });
    result.textContent =
      `Redrive: ${report.found} stuck, ${report.succeeded} succeeded, ` +
      `${report.rejected} rejected, ${report.still_failing} still failing.`;
  } catch (error) {
    result.textContent = error.refused ? "Refused: the key is no longer valid." : `Redrive failed: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("key").value);
    $("key").value = "";
    connect();
  });
  $("forget").addEventListener("click", () => disconnected("Key forgotten: enter it to connect again."));
  $("redrive").addEventListener("click", runRedrive);
  $("more").addEventListener("click", () => {
    shown = Math.min(MAX_SHOWN, shown + PAGE);
    refresh().catch(() => {});
  });
  $("filter").addEventListener("submit", (event) => event.preventDefault());
  for (const id of ["filter-status", "filter-prefix"]) {
    $(id).addEventListener("input", () => {
      shown = PAGE;
      refresh().catch(() => {});
    });
  }
  if (sessionStorage.getItem(KEY)) connect();
});
