// The board: a snapshot on connect, then one message per changed patient.
// It reconnects by itself and says "stale" when the stream is down, so it
// can never freeze silently. The message protocol is in docs/websocket.md.
"use strict";

const VITALS = ["respiratory_rate", "spo2", "supplemental_oxygen", "systolic_bp", "heart_rate", "consciousness", "temperature"];
const LABEL = {
  respiratory_rate: "Respiration rate", spo2: "SpO₂", supplemental_oxygen: "Oxygen",
  systolic_bp: "Systolic BP", diastolic_bp: "Diastolic BP", heart_rate: "Pulse",
  consciousness: "Consciousness (ACVPU)", temperature: "Temperature",
  weight: "Weight", blood_glucose: "Blood glucose", peak_flow: "Peak flow", pain_score: "Pain score", fall_event: "Fall",
};
const RISK_RANK = { high: 3, medium: 2, "low-medium": 1, low: 0 };
const RISK_WORD = { high: "HIGH", medium: "MEDIUM", "low-medium": "RED SCORE", low: "LOW" };

const patients = new Map();
const alerts = new Map(); // open alerts by id, newest version kept
let wards = [];
let me = null;
let serverOffset = 0;
let csrfToken = "";
let socket = null;
let backoff = 500;
let muted = localStorage.getItem("vward-muted") === "1";

function $(id) { return document.getElementById(id); }
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function age(iso) {
  if (!iso) return "";
  const s = Math.max(0, (Date.now() + serverOffset - Date.parse(iso)) / 1000);
  if (s < 60) return Math.round(s) + "s ago";
  if (s < 3600) return Math.round(s / 60) + "m ago";
  if (s < 86400) return Math.round(s / 3600) + "h ago";
  return Math.round(s / 86400) + "d ago";
}

// --- Sorting and filtering ---------------------------------------------------

function rank(p) {
  const n = p.news2;
  if (!n) return [-1, -1];
  return [RISK_RANK[n.risk] ?? -1, n.score];
}

function wardOf(id) { return wards.find(w => w.id === id); }

function visible(p) {
  const fw = $("filter-ward").value, fp = $("filter-pathway").value;
  if (fw && p.ward !== fw) return false;
  if (fp && (wardOf(p.ward) || {}).pathway !== fp) return false;
  if ($("filter-needs").checked && !(p.needs && p.needs.length)) return false;
  return true;
}

// alertsOf returns a patient's open alerts, clinical first.
function alertsOf(id) {
  return [...alerts.values()].filter(a => a.patient === id)
    .sort((a, b) => (a.queue === "clinical" ? 0 : 1) - (b.queue === "clinical" ? 0 : 1) || RISK_RANK[b.risk] - RISK_RANK[a.risk]);
}

// waitingSince is when the patient's oldest unacknowledged clinical alert
// was raised, or Infinity: the longer an alert has waited, the higher the row.
function waitingSince(p) {
  let t = Infinity;
  for (const a of alertsOf(p.patient)) {
    if (a.queue === "clinical" && a.unacknowledged_since && (a.state === "raised" || a.state === "cleared")) {
      t = Math.min(t, Date.parse(a.unacknowledged_since));
    }
  }
  return t;
}

function sorted() {
  return [...patients.values()].filter(visible).sort((a, b) => {
    const [ra, sa] = rank(a), [rb, sb] = rank(b);
    if (ra !== rb) return rb - ra;
    if (sa !== sb) return sb - sa;
    const wa = waitingSince(a), wb = waitingSince(b);
    if (wa !== wb) return wa - wb;
    return (a.name || a.patient).localeCompare(b.name || b.patient);
  });
}

// --- Rendering the board -------------------------------------------------------

// sparkline draws the NEWS2 of the last 24 hours. The monitor records a
// point at least every 5 minutes while the patient is scored, so points
// further apart than SPARK_GAP are a time without a score: no line there.
const SPARK_GAP = 15 * 60e3;
function sparkline(trend) {
  const w = 90, h = 26;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("width", w);
  svg.setAttribute("height", h);
  if (!trend || trend.length === 0) return svg;
  const end = Date.now() + serverOffset, start = end - 24 * 3600 * 1000;
  const x = t => Math.max(0, Math.min(w - 2, (t - start) / (end - start) * (w - 2)));
  // Scores above 8 are all emergencies: give the range 0–8 the height.
  const y = s => h - 2 - Math.min(8, s) / 8 * (h - 4);
  let d = "";
  trend.forEach((p, i) => {
    const t = Date.parse(p.at);
    const next = i + 1 < trend.length ? Date.parse(trend[i + 1].at) : end;
    const joined = next - t <= SPARK_GAP;
    d += (i === 0 || Date.parse(trend[i - 1].at) < t - SPARK_GAP ? "M" : "L") + x(t).toFixed(1) + " " + y(p.score).toFixed(1);
    if (joined) d += "H" + x(next).toFixed(1);
  });
  const line = document.createElementNS(ns, "path");
  line.setAttribute("d", d);
  svg.appendChild(line);
  const last = trend[trend.length - 1];
  const dot = document.createElementNS(ns, "circle");
  dot.setAttribute("cx", x(Date.parse(last.at)));
  dot.setAttribute("cy", y(last.score));
  dot.setAttribute("r", 2);
  svg.appendChild(dot);
  const title = document.createElementNS(ns, "title");
  title.textContent = "NEWS2 over 24 hours: " + trend.map(p => p.score).join(", ");
  svg.appendChild(title);
  return svg;
}

// What a full NEWS2 still needs, in the words a nurse asks for it: short
// on the board, whole on the patient view.
const NEED_SHORT = {
  respiratory_rate: "resp rate", spo2: "SpO₂", supplemental_oxygen: "O₂ or air", systolic_bp: "BP",
  heart_rate: "pulse", consciousness: "ACVPU", temperature: "temp",
};
const NEED_WORD = {
  respiratory_rate: "respiratory rate", spo2: "SpO₂", supplemental_oxygen: "oxygen or air", systolic_bp: "systolic BP",
  heart_rate: "pulse", consciousness: "ACVPU", temperature: "temperature",
};

function needOf(p, kind) { return (p.needs || []).find(n => n.parameter === kind); }

// clockTime is a measurement time as a wall clock shows it ("11:02"), with
// the day when it was not today.
function clockTime(iso) {
  const d = new Date(iso), today = new Date(Date.now() + serverOffset);
  const hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return d.toDateString() === today.toDateString() ? hm : d.toLocaleDateString([], { day: "numeric", month: "short" }) + " " + hm;
}

// since is an element saying how long ago iso was, kept current by tick.
function since(iso) {
  const a = el("span", "age", age(iso));
  a.dataset.at = iso;
  return a;
}

// needsLine is the board's one line of what the patient's NEWS2 lacks,
// grouped by when each was last measured (the answers of one telephone
// call share a time), never-measured first: "needs resp rate, ACVPU (none
// yet); O₂ or air (3h ago)". Null when nothing is needed.
function needsLine(p) {
  const needs = p.needs || [];
  if (needs.length === 0) return null;
  const line = el("span", "needs");
  if (needs.length === VITALS.length) {
    // Nothing current at all: one time says it, the newest.
    const newest = needs.map(n => n.last_at || "").sort().pop();
    line.append("needs a full set (", newest ? since(newest) : "none yet", ")");
    return line;
  }
  const groups = new Map();
  for (const n of needs) {
    const at = n.last_at || "";
    if (!groups.has(at)) groups.set(at, []);
    groups.get(at).push(NEED_SHORT[n.parameter] || n.parameter);
  }
  line.append("needs ");
  [...groups.keys()].sort().forEach((at, i) => {
    if (i > 0) line.append("; ");
    line.append(groups.get(at).join(", ") + " (", at ? since(at) : "none yet", ")");
  });
  return line;
}

// vitalCell is the latest value of one parameter. A value too old to count
// in the NEWS2 is marked stale, and a parameter never measured as needed,
// with the words on hover.
function vitalCell(p, kind) {
  const td = el("td");
  const v = p.vitals && p.vitals[kind];
  const need = needOf(p, kind);
  if (!v) {
    const none = el("span", need ? "none needed" : "none", "—");
    if (need) none.title = (NEED_WORD[kind] || kind) + ": needed for a full NEWS2, none recorded";
    td.appendChild(none);
    return td;
  }
  const sub = p.news2 && p.news2.subscores ? p.news2.subscores[kind] : undefined;
  let text = v.display;
  if (kind === "supplemental_oxygen") text = v.value ? "O₂" : "air";
  else if (v.unit) text += " " + v.unit;
  const val = el("span", sub ? "sub" + sub : "", text);
  if (sub) val.title = "NEWS2 sub-score " + sub;
  td.appendChild(val);
  const when = since(v.at);
  td.appendChild(when);
  if (need) {
    // The needs line says it in words; here the value is dimmed and its age amber.
    td.classList.add("stale");
    td.title = (NEED_WORD[kind] || kind) + " is stale: measured " + clockTime(v.at) + ", too long ago to count in the NEWS2";
  }
  return td;
}

// scoreBadge is the NEWS2 number and its risk band, in words and shape.
function scoreBadge(n) {
  const s = el("span", "score");
  s.appendChild(el("span", "num", n.score));
  s.appendChild(el("span", "badge " + n.risk, RISK_WORD[n.risk] || n.risk));
  return s;
}

function scoreCell(p) {
  const td = el("td", "news2");
  const n = p.news2;
  td.appendChild(n ? scoreBadge(n) : el("span", "none", "no score"));
  // One line under the score: partial, and what would make it full.
  const note = el("span", "note");
  if (n && !n.complete) note.append(el("span", "partial", "partial"), " · ");
  const needs = needsLine(p);
  if (needs) note.appendChild(needs);
  if (note.childNodes.length) td.appendChild(note);
  return td;
}

const CONDITION_WORD = { news2: "NEWS2", overdue: "observations overdue", device_offline: "device offline", battery_low: "battery low", care_plan: "care plan", concern: "concern reported" };

// alertWhat names an alert for people: NEWS2 with its band, a care plan
// alert with its rule, a measurement the care plan expects by its kind,
// the others by their condition.
function alertWhat(a, risk) {
  if (a.condition === "news2") return "NEWS2 " + (RISK_WORD[risk] || risk);
  if (a.condition === "overdue" && a.rule && a.rule.startsWith("expected:")) {
    const kind = a.rule.slice("expected:".length);
    return (LABEL[kind] || kind.replace(/_/g, " ")) + " overdue (care plan)";
  }
  if (a.condition === "care_plan") return "care plan: " + a.rule + " (" + (PLAN_RISK_WORD[risk] || risk) + " risk)";
  return CONDITION_WORD[a.condition] || a.condition;
}

function stateWord(a) {
  switch (a.state) {
    case "raised": return a.tier > 0 ? "ESCALATED to " + a.tier_name : "NEW";
    case "acknowledged": return "acknowledged by " + a.acknowledged_by;
    case "shelved": return "shelved until " + new Date(a.shelved_until).toLocaleTimeString();
    case "cleared": return "back to normal — not acknowledged";
    default: return a.state;
  }
}

function actionButton(label, cls, onClick) {
  const b = el("button", "act " + cls, label);
  b.type = "button";
  b.addEventListener("click", (ev) => { ev.stopPropagation(); onClick(); });
  b.addEventListener("keydown", (ev) => ev.stopPropagation());
  return b;
}

function alertCell(p) {
  const td = el("td", "alerts");
  for (const a of alertsOf(p.patient)) {
    const box = el("div", "alert " + a.queue + " st-" + a.state + (a.tier > 0 ? " escalated" : ""));
    box.dataset.alert = a.id;
    const what = alertWhat(a, a.risk);
    box.appendChild(el("span", "what", what));
    box.appendChild(el("span", "state", stateWord(a)));
    if (me && (me.role === "admin" || me.role === "clinician")) {
      if (a.state === "raised" || a.state === "cleared") box.appendChild(actionButton("Acknowledge", "ack", () => act(a, "ack", {})));
      if (a.queue === "clinical" && a.state !== "shelved") box.appendChild(actionButton("Shelve…", "shelve", () => openShelve(a)));
      box.appendChild(actionButton("Resolve", "resolve", () => act(a, "resolve", {})));
    }
    td.appendChild(box);
  }
  return td;
}

async function act(a, action, body) {
  const res = await api("POST", "/api/v1/alerts/" + a.id + "/" + action, body);
  const out = await res.json().catch(() => ({}));
  if (!res.ok) { flash("Could not " + action + ": " + (out.error || res.status)); return false; }
  applyAlert(out.alert || out);
  followBanner(out.alert || out);
  scheduleRender(a.patient);
  return true;
}

function flash(msg) {
  bannerAlert = 0;
  const b = $("alert-banner");
  b.textContent = msg;
  b.hidden = false;
}

let shelving = null;
function openShelve(a) {
  shelving = a;
  $("shelve-reason").value = "";
  $("shelve-error").textContent = "";
  $("shelve-dialog").showModal();
  $("shelve-reason").focus();
}

function applyAlert(a) {
  if (!a || !a.id) return;
  const cur = alerts.get(a.id);
  if (cur && cur.version > a.version) return;
  if (a.state === "resolved") alerts.delete(a.id);
  else alerts.set(a.id, a);
  if (a.condition === "channel_failing") showChannelBanner();
}

// showChannelBanner says which notification channels keep failing a ward:
// until they deliver again, an alert may reach nobody away from the board.
function showChannelBanner() {
  const failing = [...alerts.values()].filter(a => a.condition === "channel_failing");
  const b = $("channel-banner");
  b.hidden = failing.length === 0;
  b.textContent = failing.map(a => "Notifications over " + a.channel + " are failing for " + ((wardOf(a.ward) || {}).name || a.ward) +
    ": alerts may reach nobody away from the board.").join(" ");
}

async function loadAlerts() {
  const res = await api("GET", "/api/v1/alerts?state=open&limit=1000").catch(() => null);
  if (!res || !res.ok) return;
  const body = await res.json();
  for (const a of body.alerts || []) applyAlert(a);
  scheduleRender();
}

function row(p) {
  const tr = el("tr", p.news2 ? "risk-" + p.news2.risk : "");
  tr.dataset.patient = p.patient;
  tr.tabIndex = 0;
  const needs = (p.needs || []).map(n => NEED_WORD[n.parameter] || n.parameter);
  tr.setAttribute("aria-label", (p.name || p.patient) + (p.news2 ? ", NEWS2 " + p.news2.score + " " + p.news2.risk + (p.news2.complete ? "" : " partial") : ", no score") +
    (needs.length ? ", needs " + needs.join(", ") : ""));
  if (needs.length) tr.classList.add("needs-obs");
  const who = el("td");
  who.appendChild(el("span", "name", p.name || p.patient));
  const w = wardOf(p.ward);
  who.appendChild(el("span", "ward", (w ? w.name : p.ward) + (p.spo2_scale === 2 ? " · SpO₂ scale 2" : "")));
  if (p.paused) who.appendChild(el("span", "paused", " · paused: in hospital, no alerts"));
  tr.appendChild(who);
  tr.appendChild(scoreCell(p));
  const trend = el("td");
  trend.appendChild(sparkline(p.trend));
  tr.appendChild(trend);
  tr.appendChild(alertCell(p));
  for (const kind of VITALS) tr.appendChild(vitalCell(p, kind));
  const last = el("td");
  const a = el("span", "age", p.last_seen ? age(p.last_seen) : "never");
  a.dataset.at = p.last_seen || "";
  last.appendChild(a);
  tr.appendChild(last);
  return tr;
}

// Rendering is incremental so that a board of 1,000 patients stays smooth:
// only rows whose patient or alerts changed are rebuilt, and rows are moved
// only when the order changed. A snapshot or a filter change rebuilds all.
const rowOf = new Map(); // patient id → its <tr>
const dirty = new Set();
let rebuildAll = true;

function render() {
  const body = $("rows");
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.patient : null;
  if (rebuildAll) {
    rowOf.clear();
    body.replaceChildren();
  }
  const list = sorted();
  const shown = new Set(list.map(p => p.patient));
  for (const [id, tr] of rowOf) {
    if (!shown.has(id)) { tr.remove(); rowOf.delete(id); }
  }
  for (const p of list) {
    const old = rowOf.get(p.patient);
    if (old && !dirty.has(p.patient)) continue;
    const tr = row(p);
    if (old) {
      old.replaceWith(tr);
    }
    rowOf.set(p.patient, tr);
  }
  // Put rows in acuity order, touching the DOM only from the first misfit.
  let at = body.firstElementChild;
  for (const p of list) {
    const tr = rowOf.get(p.patient);
    if (tr === at) { at = at.nextElementSibling; continue; }
    body.insertBefore(tr, at);
  }
  dirty.clear();
  rebuildAll = false;
  $("empty").hidden = list.length > 0;
  if (focused && document.activeElement === document.body) {
    const again = rowOf.get(focused);
    if (again) again.focus();
  }
  const counts = { high: 0, medium: 0, "low-medium": 0, low: 0 };
  for (const p of list) if (p.news2) counts[p.news2.risk]++;
  const c = $("counts");
  c.replaceChildren(el("span", "", list.length + " patients"));
  for (const k of ["high", "medium", "low-medium", "low"]) {
    const s = el("span", "", (RISK_WORD[k] || k) + " " + counts[k]);
    s.dataset.risk = k;
    c.appendChild(s);
  }
  const needing = el("span", "", "needs obs " + list.filter(p => p.needs && p.needs.length).length);
  needing.dataset.needs = "";
  c.appendChild(needing);
  renderWards();
}

function renderWards() {
  const box = $("wards");
  box.replaceChildren();
  for (const w of wards) {
    const n = [...patients.values()].filter(p => p.ward === w.id).length;
    const s = el("span");
    s.appendChild(document.createTextNode(w.name + ": "));
    const occ = el("span", "occ" + (w.capacity && n >= w.capacity ? " full" : ""), w.capacity ? n + " / " + w.capacity + " beds" : n + " patients");
    s.appendChild(occ);
    box.appendChild(s);
  }
}

function fillFilters() {
  const fw = $("filter-ward"), fp = $("filter-pathway");
  const keepW = fw.value, keepP = fp.value;
  fw.replaceChildren(new Option("all wards", ""));
  for (const w of wards) fw.appendChild(new Option(w.name, w.id));
  fp.replaceChildren(new Option("all pathways", ""));
  for (const p of [...new Set(wards.map(w => w.pathway).filter(Boolean))].sort()) fp.appendChild(new Option(p, p));
  fw.value = keepW; fp.value = keepP;
}

let renderQueued = false;
// scheduleRender redraws at the next frame: the rows of the patients named,
// or every row when none is named.
function scheduleRender(...ids) {
  if (ids.length === 0) rebuildAll = true;
  for (const id of ids) dirty.add(id);
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; render(); });
}

// --- Cues for a patient newly at high risk ---------------------------------------

let audio = null;
function beep() {
  if (muted) return;
  try {
    audio = audio || new AudioContext();
    const o = audio.createOscillator(), g = audio.createGain();
    o.frequency.value = 880;
    g.gain.setValueAtTime(0.2, audio.currentTime);
    g.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.6);
    o.connect(g); g.connect(audio.destination);
    o.start(); o.stop(audio.currentTime + 0.6);
  } catch (e) { /* no audio device: the banner still shows */ }
}

// cue makes a paging high-risk alert impossible to miss: a banner in words,
// a flash of the row, and a sound unless this browser muted it. The banner's words come from the alert
// alone (its score, band and state, and the RCP response to that band),
// never from the patient's row, which may not have caught up yet; it
// follows the alert as it is acknowledged, upgraded or resolved.
let bannerAlert = 0;
function cue(ev) {
  const a = ev.alert;
  if (!ev.page || a.risk !== "high" || a.queue !== "clinical") return;
  bannerAlert = a.id;
  showBanner(a);
  beep();
  setTimeout(() => {
    const tr = document.querySelector(`tr[data-patient="${CSS.escape(a.patient)}"]`);
    if (tr) tr.classList.add("flash");
  }, 50);
}

// The RCP's clinical response to each band an alert can be raised in
// (news2.Result.Response): a high band is an aggregate of 7 or more.
const RESPONSE = {
  high: "Emergency response: registered nurse to inform the medical team caring for the patient immediately, at least at specialist registrar level; " +
    "emergency assessment by a team with critical care competencies, including advanced airway management skills; " +
    "consider transfer to a level 2 or 3 care facility (HDU or ICU); care in an environment with monitoring facilities.",
};
const STATE_WORDS = {
  raised: "raised, not acknowledged", acknowledged: "acknowledged", shelved: "shelved",
  cleared: "cleared", resolved: "resolved",
};

// bannerText is the banner's words for alert a of patient p (for the name).
function bannerText(a, p) {
  let state = STATE_WORDS[a.state] || a.state;
  if (a.state === "acknowledged" && a.acknowledged_by) state += " by " + a.acknowledged_by;
  return "HIGH risk: " + (p.name || a.patient) + " — NEWS2 " + a.score + " (" + state + "). " + (a.state === "resolved" ? "" : RESPONSE.high);
}

function showBanner(a) {
  const b = $("alert-banner");
  b.textContent = bannerText(a, patients.get(a.patient) || {});
  b.hidden = false;
}

// followBanner keeps the banner's words with its alert's newest state.
function followBanner(a) {
  if (!a || a.id !== bannerAlert) return;
  if (a.risk !== "high") { bannerAlert = 0; $("alert-banner").hidden = true; return; }
  if (!$("alert-banner").hidden) showBanner(a);
}

function setMuted(m) {
  muted = m;
  localStorage.setItem("vward-muted", m ? "1" : "0");
  $("mute").setAttribute("aria-pressed", m ? "true" : "false");
  $("mute").textContent = m ? "Sound off" : "Sound on";
}

// --- Patient view -----------------------------------------------------------------

function showPatient(id) {
  const p = patients.get(id);
  $("main").hidden = true;
  $("patient-view").hidden = false;
  $("pv-name").textContent = p ? (p.name || p.patient) : id;
  $("pv-meta").textContent = p ? (wardOf(p.ward) || { name: p.ward }).name + " · SpO₂ scale " + p.spo2_scale +
    (p.paused ? " · monitoring paused (in hospital): no alerts are raised" : "") : "";
  showScore(p);
  const mayEnter = me && me.role !== "viewer";
  $("obs-form").hidden = !mayEnter;
  $("note-form").hidden = !mayEnter;
  $("note-result").textContent = "";
  // At 3 a.m. the first thing a clinician does here is enter a round.
  if (mayEnter) { resetObsForm(); resetNoteForm(); $("obs-respiratory_rate").focus(); } else $("pv-back").focus();
  $("tl-items").replaceChildren();
  showCarePlan(id);
  showTimeline(id);
  Charts.open(id); // charts.js
}

// showScore shows the patient's NEWS2 now, and what it needs to be full,
// again whenever their row changes while the view is open.
function showScore(p) {
  const score = $("pv-score");
  score.replaceChildren();
  if (p && p.news2) {
    const s = scoreBadge(p.news2);
    s.appendChild(el("span", "", " · monitoring " + p.news2.monitoring));
    score.appendChild(s);
    if (!p.news2.complete) score.appendChild(el("span", "partial", "partial: the least the full NEWS2 could be"));
  } else {
    score.appendChild(el("p", "none", "no score yet"));
  }
  const todo = toComplete(p);
  if (todo) score.appendChild(todo);
  if (p && p.news2) {
    score.appendChild(el("p", "", p.news2.response));
  }
  if (p) Charts.changed(p.patient); // charts.js: redrawn with the new readings
}

// toComplete is the patient view's line of each parameter a full NEWS2
// still needs, with when it was last measured: "To complete NEWS2:
// respiratory rate (none recorded), ACVPU (last 3h ago, 11:02)".
function toComplete(p) {
  const needs = (p && p.needs) || [];
  if (needs.length === 0) return null;
  const line = el("p", "to-complete");
  line.appendChild(el("strong", "", "To complete NEWS2: "));
  needs.forEach((n, i) => {
    if (i > 0) line.append(", ");
    const item = el("span", "need");
    item.dataset.parameter = n.parameter;
    item.append(NEED_WORD[n.parameter] || n.parameter, " (");
    if (n.last_at) item.append("last ", since(n.last_at), ", " + clockTime(n.last_at) + ")");
    else item.append("none recorded)");
    line.appendChild(item);
  });
  return line;
}

function viewing(id) { return location.hash === "#patient/" + encodeURIComponent(id); }
function viewedPatient() {
  const m = location.hash.match(/^#patient\/(.+)$/);
  return m ? decodeURIComponent(m[1]) : "";
}

// --- Observations entered by people (docs/observations.md) ---------------------------

const OBS_FIELDS = ["respiratory_rate", "spo2", "systolic_bp", "heart_rate", "temperature"];
// Measured beside NEWS2 for care plans; they never score.
const OBS_OTHER = ["weight", "blood_glucose", "peak_flow", "pain_score"];
const SOURCE_WORD = { telephone: "telephone", home_visit: "home visit", carer: "carer", care_home_staff: "care-home staff", patient_self_report: "patient's own report" };

// localInput writes a time as a datetime-local input's value.
function localInput(d) {
  const pad = (n) => String(n).padStart(2, "0");
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
}

// resetObsForm empties the form; the time shows now and, left alone, is
// sent as "now" when the form is submitted.
function resetObsForm() {
  for (const k of OBS_FIELDS.concat(OBS_OTHER)) $("obs-" + k).value = "";
  $("obs-consciousness").value = "";
  $("obs-supplemental_oxygen").checked = false;
  $("obs-at").value = localInput(new Date(Date.now() + serverOffset));
  $("obs-at").dataset.auto = "1";
  $("obs-source").value = localStorage.getItem("vward-obs-source") || "telephone";
  $("obs-error").textContent = "";
}

async function submitObs(ev) {
  ev.preventDefault();
  const id = viewedPatient();
  if (!id) return;
  const readings = {};
  for (const k of OBS_FIELDS) {
    const v = $("obs-" + k).value.trim();
    if (v !== "") readings[k] = Number(v);
  }
  const acvpu = $("obs-consciousness").value;
  if (acvpu) readings.consciousness = acvpu;
  // A round records oxygen or air with the other six; a lone value does not.
  if (Object.keys(readings).length > 0) readings.supplemental_oxygen = $("obs-supplemental_oxygen").checked;
  for (const k of OBS_OTHER) {
    const v = $("obs-" + k).value.trim();
    if (v !== "") readings[k] = Number(v);
  }
  if (Object.keys(readings).length === 0) { $("obs-error").textContent = "Enter at least one observation."; return; }
  const body = { source: $("obs-source").value, readings };
  if ($("obs-at").dataset.auto !== "1" && $("obs-at").value) body.measured_at = new Date($("obs-at").value).toISOString();
  localStorage.setItem("vward-obs-source", body.source);
  const res = await api("POST", "/api/v1/patients/" + encodeURIComponent(id) + "/observations", body);
  const out = await res.json().catch(() => ({}));
  if (!res.ok) { $("obs-error").textContent = out.error || ("Not entered (" + res.status + ")"); return; }
  resetObsForm();
  if (out.patient) {
    const had = patients.get(id);
    if (out.patient.trend === undefined && had) out.patient.trend = had.trend;
    patients.set(id, out.patient);
    scheduleRender(id);
    showScore(out.patient);
  }
  const n = out.patient && out.patient.news2;
  $("obs-result").textContent = out.entry.id + " entered" + (n ? ": NEWS2 " + n.score + (n.complete ? "" : " (partial)") : "") +
    (out.entry.note ? " — " + out.entry.note : "");
  showTimeline(id);
  $("obs-respiratory_rate").focus();
}

// --- One timeline: entered observations, notes and contacts, alert events --------------

const NOTE_KIND_WORD = { phone_call: "Phone call", visit: "Visit", mdt_review: "MDT review", message_left: "Message left", no_answer: "No answer", note: "Note", addendum: "Addendum" };
const ACTION_WORD = {
  raised: "raised", upgraded: "upgraded", reraised: "raised again", escalated: "ESCALATED", reminded: "reminder sent",
  acknowledged: "acknowledged", shelved: "shelved", unshelved: "unshelved", cleared: "back to normal", resolved: "resolved",
};
const mayWrite = () => me && me.role !== "viewer";

// whenText writes a time for the timeline on the 24-hour clock, as charts
// are written: the time today, the day and time before.
function whenText(iso) {
  const d = new Date(iso), now = new Date(Date.now() + serverOffset);
  const hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  return d.toDateString() === now.toDateString() ? hm : d.toLocaleDateString([], { weekday: "short", day: "numeric", month: "short" }) + " " + hm;
}

function resetNoteForm() {
  $("note-text").value = "";
  $("note-at").value = localInput(new Date(Date.now() + serverOffset));
  $("note-at").dataset.auto = "1";
  $("note-error").textContent = "";
}

async function submitNote(ev) {
  ev.preventDefault();
  const id = viewedPatient();
  if (!id) return;
  const text = $("note-text").value.trim();
  if (!text) { $("note-error").textContent = "Say what happened."; $("note-text").focus(); return; }
  const body = { kind: $("note-kind").value, text };
  if ($("note-at").dataset.auto !== "1" && $("note-at").value) body.occurred_at = new Date($("note-at").value).toISOString();
  const res = await api("POST", "/api/v1/patients/" + encodeURIComponent(id) + "/notes", body);
  const out = await res.json().catch(() => ({}));
  if (!res.ok) { $("note-error").textContent = out.error || ("Not written (" + res.status + ")"); return; }
  resetNoteForm();
  $("note-result").textContent = out.note.id + " written: " + (NOTE_KIND_WORD[out.note.kind] || out.note.kind) + " at " + whenText(out.note.occurred_at);
  showTimeline(id);
}

function tlItem(cls, at, what, by) {
  const li = el("li", "tl-item " + cls);
  const t = el("time", "tl-when", whenText(at));
  t.dateTime = at;
  t.title = new Date(at).toLocaleString();
  li.appendChild(t);
  const body = el("div", "tl-body");
  const head = el("div", "tl-head");
  head.appendChild(el("span", "tl-what", what));
  head.appendChild(el("span", "tl-by", "by " + by));
  body.appendChild(head);
  li.appendChild(body);
  return [li, body];
}

function observationItem(id, it) {
  const e = it.observation;
  const [li, body] = tlItem("tl-observation entry" + (e.entered_in_error ? " in-error" : ""), e.measured_at,
    "Observations · " + (SOURCE_WORD[e.source] || e.source), e.entered_by);
  li.dataset.entry = e.id;
  const vals = Object.entries(e.readings).map(([k, v]) => k === "fall_event" ? "Fall" : (LABEL[k] || k) + " " + (v === true ? "on" : v === false ? "air" : v));
  body.appendChild(el("span", "values", vals.join(", ")));
  if (e.entered_in_error) {
    body.appendChild(el("p", "meta", "Entered in error by " + e.entered_in_error.by + ": " + e.entered_in_error.reason));
  } else if (mayWrite()) {
    const row = el("div", "tl-actions");
    const reason = el("input");
    reason.placeholder = "why it is wrong";
    reason.dataset.keep = "error-" + e.id;
    reason.setAttribute("aria-label", "Reason " + e.id + " was entered in error");
    row.appendChild(reason);
    row.appendChild(actionButton("Entered in error", "error", async () => {
      const why = reason.value;
      if (!why.trim()) { reason.focus(); flash("Say why " + e.id + " was entered in error."); return; }
      reason.value = ""; // before the call: a redraw meanwhile must not bring it back
      const r = await api("POST", "/api/v1/observations/" + encodeURIComponent(e.id) + "/entered-in-error", { reason: why });
      const out = await r.json().catch(() => ({}));
      if (!r.ok) { restore(reason, why); flash("Could not mark " + e.id + ": " + (out.error || r.status)); return; }
      if (out.patient) { patients.set(id, Object.assign({ trend: (patients.get(id) || {}).trend }, out.patient)); scheduleRender(id); showScore(patients.get(id)); }
      showTimeline(id);
    }));
    body.appendChild(row);
  }
  if (!e.current && !e.entered_in_error && e.note) body.appendChild(el("p", "meta", e.note));
  return li;
}

function noteItem(id, it) {
  const n = it.note;
  const [li, body] = tlItem("tl-note kind-" + n.kind, n.occurred_at, NOTE_KIND_WORD[n.kind] || n.kind, n.author);
  li.dataset.note = n.id;
  body.appendChild(el("p", "tl-text", n.text));
  if (n.addenda && n.addenda.length) {
    const ol = el("ol", "addenda");
    for (const a of n.addenda) {
      const ali = el("li", "addendum");
      ali.dataset.note = a.id;
      ali.appendChild(el("span", "tl-what", "Addendum " + whenText(a.occurred_at)));
      ali.appendChild(el("span", "tl-by", "by " + a.author));
      ali.appendChild(el("p", "tl-text", a.text));
      ol.appendChild(ali);
    }
    body.appendChild(ol);
  }
  if (mayWrite()) {
    const form = el("div", "addendum-form");
    form.hidden = true;
    const text = el("textarea");
    text.rows = 2;
    text.maxLength = 4000;
    text.dataset.keep = "addendum-" + n.id;
    text.placeholder = "the correction or addition; the note itself stays as written";
    text.setAttribute("aria-label", "Addendum to " + n.id);
    form.appendChild(text);
    const save = async () => {
      const words = text.value;
      if (!words.trim()) { text.focus(); return; }
      text.value = "";
      const r = await api("POST", "/api/v1/notes/" + encodeURIComponent(n.id) + "/addenda", { text: words });
      const out = await r.json().catch(() => ({}));
      if (!r.ok) { restore(text, words); flash("Could not add the addendum to " + n.id + ": " + (out.error || r.status)); return; }
      showTimeline(id);
    };
    text.addEventListener("keydown", (ev) => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); save(); } });
    form.appendChild(actionButton("Save addendum", "save-addendum", save));
    const open = actionButton("Addendum", "addendum", () => { form.hidden = false; open.hidden = true; text.focus(); });
    body.appendChild(open);
    body.appendChild(form);
  }
  return li;
}

// alertItem shows one change of an alert. The newest change of an open
// alert carries its actions, so they stay where the clinician reads.
function alertItem(it, newest) {
  const a = it.alert, e = it.event;
  const what = alertWhat(a, e.risk);
  const [li, body] = tlItem("tl-alert " + a.queue + " act-" + e.action, e.at, what + " — " + (ACTION_WORD[e.action] || e.action), e.actor);
  li.dataset.alert = a.id;
  const why = e.reason + (e.note ? " — “" + e.note + "”" : "");
  if (why) body.appendChild(el("p", "reason", why));
  if (e.action === "handover") body.appendChild(handoverRecord(a, e));
  if (newest) body.appendChild(deliveries(a));
  if (newest && a.state !== "resolved") {
    if (e.action !== a.state) body.appendChild(el("p", "meta", "Now: " + stateWord(a)));
    if (mayWrite()) {
      const row = el("div", "tl-actions");
      const note = el("input");
      note.placeholder = "note (optional)";
      note.dataset.keep = "alert-" + a.id;
      note.setAttribute("aria-label", "Note for this alert");
      row.appendChild(note);
      const withNote = (action) => async () => {
        const words = note.value;
        note.value = "";
        if (await act(a, action, { note: words })) showTimeline(a.patient);
        else restore(note, words);
      };
      if (a.state === "raised" || a.state === "cleared") row.appendChild(actionButton("Acknowledge with note", "ack", withNote("ack")));
      row.appendChild(actionButton("Resolve", "resolve", withNote("resolve")));
      if (a.queue === "clinical") row.appendChild(actionButton("Hand over…", "handover", () => openHandover(a)));
      body.appendChild(row);
    }
  }
  return li;
}

// restore puts back what was typed in a field after a refused action, in
// the field now on the page: a redraw may have replaced it meanwhile.
function restore(field, value) {
  const now = field.isConnected ? field : $("tl-items").querySelector('[data-keep="' + CSS.escape(field.dataset.keep) + '"]');
  if (!now) return;
  now.value = value;
  const form = now.closest(".addendum-form");
  if (form) { form.hidden = false; form.parentNode.querySelector("button.addendum").hidden = true; }
}

// showTimeline draws the patient's one timeline, newest first. What is
// being typed in it (a reason, an addendum) survives a redraw, which an
// alert event may cause at any moment. Only the newest call draws.
let timelineCall = 0;
async function showTimeline(id) {
  const call = ++timelineCall;
  const hours = $("tl-hours").value || "24";
  const res = await api("GET", "/api/v1/patients/" + encodeURIComponent(id) + "/timeline?hours=" + hours).catch(() => null);
  const tl = res && res.ok ? await res.json() : null;
  if (call !== timelineCall || !viewing(id)) return;
  const list = $("tl-items"), status = $("tl-status");
  if (!tl) { list.replaceChildren(); status.textContent = "The timeline is unavailable."; status.className = "warn"; return; }
  const kept = new Map();
  for (const f of list.querySelectorAll("[data-keep]")) if (f.value) kept.set(f.dataset.keep, f.value);
  const focused = document.activeElement && list.contains(document.activeElement) ? document.activeElement.dataset.keep : "";
  const words = [];
  if (tl.unavailable && tl.unavailable.length) words.push("Not shown, could not be read: " + tl.unavailable.join(", ") + ".");
  if (tl.truncated) words.push("Shown from " + whenText(tl.from) + ": there is more than the timeline holds.");
  status.textContent = words.join(" ");
  status.className = words.length ? "warn" : "";
  const items = [];
  const seen = new Set();
  for (const it of tl.items) {
    if (it.type === "observation") items.push(observationItem(id, it));
    else if (it.type === "note") items.push(noteItem(id, it));
    else if (it.type === "careplan") items.push(carePlanItem(it));
    else if (it.type === "questionnaire") items.push(questionnaireItem(it));
    else if (it.type === "alert") { items.push(alertItem(it, !seen.has(it.alert.id))); seen.add(it.alert.id); }
  }
  if (items.length === 0) items.push(el("li", "none", "Nothing in the last " + $("tl-hours").selectedOptions[0].textContent + "."));
  list.replaceChildren(...items);
  for (const f of list.querySelectorAll("[data-keep]")) if (kept.has(f.dataset.keep)) restore(f, kept.get(f.dataset.keep));
  if (focused) { const f = list.querySelector('[data-keep="' + CSS.escape(focused) + '"]'); if (f) f.focus(); }
}

// --- Care plan (docs/careplans.md) ------------------------------------------------------

// The treatment escalation plan is shown first and largest: whoever
// responds to an alert reads it before anything else. It is shown, never
// acted on: it changes nothing that raises or escalates.
const CEILING_WORD = {
  full_escalation: ["FULL ESCALATION", "every appropriate treatment, critical care included"],
  no_critical_care: ["NO CRITICAL CARE", "for admission to hospital, not intensive care"],
  no_hospital_transfer: ["NO HOSPITAL TRANSFER", "treatment where they live, not admission"],
  comfort_care: ["COMFORT CARE", "symptom control and comfort only"],
};
const PLAN_RISK_WORD = { high: "high", medium: "medium", "low-medium": "low-medium", low: "low" };

// dayText writes a date as "20 Nov 2026" whatever the browser's locale:
// a decision's or review's date must not be misread day for month.
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
function dayText(iso) {
  const d = new Date(iso);
  return d.getDate() + " " + MONTHS[d.getMonth()] + " " + d.getFullYear();
}

function escalationBox(e) {
  const box = el("div", "cp-tep");
  box.setAttribute("role", "group");
  box.setAttribute("aria-label", "Treatment escalation plan");
  if (!e) {
    box.classList.add("none");
    box.textContent = "No treatment escalation plan recorded in the care plan.";
    return box;
  }
  const [word, means] = CEILING_WORD[e.ceiling] || [e.ceiling, ""];
  const head = box.appendChild(el("p", "cp-ceiling"));
  head.dataset.ceiling = e.ceiling;
  head.append("Ceiling of care: " + word);
  if (means) head.append(" — " + means);
  box.appendChild(el("p", "cp-tep-text", e.text));
  const decided = box.appendChild(el("p", "cp-decided", "Decided by " + e.decided_by + " on " + dayText(e.decided_at)));
  if (e.review_by) {
    const due = Date.parse(e.review_by) < Date.now() + serverOffset;
    decided.append(" · ");
    decided.appendChild(el("span", due ? "cp-review-due" : "", (due ? "review was due " : "review by ") + dayText(e.review_by)));
  }
  return box;
}

// expectedStatus says when an expected measurement was last made and
// falls due, in red once overdue.
function expectedStatus(st) {
  if (!st) return null;
  const last = st.last_measured_at ? "last " + whenText(st.last_measured_at) : "none yet";
  return el("span", st.overdue ? "cp-overdue" : "cp-due", " — " + last + "; " + (st.overdue ? "OVERDUE since " : "due ") + whenText(st.due_at));
}

function carePlanBody(v, expected) {
  const p = v.plan, words = v.words || { expected: [], rules: [] };
  const out = [];
  const title = p.name + (p.template ? " (from the " + p.template.replaceAll("_", " ") + " template)" : "");
  out.push(el("p", "cp-name", title));
  out.push(el("p", "cp-meta", "Version " + v.version + " by " + v.author + ", " + whenText(v.changed_at) + ": " + v.reason));
  out.push(escalationBox(p.escalation_plan));
  if (p.note) out.push(el("p", "cp-note", p.note));
  out.push(el("h4", "", "Expected measurements"));
  const exp = el("ul", "cp-expected");
  words.expected.forEach((w, i) => {
    const li = exp.appendChild(el("li", "", w));
    const kind = (p.expected || [])[i] && p.expected[i].kind;
    const st = expectedStatus((expected || []).find(x => x.kind === kind));
    if (st) li.appendChild(st);
  });
  if (words.expected.length === 0) exp.appendChild(el("li", "none", "none beyond NEWS2's monitoring"));
  out.push(exp);
  out.push(el("h4", "", "Rules watched beside NEWS2 (they add alerts, never suppress one)"));
  const rules = el("ul", "cp-rules");
  (p.rules || []).forEach((r, i) => {
    const li = rules.appendChild(el("li", "cp-rule"));
    li.dataset.rule = r.id;
    li.appendChild(el("span", "badge " + r.risk, PLAN_RISK_WORD[r.risk] || r.risk));
    li.append(" ");
    li.appendChild(el("strong", "", r.name));
    li.appendChild(el("span", "cp-rule-when", "when " + (words.rules[i] || r.type)));
    if (r.basis) li.appendChild(el("span", "cp-basis", r.basis));
  });
  if (!p.rules || p.rules.length === 0) rules.appendChild(el("li", "none", "none"));
  out.push(rules);
  return out;
}

// questionnaireItem is a questionnaire a patient or carer answered on a
// device; red flags first, each marked, as they raised the concern.
function questionnaireItem(it) {
  const q = it.questionnaire;
  const [li, body] = tlItem("tl-questionnaire", it.at, "Questionnaire · " + q.questionnaire.replaceAll("_", " ") + " v" + q.version, it.by);
  li.dataset.questionnaire = q.msg_id;
  const word = a => a.question.replaceAll("_", " ") + ": " + (a.question.endsWith("severity") ? a.value + "/10" : a.value ? "yes" : "no");
  const flags = q.answers.filter(a => a.red_flag), rest = q.answers.filter(a => !a.red_flag);
  if (flags.length) body.appendChild(el("p", "tl-text red-flags", "Red flags: " + flags.map(word).join(", ")));
  if (rest.length) body.appendChild(el("span", "values", rest.map(word).join(", ")));
  return li;
}

// carePlanItem is a change of the care plan on the timeline.
function carePlanItem(it) {
  const c = it.care_plan;
  const what = c.ended ? "Care plan ended (version " + c.version + ")" : "Care plan version " + c.version + ": " + c.name;
  const [li, body] = tlItem("tl-careplan", it.at, what, it.by);
  li.dataset.careplan = String(c.version);
  if (c.ceiling) body.appendChild(el("p", "meta", "Ceiling of care: " + (CEILING_WORD[c.ceiling] || [c.ceiling])[0]));
  body.appendChild(el("p", "reason", "Why: " + c.reason));
  return li;
}

// showCarePlan draws the patient's current care plan; only the newest
// call draws, as for the timeline.
let carePlanCall = 0;
async function showCarePlan(id) {
  const call = ++carePlanCall;
  const body = $("cp-body"), status = $("cp-status");
  body.replaceChildren();
  status.textContent = "Loading…";
  const res = await api("GET", "/api/v1/patients/" + encodeURIComponent(id) + "/careplan").catch(() => null);
  const out = res ? await res.json().catch(() => null) : null;
  if (call !== carePlanCall || !viewing(id)) return;
  if (res && res.status === 404) { status.textContent = "No care plan: NEWS2 alone is watched."; return; }
  if (!res || !res.ok || !out) { status.textContent = "The care plan is unavailable."; status.className = "warn"; return; }
  status.textContent = "";
  status.className = "";
  body.replaceChildren(...carePlanBody(out.care_plan, out.expected));
}

// --- Handover (SBARD) ---------------------------------------------------------------

const OUTCOME_WORD = { seen_at_home: "seen at home", conveyed: "conveyed to hospital", admitted: "admitted to hospital", no_further_action: "no further action" };

Object.assign(ACTION_WORD, { handover: "handed over", handover_outcome: "outcome of the handover" });

// handoverRecord is the handover a timeline's handover event records: its
// SBARD again, and its outcome or a way to record it. The handover is
// read after the timeline is drawn; what is typed in its note is kept in
// outcomeDrafts, since an alert event may redraw the timeline meanwhile.
const outcomeDrafts = new Map();
function handoverRecord(a, e) {
  const div = el("div", "handover-record");
  fillHandover(div, a, e);
  return div;
}

async function fillHandover(div, a, e) {
  const r = await api("GET", "/api/v1/alerts/" + a.id + "/handovers").catch(() => null);
  if (!r || !r.ok) return;
  const h = ((await r.json()).handovers || []).find((h) => h.at === e.at && h.by === e.actor);
  if (!h) return;
  div.dataset.handover = h.id;
  div.appendChild(actionButton("SBARD", "sbard", () => showSBARD(h.text)));
  if (h.outcome) {
    div.appendChild(el("span", "outcome", "Outcome: " + (OUTCOME_WORD[h.outcome] || h.outcome) + ", recorded by " + h.outcome_by +
      (h.outcome_note ? " — “" + h.outcome_note + "”" : "")));
    return;
  }
  if (!mayWrite()) { div.appendChild(el("span", "outcome", "Outcome: awaiting")); return; }
  const pick = el("select");
  pick.setAttribute("aria-label", "Outcome of the handover");
  pick.appendChild(new Option("outcome…", ""));
  for (const [id, word] of Object.entries(OUTCOME_WORD)) pick.appendChild(new Option(word, id));
  const note = el("input");
  note.placeholder = "note (optional)";
  note.setAttribute("aria-label", "Note on the outcome");
  const draft = outcomeDrafts.get(h.id) || {};
  pick.value = draft.outcome || "";
  note.value = draft.note || "";
  const keep = () => outcomeDrafts.set(h.id, { outcome: pick.value, note: note.value });
  pick.addEventListener("change", keep);
  note.addEventListener("input", keep);
  const why = el("span", "error");
  why.setAttribute("role", "alert");
  div.append(pick, note, actionButton("Record outcome", "outcome", async () => {
    if (!pick.value) { why.textContent = "Choose what came of the handover first."; pick.focus(); return; }
    const res = await api("POST", "/api/v1/handovers/" + h.id + "/outcome", { outcome: pick.value, note: note.value });
    const out = await res.json().catch(() => ({}));
    if (!res.ok) { why.textContent = "Could not record the outcome: " + (out.error || res.status); return; }
    outcomeDrafts.delete(h.id);
    showTimeline(a.patient);
  }), why);
}

let handingOver = null;
function openHandover(a) {
  handingOver = a;
  const p = patients.get(a.patient);
  const what = alertWhat(a, a.risk);
  $("handover-patient").textContent = ((p && p.name) || a.patient) + " — alert " + a.id + ", " + what;
  $("handover-form").hidden = false;
  $("handover-result").hidden = true;
  $("handover-note").value = "";
  $("handover-error").textContent = "";
  $("handover-dialog").showModal();
  $("handover-destination").focus();
}

// showSBARD shows a handover's SBARD in the dialog, to copy or print.
function showSBARD(text) {
  $("handover-form").hidden = true;
  $("handover-result").hidden = false;
  $("handover-text").textContent = text;
  $("handover-copied").textContent = "";
  if (!$("handover-dialog").open) $("handover-dialog").showModal();
  $("handover-copy").focus();
}

// copySBARD copies the text; without the clipboard API (the board served
// over plain http) it selects the text for Ctrl+C.
async function copySBARD() {
  const text = $("handover-text").textContent;
  try {
    await navigator.clipboard.writeText(text);
    $("handover-copied").textContent = "Copied.";
  } catch (e) {
    const range = document.createRange();
    range.selectNodeContents($("handover-text"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    $("handover-copied").textContent = document.execCommand("copy") ? "Copied." : "Selected: press Ctrl+C to copy.";
  }
}

// deliveries is a line of who was told of an alert away from the board,
// how, and with what result (the last attempt of each notification in its
// delivery log), filled in once the log is read; empty when nobody was.
function deliveries(a) {
  const p = el("p", "deliveries");
  api("GET", "/api/v1/alerts/" + a.id + "/notifications").then((r) => (r.ok ? r.json() : null)).then((b) => {
    const last = new Map();
    for (const d of (b && b.notifications) || []) last.set(d.notification, d);
    const parts = [...last.values()].map((d) => (d.recipient || "nobody") + (d.channel ? " by " + d.channel : "") + " (tier " + d.tier + "): " +
      (d.result === "sent" ? "sent " + whenText(d.finished_at) : d.result.replace("_", " ") + (d.error ? " — " + d.error : "")) +
      (d.attempt > 1 ? ", attempt " + d.attempt : ""));
    if (parts.length) p.textContent = "Told: " + parts.join("; ");
  }).catch(() => {});
  return p;
}

function route() {
  const m = location.hash.match(/^#patient\/(.+)$/);
  if (m) { showPatient(decodeURIComponent(m[1])); return; }
  $("patient-view").hidden = true;
  if (csrfToken) $("main").hidden = false;
}

// --- Alarm burden ----------------------------------------------------------------------

// The alarm burden panel (GET /api/v1/wards/{id}/alarm-burden) reports on
// the ward chosen in the toolbar, or the user's only ward; it is fetched
// when opened and when the ward or the period changes, never streamed.
function burdenWard() {
  const chosen = $("filter-ward").value;
  if (chosen) return chosen;
  return wards.length === 1 ? wards[0].id : "";
}

function spanWords(sec) {
  const s = Math.round(sec);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min" + (s % 60 ? " " + (s % 60) + " s" : "");
  const h = Math.floor(s / 3600), m = Math.round((s % 3600) / 60);
  return h + " h" + (m ? " " + m + " min" : "");
}

function perDayWords(r) { return r === undefined || r === null ? "" : r + " per patient-day"; }

function burdenFigure(label, value, more) {
  const d = el("div", "figure");
  d.appendChild(el("span", "label", label));
  d.appendChild(el("span", "value", String(value)));
  if (more) d.appendChild(el("span", "more", more));
  return d;
}

function burdenTable(caption, head, rows) {
  const t = el("table", "burden-table");
  t.appendChild(el("caption", "", caption));
  const tr = el("tr");
  for (const h of head) { const th = el("th", "", h); th.scope = "col"; tr.appendChild(th); }
  t.appendChild(el("thead")).appendChild(tr);
  const body = t.appendChild(el("tbody"));
  for (const r of rows) {
    const row = body.appendChild(el("tr"));
    for (const c of r) row.appendChild(c instanceof Node ? c : el("td", "", String(c)));
  }
  if (!rows.length) {
    const td = el("td", "none", "none");
    td.colSpan = head.length;
    body.appendChild(el("tr")).appendChild(td);
  }
  return t;
}

function riskCell(risk) {
  const td = el("td");
  td.appendChild(el("span", "badge " + risk, RISK_WORD[risk] || risk));
  return td;
}

function renderBurden(r) {
  const box = $("burden-body");
  box.replaceChildren();
  const figs = box.appendChild(el("div", "figures"));
  figs.appendChild(burdenFigure("Alerts raised", r.alerts, perDayWords(r.per_patient_day) || "no rate: under 1 patient-day"));
  figs.appendChild(burdenFigure("Patient-days", r.patient_days, r.patients + (r.patients === 1 ? " patient" : " patients") + (r.paused_days ? " · " + r.paused_days + " paused days apart" : "")));
  for (const q of r.by_queue) figs.appendChild(burdenFigure(q.queue === "clinical" ? "Clinical" : "Technical", q.alerts, perDayWords(q.per_patient_day)));
  figs.appendChild(burdenFigure("Cleared unacknowledged", r.cleared_unacknowledged, "returned to normal before anyone acknowledged"));
  for (const e of r.escalations) figs.appendChild(burdenFigure("Escalated to tier " + e.tier, e.alerts, e.tier_name));
  figs.appendChild(burdenFigure("Reminders", r.reminders, r.upgrades + " upgrades · " + r.reraised + " re-raised"));
  figs.appendChild(burdenFigure("Shelved", r.shelves.count, spanWords(r.shelves.shelved_seconds) + " in all"));

  const grid = box.appendChild(el("div", "burden-grid"));
  grid.appendChild(burdenTable("Alerts by condition", ["Condition", "Alerts", "Per patient-day", "Cleared unacknowledged"],
    r.by_condition.map(c => [CONDITION_WORD[c.condition] || c.condition, c.alerts, c.per_patient_day ?? "–", c.cleared_unacknowledged])));
  grid.appendChild(burdenTable("NEWS2 alerts by risk when raised", ["Risk", "Alerts", "Per patient-day"],
    r.news2_by_risk.map(c => [riskCell(c.risk), c.alerts, c.per_patient_day ?? "–"])));
  grid.appendChild(burdenTable("Time to acknowledge", ["Risk", "Acknowledged", "Median", "90th percentile", "Longest"],
    r.time_to_acknowledge.map(t => [riskCell(t.risk), t.count, spanWords(t.median_seconds), spanWords(t.p90_seconds), spanWords(t.max_seconds)])));
  const reasons = r.shelves.reasons.map(s => [s.reason, s.count, spanWords(s.shelved_seconds)]);
  if (r.shelves.other_shelves) reasons.push(["other reasons", r.shelves.other_shelves, ""]);
  grid.appendChild(burdenTable("Shelve reasons", ["Reason", "Shelves", "Shelved for"], reasons));
  grid.appendChild(burdenTable("Patients who raised most", ["Patient", "Alerts", "By condition", "Patient-days"],
    r.top_patients.map(p => {
      const td = el("td");
      const a = td.appendChild(el("a", "", p.name || p.patient));
      a.href = "#patient/" + encodeURIComponent(p.patient);
      const by = Object.entries(p.by_condition).map(([c, n]) => (CONDITION_WORD[c] || c) + " " + n).join(", ");
      return [td, p.alerts, by, p.patient_days];
    })));
}

let burdenCall = 0;
async function showBurden() {
  const box = $("burden");
  if (box.hidden) return;
  const id = burdenWard(), call = ++burdenCall;
  const w = wardOf(id);
  $("burden-ward").textContent = id ? "— " + (w ? w.name : id) : "";
  $("burden-body").replaceChildren();
  if (!id) { $("burden-status").textContent = "Choose a ward above to see its alarm burden."; return; }
  $("burden-status").textContent = "Loading…";
  try {
    const res = await api("GET", "/api/v1/wards/" + encodeURIComponent(id) + "/alarm-burden?days=" + $("burden-days").value);
    const body = await res.json().catch(() => ({}));
    if (call !== burdenCall) return;
    if (!res.ok) { $("burden-status").textContent = body.error || "The report is unavailable: " + res.status; return; }
    const since = new Date(body.from).toLocaleDateString();
    $("burden-status").textContent = "Since " + since + ", as of " + new Date(body.at).toLocaleTimeString() + ".";
    renderBurden(body);
  } catch (e) {
    if (call === burdenCall) $("burden-status").textContent = "The report is unavailable.";
  }
}

function toggleBurden(open) {
  $("burden").hidden = !open;
  $("burden-open").setAttribute("aria-expanded", String(open));
  if (open) showBurden();
}

$("burden-open").addEventListener("click", () => toggleBurden($("burden").hidden));
$("burden-close").addEventListener("click", () => { toggleBurden(false); $("burden-open").focus(); });
$("burden-days").addEventListener("change", showBurden);
$("filter-ward").addEventListener("change", showBurden);

// --- Session and stream -------------------------------------------------------------

// api calls the REST API with the session cookie and, for changes, the
// CSRF token. A 401 means the session ended: back to the sign-in form.
async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken;
  const res = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined, credentials: "same-origin" });
  if (res.status === 401 && path !== "/api/v1/login") { showLogin(); throw new Error("signed out"); }
  return res;
}

function setConn(up, text) {
  const c = $("conn");
  c.className = "conn " + (up ? "up" : "down");
  c.textContent = text;
}

// pollStatus shows what vward says of itself (GET /api/v1/status): a
// banner while the history is delayed or readings wait at the broker.
const statusEvery = 10000;
let statusTimer = null;
async function pollStatus() {
  clearTimeout(statusTimer);
  if (!csrfToken) return;
  try {
    const res = await api("GET", "/api/v1/status");
    if (res.ok) showStatus(await res.json());
  } catch (e) { /* signed out, or vward unreachable: the conn badge says so */ }
  statusTimer = setTimeout(pollStatus, statusEvery);
}

function showStatus(st) {
  const b = $("system-banner");
  b.hidden = !st.message;
  b.textContent = st.message || "";
  b.className = "system-banner " + (st.history || "ok");
}

function showLogin() {
  if (socket) { socket.onclose = null; socket.close(); socket = null; }
  csrfToken = "";
  $("login").hidden = false;
  $("main").hidden = true;
  $("patient-view").hidden = true;
  $("who").hidden = true;
  setConn(false, "signed out");
  $("login-username").focus();
}

function signedIn(s) {
  csrfToken = s.csrf_token;
  me = s.user;
  $("username").textContent = s.user.username + " (" + s.user.role + ")";
  $("who").hidden = false;
  $("login").hidden = true;
  route();
  connect();
  pollStatus();
}

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(proto + "//" + location.host + "/api/v1/stream");
  socket = ws;
  ws.onopen = () => { backoff = 500; };
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.type === "snapshot") {
      serverOffset = Date.parse(m.server_time) - Date.now();
      wards = m.wards || [];
      fillFilters();
      patients.clear();
      alerts.clear();
      showChannelBanner();
      for (const p of m.patients) patients.set(p.patient, p);
      $("storage").textContent = "Readings: " + m.storage;
      $("storage").className = "storage" + (m.storage.startsWith("in memory") ? " warn" : "");
      setConn(true, "live");
      pollStatus();
      scheduleRender();
      loadAlerts();
      if (viewedPatient()) showScore(patients.get(viewedPatient()));
    } else if (m.type === "patient") {
      // An update carries the NEWS2 trend only when it changed: keep ours.
      const had = patients.get(m.patient.patient);
      if (m.patient.trend === undefined && had) m.patient.trend = had.trend;
      patients.set(m.patient.patient, m.patient);
      scheduleRender(m.patient.patient);
      if (viewing(m.patient.patient)) showScore(m.patient);
    } else if (m.type === "discharged") {
      patients.delete(m.patient.patient);
      scheduleRender(m.patient.patient);
    } else if (m.type === "alert") {
      applyAlert(m.alert);
      followBanner(m.alert);
      cue(m);
      scheduleRender(m.alert.patient);
      if (location.hash === "#patient/" + encodeURIComponent(m.alert.patient)) showTimeline(m.alert.patient);
    }
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    setConn(false, "stale — reconnecting");
    // A refused upgrade looks like a close: check the session before retrying.
    setTimeout(async () => {
      const res = await fetch("/api/v1/me", { credentials: "same-origin" }).catch(() => null);
      if (res && res.status === 401) { showLogin(); return; }
      connect();
    }, backoff);
    backoff = Math.min(backoff * 2, 10000);
  };
  ws.onerror = () => ws.close();
}

// --- Wiring -----------------------------------------------------------------------------

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  const res = await api("POST", "/api/v1/login", { username: $("login-username").value, password: $("login-password").value });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) { $("login-error").textContent = body.error || "Sign-in failed"; return; }
  $("login-password").value = "";
  signedIn(body);
});
$("logout").addEventListener("click", async () => {
  await api("POST", "/api/v1/logout").catch(() => {});
  showLogin();
});
$("mute").addEventListener("click", () => setMuted(!muted));
$("shelve-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!shelving) return;
  const reason = $("shelve-reason").value.trim();
  if (!reason) { $("shelve-error").textContent = "Say why the alert is shelved."; return; }
  if (await act(shelving, "shelve", { minutes: Number($("shelve-minutes").value), reason })) $("shelve-dialog").close();
});
$("shelve-cancel").addEventListener("click", () => $("shelve-dialog").close());
$("handover-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!handingOver) return;
  const a = handingOver;
  const res = await api("POST", "/api/v1/alerts/" + a.id + "/handover", { destination: $("handover-destination").value, note: $("handover-note").value });
  const out = await res.json().catch(() => ({}));
  if (!res.ok) { $("handover-error").textContent = out.error || "Could not hand over: " + res.status; return; }
  showSBARD(out.text);
  showTimeline(a.patient);
});
$("handover-cancel").addEventListener("click", () => $("handover-dialog").close());
$("handover-close").addEventListener("click", () => $("handover-dialog").close());
$("handover-copy").addEventListener("click", copySBARD);
$("handover-print").addEventListener("click", () => window.print());
// Escape closes the dialog, not the patient view behind it.
$("handover-dialog").addEventListener("keydown", (ev) => ev.stopPropagation());
$("filter-ward").addEventListener("change", () => { rebuildAll = true; render(); });
$("filter-pathway").addEventListener("change", () => { rebuildAll = true; render(); });
$("filter-needs").addEventListener("change", () => { rebuildAll = true; render(); });
$("alert-banner").addEventListener("click", () => { $("alert-banner").hidden = true; });
$("rows").addEventListener("click", (ev) => {
  const tr = ev.target.closest("tr[data-patient]");
  if (tr) location.hash = "patient/" + encodeURIComponent(tr.dataset.patient);
});
// Keyboard: arrows move between patients, Enter opens one, Escape returns.
$("rows").addEventListener("keydown", (ev) => {
  const tr = ev.target.closest("tr[data-patient]");
  if (!tr) return;
  if (ev.key === "Enter") location.hash = "patient/" + encodeURIComponent(tr.dataset.patient);
  else if (ev.key === "ArrowDown" && tr.nextElementSibling) { tr.nextElementSibling.focus(); ev.preventDefault(); }
  else if (ev.key === "ArrowUp" && tr.previousElementSibling) { tr.previousElementSibling.focus(); ev.preventDefault(); }
});
$("pv-back").addEventListener("click", () => { location.hash = ""; });
$("obs-form").addEventListener("submit", submitObs);
$("obs-at").addEventListener("input", () => { $("obs-at").dataset.auto = ""; });
$("note-form").addEventListener("submit", submitNote);
$("note-at").addEventListener("input", () => { $("note-at").dataset.auto = ""; });
// Enter writes a new line in a note; Ctrl+Enter adds it to the log.
$("note-text").addEventListener("keydown", (ev) => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) $("note-form").requestSubmit(); });
$("tl-hours").addEventListener("change", () => { if (viewedPatient()) showTimeline(viewedPatient()); });
document.addEventListener("keydown", (ev) => { if (ev.key === "Escape" && location.hash) location.hash = ""; });
window.addEventListener("hashchange", route);

function tick() {
  $("clock").textContent = new Date().toLocaleTimeString();
  for (const a of document.querySelectorAll(".age[data-at]")) {
    if (a.dataset.at) a.textContent = age(a.dataset.at);
  }
}

setMuted(muted);
setInterval(tick, 1000);
tick();
fetch("/api/v1/me", { credentials: "same-origin" })
  .then(async (res) => { if (res.ok) signedIn(await res.json()); else showLogin(); })
  .catch(showLogin);
