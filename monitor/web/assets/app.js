// scaler_ui page: receives a snapshot (see snapshot.go) a few times a second
// over server-sent events and redraws from it. The server has aggregated
// everything, so drawing costs the same at 10 or 10,000 tasks per second.
"use strict";

const $ = (id) => document.getElementById(id);
const SVGNS = "http://www.w3.org/2000/svg";
const css = getComputedStyle(document.documentElement);
const color = (name) => css.getPropertyValue("--" + name).trim();

// ---- formatting -----------------------------------------------------------

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
}
function bytes(n) {
  const units = ["B", "K", "M", "G", "T", "P"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i < 2 ? Math.round(n) : n.toFixed(1)) + units[i];
}
const pct = (permille) => (permille / 10).toFixed(1) + "%";
const int = (n) => n.toLocaleString("en-US");
function clock(ms) {
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}
function duration(ms) {
  if (ms < 1) return (ms * 1000).toFixed(0) + "µs";
  if (ms < 1000) return ms.toFixed(ms < 10 ? 2 : 0) + "ms";
  if (ms < 60000) return (ms / 1000).toFixed(2) + "s";
  return Math.floor(ms / 60000) + "m" + Math.round((ms % 60000) / 1000) + "s";
}
function lag(us) { return us < 1000 ? (us / 1000).toFixed(1) + "ms" : duration(us / 1000); }
function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 120 ? s + " s" : Math.round(s / 60) + " min";
}

// ---- SVG helpers ----------------------------------------------------------

function svg(el, height) {
  const s = document.createElementNS(SVGNS, "svg");
  const width = Math.max(200, el.clientWidth);
  s.setAttribute("viewBox", `0 0 ${width} ${height}`);
  s.setAttribute("height", height);
  el.replaceChildren(s);
  return [s, width];
}
function add(parent, tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  parent.appendChild(e);
  return e;
}
// A round upper bound for an axis: 1, 2 or 5 times a power of ten.
function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}
function niceBytes(v) {
  let p = 1;
  while (p * 1024 <= v) p *= 1024;
  return niceMax(v / p) * p;
}

// Line chart over the last `span` ms: series = [{name, color, values}],
// x = ms relative to now. A gap of more than 3 s (feed down) breaks a line.
function lineChart(el, xs, series, span, yMax, fmt) {
  const H = 150, L = 52, R = 8, T = 20, B = 18;
  const [s, W] = svg(el, H);
  const x = (t) => L + (W - L - R) * (1 + t / span);
  const y = (v) => T + (H - T - B) * (1 - v / yMax);
  for (let i = 0; i <= 2; i++) {
    const v = (yMax * i) / 2;
    add(s, "line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) });
    add(s, "text", { x: L - 6, y: y(v) + 3, "text-anchor": "end" }, fmt(v));
  }
  for (const t of [-span, -span / 2, 0]) {
    add(s, "text", { x: x(t), y: H - 4, "text-anchor": t === 0 ? "end" : t === -span ? "start" : "middle" },
      t === 0 ? "now" : `${t / 1000}s`);
  }
  let lx = L;
  for (const ser of series) {
    let d = "";
    for (let i = 0; i < xs.length; i++) {
      if (xs[i] < -span) continue;
      const jump = i === 0 || xs[i] - xs[i - 1] > 3000 || xs[i - 1] < -span;
      d += (jump ? "M" : "L") + x(xs[i]).toFixed(1) + "," + y(ser.values[i]).toFixed(1);
    }
    add(s, "path", { d, fill: "none", stroke: ser.color, "stroke-width": 1.8, "stroke-linejoin": "round", class: "series" });
    const last = ser.values.length ? fmt(ser.values[ser.values.length - 1]) : "–";
    add(s, "rect", { x: lx, y: 4, width: 10, height: 3, fill: ser.color });
    const t = add(s, "text", { x: lx + 14, y: 9, class: "legend" }, `${ser.name} ${last}`);
    lx += 24 + t.getComputedTextLength();
  }
}

// ---- cards ----------------------------------------------------------------

function dl(el, rows) {
  el.innerHTML = rows.map(([k, v, cls]) => `<dt>${k}</dt><dd class="${cls || ""}">${v}</dd>`).join("");
}

function renderScheduler(snap) {
  const sc = snap.scheduler;
  if (!sc) { dl($("scheduler"), [["status", "no report yet"]]); return; }
  dl($("scheduler"), [
    ["CPU", pct(sc.cpu)], ["RSS", bytes(sc.rss)], ["Free memory", bytes(sc.rss_free)],
    ["Objects", int(sc.objects)], ["Workers", int(snap.workers.length)], ["Clients", int(snap.clients.length)],
    ["Feed restarts", int(snap.feed.restarts)],
    ["Feed dropped", int(snap.feed.dropped), snap.feed.dropped ? "" : "zero"],
    ["Feed missed here", int(snap.feed.missed), snap.feed.missed ? "" : "zero"],
  ]);
}

// The common states are always listed; the rarer ones once they are non-zero.
const ALWAYS = new Set(["Inactive", "Running", "Success", "Failed", "Canceled"]);
function renderTasks(snap) {
  dl($("tasks"), snap.tasks.filter((t) => ALWAYS.has(t.state) || t.count > 0).map((t) => [
    `<span class="dot" style="background:${color(t.outcome)}"></span>${t.state}`, int(t.count), t.count ? "" : "zero",
  ]));
}

function renderThroughput(tp) {
  const H = 150, L = 40, R = 8, T = 8, B = 18;
  const [s, W] = svg($("throughput"), H);
  const n = tp.seconds;
  const totals = tp.success.map((v, i) => v + tp.failed[i] + tp.canceled[i]);
  const yMax = niceMax(Math.max(...totals));
  const bw = (W - L - R) / n;
  const y = (v) => T + (H - T - B) * (1 - v / yMax);
  for (const v of [0, yMax / 2, yMax]) {
    add(s, "line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) });
    add(s, "text", { x: L - 6, y: y(v) + 3, "text-anchor": "end" }, int(v));
  }
  for (const sec of [n, n / 2, 0]) {
    add(s, "text", { x: L + (n - sec) * bw, y: H - 4, "text-anchor": sec === 0 ? "end" : sec === n ? "start" : "middle" },
      sec === 0 ? "now" : `-${sec}s`);
  }
  for (let i = 0; i < n; i++) {
    let base = 0;
    for (const [kind, vals] of [["success", tp.success], ["failed", tp.failed], ["canceled", tp.canceled]]) {
      const v = vals[i];
      if (!v) continue;
      const r = add(s, "rect", {
        class: "bar " + kind, x: L + i * bw + 0.5, width: Math.max(1, bw - 1),
        y: y(base + v), height: y(base) - y(base + v), fill: color(kind),
      });
      add(r, "title", {}, `${n - 1 - i}s ago: ${v} ${kind}`);
      base += v;
    }
  }
  // Rate over the last 10 complete seconds (the current one is still filling).
  const recent = totals.slice(n - 11, n - 1);
  const rate = recent.reduce((a, b) => a + b, 0) / recent.length;
  const total = totals.reduce((a, b) => a + b, 0);
  $("throughput-now").textContent = `${rate.toFixed(rate < 10 ? 1 : 0)} tasks/s over 10 s · ${int(total)} in ${n} s`;
}

function renderCharts(h) {
  // The time axis grows with the history, from 1 to 5 minutes, in whole minutes.
  const oldest = h.at.length ? -h.at[0] : 0;
  const span = Math.min(5, Math.max(1, Math.ceil(oldest / 60000))) * 60000;
  // At least 10% so that an idle cluster does not draw noise full height.
  const cpuMax = niceMax(Math.max(100, ...h.sched_cpu, ...h.agent_cpu, ...h.proc_cpu));
  lineChart($("cpu"), h.at, [
    { name: "scheduler", color: color("sched"), values: h.sched_cpu },
    { name: "agents", color: color("agent"), values: h.agent_cpu },
    { name: "processors", color: color("proc"), values: h.proc_cpu },
  ], span, cpuMax, pct);
  const memMax = niceBytes(Math.max(1 << 20, ...h.sched_rss, ...h.agent_rss, ...h.proc_rss));
  lineChart($("memory"), h.at, [
    { name: "scheduler", color: color("sched"), values: h.sched_rss },
    { name: "agents", color: color("agent"), values: h.agent_rss },
    { name: "processors", color: color("proc"), values: h.proc_rss },
  ], span, memMax, bytes);
}

// One row per worker, one rectangle per task (or run of equal tasks).
// Labels longer than this are cut (the table and the tooltips have them whole).
const clip = (s, n = 22) => (s.length > n ? s.slice(0, n - 1) + "…" : s);

function renderStream(st) {
  const rowH = st.rows.length > 20 ? 15 : 20, L = 150, R = 8, T = 4, B = 18;
  const rows = Math.max(1, st.rows.length);
  const H = T + rows * rowH + B;
  const [s, W] = svg($("stream"), H);
  const span = st.window_s * 1000;
  const x = (t) => L + (W - L - R) * (1 + Math.max(t, -span) / span);
  for (let t = -span; t <= 0; t += span / 6) {
    add(s, "line", { class: "grid", x1: x(t), x2: x(t), y1: T, y2: T + rows * rowH });
    add(s, "text", { x: x(t), y: H - 4, "text-anchor": t === 0 ? "end" : t === -span ? "start" : "middle" },
      t === 0 ? "now" : `${t / 1000}s`);
  }
  st.rows.forEach((label, i) => {
    add(s, "rect", { x: L, y: T + i * rowH, width: W - L - R, height: rowH, fill: i % 2 ? "#fafbfc" : "#f3f5f8" });
    const t = add(s, "text", { x: L - 8, y: T + i * rowH + rowH * 0.7, "text-anchor": "end", class: "row-label" }, clip(label));
    add(t, "title", {}, label);
  });
  if (!st.rows.length) add(s, "text", { x: L, y: T + 14 }, "no workers");
  // Successes first, so that the rarer failures and cancels are drawn on top.
  const order = (b) => (st.outcomes[b[3]] === "success" ? 0 : 1);
  for (const [row, start, end, o, f, n] of [...st.bars].sort((a, b) => order(a) - order(b))) {
    const outcome = st.outcomes[o];
    // A short task stays visible; a wide bar leaves a pixel between tasks.
    const x0 = x(start), w = Math.max(x(end) - x0, outcome === "success" ? 2 : 3);
    const r = add(s, "rect", {
      class: "bar " + outcome, x: x0, y: T + row * rowH + 2, width: w > 4 ? w - 1 : w, height: rowH - 4, rx: 1.5,
      fill: color(outcome),
    });
    const what = st.functions[f] || "(unknown function)";
    add(r, "title", {}, `${what}${n > 1 ? " ×" + n : ""} · ${outcome} · ${duration(end - start)}`);
  }
  $("stream-note").textContent = `last ${st.window_s} s · green success, red failed, grey canceled, amber running`;
}

function procClass(p) {
  if (!p.initialized) return "starting";
  if (p.suspended) return "suspended";
  return p.has_task ? "busy" : "idle";
}

function renderWorkers(snap) {
  const body = $("workers").tBodies[0];
  if (!snap.workers.length) {
    body.innerHTML = `<tr><td class="empty" colspan="16">no workers connected</td></tr>`;
  } else {
    body.innerHTML = snap.workers.map((w) => `<tr data-worker="${esc(w.id)}">
      <td title="${esc(w.id)}">${esc(w.label)}</td><td>${esc(w.group)}</td>
      <td>${pct(w.agent_cpu)}</td><td>${bytes(w.agent_rss)}</td><td>${pct(w.cpu)}</td><td>${bytes(w.rss)}</td>
      <td>${bytes(w.rss_free)}</td><td>${int(w.free)}</td><td>${int(w.sent)}</td><td>${int(w.queued)}</td>
      <td>${w.suspended}</td><td>${lag(w.lag_us)}</td><td>${w.last_s}s</td><td>${esc(w.itl)}</td><td>${int(w.done)}</td>
      <td><span class="procs">${w.processors.map((p) => `<span class="proc ${procClass(p)}"
        title="pid ${p.pid} · ${procClass(p)} · CPU ${pct(p.cpu)} · RSS ${bytes(p.rss)}"></span>`).join("")}</span></td>
    </tr>`).join("");
  }
  $("workers-note").textContent = snap.workers.length ? `${snap.workers.length} connected` : "";
}

function renderClients(snap) {
  const body = $("clients").tBodies[0];
  body.innerHTML = snap.clients.length
    ? snap.clients.map((c) => `<tr><td title="${esc(c.id)}">${esc(c.label)}</td><td>${int(c.tasks)}</td></tr>`).join("")
    : `<tr><td class="empty" colspan="2">no client has unfinished tasks</td></tr>`;
}

function renderLog(snap) {
  const body = $("log").tBodies[0];
  body.innerHTML = snap.log.length
    ? snap.log.map((t) => `<tr>
      <td>${t.end_ms ? clock(t.end_ms) : ""}</td><td>${esc(t.function || "(unknown)")}</td><td>${esc(t.worker)}</td>
      <td>${duration(t.duration_ms)}</td><td>${t.peak_mem ? bytes(t.peak_mem) : "–"}</td>
      <td><span class="badge ${t.outcome}">${esc(t.state)}</span></td><td class="id" title="${esc(t.id)}">…${esc(t.id.slice(-10))}</td>
    </tr>`).join("")
    : `<tr><td class="empty" colspan="7">no task has finished yet</td></tr>`;
}

// ---- feed and connection state ----------------------------------------------

let last = null;          // newest snapshot
let lastArrival = 0;      // Date.now() when it came
let connected = false;

function renderStatus() {
  const pill = $("feed-status"), banner = $("banner");
  let state = last ? last.feed.state : "waiting", text, warn = "";
  const addr = last ? last.address : "";
  if (!last && connected) {
    text = "connecting…"; // the first frame comes within a second
  } else if (!connected || Date.now() - lastArrival > 5000) {
    state = "lost";
    text = "scaler_ui unreachable";
    warn = "Lost the connection to scaler_ui; retrying. The numbers below are from " +
      (last ? clock(last.now_ms).slice(0, 8) : "nowhere") + ".";
  } else if (state === "live") {
    text = "live · " + clock(last.feed.updated_ms).slice(0, 8);
  } else if (state === "stopped") {
    const since = ago(last.now_ms - last.feed.updated_ms);
    text = "feed stopped";
    warn = `The status feed stopped: last update at ${clock(last.feed.updated_ms).slice(0, 8)} (${since} ago). ` +
      `Waiting for the scheduler at ${addr}; this page resumes by itself.`;
  } else {
    text = "waiting";
    warn = `Waiting for the first status report from the scheduler at ${addr}.`;
  }
  pill.dataset.state = state;
  pill.textContent = text;
  banner.hidden = !warn;
  banner.dataset.state = state;
  banner.textContent = warn;
  document.body.classList.toggle("stale", state === "stopped" || state === "lost");
}

// How long drawing takes, for the scale test and for anyone curious (console: scalerStats).
const scalerStats = (window.scalerStats = { renders: 0, lastMs: 0, maxMs: 0 });

function render(snap) {
  const began = performance.now();
  $("address").textContent = snap.address;
  renderScheduler(snap);
  renderTasks(snap);
  renderThroughput(snap.throughput);
  renderCharts(snap.history);
  renderStream(snap.stream);
  renderWorkers(snap);
  renderClients(snap);
  renderLog(snap);
  scalerStats.renders++;
  scalerStats.lastMs = performance.now() - began;
  scalerStats.maxMs = Math.max(scalerStats.maxMs, scalerStats.lastMs);
}

const events = new EventSource("events");
events.addEventListener("snapshot", (e) => {
  last = JSON.parse(e.data);
  lastArrival = Date.now();
  connected = true;
  // A hidden tab skips drawing; the next frame after it shows is complete.
  if (!document.hidden) render(last);
  renderStatus();
});
events.onopen = () => { connected = true; };
events.onerror = () => { connected = false; renderStatus(); }; // EventSource reconnects by itself
setInterval(renderStatus, 1000);
window.addEventListener("resize", () => last && render(last));
