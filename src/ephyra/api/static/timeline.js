// A run's timeline (each node, host or unit a row of its steps over time) and its events,
// newest first: read from /v1/runs/ID/events, then kept up from the event stream.
"use strict";

// How many events the list shows at most (the timeline uses them all).
const EVENTS_SHOWN = 200;

// How a node, host or unit's outcome ends the steps still open in its row.
const OK_OUTCOMES = ["moved", "restored", "upgraded", "done", "drained", "stopped", "gone"];
const spanStatus = (outcome) => {
  const word = outcome.split(":")[0];
  if (OK_OUTCOMES.includes(word)) return "finished";
  return word === "interrupted" ? "stopped" : "failed";
};

const timeline = {
  run: null, // the run shown
  events: new Map(), // seq -> event
  fetched: 0, // the last seq read from /v1/runs/ID/events

  show(id) {
    timeline.run = id;
    timeline.events = new Map();
    timeline.fetched = 0;
    timeline.render();
  },

  async load() {
    const run = timeline.run;
    if (!run) return;
    for (;;) {
      const path = "/v1/runs/" + run + "/events?after=" + timeline.fetched + "&limit=1000";
      const { events } = await api("GET", path);
      if (run !== timeline.run) return; // another run was chosen meanwhile
      for (const event of events) timeline.events.set(event.seq, event);
      if (events.length) timeline.fetched = events[events.length - 1].seq;
      if (events.length < 1000) break;
    }
    timeline.render();
  },

  // An event of the stream (its data, JSON): kept if it is the shown run's; the end of a
  // run may change the compute hosts shown.
  heard(data) {
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      return; // a comment or keep-alive
    }
    if (event && event.type === "run.finished" && byId("hosts").querySelector("tbody tr")) {
      loadHosts();
    }
    if (!event || event.run !== timeline.run) return;
    timeline.events.set(event.seq, event);
    timeline.render();
  },

  ordered() {
    return [...timeline.events.values()].sort((a, b) => a.seq - b.seq);
  },

  // Each item's steps as spans {step, status, start, end}, in the order items appeared;
  // a step still open when the run stopped (paused, failed) ends there, stopped.
  rows(events) {
    const rows = new Map();
    const stop = (time) => {
      for (const row of rows.values()) {
        for (const span of row.spans.filter((s) => s.end === null)) {
          span.end = time;
          span.status = "stopped";
        }
      }
    };
    for (const event of events) {
      if (event.type === "run.finished") stop(event.time);
      if (!event.node) continue;
      if (!rows.has(event.node)) rows.set(event.node, { spans: [], outcome: "" });
      const row = rows.get(event.node);
      if (event.type === "node") { // its outcome ends what is still open
        row.outcome = event.outcome;
        const status = spanStatus(event.outcome);
        for (const span of row.spans.filter((s) => s.end === null)) {
          span.end = event.time;
          span.status = span.status === "reverting" ? "reverted" : status;
        }
        continue;
      }
      if (event.type !== "step") continue;
      const open = row.spans.findLast((s) => s.step === event.step && s.end === null);
      if (event.status === "started" || event.status === "reverting") {
        if (open) open.end = event.time;
        row.spans.push({ step: event.step, status: event.status === "started" ? "running" : "reverting",
          start: event.time, end: null });
      } else if (open) {
        open.end = event.time;
        open.status = open.status === "reverting" ? "reverted" : event.status;
      } else { // its start came before what was read: a moment's span
        row.spans.push({ step: event.step, status: event.status, start: event.time, end: event.time });
      }
    }
    return rows;
  },

  render() {
    const events = timeline.ordered();
    timeline.renderBars(events);
    timeline.renderList(events);
  },

  renderBars(events) {
    const box = byId("timeline");
    box.replaceChildren();
    const rows = timeline.rows(events);
    if (!events.length || !rows.size) {
      box.textContent = timeline.run ? "no step yet" : "";
      return;
    }
    const finished = events.some((e) => e.type === "run.finished");
    const begin = events[0].time;
    const end = Math.max(finished ? events[events.length - 1].time : Date.now() / 1000, begin + 1);
    const scale = (t) => (100 * (t - begin)) / (end - begin);
    const axis = document.createElement("div");
    axis.className = "axis";
    const first = document.createElement("span");
    first.textContent = new Date(begin * 1000).toLocaleTimeString();
    const last = document.createElement("span");
    last.textContent = "+" + duration(end - begin) + (finished ? "" : " (live)");
    axis.append(first, last);
    box.appendChild(axis);
    for (const [name, row] of rows) {
      const line = document.createElement("div");
      line.className = "row";
      line.dataset.item = name;
      line.dataset.outcome = row.outcome;
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = name + (row.outcome ? " · " + row.outcome : "");
      label.title = label.textContent;
      const track = document.createElement("div");
      track.className = "track";
      for (const span of row.spans) {
        const piece = document.createElement("div");
        const stop = span.end === null ? end : span.end;
        piece.className = "span span-" + span.status;
        piece.dataset.step = span.step;
        piece.dataset.status = span.status;
        piece.style.left = scale(span.start) + "%";
        piece.style.width = Math.max(scale(stop) - scale(span.start), 0.4) + "%";
        piece.title = span.step + ": " + span.status + " (" + duration(stop - span.start) + ")";
        piece.textContent = span.step;
        track.appendChild(piece);
      }
      line.append(label, track);
      box.appendChild(line);
    }
  },

  renderList(events) {
    const body = byId("events").querySelector("tbody");
    body.replaceChildren();
    for (const event of events.slice(-EVENTS_SHOWN).reverse()) { // newest first
      const row = document.createElement("tr");
      row.dataset.seq = String(event.seq);
      row.dataset.type = event.type;
      cell(row, new Date(event.time * 1000).toLocaleTimeString());
      cell(row, event.node || "run");
      cell(row, event.step || event.type);
      const outcome = event.status || event.outcome || event.state || event.text || event.title || "";
      const detail = event.detail ? ": " + event.detail : "";
      cell(row, outcome + detail, "outcome-" + outcome);
      body.appendChild(row);
    }
  },
};
