// The model registry (GET /api/models): every trained version, newest first, with what it
// was trained on, its training metrics and whether it is the one in service; each machine
// links to its trends. Below, the champion/challenger history (GET /api/models/decisions):
// each new version, whether it replaced the one in service, and the evidence. A version not
// in service can be pinned, and a pinned machine rolled back (POST /api/models/{name}/...).
import { fmt, getJSON, h, pct, postJSON, showError } from "./common.js";

const time = (ns) => new Date(ns / 1e6).toISOString().slice(0, 16).replace("T", " ") + "Z";

async function main() {
  const versions = (await getJSON("/api/models")).reverse();
  document.querySelector("#model-list tbody").replaceChildren(...versions.map((v) => {
    const used = v.signals.filter((_, i) => v.used[i]);
    const trends = h("a", { href: `/machine?path=${encodeURIComponent(v.machine)}&under=${v.detector === "rul" ? "rul" : "anomaly"}` }, v.machine);
    const serve = v.in_service ? h("strong", {}, "in service")
      : h("button", { type: "button", "data-pin": "" }, "pin");
    if (!v.in_service) serve.addEventListener("click", () => act(`/api/models/${encodeURIComponent(v.name)}/pin`, { machine: v.machine, version: v.version, note: "pinned on the models page" }));
    return h("tr", { "data-model": `${v.name}/${v.machine}`, "data-version": v.version, "data-serving": v.in_service ? "1" : "" },
      h("td", {}, v.name), h("td", {}, trends), h("td", {}, String(v.version)), h("td", {}, serve), h("td", {}, v.detector),
      h("td", { title: `reads: ${v.signals.join(", ")}` }, used.join(", ")), h("td", {}, v.mode || "–"),
      h("td", {}, `${time(v.trained_from_ns)} – ${time(v.trained_to_ns)}`), h("td", {}, String(v.rows)),
      h("td", {}, fmt(v.metrics.threshold)), h("td", {}, pct(v.metrics.training_alarm_share)),
      h("td", { title: v.sha256 }, v.sha256.slice(0, 12)), h("td", {}, time(v.created_ns)));
  }));
  const decisions = (await getJSON("/api/models/decisions")).reverse();
  document.querySelector("#decisions tbody").replaceChildren(...decisions.map((d) => h("tr", { "data-model": `${d.name}/${d.machine}`, "data-challenger": d.challenger, "data-promoted": d.promoted ? "1" : "" },
    h("td", {}, time(d.created_ns)), h("td", {}, d.name), h("td", {}, d.machine),
    h("td", {}, d.champion === null ? "–" : String(d.champion)), h("td", {}, String(d.challenger)),
    h("td", {}, d.promoted ? "promoted" : "kept champion"), h("td", {}, d.metric || "–"),
    h("td", {}, fmt(d.champion_loss)), h("td", {}, fmt(d.challenger_loss)),
    h("td", {}, d.ci_low === null ? "–" : `${fmt(d.ci_low)} … ${fmt(d.ci_high)}`), h("td", {}, d.reason))));
  if (!versions.length) showError("No trained models: add a [[model]] to genba.toml (docs/ai.md); the node trains it once it holds its training days of data.");
  document.body.dataset.ready = "1";
}

async function act(url, body) {
  try { await postJSON(url, body); await main(); } catch (e) { showError(e.message); }
}

main().catch((e) => showError(e.message));
