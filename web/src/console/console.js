// The operator console: polls the admin endpoints of /api/v1 every few seconds and renders them.
// Every string from the server is attacker-influenced (dead jobs' payloads and errors, auction
// titles) and is only ever set as text (textContent), never parsed as HTML.
"use strict";

const API = "/api/v1";
const TOKEN_KEY = "neighborbid.ops.token";
const POLL_MS = 3000;
const SPARKS = "▁▂▃▄▅▆▇█";

let timer = null;

const $ = (id) => document.getElementById(id);

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** A failed API call, with the server's error code. */
class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(API + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    credentials: "omit",
  });
  if (resp.status === 204) return null;
  let data = null;
  try {
    data = await resp.json();
  } catch {
    data = null;
  }
  if (!resp.ok) {
    const error = (data && data.error) || {};
    throw new ApiFailure(resp.status, String(error.code || "http_" + resp.status), String(error.message || resp.statusText));
  }
  return data;
}

/** An element with text content and optional class. */
function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) tr.append(cell instanceof Node ? cell : el("td", cell));
  return tr;
}

function num(value) {
  return el("td", Number(value).toLocaleString("en"), "num");
}

function replaceRows(tableId, rows) {
  $(tableId).tBodies[0].replaceChildren(...rows);
}

function duration(ms) {
  if (ms === null || ms === undefined) return "—";
  const s = ms / 1000;
  if (Math.abs(s) < 60) return `${s.toFixed(1)} s`;
  if (Math.abs(s) < 3600) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function relative(iso) {
  const ms = Date.parse(iso) - Date.now();
  return ms >= 0 ? `in ${duration(ms)}` : `${duration(-ms)} ago`;
}

function sparkline(counts) {
  const max = Math.max(1, ...counts);
  return counts.map((c) => (c === 0 ? "·" : SPARKS[Math.min(SPARKS.length - 1, Math.floor((c / max) * (SPARKS.length - 1)))])).join("");
}

// --- rendering ---------------------------------------------------------------------------------

function renderQueues(data) {
  replaceRows(
    "queues",
    data.queues.map((q) => {
      const counts = q.throughput.map((m) => m.finished);
      const tr = row([
        el("td", q.name),
        num(q.scheduled),
        num(q.active),
        num(q.inflight),
        el("td", q.dead, q.dead > 0 ? "num bad" : "num"),
        el("td", q.workers_alive, q.workers_alive > 0 ? "num" : "num bad"),
        num(counts[counts.length - 1] || 0),
        num(counts.reduce((a, b) => a + b, 0)),
        el("td", sparkline(counts), "spark"),
      ]);
      tr.dataset.queue = q.name;
      return tr;
    }),
  );
}

function actionButton(label, onClick) {
  const button = el("button", label);
  button.type = "button";
  button.addEventListener("click", onClick);
  return button;
}

async function act(method, path, what) {
  $("action-error").textContent = "";
  try {
    await api(method, path);
  } catch (err) {
    $("action-error").textContent = `${what} failed: ${err.message} (${err.code || "network"})`;
  }
  await refresh();
}

function renderDeadJobs(lists) {
  const rows = [];
  for (const list of lists) {
    for (const job of list.items) {
      const path = `/admin/queues/${encodeURIComponent(list.queue)}/dead/${encodeURIComponent(job.id)}`;
      const payload = el("td");
      payload.append(el("code", job.payload ?? "(payload missing)"));
      const buttons = el("td");
      buttons.append(
        actionButton("Retry", () => act("POST", `${path}/retry`, `Retrying ${job.id}`)),
        actionButton("Discard", () => {
          if (window.confirm(`Discard dead job ${job.id} for good?`)) act("DELETE", path, `Discarding ${job.id}`);
        }),
      );
      const tr = row([el("td", list.queue), el("td", job.id), el("td", job.attempts ?? "—", "num"), el("td", job.error ?? "—", "error-text"), payload, buttons]);
      tr.dataset.queue = list.queue;
      tr.dataset.jobId = job.id;
      rows.push(tr);
    }
    if (list.total > list.items.length) {
      rows.push(row([el("td", list.queue), el("td", `… and ${list.total - list.items.length} more`)]));
    }
  }
  replaceRows("dead-jobs", rows);
  $("dead-jobs").hidden = rows.length === 0;
  $("dead-empty").hidden = rows.length > 0;
}

function renderWorkers(data) {
  replaceRows(
    "workers",
    data.items.map((w) =>
      row([el("td", w.name), el("td", w.queue), el("td", relative(w.last_heartbeat_at)), el("td", w.alive ? "yes" : "no", w.alive ? "good" : "bad"), num(w.inflight)]),
    ),
  );
}

function renderClosings(data) {
  replaceRows(
    "closing-soon",
    data.closing_soon.map((a) => {
      const overdue = Date.parse(a.ends_at) < Date.now();
      return row([el("td", a.id, "num"), el("td", a.title), el("td", relative(a.ends_at), overdue ? "bad" : ""), num(a.bid_count), num(a.current_price)]);
    }),
  );
  replaceRows(
    "recently-closed",
    data.recently_closed.map((a) => {
      const waiting = a.status === "closed" ? `waiting ${duration(Date.now() - Date.parse(a.closed_at))}` : "—";
      return row([
        el("td", a.id, "num"),
        el("td", a.title),
        el("td", a.status),
        el("td", duration(a.close_lag_ms), "num"),
        el("td", a.settlement_lag_ms === null ? waiting : duration(a.settlement_lag_ms), a.status === "closed" ? "num bad" : "num"),
      ]);
    }),
  );
}

function renderAudit(report) {
  const summary = $("audit-summary");
  const list = $("audit-violations");
  if (!report) {
    summary.textContent = "No audit has run yet.";
    summary.className = "";
    list.replaceChildren();
    return;
  }
  const t = report.totals;
  summary.textContent =
    `${report.ok ? "Clean" : `${report.violations.length} violation(s)`} — checked ${relative(report.checked_at)} ` +
    `(${new Date(report.checked_at).toLocaleString()}). Deposits ${t.deposits}, withdrawals ${t.withdrawals}, ` +
    `available ${t.available}, held ${t.held}, fees ${t.fees}, ${t.transfers} transfers.`;
  summary.className = report.ok ? "good" : "bad";
  list.replaceChildren(...report.violations.map((v) => el("li", `${v.kind}: ${v.message}`)));
}

// --- polling -------------------------------------------------------------------------------------

async function lastAudit() {
  try {
    return await api("GET", "/admin/audit/last");
  } catch (err) {
    if (err.code === "audit_not_run") return null;
    throw err;
  }
}

async function refresh() {
  try {
    const [queues, workers, closings, audit] = await Promise.all([
      api("GET", "/admin/queues"),
      api("GET", "/admin/workers"),
      api("GET", "/admin/closings"),
      lastAudit(),
    ]);
    const withDead = queues.queues.filter((q) => q.dead > 0);
    const dead = await Promise.all(withDead.map((q) => api("GET", `/admin/queues/${encodeURIComponent(q.name)}/dead`)));
    renderQueues(queues);
    renderDeadJobs(dead);
    renderWorkers(workers);
    renderClosings(closings);
    renderAudit(audit);
    $("status").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    if (err.status === 401 || err.status === 403) {
      signOut(err.status === 401 ? "Your session ended; sign in again." : "This account is not an operator.");
      return;
    }
    $("status").textContent = `refresh failed: ${err.message}`;
  }
}

function show(signedIn) {
  $("sign-in-panel").hidden = signedIn;
  $("console").hidden = !signedIn;
  $("sign-out").hidden = !signedIn;
  clearInterval(timer);
  timer = null;
  if (signedIn) {
    refresh();
    timer = setInterval(refresh, POLL_MS);
  }
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  $("sign-in-error").textContent = message || "";
  $("status").textContent = "";
  show(false);
}

async function signIn(event) {
  event.preventDefault();
  const form = event.target;
  $("sign-in-error").textContent = "";
  try {
    const session = await api("POST", "/sessions", { username: form.username.value, password: form.password.value });
    sessionStorage.setItem(TOKEN_KEY, session.token);
    if (!session.user.is_admin) {
      // Not an operator: end the session we just made rather than keep a token we cannot use.
      await api("DELETE", "/sessions/current").catch(() => {});
      signOut("This account is not an operator. Sign in with an account made by neighborbid-web create-admin.");
      return;
    }
    form.password.value = "";
    show(true);
  } catch (err) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("sign-in-error").textContent = err.code === "invalid_credentials" ? "Wrong username or password." : `Sign-in failed: ${err.message}`;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", async () => {
    await api("DELETE", "/sessions/current").catch(() => {});
    signOut("Signed out.");
  });
  $("run-audit").addEventListener("click", async () => {
    const button = $("run-audit");
    button.disabled = true;
    try {
      renderAudit(await api("GET", "/admin/audit"));
    } catch (err) {
      $("audit-summary").textContent = `The audit failed: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  });
  show(Boolean(token()));
});
