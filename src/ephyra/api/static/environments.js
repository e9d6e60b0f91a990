// The environments view (seed 004): each environment with its nodes, the release each
// runs or is being reinstalled with, the mode its deployment needs now (default, isolated,
// cutover: the server decides, with the reason) and where the cutover stands.
"use strict";

(() => {
  const { call, el, bar, every } = ephyraViews;
  const EVERY = 3000;

  // name -> {deployment_mode, deployment_mode_reason}, as the server detects them.
  async function modes(env) {
    if (!env.nodes.length) return {};
    const query = env.nodes.map((n) => "nodes=" + encodeURIComponent(n.name)).join("&");
    const path = "/v1/clusters/" + encodeURIComponent(env.name)
      + "/orchestrator/deployment/defaults?" + query;
    const { nodes } = await call("GET", path);
    return Object.fromEntries(nodes.map((n) => [n.fqdn, n]));
  }

  // Where the cutover stands, from the nodes' modes: the old plane's nodes are those whose
  // deployment takes them off the VIP networks (mode cutover); they are cut once detached.
  function cutover(env, found) {
    const leaving = env.nodes.filter((n) => (found[n.name] || {}).deployment_mode === "cutover");
    const detached = leaving.filter((n) => n.status === "detached").length;
    const pending = env.nodes.filter((n) => n.pending_release_id !== null).map((n) => n.name);
    if (env.status !== "upgrade") {
      return { state: "none", text: "no upgrade under way", done: 0, total: 0 };
    }
    if (!leaving.length) {
      const what = pending.length ? "reinstalling " + pending.join(", ") : "no node to reinstall";
      return { state: "waiting", done: 0, total: 0,
        text: "waiting for a node of release " + env.release_id + " (" + what + ")" };
    }
    if (detached === leaving.length) {
      return { state: "done", done: detached, total: leaving.length,
        text: "done, " + detached + " of " + leaving.length + " old nodes off the VIP networks" };
    }
    return { state: detached ? "partial" : "ready", done: detached, total: leaving.length,
      text: (detached ? "cut short, " : "ready, ") + detached + " of " + leaving.length
        + " old nodes detached (to leave the VIP networks: "
        + leaving.map((n) => n.name).join(", ") + ")" };
  }

  function release(node) {
    return node.pending_release_id === null
      ? String(node.release_id) : node.release_id + " \u2192 " + node.pending_release_id;
  }

  function nodeRow(node, mode) {
    const m = mode ? mode.deployment_mode : "";
    return el("tr", { dataset: { node: node.name, mode: m, status: node.status } },
      el("td", {}, node.name),
      el("td", {}, node.roles),
      el("td", {}, release(node)),
      el("td", { className: "node-" + node.status }, node.status),
      el("td", {}, el("span", { className: "mode mode-" + m,
        title: mode ? mode.deployment_mode_reason : "" }, m)),
      el("td", { className: "reason" }, mode ? mode.deployment_mode_reason : ""));
  }

  async function block(env) {
    const found = await modes(env);
    const cut = cutover(env, found);
    const installed = env.nodes.filter((n) => n.release_id === env.release_id
      && n.pending_release_id === null).length;
    const head = env.name + " (" + env.id + "): " + env.status + ", release " + env.release_id
      + (env.vips ? ", VIPs " + env.vips : "");
    return el("div", { className: "env", dataset: { env: env.name, status: env.status } },
      el("h3", {}, head),
      el("p", { className: "env-release" }, installed + " of " + env.nodes.length
        + " nodes on release " + env.release_id),
      bar(installed, env.nodes.length),
      el("p", { className: "cutover cutover-" + cut.state, dataset: { cutover: cut.state,
        done: String(cut.done), total: String(cut.total) } }, "cutover: " + cut.text),
      cut.total ? bar(cut.done, cut.total) : null,
      el("table", { className: "env-nodes" },
        el("thead", {}, el("tr", {}, ...["node", "roles", "release", "status", "mode", "why"]
          .map((h) => el("th", {}, h)))),
        el("tbody", {}, ...env.nodes.map((n) => nodeRow(n, found[n.name])))));
  }

  async function load() {
    const { clusters } = await call("GET", "/v1/clusters");
    const blocks = await Promise.all(clusters.map(block));
    const list = document.getElementById("environments-list");
    list.replaceChildren(...blocks);
    if (!blocks.length) list.append(el("p", { className: "empty" }, "no environment imported"));
  }

  every("environments-panel", EVERY, load);
})();
