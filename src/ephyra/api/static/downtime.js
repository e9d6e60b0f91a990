// A run's downtime, measured: each probed target's outages against when each stage and
// unit ran, drawn as an SVG timeline from /v1/runs/ID/report (one row per target, stage
// and unit, on one time axis), with each target's downtime in words above it.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const ROW = 18; // pixels per row
const LABEL_W = 260; // pixels of the labels' column
const TRACK_W = 700; // pixels of the time axis

const svg = (name, attrs, text) => {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
};

const downtime = {
  async load(id) {
    const report = await api("GET", "/v1/runs/" + id + "/report");
    if (!selected || selected.id !== id) return; // another run was chosen meanwhile
    downtime.render(report);
  },

  render(report) {
    const box = byId("downtime");
    box.replaceChildren();
    if (!report.targets.length) {
      box.textContent = "no target probed (the specification's probes:)";
      return;
    }
    const list = document.createElement("ul");
    for (const t of report.targets) {
      const item = document.createElement("li");
      item.dataset.target = t.target;
      item.dataset.downtime = String(t.downtime_seconds);
      item.textContent = t.outages.length
        ? t.target + ": " + t.downtime_seconds + "s down in " + t.outages.length +
          " outage(s), longest " + t.longest_outage_seconds + "s"
        : t.target + ": no outage (" + t.probes + " probes answered)";
      list.appendChild(item);
    }
    box.appendChild(list);
    const rows = [];
    for (const t of report.targets) {
      rows.push({ kind: "target", name: t.target, up: [[t.started, t.last]], down: t.outages.map((o) => [o.start, o.end]) });
    }
    for (const s of report.stages) {
      rows.push({ kind: "stage", name: s.stage, spans: [[s.start, s.end]] });
      for (const u of report.units.filter((u) => u.stage === s.stage)) {
        rows.push({ kind: "unit", name: u.unit, spans: u.spans });
      }
    }
    for (const u of report.units.filter((u) => !u.stage)) rows.push({ kind: "unit", name: u.unit, spans: u.spans });
    const begin = report.start;
    const span = Math.max(report.end - begin, 1);
    const x = (t) => LABEL_W + (TRACK_W * (t - begin)) / span;
    const width = (a, b) => Math.max(x(b) - x(a), 2);
    const height = (rows.length + 1) * ROW + 4;
    const drawing = svg("svg", { width: LABEL_W + TRACK_W + 10, height, class: "downtime-chart", role: "img" });
    rows.forEach((row, i) => {
      const y = i * ROW;
      const g = svg("g", { "data-row": row.kind, "data-name": row.name });
      const indent = row.kind === "unit" ? 16 : 0;
      g.appendChild(svg("text", { x: 4 + indent, y: y + 13, class: "label" }, row.kind + " " + row.name));
      g.appendChild(svg("rect", { x: LABEL_W, y: y + 3, width: TRACK_W, height: ROW - 6, class: "track" }));
      if (row.kind === "target") {
        for (const [a, b] of row.up) g.appendChild(svg("rect", { x: x(a), y: y + 3, width: width(a, b), height: ROW - 6, class: "up" }));
        for (const [a, b] of row.down) {
          const bad = svg("rect", { x: x(a), y: y + 3, width: width(a, b), height: ROW - 6, class: "down", "data-outage": "1" });
          bad.appendChild(svg("title", {}, row.name + " unreachable " + duration(b - a)));
          g.appendChild(bad);
        }
      } else {
        for (const [a, b] of row.spans) {
          g.appendChild(svg("rect", { x: x(a), y: y + 3, width: width(a, b), height: ROW - 6, class: row.kind }));
        }
      }
      drawing.appendChild(g);
    });
    const axisY = rows.length * ROW + 14;
    drawing.appendChild(svg("text", { x: LABEL_W, y: axisY, class: "axis" }, new Date(begin * 1000).toLocaleTimeString()));
    drawing.appendChild(svg("text", { x: LABEL_W + TRACK_W, y: axisY, class: "axis", "text-anchor": "end" }, "+" + duration(span)));
    box.appendChild(drawing);
  },
};
