// The tenants view: every project a tenant maintenance or migration run named, frozen or
// not (GET /v1/tenants: the server decides from the runs in the journal), and every
// tenant migration with its resources by kind: how many are on B, under way, failed,
// still to move, staying on A, taken back; and each resource's state (from the run's
// status, GET /v1/tenant-migration/runs/RUN). Polled, as the other views are.
"use strict";

(() => {
  const { call, el, bar, every } = ephyraViews;
  const EVERY = 2500;
  const MIGRATION = "tenant-migration";

  // A resource's state in a run's status -> its column here. "intent": the run was about
  // to make it on B when it stopped: failed if the run failed, under way otherwise.
  const COLUMNS = ["done", "moving", "failed", "pending", "stays", "taken back"];
  function column(state, runState) {
    switch (state) {
      case "created": case "reused": return "done";
      case "intent": return runState === "failed" ? "failed" : "moving";
      case "deleted": return "taken back";
      case "stays": return "stays";
      default: return "pending";
    }
  }

  function when(seconds) {
    return seconds === null || seconds === undefined
      ? "" : new Date(seconds * 1000).toLocaleString();
  }

  // A run's short id: a click shows the run in the run panel (app.js), as a row of Runs.
  function runLink(id, kind) {
    const link = el("button", { type: "button", className: "run-link", title: kind + " " + id,
      dataset: { run: id } }, id.slice(0, 8));
    link.addEventListener("click", () => select(id, kind));
    return link;
  }

  function tenantRow(t) {
    const label = t.state === "not frozen" ? "not frozen" : t.state === "frozen"
      ? "frozen" : "changing (" + t.run_state + ")";
    return el("tr", { className: "tenant", dataset: { project: t.project,
      projectId: t.project_id, cloud: t.cloud, state: t.state, frozen: String(t.frozen),
      run: t.run } },
      el("td", {}, t.project, el("small", { className: "id" }, t.project_id)),
      el("td", {}, t.cloud),
      el("td", {}, el("span", { className: "frozen frozen-" + t.state.replace(" ", "-") }, label)),
      el("td", { className: "since" }, when(t.since)),
      el("td", { title: t.runs.join(", ") }, runLink(t.run, "tenant-maintenance"),
        t.error ? el("span", { className: "reason" }, " " + t.error) : null));
  }

  async function loadTenants() {
    const { tenants } = await call("GET", "/v1/tenants");
    const body = document.querySelector("#tenants tbody");
    body.replaceChildren(...tenants.map(tenantRow));
    if (!tenants.length) {
      body.append(el("tr", {}, el("td", { className: "empty", colSpan: 5 },
        "no project frozen by Ephyra")));
    }
  }

  // kind -> {column -> how many, rows: [resource]}, kinds in the order of the plan.
  function byKind(resources, runState) {
    const kinds = new Map();
    for (const r of resources) {
      if (!kinds.has(r.kind)) kinds.set(r.kind, { rows: [], ...Object.fromEntries(COLUMNS.map((c) => [c, 0])) });
      const k = kinds.get(r.kind);
      k[column(r.state, runState)] += 1;
      k.rows.push(r);
    }
    return kinds;
  }

  function kindRow(kind, k) {
    const movable = k.rows.length - k.stays;
    return el("tr", { className: "resource-kind", dataset: { kind, total: String(k.rows.length),
      ...Object.fromEntries(COLUMNS.map((c) => [c.replace(" ", ""), String(k[c])])) } },
      el("th", {}, kind),
      ...COLUMNS.map((c) => el("td", { className: "count count-" + c.replace(" ", "-") },
        String(k[c]))),
      el("td", {}, bar(k.done, movable, k.done + " of " + movable + " on B")));
  }

  function resourceRow(r, runState) {
    const shown = column(r.state, runState);
    return el("tr", { className: "resource", dataset: { kind: r.kind, name: r.name,
      state: r.state, column: shown } },
      el("td", {}, r.kind), el("td", {}, r.name), el("td", {}, String(r.size || "")),
      el("td", { className: "resource-" + shown.replace(" ", "-") }, r.state),
      el("td", { className: "id" }, r.on_b || ""));
  }

  function migrationBlock(row, status) {
    const kinds = byKind(status.resources, status.state);
    const project = status.projects[0] || {};
    const outcome = project.rollback ? project.forward + ", rollback " + project.rollback
      : project.forward;
    const head = (row.project || status.project) + ": " + status.source + " \u2192 "
      + status.target;
    return el("div", { className: "migration", dataset: { run: status.id, state: status.state,
      project: row.project, source: status.source, target: status.target } },
      el("h4", {}, head, " ",
        el("span", { className: "state-" + status.state }, status.state),
        runLink(status.id, MIGRATION)),
      el("p", { className: "migration-outcome" }, "project " + (outcome || "pending")
        + (status.finished ? ", finished (A's originals deleted)" : "")
        + (project.error ? ": " + project.error : "")),
      el("table", { className: "resource-kinds" },
        el("thead", {}, el("tr", {}, el("th", {}, "kind"),
          ...COLUMNS.map((c) => el("th", {}, c)), el("th", {}, "on B"))),
        el("tbody", {}, ...[...kinds].map(([kind, k]) => kindRow(kind, k)))),
      el("details", {}, el("summary", {}, status.resources.length + " resources"),
        el("table", { className: "resources" },
          el("thead", {}, el("tr", {}, ...["kind", "name", "size", "state", "id on B"]
            .map((h) => el("th", {}, h)))),
          el("tbody", {}, ...status.resources.map((r) => resourceRow(r, status.state))))));
  }

  // Which migrations' resource lists the reader opened: kept open across refreshes.
  function opened(list) {
    return new Set([...list.querySelectorAll(".migration")]
      .filter((m) => m.querySelector("details").open).map((m) => m.dataset.run));
  }

  async function loadMigrations() {
    const list = document.getElementById("migrations");
    let runs;
    try {
      ({ runs } = await call("GET", "/v1/" + MIGRATION + "/runs"));
    } catch (e) {
      if (e.status === 404 || e.status === 422) { // the kind is not installed here
        list.replaceChildren(el("p", { className: "empty" }, "no tenant migration kind installed"));
        return;
      }
      throw e;
    }
    const statuses = await Promise.all(runs.map((r) =>
      call("GET", "/v1/" + MIGRATION + "/runs/" + encodeURIComponent(r.id))));
    const open = opened(list);
    const blocks = runs.map((r, i) => migrationBlock(r, statuses[i])).reverse(); // newest first
    for (const b of blocks) b.querySelector("details").open = open.has(b.dataset.run);
    list.replaceChildren(...blocks);
    if (!blocks.length) list.append(el("p", { className: "empty" }, "no tenant migration"));
  }

  every("tenants-panel", EVERY, () => Promise.all([loadTenants(), loadMigrations()]));
})();
