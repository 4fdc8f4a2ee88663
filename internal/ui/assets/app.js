"use strict";
// wren ui: a jobs list and a job page, polling the JSON API once a second
// (conditional requests: an unchanged answer costs a 304).

const app = document.getElementById("app");
const live = document.getElementById("live");
const etags = new Map();
const cache = new Map();

async function getJSON(url) {
  const headers = {};
  if (etags.has(url)) headers["If-None-Match"] = etags.get(url);
  const r = await fetch(url, { headers, cache: "no-store" });
  if (r.status === 304) return { data: cache.get(url), changed: false };
  if (!r.ok) throw new Error(url + ": " + r.status + " " + (await r.text()));
  const data = await r.json();
  etags.set(url, r.headers.get("ETag"));
  cache.set(url, data);
  return { data, changed: true };
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}

function dur(ms) {
  if (ms < 1000) return ms.toFixed(ms < 10 ? 1 : 0) + " ms";
  if (ms < 120000) return (ms / 1000).toFixed(2) + " s";
  return (ms / 60000).toFixed(1) + " min";
}

function stateBadge(s) { return el("span", { class: "state " + s, text: s }); }

function progress(done, failed, calls) {
  const bar = el("div", { class: "bar", title: done + " of " + calls + " done" });
  const f = calls ? (done - failed) / calls : 0, g = calls ? failed / calls : 0;
  const ok = el("div"); ok.style.width = (100 * f) + "%"; ok.style.display = "inline-block";
  const bad = el("div", { class: "failed" }); bad.style.width = (100 * g) + "%"; bad.style.display = "inline-block";
  bar.append(ok, bad);
  return bar;
}

// --- Jobs ---------------------------------------------------------------

let filters = { state: "", task: "" };

async function jobsPage() {
  document.getElementById("where").textContent = "jobs";
  const q = new URLSearchParams(filters).toString();
  const { data, changed } = await getJSON("/api/jobs?" + q);
  if (!changed && app.dataset.page === "jobs") return;
  app.dataset.page = "jobs";
  const stateSel = el("select", { id: "state" });
  for (const s of ["", "running", "done", "failed", "orphaned"]) stateSel.append(el("option", { value: s, text: s || "any state" }));
  stateSel.value = filters.state;
  stateSel.onchange = () => { filters.state = stateSel.value; tick(); };
  const task = el("input", { id: "task", placeholder: "task contains…", value: filters.task });
  task.onchange = () => { filters.task = task.value; tick(); };
  const table = el("table", { id: "jobs" },
    el("tr", {}, ...["job", "task", "state", "progress", "calls", "done", "failed", "wall", "cost", "created"].map(h => el("th", { text: h }))));
  for (const j of data.jobs) {
    table.append(el("tr", { "data-job": j.id },
      el("td", {}, el("a", { href: "/job/" + j.id, text: j.id })),
      el("td", { text: j.task }), el("td", {}, stateBadge(j.state)),
      el("td", {}, progress(j.done, j.failed, j.calls)),
      el("td", { class: "num", text: j.calls }), el("td", { class: "num", text: j.done }),
      el("td", { class: "num", text: j.failed }), el("td", { class: "num", text: j.wall_ms ? dur(j.wall_ms) : "" }),
      el("td", { class: "num", text: j.usd ? "$" + j.usd.toFixed(4) : "" }),
      el("td", { text: new Date(j.created).toLocaleString() })));
  }
  const focus = document.activeElement && document.activeElement.id;
  app.replaceChildren(el("div", { class: "filters" }, stateSel, task),
    table, el("p", { class: "muted", text: data.total + " jobs" + (data.total > data.jobs.length ? " (newest " + data.jobs.length + " shown)" : "") }));
  if (focus) { const f = document.getElementById(focus); if (f) f.focus(); }
}

// --- A job --------------------------------------------------------------

const colors = { setup: "#9aa4b1", compute: "#2f6fd0", output: "#2f8a4c" };

function drawTimeline(canvas, t) {
  const rows = t.workers.length || 1;
  const rowH = Math.max(6, Math.min(22, Math.floor(420 / rows)));
  const left = 120, width = canvas.clientWidth || 900;
  canvas.width = width * devicePixelRatio;
  canvas.height = (rows * rowH + 30) * devicePixelRatio;
  canvas.style.height = (rows * rowH + 30) + "px";
  const g = canvas.getContext("2d");
  g.scale(devicePixelRatio, devicePixelRatio);
  g.clearRect(0, 0, width, rows * rowH + 30);
  const end = Math.max(1, t.end_ms);
  const x = ms => left + (width - left - 10) * ms / end;
  g.font = "11px system-ui"; g.fillStyle = "#1d2430";
  for (let w = 0; w < t.workers.length; w++) {
    if (rowH >= 10) g.fillText(t.workers[w].slice(-16), 4, w * rowH + rowH - 4);
  }
  for (const [w, call, s, cs, ce, f] of t.rows) {
    const y = w * rowH + 1, h = rowH - 2;
    g.fillStyle = colors.setup; g.fillRect(x(s), y, Math.max(1, x(cs) - x(s)), h);
    g.fillStyle = colors.compute; g.fillRect(x(cs), y, Math.max(1, x(ce) - x(cs)), h);
    g.fillStyle = colors.output; g.fillRect(x(ce), y, Math.max(1, x(f) - x(ce)), h);
  }
  g.fillStyle = "#6b7480";
  for (let i = 0; i <= 4; i++) {
    const ms = end * i / 4;
    g.fillText(dur(ms), Math.min(x(ms), width - 60), rows * rowH + 18);
  }
}

async function showLogs(id, call, pre) {
  const r = await fetch("/api/job/" + id + "/logs/" + call);
  pre.textContent = await r.text();
}

async function jobPage(id) {
  document.getElementById("where").textContent = "job " + id;
  const { data: j, changed } = await getJSON("/api/job/" + id);
  if (!changed && app.dataset.page === "job") return;
  app.dataset.page = "job";
  const cards = el("div", { class: "cards" },
    el("div", { class: "card" }, "task", el("b", { text: j.task })),
    el("div", { class: "card" }, "state", el("b", {}, stateBadge(j.state))),
    el("div", { class: "card", id: "done" }, "done", el("b", { text: j.done + " / " + j.calls })),
    el("div", { class: "card" }, "failed", el("b", { text: j.failed })),
    el("div", { class: "card" }, "wall", el("b", { text: dur(j.wall_ms) })),
    el("div", { class: "card" }, "backend", el("b", { text: j.backend || "?" })));
  if (j.usd) cards.append(el("div", { class: "card" }, "cost", el("b", { text: "$" + j.usd.toFixed(4) })));
  const phases = el("table", {}, el("tr", {}, el("th", { text: "phase" }), el("th", { class: "num", text: "median" }), el("th", { class: "num", text: "p95" })));
  for (const p of j.phases) phases.append(el("tr", {}, el("td", { text: p.name }), el("td", { class: "num", text: dur(p.p50_ms) }), el("td", { class: "num", text: dur(p.p95_ms) })));
  const canvas = el("canvas", { id: "timeline" });
  const legend = el("div", { class: "legend muted" });
  for (const [k, c] of Object.entries(colors)) { const s = el("span"); s.style.background = c; legend.append(s, k); }
  if (j.timeline.sampled) legend.append(" (an even sample of the calls)");
  const errs = el("table", { id: "errors" }, el("tr", {}, ...["call", "kind", "message", "attempts", "worker", ""].map(h => el("th", { text: h }))));
  const logs = el("pre", { id: "logs", class: "muted", text: "logs: pick a call" });
  for (const e of j.errors) {
    const a = el("a", { href: "#", text: "logs" });
    a.onclick = ev => { ev.preventDefault(); showLogs(j.id, e.call, logs); };
    errs.append(el("tr", {}, el("td", { class: "num", text: e.call }), el("td", { text: e.kind }), el("td", { text: e.message }),
      el("td", { class: "num", text: e.attempts }), el("td", { text: e.worker }), el("td", {}, a)));
  }
  const drivers = el("ul", {});
  for (const d of j.drivers || []) drivers.append(el("li", { text: `driver ${d.epoch}: pid ${d.pid} on ${d.host}, ${d.state}` }));
  app.replaceChildren(cards, progress(j.done, j.failed, j.calls),
    el("h2", { text: "timeline (" + j.timeline.rows.length + " calls on " + j.timeline.workers.length + " workers)" }), legend, canvas,
    el("h2", { text: "phases" }), phases,
    el("h2", { text: "failed calls (" + j.failed + ")" }), j.errors.length ? errs : el("p", { class: "muted", text: "none" }), logs,
    el("h2", { text: "drivers" }), drivers);
  drawTimeline(canvas, j.timeline);
}

// --- Loop ---------------------------------------------------------------

async function tick() {
  try {
    const m = location.pathname.match(/^\/job\/([^/]+)$/);
    if (m) await jobPage(decodeURIComponent(m[1])); else await jobsPage();
    live.classList.remove("stale");
  } catch (e) {
    live.classList.add("stale");
    live.title = String(e);
  }
}

tick();
setInterval(tick, 1000);
