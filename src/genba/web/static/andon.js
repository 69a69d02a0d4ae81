// The andon board of one line (?line=site/area/line, default the first): a tile per machine
// coloured by its state (live over the WebSocket), its product, count against target and OEE
// this shift (from /api/kpi, every 10 s), its most urgent alarm (/api/alarms, every 3 s) and,
// where a [[rul]] model estimates it, the date to plan its maintenance before (/api/rul, every
// minute).
// A tile never shows a state nobody vouches for: a stale mark (the source is gone) makes it
// STALE, and a sample older than the machine's max_gap_s makes it NO DATA, the moment the
// KPIs count the time as unknown; a lost connection to the node greys the whole board.
import { STATES, clock, getJSON, h, hhmmss, live, pct, showError } from "./common.js";

const PRIORITY = { urgent: 3, high: 2, medium: 1, low: 0 };
const tiles = new Map();   // machine path -> tile element
let products = new Map();  // product code -> name

function tile(path) {
  if (tiles.has(path)) return tiles.get(path);
  const name = path.split("/").pop();
  const el = h("article", { class: "tile", "data-machine": path, "data-state": "unknown", tabindex: "0" },
    h("h2", {}, name),
    h("div", { class: "tile-state" }, "no data"),
    h("dl", {},
      h("dt", {}, "Product"), h("dd", { class: "product" }, "–"),
      h("dt", {}, "Count / target"), h("dd", { class: "count" }, "–"),
      h("dt", {}, "OEE this shift"), h("dd", { class: "oee" }, "–"),
      h("dt", { class: "rul", hidden: "" }, "Plan maintenance before"), h("dd", { class: "rul", hidden: "" }, "–")),
    h("div", { class: "alarm", role: "alert" }));
  el.querySelector(".alarm").hidden = true;
  el.setAttribute("aria-label", `${name}: no data`);
  document.getElementById("board").append(el);
  tiles.set(path, el);
  return el;
}

function show(el, state, text) {
  el.dataset.state = state;
  el.querySelector(".tile-state").textContent = text;
  el.setAttribute("aria-label", `${el.querySelector("h2").textContent}: ${text}`);
}

function setState(el, code, ts_ms, quality = 0) {
  el.dataset.ts = ts_ms;
  el.dataset.code = code;
  if (quality >= 2 || code === null) show(el, "stale", `stale since ${hhmmss(ts_ms)}`);
  else {
    const s = STATES[code] || "unknown";
    show(el, s, s.replace("_", " "));
  }
}

// max_gap_s: a machine that sends cyclically is unknown once its state is older than that.
function watchGaps() {
  for (const el of tiles.values()) {
    const gap = Number(el.dataset.maxGap || 0), ts = Number(el.dataset.ts || 0);
    if (!gap || !ts || el.dataset.state === "stale") continue;
    const old = clock.now() - ts > gap * 1000;
    if (old && el.dataset.state !== "no_data") show(el, "no_data", `no data since ${hhmmss(ts + gap * 1000)}`);
    else if (!old && el.dataset.state === "no_data") setState(el, Number(el.dataset.code), ts);
  }
}

function onSamples(msg, idToPath) {
  const newest = new Map();
  for (let i = 0; i < msg.tag.length; i++) {
    const path = idToPath.get(msg.tag[i]);
    if (!path) continue;
    const prev = newest.get(path);
    if (prev === undefined || msg.ts_ms[i] >= msg.ts_ms[prev]) newest.set(path, i);
  }
  for (const [path, i] of newest) {
    const machine = path.split("/").slice(0, 4).join("/"), name = path.split("/").pop();
    const el = tiles.get(machine);
    if (!el) continue;
    if (name === "state") setState(el, msg.value[i], msg.ts_ms[i], msg.quality[i]);
    else if (name === "product") el.querySelector(".product").textContent = msg.value[i] === null ? "–" : products.get(msg.value[i]) || String(msg.value[i]);
  }
}

let by = "shift";  // a 24/7 line (no shifts in its calendar) counts by day

async function refreshKpis(line) {
  try {
    const q = (kind) => getJSON(`/api/kpi/${kind}?asset=${encodeURIComponent(line)}&by=${by}&start=${by === "shift" ? "-12h" : "-24h"}`);
    let oee, rel;
    try {
      [oee, rel] = await Promise.all([q("oee"), q("reliability")]);
    } catch (e) {
      if (by !== "shift" || !/no shifts/.test(e.message)) throw e;
      by = "day";
      [oee, rel] = await Promise.all([q("oee"), q("reliability")]);
    }
    const last = (rows) => {
      const period = rows.length ? rows[rows.length - 1].period : null;
      return new Map(rows.filter((r) => r.period === period).map((r) => [r.entity, r]));
    };
    const o = last(oee.rows), r = last(rel.rows);
    const any = oee.rows.length ? oee.rows[oee.rows.length - 1] : null;
    document.getElementById("shift").textContent = any ? `· ${by} ${any.period}` : "";
    for (const [path, el] of tiles) {
      const k = o.get(path), c = r.get(path);
      el.querySelector(".oee").textContent = k ? pct(k.oee) : "–";
      el.querySelector(".count").textContent = c && c.target !== null
        ? `${Math.round(c.count).toLocaleString()} / ${Math.round(c.target).toLocaleString()}` : "–";
    }
    showError("");
  } catch (e) { showError(`KPIs: ${e.message}`); }
}

async function refreshAlarms() {
  try {
    const alarms = (await getJSON("/api/alarms")).filter((a) => a.state !== "normal" && a.state !== "shelved");
    for (const [path, el] of tiles) {
      const mine = alarms.filter((a) => a.tag.startsWith(path + "/"))
        .sort((a, b) => PRIORITY[b.priority] - PRIORITY[a.priority]);
      const box = el.querySelector(".alarm");
      box.hidden = !mine.length;
      box.textContent = mine.length ? `⚠ ${mine[0].priority}: ${mine[0].message || mine[0].name}` : "";
      el.dataset.alarm = mine.length ? mine[0].name : "";
    }
  } catch (e) { showError(`Alarms: ${e.message}`); }
}

async function refreshRul() {
  try {
    for (const r of await getJSON("/api/rul")) {
      const el = tiles.get(r.machine);
      if (!el) continue;
      el.querySelectorAll(".rul").forEach((x) => { x.hidden = false; });
      const dd = el.querySelector("dd.rul");
      dd.textContent = r.plan_before_local ? r.plan_before_local.slice(0, 16).replace("T", " ") : r.rul_h !== null && r.rul_h !== undefined ? "not running" : "–";
      dd.title = r.problem || `${Math.round(r.rul_h)} running h left (${Math.round(r.low_h)}–${Math.round(r.high_h)}), p(fail in ${r.horizon_h} h) ${pct(r.p_fail)}`;
      el.dataset.rulAlarm = r.alarm ? "1" : "";
    }
  } catch (e) { showError(`RUL: ${e.message}`); }
}

async function main() {
  const assets = await getJSON("/api/assets");
  const line = new URLSearchParams(location.search).get("line") || (assets[0] && assets[0].line);
  if (!line) { showError("No machines in genba.toml: add [[machine]] entries."); return; }
  document.getElementById("line-name").textContent = line;
  products = new Map((await getJSON("/api/products")).map((p) => [p.code, p.name]));
  for (const m of assets.filter((a) => a.line === line)) {
    const el = tile(m.path);
    if (m.max_gap_s) el.dataset.maxGap = m.max_gap_s;
  }
  const last = await getJSON(`/api/tags?pattern=${encodeURIComponent(line + "/+/+")}`);
  for (const t of last) {
    if (!t.last) continue;
    const machine = t.path.split("/").slice(0, 4).join("/"), name = t.path.split("/").pop();
    const el = tiles.get(machine);
    if (el && name === "state") setState(el, t.last.value, t.last.ts_ms, t.last.quality);
    if (el && name === "product") el.querySelector(".product").textContent = products.get(t.last.value) || String(t.last.value);
  }
  live(`${line}/+/+`, onSamples);
  setInterval(watchGaps, 1000);
  refreshKpis(line); setInterval(() => refreshKpis(line), 10000);
  refreshAlarms(); setInterval(refreshAlarms, 3000);
  refreshRul(); setInterval(refreshRul, 60000);
}

main().catch((e) => showError(e.message));
