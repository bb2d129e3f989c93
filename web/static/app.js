// The board: a snapshot on connect, then one message per changed patient.
// It reconnects by itself and says "stale" when the stream is down, so it
// can never freeze silently. The message protocol is in docs/websocket.md.
"use strict";

const VITALS = [
  ["respiratory_rate", "respiratory_rate"],
  ["spo2", "spo2"],
  ["supplemental_oxygen", "supplemental_oxygen"],
  ["systolic_bp", "systolic_bp"],
  ["heart_rate", "heart_rate"],
  ["consciousness", "consciousness"],
  ["temperature", "temperature"],
];
const RISK_RANK = { high: 3, medium: 2, "low-medium": 1, low: 0 };
const RISK_WORD = { high: "HIGH", medium: "MEDIUM", "low-medium": "RED SCORE", low: "LOW" };

const patients = new Map();
let serverOffset = 0;
let connected = false;
let lastMessage = 0;

function $(id) { return document.getElementById(id); }

function age(iso) {
  if (!iso) return "";
  const s = Math.max(0, (Date.now() + serverOffset - Date.parse(iso)) / 1000);
  if (s < 60) return Math.round(s) + "s ago";
  if (s < 3600) return Math.round(s / 60) + "m ago";
  if (s < 86400) return Math.round(s / 3600) + "h ago";
  return Math.round(s / 86400) + "d ago";
}

function rank(p) {
  const n = p.news2;
  if (!n) return [-1, -1];
  return [RISK_RANK[n.risk] ?? -1, n.score];
}

function sorted() {
  return [...patients.values()].sort((a, b) => {
    const [ra, sa] = rank(a), [rb, sb] = rank(b);
    if (ra !== rb) return rb - ra;
    if (sa !== sb) return sb - sa;
    return (a.name || a.patient).localeCompare(b.name || b.patient);
  });
}

function cell(p, kind) {
  const td = document.createElement("td");
  const v = p.vitals && p.vitals[kind];
  if (!v) { td.innerHTML = '<span class="none">—</span>'; return td; }
  const sub = p.news2 && p.news2.subscores ? p.news2.subscores[kind] : undefined;
  const val = document.createElement("span");
  let text = v.display;
  if (kind === "supplemental_oxygen") text = v.value ? "O₂" : "air";
  val.textContent = text + (v.unit && kind !== "supplemental_oxygen" ? " " + v.unit : "");
  if (sub) { val.className = "sub" + sub; val.title = "NEWS2 sub-score " + sub; }
  td.appendChild(val);
  const a = document.createElement("span");
  a.className = "age";
  a.dataset.at = v.at;
  a.textContent = age(v.at);
  td.appendChild(a);
  return td;
}

function row(p) {
  const tr = document.createElement("tr");
  tr.dataset.patient = p.patient;
  const n = p.news2;
  if (n) tr.className = "risk-" + n.risk;
  const who = document.createElement("td");
  who.innerHTML = '<span class="name"></span><span class="ward"></span>';
  who.querySelector(".name").textContent = p.name || p.patient;
  who.querySelector(".ward").textContent = " " + p.ward + (p.spo2_scale === 2 ? " · SpO₂ scale 2" : "");
  tr.appendChild(who);
  const score = document.createElement("td");
  if (n) {
    const s = document.createElement("span");
    s.className = "score";
    s.innerHTML = '<span class="num"></span><span class="badge"></span>';
    s.querySelector(".num").textContent = n.score;
    const b = s.querySelector(".badge");
    b.classList.add(n.risk);
    b.textContent = RISK_WORD[n.risk] || n.risk;
    score.appendChild(s);
    if (!n.complete) {
      const part = document.createElement("span");
      part.className = "partial";
      part.textContent = "partial — missing " + n.missing.map(m => m.replace(/_/g, " ")).join(", ");
      score.appendChild(part);
    }
  } else {
    score.innerHTML = '<span class="none">no score</span>';
  }
  tr.appendChild(score);
  for (const [kind] of VITALS) tr.appendChild(cell(p, kind));
  const last = document.createElement("td");
  last.innerHTML = '<span class="age"></span>';
  last.firstChild.dataset.at = p.last_seen || "";
  last.firstChild.textContent = p.last_seen ? age(p.last_seen) : "never";
  tr.appendChild(last);
  return tr;
}

function render() {
  const body = $("rows");
  const frag = document.createDocumentFragment();
  const list = sorted();
  for (const p of list) frag.appendChild(row(p));
  body.replaceChildren(frag);
  $("empty").hidden = list.length > 0;
  const counts = { high: 0, medium: 0, "low-medium": 0, low: 0 };
  for (const p of list) if (p.news2) counts[p.news2.risk]++;
  $("counts").innerHTML = "";
  for (const k of ["high", "medium", "low-medium", "low"]) {
    const s = document.createElement("span");
    s.textContent = (RISK_WORD[k] || k) + " " + counts[k];
    s.dataset.risk = k;
    $("counts").appendChild(s);
  }
  $("counts").insertAdjacentHTML("afterbegin", "<span>" + list.length + " patients</span>");
}

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; render(); });
}

function setConn(up, text) {
  connected = up;
  const c = $("conn");
  c.className = "conn " + (up ? "up" : "down");
  c.textContent = text;
}

let backoff = 500;
let csrfToken = "";
let socket = null;

// api calls the REST API with the session cookie and, for changes, the
// CSRF token. A 401 means the session ended: back to the sign-in form.
async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken;
  const res = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined, credentials: "same-origin" });
  if (res.status === 401 && path !== "/api/v1/login") { showLogin(); throw new Error("signed out"); }
  return res;
}

function showLogin() {
  if (socket) { socket.onclose = null; socket.close(); socket = null; }
  $("login").hidden = false;
  $("main").hidden = true;
  $("who").hidden = true;
  setConn(false, "signed out");
  $("login-username").focus();
}

function signedIn(s) {
  csrfToken = s.csrf_token;
  $("username").textContent = s.user.username + " (" + s.user.role + ")";
  $("who").hidden = false;
  $("login").hidden = true;
  $("main").hidden = false;
  connect();
}

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

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(proto + "//" + location.host + "/api/v1/stream");
  socket = ws;
  ws.onopen = () => { backoff = 500; };
  ws.onmessage = (ev) => {
    lastMessage = Date.now();
    const m = JSON.parse(ev.data);
    if (m.type === "snapshot") {
      serverOffset = Date.parse(m.server_time) - Date.now();
      patients.clear();
      for (const p of m.patients) patients.set(p.patient, p);
      const st = $("storage");
      st.textContent = "Readings: " + m.storage;
      st.className = "storage" + (m.storage.startsWith("in memory") ? " warn" : "");
      setConn(true, "live");
      scheduleRender();
    } else if (m.type === "patient") {
      patients.set(m.patient.patient, m.patient);
      scheduleRender();
    }
  };
  ws.onclose = () => {
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

function tick() {
  $("clock").textContent = new Date().toLocaleTimeString();
  for (const a of document.querySelectorAll(".age[data-at]")) {
    if (a.dataset.at) a.textContent = age(a.dataset.at);
  }
}

setInterval(tick, 1000);
tick();
render();
fetch("/api/v1/me", { credentials: "same-origin" })
  .then(async (res) => { if (res.ok) signedIn(await res.json()); else showLogin(); })
  .catch(showLogin);
