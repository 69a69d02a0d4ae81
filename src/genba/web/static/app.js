// genba dashboard v1: machines and tags with live values and one trend per tag.
// Data: GET /api/tags, GET /api/tags/{path}/samples, WebSocket /ws/live.
import { STATES, fmt, getJSON, h, hhmmss, live, showError } from "./common.js";

const WINDOW_S = 600;          // each trend shows the last 10 minutes
const tags = new Map();        // path -> {meta, row, valueEl, chart, xs, ys}

function machineOf(path) { return path.split("/").slice(0, 4).join("/"); }

function card(machinePath, description = "") {
  let el = document.querySelector(`[data-machine="${CSS.escape(machinePath)}"]`);
  if (el) return el;
  const badge = h("span", { class: "state" });
  badge.hidden = true;
  el = h("article", { class: "machine", "data-machine": machinePath },
    h("h2", {}, h("span", {}, machinePath.split("/").pop()), badge),
    h("div", { class: "path", title: description }, machinePath));
  document.getElementById("machines").append(el);
  return el;
}

function addTag(meta) {
  if (tags.has(meta.path)) return tags.get(meta.path);
  const name = meta.path.split("/").slice(4).join("/") || meta.path;
  const row = h("div", { class: "tag", "data-tag": meta.path },
    h("span", { class: "name", title: meta.description || meta.path }, name),
    h("span", {}, h("span", { class: "value" }, "–"), h("span", { class: "unit" }, meta.unit === "1" ? "" : meta.unit || "")),  // "1": a count
    h("div", { class: "chart", role: "img", "aria-label": `trend of ${name}` }));
  card(machineOf(meta.path)).append(row);
  const t = { meta, row, valueEl: row.querySelector(".value"), xs: [], ys: [], chart: null };
  tags.set(meta.path, t);
  return t;
}

function makeChart(t) {
  const el = t.row.querySelector(".chart");
  const opts = {
    width: Math.max(el.clientWidth, 120), height: 56,
    legend: { show: false }, cursor: { show: true, points: { show: false } },
    scales: { x: { time: true } },
    axes: [{ show: false }, { size: 42, stroke: "#9aa7b4", grid: { stroke: "#2c3640" }, ticks: { show: false } }],
    series: [{}, { stroke: "#58a6ff", width: 1.5 }],
  };
  t.chart = new uPlot(opts, [t.xs, t.ys], el);
}

function setValue(t, ts_ms, value, quality = 0) {
  const stale = quality >= 2 || value === null;  // a stale mark: its source is gone
  t.valueEl.textContent = stale ? `stale since ${hhmmss(ts_ms)}` : fmt(value);
  t.valueEl.dataset.ts = ts_ms;
  t.row.classList.toggle("stale", stale);
  const { low, high } = t.meta;
  t.row.classList.toggle("out-of-limits", (low !== null && value < low) || (high !== null && value > high));
  if (t.meta.path.endsWith("/state")) {
    const s = stale ? "stale" : STATES[value] || "unknown";
    const c = card(machineOf(t.meta.path));
    c.dataset.state = s;
    const badge = c.querySelector(".state");
    badge.hidden = false; badge.className = `state ${s}`; badge.textContent = s.replace("_", " ");
  }
}

async function loadTrend(t) {
  try {
    const d = await getJSON(`/api/tags/${t.meta.path.split("/").map(encodeURIComponent).join("/")}/samples?start=-${WINDOW_S}s&every=5s&agg=avg`);
    t.xs.splice(0, t.xs.length, ...d.ts_ms.map((x) => x / 1000));
    t.ys.splice(0, t.ys.length, ...d.avg);
  } catch (e) { showError(`Trend of ${t.meta.path}: ${e.message}`); }
  makeChart(t);
}

let dirty = new Set();
function redraw() {
  for (const t of dirty) {
    if (!t.chart) continue;
    const cutoff = t.xs[t.xs.length - 1] - WINDOW_S;
    let n = 0;
    while (n < t.xs.length && t.xs[n] < cutoff) n++;
    if (n) { t.xs.splice(0, n); t.ys.splice(0, n); }
    t.chart.setData([t.xs, t.ys]);
  }
  dirty = new Set();
}

function onSamples(msg, idToPath) {
  const newest = new Map();
  for (let i = 0; i < msg.tag.length; i++) {
    const path = idToPath.get(msg.tag[i]);
    const t = tags.get(path);
    if (!t) continue;
    t.xs.push(msg.ts_ms[i] / 1000); t.ys.push(msg.value[i]);
    dirty.add(t);
    const prev = newest.get(t);
    if (!prev || msg.ts_ms[i] >= msg.ts_ms[prev]) newest.set(t, i);
  }
  for (const [t, i] of newest) setValue(t, msg.ts_ms[i], msg.value[i], msg.quality[i]);
  requestAnimationFrame(redraw);
}

async function pollHealth() {
  try {
    const health = await getJSON("/api/health");
    document.getElementById("node-name").textContent = health.node;
    document.getElementById("clock").textContent = new Date(health.now_ms).toISOString().slice(0, 19) + "Z";
    document.getElementById("connectors").replaceChildren(...health.connectors.map((c) => {
      const parts = [` ${c.name} (${c.kind}) · ${c.samples.toLocaleString()} samples`,
        `${c.samples_per_s.toLocaleString()}/s`];
      if (c.last_message_ms) parts.push(`last ${new Date(c.last_message_ms).toISOString().slice(11, 19)}Z`);
      if (c.errors) parts.push(`${c.errors} errors`);
      if (c.dead_letters) parts.push(`${c.dead_letters} dead letters`);
      const el = h("span", { "data-connector": c.name, title: c.last_error || "" },
        h("span", { class: c.connected ? "dot on" : "dot" }), parts.join(" · "));
      if (c.errors || c.dead_letters) el.classList.add("trouble");
      return el;
    }));
    // What keeps the node from collecting or storing everything (a full disk, a dead device).
    const problems = document.getElementById("problems");
    problems.hidden = health.status === "ok";
    problems.replaceChildren(h("strong", {}, `Node ${health.status.toUpperCase()}`),
      ...health.problems.map((text) => h("span", {}, text)));
    showError("");
  } catch (e) { showError(`Node not reachable: ${e.message}`); }
}

async function main() {
  await pollHealth();
  setInterval(pollHealth, 5000);
  for (const m of await getJSON("/api/assets")) card(m.path, m.description);  // line order
  const list = await getJSON("/api/tags");
  for (const meta of list) {
    const t = addTag(meta);
    if (meta.last) setValue(t, meta.last.ts_ms, meta.last.value, meta.last.quality);
  }
  await Promise.all([...tags.values()].map(loadTrend));
  live("#", onSamples);
  window.addEventListener("resize", () => {
    for (const t of tags.values()) t.chart && t.chart.setSize({ width: t.row.querySelector(".chart").clientWidth, height: 56 });
  });
}

main().catch((e) => showError(e.message));
