// Machine trends (?path=site/area/line/machine[&tag=name][&under=anomaly][&start=&end=]): one
// chart per tag (``under``: only the tags below that folder, e.g. a model's score and each
// signal's share in it); an anomaly score comes first, with its threshold (1) drawn in red
// over days of history, always from time-bucket aggregates (min / avg / max) sized to the
// chart's width, never the raw samples: zoom (drag, or + / −) and pan (◀ ▶, arrow keys)
// fetch the buckets of the new window. ``&raw=1`` draws every raw sample instead (slow: only
// to compare, bench/dashboard.py). Where a [[rul]] model estimates the machine, its remaining
// useful life heads the page (/api/rul): running hours left with their interval, the chance of
// failing within the horizon, and the date to plan maintenance before.
import { getJSON, h, parseTime, pathURL, pct, showError } from "./common.js";

const BUCKETS = 1000;          // per chart: about one bucket per horizontal pixel
const STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];
const params = new URLSearchParams(location.search);
const charts = [];
let view = null;               // [start_ms, end_ms]

function every(spanMs) {
  const want = spanMs / 1000 / BUCKETS;
  return STEPS_S.find((s) => s >= want) || STEPS_S[STEPS_S.length - 1];
}

async function load(c) {
  const [a, b] = view, step = every(b - a);
  let d;
  if (params.get("raw") === "1") {  // every raw sample, for comparison (bench/dashboard.py)
    const r = await getJSON(`/api/tags/${pathURL(c.path)}/samples?start=${a}&end=${b}&limit=1000000`);
    d = { ts_ms: r.ts_ms, min: r.value, avg: r.value, max: r.value };
  } else {
    d = await getJSON(`/api/tags/${pathURL(c.path)}/samples?start=${a}&end=${b}&every=${step}s&agg=min,avg,max`);
  }
  const xs = d.ts_ms.map((x) => x / 1000);
  c.chart.batch(() => {
    c.chart.setData(c.score ? [xs, d.min, d.avg, d.max, xs.map(() => 1)] : [xs, d.min, d.avg, d.max], false);
    c.chart.setScale("x", { min: a / 1000, max: b / 1000 });
  });
  c.el.dataset.buckets = xs.length;
  c.el.dataset.every = step;
}

async function show(a, b) {
  view = [Math.round(a), Math.round(b)];
  document.getElementById("window").textContent =
    `${new Date(view[0]).toISOString().slice(0, 16)}Z – ${new Date(view[1]).toISOString().slice(0, 16)}Z · ${every(view[1] - view[0])} s buckets`;
  const url = new URL(location.href);
  url.searchParams.set("start", view[0]); url.searchParams.set("end", view[1]);
  history.replaceState(null, "", url);
  try { await Promise.all(charts.map(load)); showError(""); } catch (e) { showError(e.message); }
  document.body.dataset.ready = "1";
}

const isScore = (path) => path.endsWith("/anomaly/score");

function chart(meta) {
  const score = isScore(meta.path);
  const el = h("section", { class: "trend", "data-tag": meta.path, ...(score ? { "data-threshold": "1" } : {}) },
    h("h2", {}, `${meta.path.split("/").pop()} `, h("span", { class: "muted" }, meta.unit && meta.unit !== "1" ? meta.unit : "")));
  const plot = h("div", { role: "img", "aria-label": `trend of ${meta.path.split("/").pop()}` });
  el.append(plot);
  document.getElementById("trends").append(el);
  const c = { path: meta.path, el, chart: null };
  c.chart = new uPlot({
    width: Math.max(plot.clientWidth, 300), height: 180, legend: { show: false },
    scales: { x: { time: true } }, cursor: { drag: { x: true, y: false } },
    axes: [{ stroke: "#9aa7b4", grid: { stroke: "#2c3640" } }, { size: 56, stroke: "#9aa7b4", grid: { stroke: "#2c3640" } }],
    series: [{}, { stroke: "#58a6ff55", width: 1 }, { stroke: "#58a6ff", width: 1.5 }, { stroke: "#58a6ff55", width: 1 },
      ...(score ? [{ stroke: "#f85149", width: 1.5, dash: [6, 4] }] : [])],
    hooks: { setSelect: [(u) => {
      if (u.select.width < 4) return;
      const a = u.posToVal(u.select.left, "x") * 1000, b = u.posToVal(u.select.left + u.select.width, "x") * 1000;
      u.setSelect({ width: 0, height: 0 }, false);
      show(a, b);
    }] },
  }, score ? [[], [], [], [], []] : [[], [], [], []], plot);
  c.score = score;
  charts.push(c);
}

function zoom(f) { const [a, b] = view, mid = (a + b) / 2, half = ((b - a) * f) / 2; show(mid - half, mid + half); }
function pan(d) { const [a, b] = view, step = ((b - a) / 2) * d; show(a + step, b + step); }

async function showRul(machine) {
  const rows = await getJSON(`/api/rul?machine=${encodeURIComponent(machine)}`);
  const box = document.getElementById("rul");
  for (const r of rows) {
    box.hidden = false;
    if (r.rul_h === null || r.rul_h === undefined) {
      box.append(h("p", { class: "muted" }, `Remaining useful life (${r.model}): ${r.problem}`));
      continue;
    }
    box.dataset.alarm = r.alarm ? "1" : "";
    box.append(h("dl", { "data-model": r.model },
      h("dt", {}, "Remaining useful life"), h("dd", { class: "rul-hours" }, `${Math.round(r.rul_h)} running h (${Math.round(r.low_h)}–${Math.round(r.high_h)})`),
      h("dt", {}, `Failure within ${r.horizon_h} running h`), h("dd", { class: "rul-p" }, pct(r.p_fail)),
      h("dt", {}, "Plan maintenance before"), h("dd", { class: "rul-plan" }, r.plan_before_local ? r.plan_before_local.slice(0, 16).replace("T", " ") : "– (not running)"),
      h("dt", {}, "Since the last wear-out repair"), h("dd", {}, r.age_h === null ? "– (none in the history read)" : `${Math.round(r.age_h)} running h`)),
      h("a", { href: `/machine?path=${encodeURIComponent(machine)}&under=rul` }, "RUL trends"));
  }
}

async function main() {
  const assets = await getJSON("/api/assets");
  const machine = params.get("path") || (assets[0] && assets[0].path);
  if (!machine) { showError("No machines in genba.toml: add [[machine]] entries."); return; }
  document.getElementById("machine-name").textContent = machine;
  showRul(machine).catch((e) => showError(`RUL: ${e.message}`));
  let tags = await getJSON(`/api/tags?pattern=${encodeURIComponent(machine + "/#")}`);
  if (params.get("tag")) tags = tags.filter((t) => t.path.endsWith("/" + params.get("tag")));
  if (params.get("under")) tags = tags.filter((t) => t.path.startsWith(`${machine}/${params.get("under")}/`));
  tags.sort((a, b) => isScore(b.path) - isScore(a.path));  // the anomaly score first
  for (const t of tags) chart(t);
  const newest = Math.max(...tags.map((t) => (t.last ? t.last.ts_ms : 0)), 0) || Date.now();
  const now = (await getJSON("/api/health")).now_ms;  // the node's clock: -15m counts from it
  const askedStart = parseTime(params.get("start"), now), askedEnd = parseTime(params.get("end"), now);
  const end = askedEnd ?? (askedStart !== null ? now : newest + 1), start = askedStart ?? end - 86400e3;
  document.querySelectorAll("[data-zoom]").forEach((b) => b.addEventListener("click", () => zoom(Number(b.dataset.zoom))));
  document.querySelectorAll("[data-pan]").forEach((b) => b.addEventListener("click", () => pan(Number(b.dataset.pan))));
  document.addEventListener("keydown", (e) => {
    if (e.target.closest && e.target.closest("input, select")) return;
    if (e.key === "ArrowLeft") pan(-1); else if (e.key === "ArrowRight") pan(1);
    else if (e.key === "+") zoom(0.5); else if (e.key === "-") zoom(2);
  });
  window.addEventListener("resize", () => charts.forEach((c) => c.chart.setSize({ width: c.el.clientWidth, height: 180 })));
  await show(start, end);
}

main().catch((e) => showError(e.message));
