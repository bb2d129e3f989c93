// The patient view's charts (docs/observations.md, "Charts"): each vital
// and the NEWS2 over a chosen range, on a time axis in local time, against
// the NEWS2 bands. Every reading is a mark; a line joins only readings
// close enough to be continuous; entries made by people are diamonds.
// Drawn as SVG by hand: there is nothing to build and nothing to fetch.
"use strict";

// One name in the page's global scope: the board's own functions and the
// charts' cannot shadow each other. The helpers are exposed for the tests.
const Charts = (() => {
  const SVGNS = "http://www.w3.org/2000/svg";
  // refresh: while new readings arrive, the charts are fetched again at most
  // this often (ms); a long range is a large answer and changes less.
  const CHART_RANGES = [
    { key: "6h", query: "hours=6", label: "6 h", words: "last 6 hours", refresh: 15e3 },
    { key: "24h", query: "hours=24", label: "24 h", words: "last 24 hours", refresh: 15e3 },
    { key: "72h", query: "hours=72", label: "72 h", words: "last 72 hours", refresh: 60e3 },
    { key: "7d", query: "hours=168", label: "7 days", words: "last 7 days", refresh: 300e3 },
    { key: "stay", query: "since=stay", label: "Whole stay", words: "whole stay", refresh: 300e3 },
  ];
  // The vitals charted, in NEWS2 chart order; blood pressure is one chart.
  const CHART_KINDS = ["respiratory_rate", "spo2", "blood_pressure", "heart_rate", "consciousness", "temperature"];
  const CHART_TITLE = { blood_pressure: "Blood pressure", consciousness: "Consciousness (ACVPU)" };
  const CHART_UNIT = { respiratory_rate: "/min", spo2: "%", systolic_bp: "mmHg", diastolic_bp: "mmHg", heart_rate: "bpm", temperature: "°C",
    weight: "kg", blood_glucose: "mmol/L", peak_flow: "L/min", pain_score: "/10" };
  // Care plans' kinds, charted after NEWS2's when the patient has any.
  const PLAN_KINDS = ["weight", "blood_glucose", "peak_flow", "pain_score"];
  const ACVPU = ["A", "C", "V", "P", "U"];
  const SOURCE_NAME = { telephone: "telephone", home_visit: "home visit", carer: "carer", care_home_staff: "care-home staff", patient_self_report: "patient's own report" };
  const FRESH_DEFAULT = 3600e3; // the oxygen window when the server does not say

  // The range chosen stays while the board is open, for every patient.
  let chartRange = "24h";
  const chartView = { patient: "", seq: 0, loadedAt: 0, timer: null, data: null };

  // --- Pure helpers (exercised by the browser tests) -----------------------------

  // timeTicks chooses the axis ticks of [from, to] (ms): local midnight and
  // whole local hours for ranges up to 3 days, days beyond, about maxTicks.
  function timeTicks(from, to, maxTicks) {
    const H = 3600e3, span = to - from;
    const steps = [H / 4, H / 2, H, 2 * H, 3 * H, 6 * H, 12 * H, 24 * H, 48 * H, 168 * H, 336 * H];
    const step = steps.find(s => span / s <= maxTicks) || steps[steps.length - 1];
    const ticks = [];
    const d = new Date(from);
    if (step < 24 * H) {
      // Align to local time: 00:00, 06:00, 12:00… for a 6-hour step.
      const m = step / 60e3;
      d.setSeconds(0, 0);
      while (d.getTime() < from || (d.getHours() * 60 + d.getMinutes()) % m !== 0) d.setMinutes(d.getMinutes() + 1);
      for (; d.getTime() <= to; d.setMinutes(d.getMinutes() + m)) ticks.push({ at: d.getTime(), day: d.getHours() === 0 && d.getMinutes() === 0 });
    } else {
      d.setHours(0, 0, 0, 0);
      if (d.getTime() < from) d.setDate(d.getDate() + 1);
      const days = step / (24 * H);
      for (; d.getTime() <= to; d.setDate(d.getDate() + days)) ticks.push({ at: d.getTime(), day: true });
    }
    return { step, ticks };
  }

  function tickLabel(t, step) {
    const d = new Date(t.at);
    if (step >= 24 * 3600e3 || t.day) return d.toLocaleDateString([], { weekday: "short", day: "numeric" });
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  }

  function whenText(ms) {
    return new Date(ms).toLocaleString([], { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  }

  // niceTicks gives round values across [lo, hi] for the value axis.
  function niceTicks(lo, hi, n) {
    const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map(m => m * mag).find(s => s >= raw) || 10 * mag;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Math.round(v * 1000) / 1000);
    return out;
  }

  // runs splits points (oldest first) where the server marked a gap: no line
  // joins two readings not close enough in time to be continuous.
  function runs(points) {
    const out = [];
    let cur = [];
    for (const p of points) {
      if (cur.length && p.r.gap) { out.push(cur); cur = []; }
      cur.push(p);
    }
    if (cur.length) out.push(cur);
    return out;
  }

  // thin keeps, of points denser than one per pixel column, each column's
  // first, lowest, highest and last, in time order: the extremes stay.
  function thin(points, x) {
    if (points.length <= 600) return points;
    const out = [];
    let col = null, bucket = [];
    const flush = () => {
      if (!bucket.length) return;
      let lo = bucket[0], hi = bucket[0];
      for (const p of bucket) { if (p.v < lo.v) lo = p; if (p.v > hi.v) hi = p; }
      const keep = [...new Set([bucket[0], lo, hi, bucket[bucket.length - 1]])].sort((a, b) => a.t - b.t);
      out.push(...keep);
    };
    for (const p of points) {
      const c = Math.floor(x(p.t));
      if (c !== col) { flush(); bucket = []; col = c; }
      bucket.push(p);
    }
    flush();
    return out;
  }

  // --- Drawing ----------------------------------------------------------------------

  function svgEl(tag, attrs, cls) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (cls) e.setAttribute("class", cls);
    return e;
  }

  function titled(e, text) {
    const t = document.createElementNS(SVGNS, "title");
    t.textContent = text;
    e.appendChild(t);
    return e;
  }

  // frame draws a chart's plot: the time axis with its ticks, labels and the
  // "now" mark, the value axis, and returns the scales.
  function frame(svg, g, from, to, lo, hi, yLabels) {
    const x = t => g.left + (t - from) / (to - from) * (g.right - g.left);
    const y = v => g.bottom - (v - lo) / (hi - lo) * (g.bottom - g.top);
    const axis = svgEl("g", {}, "axis");
    const { step, ticks } = timeTicks(from, to, 8);
    for (const t of ticks) {
      const tx = x(t.at);
      axis.appendChild(svgEl("line", { x1: tx, x2: tx, y1: g.top, y2: g.bottom }, t.day ? "grid day" : "grid"));
      const label = svgEl("text", { x: tx, y: g.bottom + 13, "text-anchor": "middle" }, "tick");
      label.textContent = tickLabel(t, step);
      axis.appendChild(label);
    }
    for (const v of yLabels) {
      const label = svgEl("text", { x: g.left - 4, y: y(v) + 4, "text-anchor": "end" }, "ylabel");
      label.textContent = v;
      axis.appendChild(label);
    }
    axis.appendChild(svgEl("line", { x1: g.left, x2: g.right, y1: g.bottom, y2: g.bottom }, "base"));
    svg.appendChild(axis);
    return { x, y };
  }

  // span is the time a chart covers: the range asked for, up to now. The
  // whole stay of a patient admitted less than MIN_STAY ago covers MIN_STAY,
  // with the admission marked, rather than magnify a few minutes.
  const MIN_STAY = 6 * 3600e3;
  function span(data) {
    const to = Date.parse(data.to), asked = Date.parse(data.from);
    if (!data.stay) return { from: asked, to, admitted: null };
    return { from: Math.min(asked, to - MIN_STAY), to, admitted: asked };
  }

  // spanMarks draws "now" at the right-hand edge, and the admission when
  // the whole stay is shown.
  function spanMarks(svg, g, x, sp) {
    const mark = (at, cls, word, anchor, dx) => {
      const mx = x(at);
      svg.appendChild(svgEl("line", { x1: mx, x2: mx, y1: g.top - 2, y2: g.bottom }, cls));
      const t = svgEl("text", { x: mx + dx, y: g.top + 7, "text-anchor": anchor }, cls + "-label");
      t.textContent = word;
      svg.appendChild(t);
    };
    mark(sp.to, "now", "now", "end", -2);
    if (sp.admitted !== null && sp.admitted > sp.from) mark(sp.admitted, "admitted", "admitted", "start", 2);
  }

  // shade draws bands [{min, max, score}] over [x0, x1] as rectangles,
  // edges halfway between one band's top value and the next one's bottom.
  function shade(svg, g, y, lo, hi, bands, x0, x1) {
    for (let i = 0; i < bands.length; i++) {
      const b = bands[i];
      if (b.score === 0) continue;
      const bottom = i > 0 ? (bands[i - 1].max + b.min) / 2 : -Infinity;
      const top = i < bands.length - 1 ? (b.max + bands[i + 1].min) / 2 : Infinity;
      const y0 = y(Math.min(hi, top)), y1 = y(Math.max(lo, bottom));
      if (y1 - y0 <= 0.5 || x1 - x0 <= 0) continue;
      const r = svgEl("rect", { x: x0, width: x1 - x0, y: y0, height: y1 - y0 }, "band s" + b.score);
      r.dataset.score = b.score;
      svg.appendChild(titled(r, "NEWS2 sub-score " + b.score));
    }
  }

  // bandLabels writes each band's score at the left-hand edge, away from
  // the newest readings.
  function bandLabels(svg, g, y, lo, hi, bands, dx) {
    for (let i = 0; i < bands.length; i++) {
      const b = bands[i];
      const bottom = Math.max(lo, i > 0 ? (bands[i - 1].max + b.min) / 2 : lo);
      const top = Math.min(hi, i < bands.length - 1 ? (b.max + bands[i + 1].min) / 2 : hi);
      if (y(bottom) - y(top) < 11) continue;
      const t = svgEl("text", { x: g.left + dx, y: (y(bottom) + y(top)) / 2 + 4, "text-anchor": "start" }, "band-score");
      t.textContent = b.score;
      svg.appendChild(t);
    }
  }

  function diamond(cx, cy, r) {
    return `M${cx} ${cy - r}L${cx + r} ${cy}L${cx} ${cy + r}L${cx - r} ${cy}Z`;
  }

  function sourceText(p) {
    if (p.source) {
      return (SOURCE_NAME[p.source] || p.source) + (p.entered_by ? " by " + p.entered_by : "") + (p.entry ? " (" + p.entry + ")" : "") +
        (p.entered_in_error ? " — entered in error" : "");
    }
    return "device " + p.device;
  }

  // marks draws a series' points: a dot for each device reading (but in a
  // run too dense for a dot each, where the line shows them), a diamond for
  // each entry, whatever the density.
  function marks(svg, pts, x, y, fmt, cls, dense) {
    for (const p of pts) {
      const cx = x(p.t), cy = y(p.v);
      let m;
      if (p.r.source) {
        m = svgEl("path", { d: diamond(cx, cy, 5) }, "mark manual " + cls + (p.r.entered_in_error ? " in-error" : ""));
      } else if (dense.has(p)) {
        continue;
      } else {
        m = svgEl("circle", { cx, cy, r: 3 }, "mark device " + cls);
      }
      svg.appendChild(titled(m, fmt(p) + " · " + whenText(p.t) + " · " + sourceText(p.r)));
    }
  }

  // line draws the series' continuous runs, and returns the points of long
  // runs denser than a dot every 4 pixels, which the line alone shows. A run
  // narrower than 3 pixels is left to its dots: a few readings minutes apart
  // in a long range are marks at one time, not a line.
  function line(svg, pts, x, y, cls) {
    const counted = pts.filter(p => !p.r.entered_in_error);
    const dense = new Set();
    for (const seg of runs(counted)) {
      const width = seg.length > 1 ? x(seg[seg.length - 1].t) - x(seg[0].t) : 0;
      if (width < 3) continue;
      if (seg.length >= 20 && width / seg.length < 4) seg.forEach(p => dense.add(p));
      const drawn = thin(seg, x);
      svg.appendChild(svgEl("polyline", { points: drawn.map(p => x(p.t).toFixed(1) + "," + y(p.v).toFixed(1)).join(" ") }, "trace " + cls));
    }
    return dense;
  }

  function chartBox(kind, title) {
    const box = el("div", "chart");
    box.dataset.kind = kind;
    box.appendChild(el("h3", "", title));
    return box;
  }

  const GEOM = { W: 460, H: 170, left: 34, right: 452, top: 8, bottom: 148 };

  function newSvg(label) {
    const svg = svgEl("svg", { viewBox: `0 0 ${GEOM.W} ${GEOM.H}`, role: "img", "aria-label": label });
    return svg;
  }

  function fmtValue(kind, v) {
    if (kind === "temperature") return v.toFixed(1) + " °C";
    return Math.round(v * 10) / 10 + " " + (CHART_UNIT[kind] || "");
  }

  // oxygenSpans are the times the patient was on oxygen, each reading of
  // oxygen holding until the next or until it is no longer fresh.
  function oxygenSpans(readings, fresh, to) {
    const ox = readings.filter(r => r.kind === "supplemental_oxygen" && !r.entered_in_error);
    const spans = [];
    for (let i = 0; i < ox.length; i++) {
      if (!ox[i].value) continue;
      const t = Date.parse(ox[i].at);
      const end = Math.min(to, t + fresh, i + 1 < ox.length ? Date.parse(ox[i + 1].at) : Infinity);
      if (end > t) spans.push([t, end]);
    }
    return spans;
  }

  // vitalChart draws one vital, or systolic and diastolic together.
  function vitalChart(kind, data) {
    const title = CHART_TITLE[kind] || LABEL[kind] || kind;
    const box = chartBox(kind, title);
    const sp = span(data), from = sp.from, to = sp.to;
    const kinds = kind === "blood_pressure" ? ["systolic_bp", "diastolic_bp"] : [kind];
    const series = kinds.map(k => data.readings.filter(r => r.kind === k)
      .map(r => ({ t: Date.parse(r.at), v: r.value, r })).filter(p => p.t >= from));
    const all = series.flat();
    const words = (CHART_RANGES.find(r => r.key === chartRange) || {}).words || "";
    if (all.length === 0) { box.appendChild(el("div", "none", "no readings in the " + words)); return box; }
    const bandKind = kind === "blood_pressure" ? "systolic_bp" : kind;
    const bands = (data.bands || {})[bandKind] || [];
    const normal = bands.find(b => b.score === 0);
    let lo = Math.min(...all.map(p => p.v)), hi = Math.max(...all.map(p => p.v));
    if (normal) { lo = Math.min(lo, normal.min); hi = Math.max(hi, Math.min(normal.max, kind === "blood_pressure" ? 160 : normal.max)); }
    const pad = Math.max((hi - lo) * 0.08, kind === "temperature" ? 0.2 : 2);
    lo -= pad; hi += pad;
    if (kind === "spo2") hi = Math.min(hi, 100.5);
    const latest = all.reduce((a, b) => (b.t > a.t ? b : a));
    const svg = newSvg(title + ", " + words + ": " + all.length + " readings, latest " + fmtValue(latest.r.kind, latest.v) + " at " + whenText(latest.t));
    const g = GEOM;
    const x = t => g.left + (t - from) / (to - from) * (g.right - g.left);
    const y = v => g.bottom - (v - lo) / (hi - lo) * (g.bottom - g.top);
    const scale2 = kind === "spo2" && data.spo2_scale === 2;
    // Diastolic is not scored: the systolic's bands are a ribbon at the
    // left edge, not shading behind both.
    const bp = kind === "blood_pressure";
    shade(svg, g, y, lo, hi, bands, g.left, bp ? g.left + 6 : g.right);
    if (kind === "spo2") {
      for (const [a, b] of oxygenSpans(data.readings, (data.freshness_seconds || {}).supplemental_oxygen * 1000 || FRESH_DEFAULT, to)) {
        const x0 = Math.max(g.left, x(a)), x1 = Math.min(g.right, x(b));
        if (scale2) shade(svg, g, y, lo, hi, data.bands.spo2_on_oxygen || [], x0, x1);
        if (x1 > x0) svg.appendChild(titled(svgEl("rect", { x: x0, width: x1 - x0, y: g.top, height: 4 }, "oxygen"), "on oxygen"));
      }
    }
    bandLabels(svg, g, y, lo, hi, bands, bp ? 9 : 3);
    frame(svg, g, from, to, lo, hi, niceTicks(lo, hi, 4));
    spanMarks(svg, g, x, sp);
    series.forEach((pts, i) => {
      const cls = kinds[i] === "diastolic_bp" ? "dia" : "";
      const dense = line(svg, pts, x, y, cls);
      marks(svg, pts, x, y, p => (LABEL[kinds[i]] || kinds[i]) + " " + fmtValue(kinds[i], p.v), cls, dense);
    });
    if (kind === "blood_pressure") {
      // A cuff reads both at once: join each pair, as a paper chart does.
      const dia = new Map(series[1].map(p => [p.t, p]));
      for (const s of series[0]) {
        const d = dia.get(s.t);
        if (d && series[0].length < 200) svg.insertBefore(svgEl("line", { x1: x(s.t), x2: x(s.t), y1: y(s.v), y2: y(d.v) }, "pair"), svg.querySelector(".mark"));
      }
    }
    box.appendChild(svg);
    if (scale2) box.appendChild(el("p", "chart-note", "SpO₂ Scale 2: above 92% scores only on oxygen (the bar along the top)."));
    if (bp) {
      const note = el("p", "chart-note");
      note.append(el("span", "key sys", "●"), " systolic ", el("span", "key dia", "●"), " diastolic (not scored); the systolic's NEWS2 bands at the left edge.");
      box.appendChild(note);
    }
    return box;
  }

  // consciousnessChart draws ACVPU as rows: A at the bottom, U at the top.
  function consciousnessChart(data) {
    const title = CHART_TITLE.consciousness;
    const box = chartBox("consciousness", title);
    const sp = span(data), from = sp.from, to = sp.to;
    const pts = data.readings.filter(r => r.kind === "consciousness").map(r => ({ t: Date.parse(r.at), v: r.value, r })).filter(p => p.t >= from);
    const words = (CHART_RANGES.find(r => r.key === chartRange) || {}).words || "";
    if (pts.length === 0) { box.appendChild(el("div", "none", "no readings in the " + words)); return box; }
    const svg = newSvg(title + ", " + words + ": latest " + ACVPU[pts[pts.length - 1].v] + " at " + whenText(pts[pts.length - 1].t));
    const g = GEOM, lo = -0.5, hi = 4.5;
    const y = v => g.bottom - (v - lo) / (hi - lo) * (g.bottom - g.top);
    const x = t => g.left + (t - from) / (to - from) * (g.right - g.left);
    svg.appendChild(svgEl("rect", { x: g.left, width: g.right - g.left, y: y(4.5), height: y(0.5) - y(4.5) }, "band s3"));
    const { x: fx } = frame(svg, g, from, to, lo, hi, []);
    ACVPU.forEach((l, i) => {
      const t = svgEl("text", { x: g.left - 4, y: y(i) + 4, "text-anchor": "end" }, "ylabel");
      t.textContent = l;
      svg.appendChild(t);
    });
    spanMarks(svg, g, fx, sp);
    const dense = line(svg, pts, x, y, "");
    marks(svg, pts, x, y, p => "ACVPU " + ACVPU[p.v], "", dense);
    box.appendChild(svg);
    return box;
  }

  const RISK_SHAPE = { low: "circle", "low-medium": "diamond", medium: "triangle", high: "square" };

  function riskMark(risk, cx, cy, hollow) {
    const cls = "mark score " + risk + (hollow ? " partial" : "");
    switch (RISK_SHAPE[risk]) {
      case "diamond": return svgEl("path", { d: diamond(cx, cy, 5) }, cls);
      case "triangle": return svgEl("path", { d: `M${cx} ${cy - 5}L${cx + 5} ${cy + 4}L${cx - 5} ${cy + 4}Z` }, cls);
      case "square": return svgEl("rect", { x: cx - 4, y: cy - 4, width: 8, height: 8 }, cls);
    }
    return svgEl("circle", { cx, cy, r: 3.5 }, cls);
  }

  // news2Chart draws the score as steps: each score holds until the next
  // point; a null point (nothing current) ends the line.
  function news2Chart(data) {
    const box = chartBox("news2", "NEWS2");
    const words = (CHART_RANGES.find(r => r.key === chartRange) || {}).words || "";
    if (!data) { box.appendChild(el("div", "none", "scores unavailable")); return box; }
    const sp = span(data), from = sp.from, to = sp.to;
    const pts = data.scores.map(s => ({ t: Math.max(from, Date.parse(s.at)), s }));
    const scored = pts.filter(p => p.s.score !== null);
    if (scored.length === 0) { box.appendChild(el("div", "none", "no score in the " + words)); return box; }
    const top = Math.max(9, ...scored.map(p => p.s.score + 1));
    const latest = scored[scored.length - 1].s;
    const svg = newSvg("NEWS2, " + words + ": latest " + latest.score + " " + latest.risk + (latest.complete ? "" : " (partial)"));
    const g = GEOM, lo = -0.5, hi = top;
    const x = t => g.left + (t - from) / (to - from) * (g.right - g.left);
    const y = v => g.bottom - (v - lo) / (hi - lo) * (g.bottom - g.top);
    for (const [a, b, risk] of [[lo, 4.5, "low"], [4.5, 6.5, "medium"], [6.5, hi, "high"]]) {
      svg.appendChild(titled(svgEl("rect", { x: g.left, width: g.right - g.left, y: y(b), height: y(a) - y(b) }, "risk-band " + risk), "NEWS2 " + risk));
    }
    frame(svg, g, from, to, lo, hi, [0, 3, 5, 7].filter(v => v < hi));
    spanMarks(svg, g, x, sp);
    let path = "";
    for (let i = 0; i < pts.length; i++) {
      const p = pts[i];
      if (p.s.score === null) continue;
      const end = i + 1 < pts.length ? pts[i + 1].t : to;
      const yy = y(p.s.score).toFixed(1);
      path += `M${x(p.t).toFixed(1)} ${yy}H${x(end).toFixed(1)}`;
      if (i + 1 < pts.length && pts[i + 1].s.score !== null) path += `V${y(pts[i + 1].s.score).toFixed(1)}`;
    }
    svg.appendChild(svgEl("path", { d: path }, "trace step"));
    const dense = (g.right - g.left) / scored.length < 4;
    for (const p of scored) {
      if (dense && p !== scored[scored.length - 1]) continue;
      const s = p.s;
      const m = riskMark(s.risk, x(p.t), y(s.score), !s.complete);
      svg.appendChild(titled(m, "NEWS2 " + s.score + " (" + s.risk + ") from " + whenText(p.t) +
        (s.complete ? "" : " · partial, missing " + (s.missing || []).map(k => k.replace(/_/g, " ")).join(", "))));
    }
    box.appendChild(svg);
    return box;
  }

  // --- The charts panel ------------------------------------------------------------

  function rangeSelector() {
    const fs = el("fieldset", "ranges");
    fs.appendChild(el("legend", "", "Charts over"));
    for (const r of CHART_RANGES) {
      const label = el("label");
      const input = el("input");
      input.type = "radio";
      input.name = "chart-range";
      input.value = r.key;
      input.checked = r.key === chartRange;
      input.addEventListener("change", () => {
        if (!input.checked) return;
        chartRange = r.key;
        loadCharts(chartView.patient, true);
      });
      label.appendChild(input);
      label.appendChild(document.createTextNode(" " + r.label));
      fs.appendChild(label);
    }
    return fs;
  }

  function legend() {
    const p = el("p", "chart-legend");
    p.innerHTML = '<span class="key device">●</span> device reading <span class="key manual">◆</span> entered by a person ' +
      '<span class="key in-error">◇</span> entered in error (not scored) · shading: NEWS2 sub-score <span class="key s1">1</span>' +
      '<span class="key s2">2</span><span class="key s3">3</span> · no line across a gap';
    return p;
  }

  // openCharts shows a patient's charts over the chosen range.
  function openCharts(id) {
    if (chartView.patient !== id) chartView.data = null;
    chartView.patient = id;
    const panel = $("pv-chart-panel");
    panel.replaceChildren(rangeSelector(), legend());
    loadCharts(id, true);
  }

  // chartsChanged asks for fresh charts after the patient's row changed, at
  // most as often as the range's refresh.
  function chartsChanged(id) {
    if (id !== chartView.patient || chartView.timer) return;
    const every = (CHART_RANGES.find(r => r.key === chartRange) || CHART_RANGES[1]).refresh;
    const wait = Math.max(0, chartView.loadedAt + every - Date.now());
    chartView.timer = setTimeout(() => {
      chartView.timer = null;
      if (viewing(id)) loadCharts(id, false);
    }, wait);
  }

  async function loadCharts(id, announce) {
    const seq = ++chartView.seq;
    const charts = $("pv-charts");
    if (announce && !chartView.data) charts.replaceChildren(el("p", "none", "loading…"));
    const q = (CHART_RANGES.find(r => r.key === chartRange) || CHART_RANGES[1]).query;
    const base = "/api/v1/patients/" + encodeURIComponent(id);
    const [rr, sr] = await Promise.all([api("GET", base + "/readings?" + q), api("GET", base + "/scores?" + q).catch(() => null)]);
    if (seq !== chartView.seq) return; // a newer range was asked for
    chartView.loadedAt = Date.now();
    if (!rr.ok) { charts.replaceChildren(el("p", "none", "history unavailable")); return; }
    const readings = await rr.json();
    const scores = sr && sr.ok ? await sr.json() : null;
    if (seq !== chartView.seq) return;
    chartView.data = { readings, scores };
    charts.dataset.range = chartRange;
    const out = [news2Chart(scores)];
    for (const kind of CHART_KINDS) out.push(kind === "consciousness" ? consciousnessChart(readings) : vitalChart(kind, readings));
    for (const kind of PLAN_KINDS) if (readings.readings.some(r => r.kind === kind)) out.push(vitalChart(kind, readings));
    if (readings.capped) out[0].appendChild(el("p", "chart-note", "The stay is longer than 31 days: its last 31 days are shown."));
    charts.replaceChildren(...out);
  }

  return { open: openCharts, changed: chartsChanged, timeTicks, thin, GEOM };
})();
