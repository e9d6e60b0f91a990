// The versions view (seed 003): every host by role, coloured by its lifecycle state, the
// desired version and how far each role's rollout went (hosts that converged on it).
// Admins (version:trigger) trigger a version from here. Refreshed every few seconds.
"use strict";

(() => {
  const { call, el, bar, whoami, every } = ephyraViews;
  const EVERY = 2000;
  const NO_ROLE = "(no role)";

  // role -> set of hosts, from the roles published at every version some host runs (a host
  // publishes its roles at the version it validated).
  async function rolesOf(versions) {
    const roles = {};
    const answers = await Promise.all(versions.map((v) =>
      call("GET", "/v1/roles?version=" + encodeURIComponent(v))));
    for (const answer of answers) {
      for (const [role, hosts] of Object.entries(answer.roles)) {
        roles[role] = roles[role] || new Set();
        for (const host of Object.keys(hosts)) roles[role].add(host);
      }
    }
    return roles;
  }

  function stateClass(row) {
    if (row.state === "-") return "lc-none";
    return "lc-" + row.state.replace("/", "-");
  }

  function chip(row, desired) {
    const label = row.state === "-" ? "no state" : row.state + " " + row.state_version;
    const title = [row.host + ": runs " + row.running, label];
    if (row.updating) title.push("updating to " + desired);
    if (row.message) title.push(row.message);
    if (row.log) title.push("log: " + row.log);
    return el("li", {
      className: "host " + stateClass(row) + (row.updating ? " updating" : "")
        + (row.converged ? " converged" : ""),
      title: title.join("\n"),
      dataset: { host: row.host, state: row.state, running: row.running,
        converged: String(row.converged) },
    }, el("span", { className: "host-name" }, row.host),
    el("span", { className: "host-version" }, "runs " + row.running),
    el("span", { className: "host-state" }, label));
  }

  // A failed host's message in full, with where its log is.
  function failure(row) {
    return el("li", { dataset: { host: row.host } }, el("strong", {}, row.host + ": "),
      row.message || row.state, row.log ? el("span", { className: "log" }, " (log: " + row.log + ")") : null);
  }

  function roleBlock(role, rows, desired) {
    const done = rows.filter((r) => r.converged).length;
    const failed = rows.filter((r) => r.state.endsWith("/failure"));
    const progress = desired ? done + " of " + rows.length + " on " + desired
      + (failed.length ? ", " + failed.length + " failed" : "") : "";
    const shown = desired ? bar(done, rows.length, progress) : null;
    if (shown && failed.length) shown.classList.add("failed");
    return el("div", { className: "role", dataset: { role, done: String(done),
      total: String(rows.length), failed: String(failed.length) } },
    el("h3", {}, role, " ", el("span", { className: "role-progress" }, progress)),
    shown,
    el("ul", { className: "hosts" }, ...rows.map((r) => chip(r, desired))),
    failed.length ? el("ul", { className: "failures" }, ...failed.map(failure)) : null);
  }

  async function load() {
    const status = await call("GET", "/v1/versions/status");
    const desired = status.current_version;
    const versions = Object.keys(status.running);
    if (desired && !versions.includes(desired) && !desired.includes(" ")) versions.push(desired);
    const roles = await rolesOf(versions);
    const byHost = Object.fromEntries(status.hosts.map((r) => [r.host, r]));
    const placed = new Set();
    const blocks = [];
    for (const role of Object.keys(roles).sort()) {
      const rows = [...roles[role]].sort().filter((h) => byHost[h]).map((h) => byHost[h]);
      rows.forEach((r) => placed.add(r.host));
      blocks.push(roleBlock(role, rows, desired));
    }
    const rest = status.hosts.filter((r) => !placed.has(r.host));
    if (rest.length) blocks.push(roleBlock(NO_ROLE, rest, desired));
    const current = document.getElementById("versions-current");
    current.textContent = desired || "none triggered";
    current.dataset.version = desired || "";
    const when = status.triggered_at ? new Date(status.triggered_at * 1000).toLocaleString() : "";
    document.getElementById("versions-summary").textContent = (when ? "triggered " + when + "; " : "")
      + status.converged + " of " + status.hosts.length + " hosts converged";
    const list = document.getElementById("versions-roles");
    list.replaceChildren(...blocks);
    if (!blocks.length) list.append(el("p", { className: "empty" }, "no host has announced itself"));
  }

  async function trigger(event, again) {
    event.preventDefault();
    const version = document.getElementById("versions-version").value.trim();
    const force = document.getElementById("versions-force").checked;
    const words = (id) => document.getElementById(id).value.split(/\s+/).filter(Boolean);
    const rules = { max_at_once: words("versions-max"), after: words("versions-after") };
    const said = document.getElementById("versions-said");
    said.className = "";
    try {
      const made = await call("POST", "/v1/versions/trigger", { version, force, ...rules });
      said.textContent = "current version " + made.version
        + (made.previous ? " (was " + made.previous + ")" : "");
      said.className = "ok";
    } catch (e) {
      said.textContent = e.message;
    }
    again();
  }

  async function main() {
    const again = every("versions-panel", EVERY, load);
    const me = await whoami();
    const form = document.getElementById("versions-trigger");
    form.hidden = !me.allowed["version:trigger"];
    form.addEventListener("submit", (event) => trigger(event, again));
  }

  main();
})();
