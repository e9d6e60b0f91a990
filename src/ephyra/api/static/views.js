// What the versions, environments and metrics views share: requests (app.js's api, with
// the session cookie), elements built with text only (nothing from the API is ever parsed
// as HTML), a notice per view, a progress bar and an SVG sparkline. No library, nothing
// fetched from elsewhere.
"use strict";

const ephyraViews = (() => {
  const call = api;

  // el("td", {className: "x", dataset: {host: "h"}}, "text", child...)
  function el(tag, props, ...children) {
    const made = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === "dataset") Object.assign(made.dataset, value);
      else if (key === "attrs") for (const [a, v] of Object.entries(value)) made.setAttribute(a, v);
      else made[key] = value;
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      made.append(child instanceof Node ? child : String(child));
    }
    return made;
  }

  // The view's notice: a failure to reach something is said where it belongs.
  function notice(view, text) {
    const box = document.querySelector("#" + view + " .view-notice");
    box.textContent = text || "";
    box.hidden = !text;
  }

  function bar(done, total, label) {
    const inner = el("div");
    inner.style.width = total ? Math.round((100 * done) / total) + "%" : "0";
    return el("div", {
      className: "view-bar" + (total && done === total ? " complete" : ""),
      title: label || done + " of " + total,
      attrs: { role: "progressbar", "aria-valuemin": "0", "aria-valuemax": String(total),
        "aria-valuenow": String(done) },
    }, inner);
  }

  const SVG = "http://www.w3.org/2000/svg";

  // A line of the values (oldest first) in a width x height box, the area under it filled.
  function sparkline(values, width, height) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("preserveAspectRatio", "none"); // as wide as its card
    svg.setAttribute("class", "sparkline");
    if (values.length < 2) return svg;
    const top = Math.max(...values), bottom = Math.min(0, ...values);
    const span = top - bottom || 1;
    const step = width / (values.length - 1);
    const points = values.map((v, i) =>
      (i * step).toFixed(1) + "," + (height - 2 - ((v - bottom) / span) * (height - 4)).toFixed(1));
    const area = document.createElementNS(SVG, "polygon");
    area.setAttribute("points", "0," + height + " " + points.join(" ") + " " + width + "," + height);
    area.setAttribute("class", "area");
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", points.join(" "));
    line.setAttribute("class", "line");
    svg.append(area, line);
    return svg;
  }

  let who = null;
  function whoami() {
    who = who || call("GET", "/v1/whoami");
    return who;
  }

  // Run ``load`` now and ``ms`` after each time it ends; a failure shows in the view's
  // notice. The function returned runs it again at once (after a change).
  function every(view, ms, load) {
    let timer = null;
    const once = () => {
      clearTimeout(timer);
      return load()
        .then(() => notice(view, ""), (e) => notice(view, e.message))
        .finally(() => { clearTimeout(timer); timer = setTimeout(once, ms); });
    };
    once();
    return once;
  }

  return { call, el, notice, bar, sparkline, whoami, every };
})();
