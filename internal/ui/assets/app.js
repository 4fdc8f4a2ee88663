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

function bytes(n) {
  if (!n) return "0 B";
  const u = ["B", "KB", "MB", "GB", "TB"];
  const i = Math.min(u.length - 1, Math.floor(Math.log10(n) / 3));
  return Number((n / 1000 ** i).toPrecision(3)) + " " + u[i];
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
  for (const s of ["", "running", "done", "failed", "cancelled", "orphaned"]) stateSel.append(el("option", { value: s, text: s || "any state" }));
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
  cards.append(el("div", { class: "card" }, "calls read / wrote", el("b", { text: bytes(j.bytes_read) + " / " + bytes(j.bytes_written) })));
  if (j.requests && (j.requests.puts || j.requests.gets)) {
    cards.append(el("div", { class: "card" }, "store requests", el("b", { text: j.requests.puts + " puts, " + j.requests.gets + " gets, " + j.requests.lists + " lists" })));
  }
  if (j.sweep) cards.append(el("div", { class: "card" }, "part of sweep", el("b", {}, el("a", { href: "/sweep/" + j.sweep, text: j.sweep }))));
  let stages = null;
  if (j.stages && j.stages.length > 1) {
    stages = el("table", { id: "stages" }, el("tr", {}, ...["stage", "task", "state", "progress", "calls", "done"].map(h => el("th", { text: h }))));
    for (const st of j.stages) {
      stages.append(el("tr", {}, el("td", {}, st.id === j.id ? el("b", { text: st.id }) : el("a", { href: "/job/" + st.id, text: st.id })), el("td", { text: st.task }),
        el("td", {}, stateBadge(st.state)), el("td", {}, progress(st.done, 0, st.calls)), el("td", { class: "num", text: st.calls }), el("td", { class: "num", text: st.done })));
    }
  }
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
    ...(stages ? [el("h2", { text: "stages of this piece of work" }), stages] : []),
    el("h2", { text: "timeline (" + j.timeline.rows.length + " calls on " + j.timeline.workers.length + " workers)" }), legend, canvas,
    el("h2", { text: "phases" }), phases,
    el("h2", { text: "failed calls (" + j.failed + ")" }), j.errors.length ? errs : el("p", { class: "muted", text: "none" }), logs,
    el("h2", { text: "drivers" }), drivers);
  drawTimeline(canvas, j.timeline);
}

// --- Charts -------------------------------------------------------------

// chart draws series of [x, y] points on a canvas, with axes; scatter
// draws points instead of lines. series: [{name, color, points}].
function chart(canvas, series, opts) {
  const w = canvas.clientWidth || 360, h = canvas.clientHeight || 240;
  canvas.width = w * devicePixelRatio; canvas.height = h * devicePixelRatio;
  const g = canvas.getContext("2d");
  g.scale(devicePixelRatio, devicePixelRatio);
  g.clearRect(0, 0, w, h);
  const all = series.flatMap(s => s.points).filter(p => isFinite(p[0]) && isFinite(p[1]));
  const L = 56, R = 10, T = series.length > 1 ? 36 : 22, B = 30;
  g.font = "11px system-ui"; g.fillStyle = "#1d2430";
  g.fillText(opts.title || "", L, 14);
  if (!all.length) { g.fillStyle = "#6b7480"; g.fillText("no points yet", L, h / 2); return; }
  const tx = opts.logX ? (v => Math.log10(Math.max(v, 1e-300))) : (v => v);
  let x0 = Math.min(...all.map(p => tx(p[0]))), x1 = Math.max(...all.map(p => tx(p[0])));
  let y0 = Math.min(...all.map(p => p[1])), y1 = Math.max(...all.map(p => p[1]));
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  if (y1 === y0) { y0 -= 1; y1 += 1; }
  const X = v => L + (w - L - R) * (tx(v) - x0) / (x1 - x0);
  const Y = v => h - B - (h - T - B) * (v - y0) / (y1 - y0);
  g.strokeStyle = "#c9ced6"; g.beginPath(); g.moveTo(L, T); g.lineTo(L, h - B); g.lineTo(w - R, h - B); g.stroke();
  g.fillStyle = "#6b7480";
  for (let i = 0; i <= 2; i++) {
    const yv = y0 + (y1 - y0) * i / 2;
    g.fillText(Number(yv.toPrecision(3)).toString(), 4, Y(yv) + 4);
    const xv = x0 + (x1 - x0) * i / 2;
    const lab = opts.logX ? Number((10 ** xv).toPrecision(2)).toString() : (opts.xfmt ? opts.xfmt(xv) : Number(xv.toPrecision(3)).toString());
    g.fillText(lab, Math.min(L + (w - L - R) * i / 2, w - 50), h - 10);
  }
  if (opts.xlabel) g.fillText(opts.xlabel, w - R - g.measureText(opts.xlabel).width, h - B - 4);
  let lx = L + 8;
  for (const s of series) {
    g.strokeStyle = g.fillStyle = s.color;
    if (opts.scatter) {
      for (const p of s.points) { g.beginPath(); g.arc(X(p[0]), Y(p[1]), p[2] || 3, 0, 7); g.fill(); }
    } else {
      g.beginPath();
      s.points.forEach((p, i) => i ? g.lineTo(X(p[0]), Y(p[1])) : g.moveTo(X(p[0]), Y(p[1])));
      g.lineWidth = 2; g.stroke(); g.lineWidth = 1;
    }
    if (series.length > 1) { g.fillRect(lx, 21, 8, 8); g.fillStyle = "#1d2430"; g.fillText(s.name, lx + 11, 29); lx += 20 + g.measureText(s.name).width; }
  }
}

// sortable fills a table from rows, re-sorting when a header is clicked.
function sortable(table, cols, rows, state) {
  const render = () => {
    const k = state.key, dir = state.dir;
    const sorted = rows.slice().sort((a, b) => {
      const x = cols[k].v(a), y = cols[k].v(b);
      if (x === y) return 0;
      if (x === undefined || x === "") return 1;
      if (y === undefined || y === "") return -1;
      return (x < y ? -1 : 1) * dir;
    });
    const head = el("tr", {}, ...cols.map((c, i) => {
      const th = el("th", { class: "sortable" + (c.num ? " num" : ""), text: c.h + (i === k ? (dir > 0 ? " ▲" : " ▼") : "") });
      th.onclick = () => { if (state.key === i) state.dir = -state.dir; else { state.key = i; state.dir = 1; } render(); };
      return th;
    }));
    table.replaceChildren(head, ...sorted.map(r => el("tr", {}, ...cols.map(c => {
      const v = c.show ? c.show(r) : c.v(r);
      return v instanceof Node ? el("td", {}, v) : el("td", { class: c.num ? "num" : "", text: v === undefined ? "" : String(v) });
    }))));
  };
  render();
}

function fmt(v) { return typeof v === "number" ? Number(v.toPrecision(4)).toString() : v; }

// --- Training runs --------------------------------------------------------

async function runsPage() {
  document.getElementById("where").textContent = "training runs";
  const { data, changed } = await getJSON("/api/runs");
  if (!changed && app.dataset.page === "runs") return;
  app.dataset.page = "runs";
  const t = el("table", { id: "runs" }, el("tr", {}, ...["run", "model", "kind", "state", "workers", "examples/s", "loss", "accuracy / RMSE", "evaluations", "started"].map(h => el("th", { text: h }))));
  for (const r of data.runs) {
    t.append(el("tr", {}, el("td", {}, el("a", { href: "/run/" + r.run, text: r.run })), el("td", { text: r.model }), el("td", { text: r.kind + (r.loss ? " (" + r.loss + ")" : "") }),
      el("td", {}, stateBadge(r.state)), el("td", { class: "num", text: r.workers }), el("td", { class: "num", text: fmt(r.examples_per_s) }),
      el("td", { class: "num", text: r.points ? fmt(r.last.loss) : "" }), el("td", { class: "num", text: r.points ? fmt(r.kind === "factorization" ? r.last.rmse : r.last.accuracy) : "" }),
      el("td", { class: "num", text: r.points }), el("td", { text: new Date(r.started).toLocaleString() })));
  }
  app.replaceChildren(data.runs.length ? t : el("p", { class: "muted", text: "no training runs in this store (sgd.Train records them under sgd/runs/)" }));
}

async function runPage(id) {
  document.getElementById("where").textContent = "training run " + id;
  const { data: r, changed } = await getJSON("/api/run/" + id);
  if (!changed && app.dataset.page === "run") return;
  app.dataset.page = "run";
  const secs = p => p.t / 1e9;
  const mf = r.kind === "factorization";
  const cards = el("div", { class: "cards" },
    el("div", { class: "card" }, "model", el("b", { text: r.model })),
    el("div", { class: "card" }, "state", el("b", {}, stateBadge(r.state))),
    el("div", { class: "card" }, "workers", el("b", { text: r.workers })),
    el("div", { class: "card" }, "examples", el("b", { text: r.examples })),
    el("div", { class: "card" }, "examples/s", el("b", { text: fmt(r.examples_per_s) })));
  if (r.error) cards.append(el("div", { class: "card" }, "error", el("b", { text: r.error })));
  const c1 = el("canvas", { id: "loss" }), c2 = el("canvas", { id: "quality" }), c3 = el("canvas", { id: "version" });
  const ws = el("table", { id: "workers" }, el("tr", {}, ...["worker", "calls", "examples", "pushes", "pull s", "compute s", "push wait s", "loss", "lost calls"].map(h => el("th", { text: h }))));
  for (const w of r.worker_stats || []) {
    ws.append(el("tr", {}, ...[w.worker, w.calls, w.examples, w.pushes, fmt(w.pull / 1e9), fmt(w.compute / 1e9), fmt(w.push / 1e9), fmt(w.loss), w.lost].map(v => el("td", { class: "num", text: v }))));
  }
  app.replaceChildren(cards, el("div", { class: "charts" }, c1, c2, c3), el("h2", { text: "workers" }), ws);
  chart(c3, [{ name: "pushes", color: "#7b4bc4", points: r.curve.map(p => [secs(p), p.version]) }], { title: "updates the parameter server applied", xlabel: "seconds" });
  chart(c1, [{ name: "loss", color: "#c23b3b", points: r.curve.map(p => [secs(p), p.loss]) }], { title: "loss on the evaluation set", xlabel: "seconds" });
  chart(c2, [mf ? { name: "RMSE", color: "#2f6fd0", points: r.curve.map(p => [secs(p), p.rmse]) } : { name: "accuracy", color: "#2f8a4c", points: r.curve.map(p => [secs(p), p.accuracy]) }],
    { title: mf ? "RMSE" : "accuracy", xlabel: "seconds" });
}

// --- Sweeps ---------------------------------------------------------------

async function sweepsPage() {
  document.getElementById("where").textContent = "sweeps";
  const { data, changed } = await getJSON("/api/sweeps");
  if (!changed && app.dataset.page === "sweeps") return;
  app.dataset.page = "sweeps";
  const t = el("table", { id: "sweeps" }, el("tr", {}, ...["sweep", "metric", "trial runs", "failed", "best"].map(h => el("th", { text: h }))));
  for (const s of data.sweeps) {
    t.append(el("tr", {}, el("td", {}, el("a", { href: "/sweep/" + s.name, text: s.name })), el("td", { text: s.metric + " (" + s.mode + ")" }),
      el("td", { class: "num", text: s.runs }), el("td", { class: "num", text: s.failed }), el("td", { class: "num", text: s.has_best ? fmt(s.best) : "" })));
  }
  app.replaceChildren(data.sweeps.length ? t : el("p", { class: "muted", text: "no sweeps in this store (tune.Sweep records them under tune/)" }));
}

const sweepSort = { key: 0, dir: 1 };
const palette = ["#2f6fd0", "#c23b3b", "#2f8a4c", "#b07a18", "#7b4bc4", "#178a8a", "#999"];

async function sweepPage(name) {
  document.getElementById("where").textContent = "sweep " + name;
  const { data: s, changed } = await getJSON("/api/sweep/" + name);
  if (!changed && app.dataset.page === "sweep") return;
  app.dataset.page = "sweep";
  const m = s.metric, ok = s.trials.filter(t => !t.error && t.metrics && m in t.metrics);
  const cards = el("div", { class: "cards" },
    el("div", { class: "card" }, "metric", el("b", { text: m + " (" + s.mode + ")" })),
    el("div", { class: "card" }, "runs", el("b", { text: s.trials.length })),
    el("div", { class: "card" }, "failed", el("b", { text: s.failed })),
    el("div", { class: "card" }, "best", el("b", { text: s.has_best ? fmt(s.best) : "–" })));
  // Best so far, in the order trials finished recording (ID order).
  let bestv = null;
  const hist = ok.map((t, i) => { const v = t.metrics[m]; bestv = bestv === null ? v : (s.mode === "min" ? Math.min(bestv, v) : Math.max(bestv, v)); return [i + 1, bestv]; });
  const charts = el("div", { class: "charts" });
  const hc = el("canvas", { id: "best" }); charts.append(hc);
  const numKeys = [...new Set(s.trials.flatMap(t => Object.keys(t.num || {})))].sort();
  const strKeys = [...new Set(s.trials.flatMap(t => Object.keys(t.str || {})))].sort();
  const budgets = [...new Set(ok.map(t => t.budget || 0))].sort((a, b) => a - b);
  const perParam = [];
  for (const k of numKeys) {
    const c = el("canvas", { class: "param" }); charts.append(c);
    const vals = ok.map(t => t.num[k]).filter(v => v !== undefined);
    const logX = vals.length && Math.min(...vals) > 0 && Math.max(...vals) / Math.min(...vals) > 50;
    perParam.push(() => chart(c, budgets.map((b, i) => ({ name: "budget " + b, color: palette[i % palette.length],
      points: ok.filter(t => (t.budget || 0) === b && t.num[k] !== undefined).map(t => [t.num[k], t.metrics[m], 2 + i]) })),
      { title: m + " against " + k, scatter: true, logX, xlabel: k }));
  }
  const cols = [{ h: "trial", v: t => t.id, num: true }, { h: "budget", v: t => t.budget || 0, num: true },
    { h: m, v: t => (t.metrics || {})[m], show: t => t.error ? el("span", { class: "state failed", text: "failed" }) : fmt((t.metrics || {})[m]), num: true },
    ...numKeys.map(k => ({ h: k, v: t => (t.num || {})[k], show: t => fmt((t.num || {})[k]), num: true })),
    ...strKeys.map(k => ({ h: k, v: t => (t.str || {})[k] })),
    { h: "seconds", v: t => t.duration / 1e9, show: t => fmt(t.duration / 1e9), num: true },
    { h: "error", v: t => t.error || "" }];
  const table = el("table", { id: "trials" });
  sortable(table, cols, s.trials, sweepSort);
  // ASHA's rungs: runs, the best and the promoted at each budget.
  const rungs = el("table", { id: "rungs" }, el("tr", {}, ...["budget", "runs", "failed", "best " + m, "promoted to the next"].map(h => el("th", { text: h }))));
  const allBudgets = [...new Set(s.trials.map(t => t.budget || 0))].sort((a, b) => a - b);
  allBudgets.forEach((b, i) => {
    const at = s.trials.filter(t => (t.budget || 0) === b), okAt = at.filter(t => !t.error && t.metrics && m in t.metrics);
    const vals = okAt.map(t => t.metrics[m]);
    const next = allBudgets[i + 1];
    const promoted = next === undefined ? "" : at.filter(t => s.trials.some(u => u.id === t.id && (u.budget || 0) === next)).length;
    rungs.append(el("tr", {}, ...[b, at.length, at.length - okAt.length, vals.length ? fmt(s.mode === "min" ? Math.min(...vals) : Math.max(...vals)) : "", promoted].map(v => el("td", { class: "num", text: v }))));
  });
  // Learning curves: the metric of each promoted trial against its budget.
  const lc = el("canvas", { id: "curves", class: "wide" });
  const multi = [...new Set(ok.map(t => t.id))].filter(id => ok.filter(t => t.id === id).length > 1).slice(0, 30);
  // Parallel coordinates: one vertical axis per numeric parameter and the
  // metric, a line per trial coloured from worst (grey) to best (green).
  const pc = el("canvas", { id: "parallel", class: "wide" });
  const jobs = el("ul", { id: "sweepjobs" });
  for (const jb of s.jobs || []) jobs.append(el("li", {}, el("a", { href: "/job/" + jb.id, text: jb.id }), " " + jb.done + "/" + jb.calls + " ", stateBadge(jb.state)));
  app.replaceChildren(cards, charts, el("h2", { text: "parallel coordinates" }), pc,
    el("h2", { text: "rungs" }), rungs, ...(multi.length ? [el("h2", { text: "learning curves across budgets" }), lc] : []),
    el("h2", { text: "trials (click a header to sort)" }), table, el("h2", { text: "the sweep's jobs" }), jobs);
  chart(hc, [{ name: "best", color: "#2f8a4c", points: hist }], { title: "best " + m + " so far", xlabel: "trials recorded" });
  perParam.forEach(f => f());
  if (multi.length) chart(lc, multi.map((id, i) => ({ name: "trial " + id, color: palette[i % palette.length],
    points: ok.filter(t => t.id === id).map(t => [t.budget || 0, t.metrics[m]]) })), { title: m + " against budget", xlabel: "budget" });
  parallel(pc, numKeys, ok, m, s.mode);
}

function parallel(canvas, keys, trials, m, mode) {
  const w = canvas.clientWidth || 900, h = canvas.clientHeight || 280;
  canvas.width = w * devicePixelRatio; canvas.height = h * devicePixelRatio;
  const g = canvas.getContext("2d");
  g.scale(devicePixelRatio, devicePixelRatio);
  const axes = [...keys, m], T = 24, B = 20, L = 50, R = 50;
  g.font = "11px system-ui";
  if (!trials.length) { g.fillStyle = "#6b7480"; g.fillText("no finished trials yet", L, h / 2); return; }
  const val = (t, k) => k === m ? t.metrics[m] : (t.num || {})[k];
  const range = axes.map(k => {
    const v = trials.map(t => val(t, k)).filter(x => x !== undefined);
    const logged = k !== m && v.length && Math.min(...v) > 0 && Math.max(...v) / Math.min(...v) > 50;
    const f = x => logged ? Math.log10(x) : x;
    let lo = Math.min(...v.map(f)), hi = Math.max(...v.map(f));
    if (hi === lo) { lo -= 1; hi += 1; }
    return { f, lo, hi };
  });
  const X = i => L + (w - L - R) * (axes.length === 1 ? 0.5 : i / (axes.length - 1));
  const Y = (i, x) => h - B - (h - T - B) * (range[i].f(x) - range[i].lo) / (range[i].hi - range[i].lo);
  const ms = trials.map(t => t.metrics[m]);
  const lo = Math.min(...ms), hi = Math.max(...ms);
  const sorted = trials.slice().sort((a, b) => (mode === "min" ? -1 : 1) * (a.metrics[m] - b.metrics[m]));
  for (const t of sorted) {
    let q = hi === lo ? 1 : (t.metrics[m] - lo) / (hi - lo);
    if (mode === "min") q = 1 - q;
    g.strokeStyle = `rgba(${Math.round(160 - 113 * q)},${Math.round(160 - 22 * q)},${Math.round(160 - 84 * q)},${0.35 + 0.6 * q})`;
    g.beginPath();
    let started = false;
    axes.forEach((k, i) => { const x = val(t, k); if (x === undefined) return; started ? g.lineTo(X(i), Y(i, x)) : g.moveTo(X(i), Y(i, x)); started = true; });
    g.stroke();
  }
  g.fillStyle = "#1d2430"; g.strokeStyle = "#9aa4b1";
  axes.forEach((k, i) => {
    g.beginPath(); g.moveTo(X(i), T); g.lineTo(X(i), h - B); g.stroke();
    g.fillText(k, X(i) - g.measureText(k).width / 2, T - 8);
  });
}

// --- Loop ---------------------------------------------------------------

async function tick() {
  try {
    const p = location.pathname;
    let m;
    if ((m = p.match(/^\/job\/([^/]+)$/))) await jobPage(decodeURIComponent(m[1]));
    else if ((m = p.match(/^\/run\/([^/]+)$/))) await runPage(decodeURIComponent(m[1]));
    else if ((m = p.match(/^\/sweep\/([^/]+)$/))) await sweepPage(decodeURIComponent(m[1]));
    else if (p === "/runs") await runsPage();
    else if (p === "/sweeps") await sweepsPage();
    else await jobsPage();
    live.classList.remove("stale");
  } catch (e) {
    live.classList.add("stale");
    live.title = String(e);
  }
}

tick();
setInterval(tick, 1000);
