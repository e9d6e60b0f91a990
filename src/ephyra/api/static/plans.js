// The forms that plan a run of each kind (forklift, evacuation, upgrade): the form posts
// to /v1/KIND/plan, the plan shows as a tree with its estimate, and Start posts the same
// body to /v1/KIND/runs. Text from the API is only ever set as textContent.
"use strict";

// The policy action that starts a run of each kind (the others: run:start).
const START_ACTION = { evacuate: "host:evacuate" };

// "a, b ,c" as ["a", "b", "c"].
function listOf(text) {
  return String(text || "").split(",").map((s) => s.trim()).filter(Boolean);
}

// Seconds as an operator reads them: "45 s", "3 min 20 s", "1 h 5 min".
function duration(seconds) {
  const s = Math.round(seconds);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min" + (s % 60 ? " " + (s % 60) + " s" : "");
  return Math.floor(s / 3600) + " h" + (s % 3600 >= 60 ? " " + Math.floor((s % 3600) / 60) + " min" : "");
}

// A branch of a plan's tree: a label, its children (branches), open or closed at first.
function branch(label, children, open, className) {
  return { label, children: children || [], open: Boolean(open), className: className || "" };
}

// The tree as nested <details> (a branch with children) and <div>s (a leaf).
function treeElement(node) {
  if (!node.children.length) {
    const leaf = document.createElement("div");
    leaf.className = "leaf " + node.className;
    leaf.textContent = node.label;
    return leaf;
  }
  const details = document.createElement("details");
  details.open = node.open;
  details.className = node.className;
  const summary = document.createElement("summary");
  summary.textContent = node.label;
  details.appendChild(summary);
  for (const child of node.children) details.appendChild(treeElement(child));
  return details;
}

// What each kind's form sends, what its plan's tree is, and what its estimate counts.
const KINDS = {
  forklift: {
    body(form) {
      const body = {
        from: form.elements.from.value,
        to: form.elements.to.value,
        concurrency: Number(form.elements.concurrency.value) || 1,
      };
      const credentials = form.elements.credentials.value.trim();
      if (credentials) body.credentials = credentials;
      const nodes = listOf(form.elements.nodes.value);
      if (nodes.length) body.nodes = nodes;
      return body;
    },
    title: (plan) => "forklift " + plan.from + " → " + plan.to,
    estimate(plan) {
      const nodes = plan.batches.reduce((n, batch) => n + batch.length, 0);
      return [["nodes", nodes], ["batches", plan.batches.length], ["at once", plan.concurrency],
        ["workload", plan.workload]];
    },
    tree(plan) {
      const steps = () => plan.steps.map((step) => branch(step, [], false, "step"));
      return plan.batches.map((batch, i) => branch(
        "batch " + (i + 1) + " (" + batch.length + " node(s))"
          + (i + 1 < plan.batches.length ? ", then the application's health gate" : ""),
        batch.map((node) => branch(
          node.name + " (" + node.uuid.slice(0, 8) + ") " + node.provision_state + ", "
            + node.ports.length + " port(s)", steps(), false, "item")),
        true, "batch"));
    },
  },
  evacuate: {
    body(form) {
      const body = {
        cloud: form.elements.cloud.value,
        hosts: listOf(form.elements.hosts.value),
        concurrency: Number(form.elements.concurrency.value) || 4,
        per_host: Number(form.elements.per_host.value) || 2,
        fallback: form.elements.fallback.value,
      };
      const target = form.elements.target.value.trim();
      if (target) body.target = target;
      return body;
    },
    title: (plan) => "evacuate " + plan.hosts.length + " host(s) of " + plan.cloud,
    estimate(plan) {
      const servers = plan.hosts.reduce((n, host) => n + host.servers.length, 0);
      return [["hosts", plan.hosts.length], ["servers", servers],
        ["at once", plan.limits.concurrency], ["room elsewhere", plan.capacity.fits ? "yes" : "no"]];
    },
    tree(plan) {
      return plan.hosts.map((host) => branch(
        host.host + " (" + host.mode + "), nova-compute " + host.service,
        [
          branch("steps: " + plan.steps.length, plan.steps.map((s) => branch(s, [], false, "step"))),
          branch("undo: " + plan.rollback.length, plan.rollback.map((s) => branch(s, [], false, "step"))),
          branch("servers: " + host.servers.length, host.servers.map((s) => branch(
            s.name + " [" + s.project + "] " + s.status + " → " + (s.to || "?"), [], false, "server")),
          true),
        ],
        true, "item"));
    },
  },
  upgrade: {
    body(form) {
      let spec;
      try {
        spec = JSON.parse(form.elements.spec.value);
      } catch (error) {
        throw { code: "bad_spec", detail: "the specification is not JSON: " + error.message };
      }
      const body = { spec, sources: listOf(form.elements.sources.value) };
      if (form.elements.cloud.value) body.cloud = form.elements.cloud.value;
      return body;
    },
    title: (plan) => "upgrade to " + plan.release + " (" + plan.order + ")",
    estimate(plan) {
      const batches = plan.stages.flatMap((stage) => stage.batches);
      const units = batches.reduce((n, batch) => n + batch.units.length, 0);
      return [["duration", duration(plan.seconds)], ["stages", plan.stages.length],
        ["batches", batches.length], ["units", units]];
    },
    tree(plan) {
      return plan.stages.map((stage) => branch(
        stage.name + " (" + stage.plane + (stage.role ? ", " + stage.role : "") + "), ~"
          + duration(stage.seconds),
        stage.batches.map((batch, i) => branch(
          "batch " + (i + 1) + (batch.canary ? " (canary)" : "")
            + (batch.soak ? ", soak " + duration(batch.soak) : ""),
          batch.units.map((unit) => branch(
            unit.host + " (" + unit.role + "), ~" + duration(unit.seconds),
            unit.actions.map((a) => branch(
              a.kind + " " + a.services.join(", ") + " by " + a.strategy, [], false, "step")),
            false, "item")),
          true, "batch")),
        true, "stage"));
    },
  },
};

const plans = {
  kind: "forklift",
  planned: null, // {kind, body}: what Start starts

  setup() {
    byId("new-panel").hidden = !allowed["run:plan"];
    for (const tab of byId("kinds").querySelectorAll("button")) {
      tab.addEventListener("click", () => plans.choose(tab.dataset.kind));
    }
    for (const form of document.querySelectorAll("form.plan-form")) {
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        plans.plan(form.dataset.kind).catch((e) => say(e.message));
      });
    }
    byId("start").addEventListener("click", () => plans.start().catch((e) => say(e.message)));
    plans.choose("forklift");
  },

  choose(kind) {
    plans.kind = kind;
    for (const tab of byId("kinds").querySelectorAll("button")) {
      tab.setAttribute("aria-selected", String(tab.dataset.kind === kind));
    }
    for (const form of document.querySelectorAll("form.plan-form")) {
      form.hidden = form.dataset.kind !== kind;
    }
    plans.clear();
  },

  clear() {
    plans.planned = null;
    byId("plan").hidden = true;
    notice(byId("plan-notice"), null);
  },

  async plan(kind) {
    plans.clear();
    const shape = KINDS[kind];
    let body;
    try {
      body = shape.body(byId(kind + "-form"));
      const { plan } = await api("POST", "/v1/" + kind + "/plan", body);
      plans.show(kind, plan);
    } catch (error) {
      notice(byId("plan-notice"), error);
      return;
    }
    plans.planned = { kind, body };
    byId("start").hidden = !allowed[START_ACTION[kind] || "run:start"];
  },

  show(kind, plan) {
    const shape = KINDS[kind];
    const box = byId("plan");
    box.dataset.kind = kind;
    byId("plan-title").textContent = shape.title(plan);
    const estimate = byId("plan-estimate");
    estimate.replaceChildren();
    for (const [name, value] of shape.estimate(plan)) {
      const term = document.createElement("dt");
      term.textContent = name;
      const shown = document.createElement("dd");
      shown.textContent = String(value);
      shown.dataset.estimate = name;
      estimate.append(term, shown);
    }
    byId("plan-tree").replaceChildren(...shape.tree(plan).map(treeElement));
    box.hidden = false;
  },

  async start() {
    if (!plans.planned) return;
    const { kind, body } = plans.planned;
    const made = await api("POST", "/v1/" + kind + "/runs", body);
    say(kind + " run " + made.id.slice(0, 8) + " started", true);
    plans.clear();
    select(made.id, kind);
  },

  // A host's Evacuate button: the evacuation form for it, planned.
  evacuate(cloud, host) {
    plans.choose("evacuate");
    const form = byId("evacuate-form");
    form.elements.cloud.value = cloud;
    form.elements.hosts.value = host;
    byId("new-panel").scrollIntoView();
    plans.plan("evacuate").catch((e) => say(e.message));
  },
};
