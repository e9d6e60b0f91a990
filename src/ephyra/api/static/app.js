// Ephyra's dashboard: runs with their progress, timeline, events and actions, compute hosts
// with theirs (the forms that plan and start runs are in plans.js, the timeline in
// timeline.js).
// Every request is authenticated by the session cookie the server set at log in (HttpOnly:
// this script never sees the token); a request names itself a session's with the
// X-Ephyra-Session header. Text from the API is only ever set as textContent.
"use strict";

const byId = (id) => document.getElementById(id);
let allowed = {};
let selected = null; // {id, kind}
let refreshTimer = null;

// Which action a state allows.
const ACTIONS = {
  pause: ["running"],
  resume: ["paused", "failed"],
  abort: ["running", "paused", "failed"],
  rollback: ["paused", "failed", "succeeded", "aborted"],
  approve: ["paused", "failed"],
  step: ["paused", "failed"],
};
// The actions of one kind of run only: an upgrade's approvals and steps.
const ONLY = { approve: "upgrade", step: "upgrade" };

// Whether a run's action button shows: the caller's right, the run's state and kind; an
// approval only where a stage still waits for one (the upgrade status's approvals).
function shows(action, run, detail) {
  if (!allowed["run:" + action] || !ACTIONS[action].includes(run.state)) return false;
  if (ONLY[action] && ONLY[action] !== run.kind) return false;
  return action !== "approve" || (detail.approvals || []).some((a) => !a.by);
}

// An error answer of the API: its code and message, as the server gave them.
class ApiError extends Error {
  constructor(status, code, message) {
    super(message + " (" + code + ")");
    this.status = status;
    this.code = code;
    this.detail = message;
  }
}

async function api(method, path, body) {
  const options = { method, credentials: "same-origin", headers: { "X-Ephyra-Session": "1" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const answer = await fetch(path, options);
  if (answer.status === 401) {
    location.assign("/");
  }
  if (answer.ok && !(answer.headers.get("Content-Type") || "").includes("json")) {
    return answer.text(); // /metrics
  }
  const data = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    const error = data.error || { code: "http_" + answer.status, message: answer.statusText };
    throw new ApiError(answer.status, error.code, error.message);
  }
  return data;
}

function say(text, ok) {
  const box = byId("message");
  box.textContent = text;
  box.className = ok ? "ok" : "";
  box.hidden = !text;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function bar(done, total, failed) {
  const outer = document.createElement("div");
  outer.className = "bar" + (failed ? " failed" : "");
  outer.setAttribute("role", "progressbar");
  outer.setAttribute("aria-valuemin", "0");
  outer.setAttribute("aria-valuemax", String(total));
  outer.setAttribute("aria-valuenow", String(done));
  outer.dataset.done = String(done);
  outer.dataset.total = String(total);
  const inner = document.createElement("div");
  inner.style.width = total ? Math.round((100 * done) / total) + "%" : "0";
  outer.appendChild(inner);
  return outer;
}

async function loadRuns() {
  const { runs } = await api("GET", "/v1/runs");
  const body = byId("runs").querySelector("tbody");
  body.replaceChildren();
  for (const run of runs.slice().reverse()) {
    const row = document.createElement("tr");
    row.className = "run" + (selected && selected.id === run.id ? " selected" : "");
    row.dataset.runId = run.id;
    row.dataset.state = run.state;
    cell(row, run.kind);
    cell(row, run.title);
    cell(row, run.state, "state state-" + run.state);
    const progress = cell(row, "");
    progress.appendChild(bar(run.done, run.total, run.failed));
    cell(row, new Date(run.created * 1000).toLocaleString());
    row.addEventListener("click", () => select(run.id, run.kind));
    body.appendChild(row);
  }
}

async function loadRun() {
  if (!selected) return;
  const { run, items, detail } = await api("GET", "/v1/runs/" + selected.id);
  byId("run-panel").hidden = false;
  byId("run-title").textContent = run.kind + " " + run.title + " (" + run.id.slice(0, 8) + ")";
  const state = byId("run-state");
  state.textContent = run.state;
  state.dataset.state = run.state;
  state.className = "state-" + run.state;
  byId("run-reason").textContent = run.reason ? "(" + run.reason + ")" : "";
  byId("run-progress").replaceWith(Object.assign(bar(run.done, run.total, run.failed), { id: "run-progress" }));
  byId("run-counts").textContent = run.done + " of " + run.total + " done, " + run.failed + " failed";
  for (const button of byId("actions").querySelectorAll("button")) {
    button.hidden = !shows(button.dataset.action, run, detail);
  }
  const body = byId("items").querySelector("tbody");
  body.replaceChildren();
  for (const item of items) {
    const row = document.createElement("tr");
    row.dataset.state = item.state;
    cell(row, item.name);
    cell(row, item.state, "state-" + item.state);
    cell(row, item.rollback);
    cell(row, item.error);
    body.appendChild(row);
  }
}

function select(id, kind) {
  if (!selected || selected.id !== id) timeline.show(id);
  selected = { id, kind };
  refresh();
}

function refresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    loadRuns().catch((e) => say(e.message));
    loadRun().catch((e) => say(e.message));
    timeline.load().catch((e) => say(e.message));
    if (selected) downtime.load(selected.id).catch((e) => say(e.message));
  }, 200);
}

async function act(action) {
  if (!selected) return;
  try {
    const answer = await api("POST", "/v1/" + selected.kind + "/runs/" + selected.id + "/" + action);
    say(answer.message || action + " asked", true);
  } catch (e) {
    say(e.message);
  }
  refresh();
}

async function loadHosts() {
  const cloud = byId("hosts-cloud").value;
  const body = byId("hosts").querySelector("tbody");
  body.replaceChildren();
  notice(byId("hosts-notice"), null);
  try {
    const { hosts } = await api("GET", "/v1/hosts?cloud=" + encodeURIComponent(cloud));
    for (const host of hosts) {
      const row = document.createElement("tr");
      row.dataset.host = host.host;
      cell(row, host.host);
      cell(row, host.status);
      cell(row, host.state);
      cell(row, host.maintenance ? "yes (Ephyra)" : "no");
      cell(row, host.disabled_reason);
      const buttons = cell(row, "");
      if (allowed["host:maintenance"]) {
        const on = !host.maintenance;
        const button = document.createElement("button");
        button.textContent = on ? "Maintenance on" : "Maintenance off";
        button.dataset.action = on ? "maintenance-on" : "maintenance-off";
        button.addEventListener("click", () => hostAction(
          "PUT", "/v1/hosts/" + encodeURIComponent(host.host) + "/maintenance",
          { cloud, state: on ? "on" : "off" }));
        buttons.appendChild(button);
      }
      if (allowed["host:evacuate"]) {
        const button = document.createElement("button");
        button.textContent = "Evacuate";
        button.dataset.action = "evacuate";
        button.addEventListener("click", () => plans.evacuate(cloud, host.host));
        buttons.appendChild(button);
      }
      body.appendChild(row);
    }
  } catch (e) {
    notice(byId("hosts-notice"), e);
  }
}

// An API error shown where it belongs, as a plain notice (none: the notice goes away).
function notice(box, error) {
  box.hidden = !error;
  box.replaceChildren();
  box.dataset.code = error ? error.code || "" : "";
  if (!error) return;
  const code = document.createElement("code");
  code.textContent = error.code || "error";
  box.append(code, " " + (error.detail || error.message));
}

async function hostAction(method, path, body) {
  try {
    const answer = await api(method, path, body);
    say(answer.message, true);
  } catch (e) {
    say(e.message);
  }
  loadHosts();
}

async function main() {
  const me = await api("GET", "/v1/whoami");
  allowed = me.allowed;
  byId("who").textContent = me.user + " (" + me.project + "): " + me.roles.join(", ");
  byId("logout").addEventListener("click", async () => {
    await fetch("/v1/session", { method: "DELETE", credentials: "same-origin" }).catch(() => null);
    location.assign("/");
  });
  for (const button of byId("actions").querySelectorAll("button")) {
    button.addEventListener("click", () => act(button.dataset.action));
  }
  const { clouds } = await api("GET", "/v1/clouds");
  for (const list of document.querySelectorAll("select.clouds")) {
    for (const name of clouds) {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = name;
      list.appendChild(option);
    }
  }
  if (clouds.length > 1) byId("start-to").value = clouds[1];
  plans.setup();
  byId("hosts-load").addEventListener("click", loadHosts);
  const stream = new EventSource("/v1/events/stream");
  const heard = (message) => {
    timeline.heard(message.data);
    refresh();
  };
  stream.onmessage = heard;
  for (const type of ["run.started", "step", "node", "message", "run.state", "run.finished"]) {
    stream.addEventListener(type, heard);
  }
  setInterval(refresh, 3000);
  await loadRuns();
}

// -- the audit trail (admins: the policy's audit:read) ---------------------------------
const AUDIT_SHOWN = 20;
const AUDIT_EVERY = 3000;

async function loadAudit() {
  const { entries } = await api("GET", "/v1/audit?limit=" + AUDIT_SHOWN);
  const body = byId("audit").querySelector("tbody");
  body.replaceChildren();
  for (const entry of entries.slice().reverse()) { // newest first
    const row = document.createElement("tr");
    row.dataset.seq = String(entry.seq);
    if (entry.code) row.className = "refused";
    cell(row, new Date(entry.time * 1000).toLocaleString());
    cell(row, entry.source);
    cell(row, entry.user + (entry.project ? " (" + entry.project + ")" : ""));
    cell(row, entry.roles.join(", "));
    cell(row, entry.action);
    cell(row, entry.target);
    cell(row, (entry.status + " " + entry.code).trim());
    body.appendChild(row);
  }
}

async function auditPanel() {
  const me = await api("GET", "/v1/whoami");
  const panel = byId("audit-panel");
  panel.dataset.allowed = String(Boolean(me.allowed["audit:read"]));
  if (!me.allowed["audit:read"]) return; // the panel stays hidden
  panel.hidden = false;
  await loadAudit();
  setInterval(() => loadAudit().catch((e) => say(e.message)), AUDIT_EVERY);
}

main().catch((e) => say(e.message));
auditPanel().catch((e) => say(e.message));
