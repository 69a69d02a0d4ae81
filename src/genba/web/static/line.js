// The line view (?line=site/area/line&start=&end=): state timeline, OEE and its waterfall,
// stop time by reason, the downtime list where an operator assigns reasons, and the cost.
import { getJSON, h, postJSON, pct, showError } from "./common.js";

const COLOURS = { running: "#1a7f37", down: "#b62324", small_stop: "#bc4c00", setup: "#0a58ca",
  starved: "#f2cc60", blocked: "#8250df", idle: "#57606a", planned_stop: "#8c959f", unknown: "#32383f" };
const SVG = "http://www.w3.org/2000/svg";
const params = new URLSearchParams(location.search);
const q = (o) => new URLSearchParams(Object.entries(o).filter(([, v]) => v)).toString();

function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

function gantt(d) {
  const a = Date.parse(d.start), b = Date.parse(d.end);
  document.getElementById("gantt").replaceChildren(...d.machines.map((m) => {
    const s = svg("svg", { viewBox: "0 0 1000 28", preserveAspectRatio: "none", role: "img",
      "aria-label": `state timeline of ${m.machine.split("/").pop()}` });
    for (let i = 0; i < m.state.length; i++) {
      const x = (1000 * (m.start_ms[i] - a)) / (b - a), w = (1000 * (m.end_ms[i] - m.start_ms[i])) / (b - a);
      const r = svg("rect", { x, y: 0, width: Math.max(w, 0.3), height: 28, fill: COLOURS[m.state[i]] || "#444", "data-state": m.state[i] });
      r.append(Object.assign(svg("title"), { textContent: `${m.state[i]} ${new Date(m.start_ms[i]).toISOString().slice(11, 19)}Z` }));
      s.append(r);
    }
    return h("div", { class: "gantt-row", "data-machine": m.machine }, h("span", {}, m.machine.split("/").pop()), s);
  }));
  document.getElementById("legend").replaceChildren(...Object.entries(COLOURS).map(([k, c]) => {
    const sw = h("span"); sw.style.background = c;
    return h("li", {}, sw, k.replace("_", " "));
  }));
}

function bars(el, items, unit, label, colour = "#d9534f") {
  const top = Math.max(...items.map(([, v]) => v), 1e-9);
  const s = svg("svg", { class: "bars", viewBox: `0 0 600 ${items.length * 24 + 4}`, role: "img", "aria-label": label });
  items.forEach(([name, v], i) => {
    s.append(Object.assign(svg("text", { x: 0, y: i * 24 + 16 }), { textContent: name }));
    s.append(svg("rect", { x: 220, y: i * 24 + 4, width: (300 * Math.max(v, 0)) / top, height: 16, fill: colour }));
    s.append(Object.assign(svg("text", { x: 226 + (300 * Math.max(v, 0)) / top, y: i * 24 + 16 }), { textContent: `${v.toFixed(1)} ${unit}` }));
  });
  el.replaceChildren(s);
}

async function downtimeList(line, range, reasons) {
  const stops = await getJSON(`/api/downtime?${q({ asset: line, ...range })}`);
  document.querySelector("#downtime tbody").replaceChildren(...stops.map((st) => {
    const sel = h("select", { "aria-label": `reason for the stop of ${st.machine.split("/").pop()} at ${st.start}` },
      ...reasons.map((r) => { const o = h("option", { value: r.code }, `${r.category} / ${r.name}`); if (r.code === st.reason_code) o.selected = true; return o; }));
    if (!reasons.some((r) => r.code === st.reason_code)) sel.prepend(Object.assign(h("option", { value: st.reason_code }, "unassigned"), { selected: true }));
    sel.addEventListener("change", async () => {
      try { await postJSON(`/api/downtime/${encodeURIComponent(st.id)}/reason`, { code: Number(sel.value) }); await refresh(); }
      catch (e) { showError(e.message); }
    });
    return h("tr", { "data-id": st.id }, h("td", {}, st.machine.split("/").pop()), h("td", {}, st.start.slice(0, 19) + "Z"),
      h("td", {}, st.minutes.toFixed(1)), h("td", {}, st.state), h("td", {}, sel));
  }));
}

let refresh = async () => {};

async function main() {
  const assets = await getJSON("/api/assets");
  const line = params.get("line") || (assets[0] && assets[0].line);
  if (!line) { showError("No machines in genba.toml: add [[machine]] entries."); return; }
  document.getElementById("line-name").textContent = line;
  document.querySelector('nav a[href="/andon"]').href = `/andon?line=${encodeURIComponent(line)}`;
  const range = { start: params.get("start") || "-8h", end: params.get("end") || "" };
  document.getElementById("start").value = range.start;
  document.getElementById("end").value = range.end;
  document.getElementById("range").addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.search = q({ line, start: document.getElementById("start").value, end: document.getElementById("end").value });
  });
  const reasons = (await getJSON("/api/reasons")).filter((r) => r.category !== "schedule");
  refresh = async () => {
    try {
      const [tl, oee, losses, cost] = await Promise.all([
        getJSON(`/api/kpi/timeline?${q({ asset: line, ...range })}`),
        getJSON(`/api/kpi/oee?${q({ asset: line, ...range })}`),
        getJSON(`/api/kpi/losses?${q({ asset: line, ...range })}`),
        getJSON(`/api/kpi/cost?${q({ asset: line, ...range })}`),
      ]);
      gantt(tl);
      const row = oee.rows.find((r) => r.level === "line") || oee.rows[oee.rows.length - 1];
      document.getElementById("tiles").replaceChildren(...["oee", "availability", "performance", "quality", "teep"].map((k) =>
        h("div", { "data-kpi": k }, k, h("b", {}, pct(row[k])))));
      const w = row.waterfall_min;
      bars(document.getElementById("waterfall"),
        [["all time", w.all_time], ["no data", w.unknown], ["not planned", w.not_planned], ["planned", w.planned],
          ["run", w.run], ["net run", w.net_run], ["fully productive", w.fully_productive]]
          .map(([k, v]) => [k, v / 60]), "h", "time waterfall", "#388bfd");
      bars(document.getElementById("pareto"),
        losses.pareto.slice(0, 10).map((p) => [p.reason_code ? `${p.category} / ${p.reason}` : `${p.state.replace("_", " ")} (no reason)`, p.minutes]),
        "min", "stop time by reason");
      const c = cost.rows.find((r) => r.entity === line);
      document.getElementById("cost").replaceChildren(c ? h("dl", { class: "cost" },
        h("dt", {}, "cost per good unit"), h("dd", { "data-kpi": "cost_per_good_unit" }, c.cost_per_good_unit === null ? "–" : `${c.cost_per_good_unit.toFixed(4)} ${cost.currency}`),
        h("dt", {}, "total cost"), h("dd", {}, `${c.total_cost.toFixed(2)} ${cost.currency}`),
        h("dt", {}, "margin"), h("dd", {}, `${c.margin.toFixed(2)} ${cost.currency}`),
        h("dt", {}, "energy"), h("dd", {}, `${c.energy_kwh.toFixed(1)} kWh`)) : "–");
      await downtimeList(line, range, reasons);
      showError("");
    } catch (e) { showError(e.message); }
  };
  await refresh();
  document.body.dataset.ready = "1";
}

main().catch((e) => showError(e.message));
