// her2sim explore: one page, no libraries. Talks to the JSON API of her2sim.explore.app.
"use strict";
(function () {
  const SVGNS = "http://www.w3.org/2000/svg";
  const DEFAULT_PANELS = ["pAKT", "pERK", "ER_activity", "pRb", "proliferation_rate", "viable_cells"];
  const NODE_W = 114, NODE_H = 42;
  const state = { ready: false, requests: 0, meta: null, result: null, panels: DEFAULT_PANELS.slice(),
                  tIndex: null, lesson: null, pending: null, error: null };
  window.her2simState = state;  // read by the browser test and handy in the console

  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, parent, text) {
    const node = tag.startsWith("svg:") ? document.createElementNS(SVGNS, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }
  function fmtDose(nM) {
    if (nM >= 1000) return +(nM / 1000).toPrecision(3) + " \u00b5M";
    return +nM.toPrecision(3) + " nM";
  }
  function fmt(v) {
    if (v === null || !isFinite(v)) return "n/a";
    const a = Math.abs(v);
    if (a !== 0 && (a < 0.01 || a >= 1e4)) return v.toExponential(1);
    return +v.toPrecision(3) + "";
  }
  function unitText(u, name) {
    if (name && name.startsWith("viable_cells")) return "relative to dosing";  // relative cell counts, 1 = at t = 0
    return u;
  }

  // ------------------------------------------------------------------ controls
  function buildControls(meta) {
    const box = $("drug-controls");
    for (const d of meta.drugs) {
      const row = el("div", { class: "drug off", id: "row-" + d.name }, box);
      el("input", { type: "checkbox", id: "drug-" + d.name, "aria-label": d.name + " on" }, row);
      el("label", { for: "drug-" + d.name, title: d.label }, row, d.label);
      el("span", { class: "dose", id: "dose-label-" + d.name }, row, fmtDose(d.default_nM));
      el("span", {}, row);
      const slider = el("input", { type: "range", id: "dose-" + d.name, min: Math.log10(d.min_nM), max: Math.log10(d.max_nM),
                                   step: "0.05", value: Math.log10(d.default_nM), "aria-label": d.name + " dose (log scale)" }, row);
      slider.addEventListener("input", () => { $("dose-label-" + d.name).textContent = fmtDose(10 ** +slider.value); });
      slider.addEventListener("change", () => { if (!$("drug-" + d.name).checked) $("drug-" + d.name).checked = true; changed(); });
      $("drug-" + d.name).addEventListener("change", changed);
    }
    const vbox = $("variant-controls");
    for (const v of meta.variants) {
      const lab = el("label", {}, vbox);
      const cb = el("input", { type: "checkbox", id: "variant-" + v.name }, lab);
      lab.appendChild(document.createTextNode(" " + v.label));
      cb.addEventListener("change", () => {
        for (const group of meta.exclusive) {
          if (cb.checked && group.includes(v.name)) group.filter((g) => g !== v.name).forEach((g) => { $("variant-" + g).checked = false; });
        }
        changed();
      });
    }
    for (const id of ["nk", "hrg", "egf", "hours", "washout-on", "washout-h"]) $(id).addEventListener("change", changed);
    $("t-slider").addEventListener("input", () => { state.tIndex = null; drawAll(); });
    const sel = $("lesson-select");
    meta.lessons.forEach((l, i) => el("option", { value: l.demo }, sel, (i + 1) + ". " + l.title));
    sel.addEventListener("change", () => selectLesson(sel.value));
  }

  function readControls() {
    const drugs = {};
    for (const d of state.meta.drugs) {
      if ($("drug-" + d.name).checked) drugs[d.name] = +(10 ** +$("dose-" + d.name).value).toPrecision(4);
    }
    const hours = +$("hours").value;
    const w = +$("washout-h").value;
    return { drugs, variants: state.meta.variants.map((v) => v.name).filter((n) => $("variant-" + n).checked),
             hrg_nM: +$("hrg").value, egf_nM: +$("egf").value, nk: $("nk").checked, hours,
             washout_h: $("washout-on").checked && w > 0 && w < hours ? w : null };
  }

  function setSelect(id, value) {
    const s = $(id);
    if (![...s.options].some((o) => +o.value === +value)) el("option", { value: value }, s, String(value));
    s.value = [...s.options].find((o) => +o.value === +value).value;
  }

  function applyControls(c) {
    for (const d of state.meta.drugs) {
      const on = c.drugs && d.name in c.drugs;
      $("drug-" + d.name).checked = !!on;
      const dose = on ? c.drugs[d.name] : d.default_nM;
      $("dose-" + d.name).value = Math.log10(dose);
      $("dose-label-" + d.name).textContent = fmtDose(dose);
    }
    for (const v of state.meta.variants) $("variant-" + v.name).checked = (c.variants || []).includes(v.name);
    $("nk").checked = !!c.nk;
    setSelect("hrg", c.hrg_nM || 0);
    setSelect("egf", c.egf_nM || 0);
    setSelect("hours", c.hours || 72);
    $("washout-on").checked = c.washout_h !== null && c.washout_h !== undefined;
    if (c.washout_h) $("washout-h").value = c.washout_h;
    state.tIndex = null;
    $("t-slider").value = 100;
    changed();
  }

  function selectLesson(demo) {
    const l = state.meta.lessons.find((x) => x.demo === demo);
    state.lesson = l || null;
    $("lesson-card").hidden = !l;
    $("explanation").hidden = !l;
    if (!l) { state.panels = DEFAULT_PANELS.slice(); return drawAll(); }
    $("lesson-do").textContent = l.do;
    $("lesson-watch").textContent = l.watch;
    $("lesson-question").textContent = l.question;
    $("lesson-title").textContent = l.title;
    $("lesson-p1").textContent = l.explanation[0];
    $("lesson-p2").textContent = l.explanation[1];
    $("lesson-refs").textContent = l.references.join("; ");
    const steps = $("lesson-steps");
    steps.textContent = "";
    l.steps.forEach((s, i) => {
      const b = el("button", { type: "button", "data-step": i }, steps, s.label);
      b.addEventListener("click", () => { markStep(i); applyControls(s.controls); });
    });
    state.panels = l.panels.slice();
    if (!state.panels.includes("viable_cells")) state.panels.push("viable_cells");
    markStep(0);
    applyControls(l.steps[0].controls);
  }
  function markStep(i) {
    document.querySelectorAll("#lesson-steps button").forEach((b) => b.classList.toggle("active", +b.dataset.step === i));
  }

  // ------------------------------------------------------------------ simulation
  let timer = null;
  function changed() {
    clearTimeout(timer);
    timer = setTimeout(run, 120);
  }
  async function run() {
    const controls = readControls();
    const tag = ++state.requests;
    state.pending = tag;
    $("status").textContent = "simulating…";
    const t0 = performance.now();
    try {
      const resp = await fetch("/api/simulate", { method: "POST", headers: { "Content-Type": "application/json" },
                                                  body: JSON.stringify(controls) });
      const data = await resp.json();
      if (tag !== state.pending) return;  // a newer request is on its way
      if (!resp.ok) throw new Error(data.error || resp.statusText);
      state.result = data;
      state.error = null;
      state.ready = true;
      state.completed = tag;
      $("status").textContent = "simulated in " + Math.round(data.elapsed_ms) + " ms (round trip " +
        Math.round(performance.now() - t0) + " ms)";
      drawAll();
    } catch (err) {
      state.error = String(err.message || err);
      state.completed = tag;
      $("status").innerHTML = "";
      el("span", { class: "error" }, $("status"), "error: " + state.error);
    }
  }

  // ------------------------------------------------------------------ drawing
  function timeIndex() {
    const n = state.result.time.length;
    return Math.round((+$("t-slider").value / 100) * (n - 1));
  }
  function drawAll() {
    if (!state.result) return;
    const i = timeIndex();
    $("t-label").textContent = fmt(state.result.time[i]);
    drawDiagram(i);
    drawPlots(i);
  }

  function ratioColour(treated, control) {
    const eps = 1e-9;
    if (treated === null || control === null) return { fill: "#d9d9d9", ratio: null };
    if (Math.abs(control) < eps && Math.abs(treated) < eps) return { fill: "#d9d9d9", ratio: null };
    const ratio = Math.abs(control) < eps ? Infinity : treated / control;
    const x = Math.max(-1, Math.min(1, Math.log2(Math.max(ratio, 1e-6)) / 2));  // +-1 at 4-fold
    const white = [244, 244, 244], lo = [74, 127, 193], hi = [208, 73, 59];
    const target = x < 0 ? lo : hi, f = Math.abs(x);
    const rgb = white.map((w, k) => Math.round(w + (target[k] - w) * f));
    return { fill: "rgb(" + rgb.join(",") + ")", ratio };
  }

  function edgePoint(a, b) {  // where the line from a's centre towards b leaves a's box
    const dx = b.x - a.x, dy = b.y - a.y;
    const t = Math.min((NODE_W / 2 + 3) / Math.abs(dx || 1e-9), (NODE_H / 2 + 3) / Math.abs(dy || 1e-9));
    return { x: a.x + dx * t, y: a.y + dy * t };
  }

  function drawDiagram(i) {
    const svg = $("diagram");
    svg.textContent = "";
    const defs = el("svg:defs", {}, svg);
    const arrow = el("svg:marker", { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" }, defs);
    el("svg:path", { d: "M0,0 L10,5 L0,10 z", fill: "#555" }, arrow);
    const bar = el("svg:marker", { id: "bar", viewBox: "0 0 4 12", refX: "3", refY: "6", markerWidth: "4", markerHeight: "12", orient: "auto" }, defs);
    el("svg:rect", { x: "1", y: "0", width: "3", height: "12", fill: "#b03a2e" }, bar);
    // compartments
    el("svg:rect", { x: 8, y: 30, width: 624, height: 62, rx: 8, class: "groupbox" }, svg);
    el("svg:text", { x: 630, y: 26, "text-anchor": "end", class: "grouplabel" }, svg, "membrane: HER receptors");
    el("svg:text", { x: 14, y: 118, class: "grouplabel" }, svg, "RAS/MAPK");
    el("svg:text", { x: 250, y: 118, class: "grouplabel" }, svg, "PI3K/AKT/mTOR");
    el("svg:text", { x: 510, y: 118, class: "grouplabel" }, svg, "estrogen receptor");
    el("svg:text", { x: 470, y: 300, class: "grouplabel" }, svg, "cell cycle");
    el("svg:text", { x: 14, y: 462, class: "grouplabel" }, svg, "immune (needs NK cells)");
    el("svg:text", { x: 250, y: 462, class: "grouplabel" }, svg, "cell fate");
    const nodes = Object.fromEntries(state.meta.nodes.map((n) => [n.id, n]));
    for (const e of state.meta.edges) {
      const a = nodes[e.source], b = nodes[e.target];
      const mx = (a.x + b.x) / 2, my = (a.y + b.y) / 2;
      const len = Math.hypot(b.x - a.x, b.y - a.y) || 1;
      const cx = mx - (b.y - a.y) / len * e.bend, cy = my + (b.x - a.x) / len * e.bend;
      const p = edgePoint(a, e.bend ? { x: cx, y: cy } : b), q = edgePoint(b, e.bend ? { x: cx, y: cy } : a);
      const d = e.bend ? `M${p.x},${p.y} Q${cx},${cy} ${q.x},${q.y}` : `M${p.x},${p.y} L${q.x},${q.y}`;
      el("svg:path", { d, fill: "none", stroke: e.kind === "inh" ? "#b03a2e" : "#555", "stroke-width": 1.6,
                       "stroke-dasharray": e.target === "NK" ? "5 3" : "none",
                       "marker-end": e.kind === "inh" ? "url(#bar)" : "url(#arrow)",
                       "data-edge": e.source + "-" + e.target }, svg);
    }
    const series = state.result.series;
    for (const n of state.meta.nodes) {
      const s = series[n.observable];
      const tv = s ? s.treated[i] : null, cv = s ? s.control[i] : null;
      const { fill, ratio } = ratioColour(tv, cv);
      const g = el("svg:g", { class: "node", "data-node": n.id, "data-observable": n.observable,
                              "data-value": tv, "data-control": cv, "data-ratio": ratio === null ? "" : ratio }, svg);
      el("svg:title", {}, g, `${n.observable}: ${fmt(tv)} vs ${fmt(cv)} untreated (${unitText(state.meta.units[n.observable])})`);
      el("svg:rect", { x: n.x - NODE_W / 2, y: n.y - NODE_H / 2, width: NODE_W, height: NODE_H, rx: 7, fill,
                       stroke: "#34495e", "stroke-width": 1.3 }, g);
      el("svg:text", { x: n.x, y: n.y - 4, "text-anchor": "middle", class: "name" }, g, n.label);
      let txt = "inactive";
      if (ratio !== null) txt = !isFinite(ratio) ? "on (0 in control)" : ratio >= 2 ? "\u00d7" + fmt(ratio) + " control" : Math.round(100 * ratio) + " % of control";
      el("svg:text", { x: n.x, y: n.y + 12, "text-anchor": "middle", class: "val" }, g, txt);
    }
    // drug badges on their targets
    const count = {};
    for (const name of Object.keys(state.result.controls.drugs)) {
      for (const target of state.meta.drug_targets[name] || []) {
        const n = nodes[target];
        const k = (count[target] = (count[target] || 0) + 1) - 1;
        const w = 8 + 6.2 * name.length;
        const g = el("svg:g", { class: "badge", "data-badge": name + "@" + target }, svg);
        const bx = n.x + NODE_W / 2 - w + 6, by = n.y - NODE_H / 2 - 13 - 15 * k;
        el("svg:rect", { x: bx, y: by, width: w, height: 14, rx: 7 }, g);
        el("svg:text", { x: bx + w / 2, y: by + 10.5, "text-anchor": "middle" }, g, name);
      }
    }
  }

  function niceTicks(lo, hi, n) {
    if (!(hi > lo)) { hi = lo + 1; }
    const step0 = (hi - lo) / n, mag = 10 ** Math.floor(Math.log10(step0));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step0);
    const ticks = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(+v.toPrecision(12));
    return ticks;
  }

  function drawPlots(i) {
    const box = $("plots");
    box.textContent = "";
    const names = Object.keys(state.result.series);
    state.panels.forEach((name, k) => {
      const panel = el("div", { class: "panel", "data-panel": k }, box);
      const sel = el("select", { "aria-label": "observable of panel " + (k + 1) }, panel);
      for (const n of names) el("option", { value: n }, sel, n + " [" + unitText(state.result.series[n].unit) + "]");
      sel.value = name;
      sel.addEventListener("change", () => { state.panels[k] = sel.value; drawAll(); });
      drawPanel(el("svg:svg", { viewBox: "0 0 215 150" }, panel), name, i);
    });
  }

  function drawPanel(svg, name, i) {
    const s = state.result.series[name], t = state.result.time;
    const L = 42, R = 210, T = 6, B = 112;
    const vals = s.treated.concat(s.control).filter((v) => v !== null && isFinite(v));
    let lo = Math.min(0, ...vals), hi = Math.max(...vals);
    if (!(hi > lo)) hi = lo + 1;
    hi = hi + 0.05 * (hi - lo);
    const yt = niceTicks(lo, hi, 4), xt = niceTicks(0, t[t.length - 1], 4);
    lo = Math.min(lo, yt[0]); hi = Math.max(hi, yt[yt.length - 1]);
    const X = (v) => L + (R - L) * v / t[t.length - 1], Y = (v) => B - (B - T) * (v - lo) / (hi - lo);
    el("svg:rect", { x: L, y: T, width: R - L, height: B - T, fill: "#fff", stroke: "#bbb" }, svg);
    for (const v of yt) {
      el("svg:line", { x1: L, x2: R, y1: Y(v), y2: Y(v), stroke: "#eee" }, svg);
      el("svg:text", { x: L - 3, y: Y(v) + 3.5, "text-anchor": "end", "font-size": 11 }, svg, fmt(v));
    }
    for (const v of xt) el("svg:text", { x: X(v), y: B + 12, "text-anchor": "middle", "font-size": 11 }, svg, fmt(v));
    el("svg:text", { x: (L + R) / 2, y: B + 24, "text-anchor": "middle", "font-size": 11 }, svg, "time after dosing (h)");
    el("svg:text", { x: 9, y: (T + B) / 2, "text-anchor": "middle", "font-size": 10.5,
                     transform: `rotate(-90 9 ${(T + B) / 2})` }, svg, unitText(s.unit, name));
    const path = (arr) => arr.map((v, j) => (v === null ? "" : (j ? "L" : "M") + X(t[j]).toFixed(1) + "," + Y(v).toFixed(1))).join("");
    el("svg:path", { d: path(s.control), fill: "none", stroke: "#888", "stroke-width": 2, "stroke-dasharray": "5 3",
                     "data-series": name, "data-role": "control", "data-last": s.control[s.control.length - 1] }, svg);
    el("svg:path", { d: path(s.treated), fill: "none", stroke: "#c0392b", "stroke-width": 2.2,
                     "data-series": name, "data-role": "treated", "data-last": s.treated[s.treated.length - 1] }, svg);
    const w = state.result.controls.washout_h;
    if (w) el("svg:line", { x1: X(w), x2: X(w), y1: T, y2: B, stroke: "#333", "stroke-dasharray": "2 2" }, svg);
    el("svg:line", { x1: X(t[i]), x2: X(t[i]), y1: T, y2: B, stroke: "#23395d", "stroke-opacity": 0.35, "stroke-width": 3 }, svg);
    el("svg:text", { x: 2, y: 147, "font-size": 10.5, fill: "#444" }, svg,
       "end: " + fmt(s.treated[s.treated.length - 1]) + " treated, " + fmt(s.control[s.control.length - 1]) + " control");
  }

  // ------------------------------------------------------------------ start
  fetch("/api/meta").then((r) => r.json()).then((meta) => {
    state.meta = meta;
    buildControls(meta);
    const want = new URLSearchParams(location.search).get("lesson");
    if (want && meta.lessons.some((l) => l.demo === want)) { $("lesson-select").value = want; selectLesson(want); }
    else changed();
  }).catch((err) => { $("status").textContent = "cannot reach the her2sim server: " + err; });
})();
