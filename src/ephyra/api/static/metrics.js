// The metrics view: the server's /metrics (Prometheus text) read every few seconds by the
// page itself, a few numbers an operator wants at a glance each drawn as a sparkline of the
// last minutes. Counters become rates between two samples.
"use strict";

(() => {
  const { call, el, sparkline, every } = ephyraViews;
  const EVERY = 2000;
  const KEPT = 90; // samples: three minutes
  const ACTIVE = ["running", "paused", "rolling-back"];
  const REQUESTS = "ephyra_api_request_duration_seconds";

  // [{name, labels, value}] from the text exposition format.
  function parse(text) {
    const found = [];
    for (const line of text.split("\n")) {
      const m = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const labels = {};
      for (const l of (m[2] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
      found.push({ name: m[1], labels, value: Number(m[3]) });
    }
    return found;
  }

  function sum(samples, name, keep) {
    return samples.filter((s) => s.name === name && (!keep || keep(s.labels)))
      .reduce((total, s) => total + s.value, 0);
  }

  // What one scrape says: gauges as they are, counters as totals (rates come later).
  function read(text) {
    const s = parse(text);
    const byState = {};
    for (const m of s.filter((x) => x.name === "ephyra_runs")) {
      byState[m.labels.state] = (byState[m.labels.state] || 0) + m.value;
    }
    return {
      at: performance.now() / 1000,
      byState,
      active: ACTIVE.reduce((n, state) => n + (byState[state] || 0), 0),
      done: sum(s, "ephyra_run_items", (l) => l.result === "done"),
      failed: sum(s, "ephyra_run_items", (l) => l.result === "failed"),
      requests: sum(s, REQUESTS + "_count"),
      seconds: sum(s, REQUESTS + "_sum"),
      errors: sum(s, REQUESTS + "_count", (l) => Number(l.status) >= 400),
      events: sum(s, "ephyra_events_total"),
    };
  }

  const rate = (a, b, key) => Math.max(0, (b[key] - a[key]) / Math.max(b.at - a.at, 0.001));

  // Each chart: what it shows of a pair of samples (the previous may be null), and how.
  const CHARTS = [
    { id: "runs", title: "active runs", value: (p, c) => c.active, unit: "",
      note: (c) => Object.entries(c.byState).filter(([, n]) => n)
        .map(([state, n]) => n + " " + state).join(", ") || "no run" },
    { id: "items", title: "items done", value: (p, c) => c.done, unit: "",
      note: (c) => c.failed + " failed" },
    { id: "requests", title: "API requests", value: (p, c) => (p ? rate(p, c, "requests") : null),
      unit: "/s", note: (c) => c.requests + " since start" },
    { id: "latency", title: "API latency (mean)", unit: " ms",
      value: (p, c) => {
        if (!p) return null;
        const n = c.requests - p.requests;
        return n > 0 ? (1000 * (c.seconds - p.seconds)) / n : 0;
      },
      note: () => "between two samples" },
    { id: "errors", title: "API errors (4xx, 5xx)", value: (p, c) => (p ? rate(p, c, "errors") : null),
      unit: "/s", note: (c) => c.errors + " since start" },
    { id: "events", title: "run events", value: (p, c) => (p ? rate(p, c, "events") : null),
      unit: "/s", note: (c) => c.events + " since start" },
  ];

  const series = Object.fromEntries(CHARTS.map((c) => [c.id, []]));
  let previous = null;

  function shown(value, unit) {
    const digits = Math.abs(value) >= 10 || Number.isInteger(value) ? 0 : 2;
    return value.toFixed(digits) + unit;
  }

  function card(chart, current) {
    const values = series[chart.id];
    const last = values.length ? values[values.length - 1] : null;
    return el("figure", { className: "chart", id: "metric-" + chart.id,
      dataset: { samples: String(values.length), value: last === null ? "" : String(last) } },
    el("figcaption", {}, chart.title),
    el("strong", { className: "chart-value" }, last === null ? "\u2026" : shown(last, chart.unit)),
    sparkline(values, 220, 48),
    el("small", {}, chart.note(current)));
  }

  async function load() {
    const current = read(await call("GET", "/metrics"));
    for (const chart of CHARTS) {
      const value = chart.value(previous, current);
      if (value === null) continue;
      series[chart.id].push(value);
      if (series[chart.id].length > KEPT) series[chart.id].shift();
    }
    previous = current;
    document.getElementById("metrics-charts").replaceChildren(
      ...CHARTS.map((chart) => card(chart, current)));
  }

  every("metrics-panel", EVERY, load);
})();
