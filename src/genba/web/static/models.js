// The model registry (GET /api/models): every trained version, newest first, with what it
// was trained on and its training metrics; each machine links to its anomaly trends.
import { fmt, getJSON, h, pct, showError } from "./common.js";

const time = (ns) => new Date(ns / 1e6).toISOString().slice(0, 16).replace("T", " ") + "Z";

async function main() {
  const versions = (await getJSON("/api/models")).reverse();
  document.querySelector("#model-list tbody").replaceChildren(...versions.map((v) => {
    const used = v.signals.filter((_, i) => v.used[i]);
    const trends = h("a", { href: `/machine?path=${encodeURIComponent(v.machine)}&under=anomaly` }, v.machine);
    return h("tr", { "data-model": `${v.name}/${v.machine}`, "data-version": v.version },
      h("td", {}, v.name), h("td", {}, trends), h("td", {}, String(v.version)), h("td", {}, v.detector),
      h("td", { title: `reads: ${v.signals.join(", ")}` }, used.join(", ")), h("td", {}, v.mode || "–"),
      h("td", {}, `${time(v.trained_from_ns)} – ${time(v.trained_to_ns)}`), h("td", {}, String(v.rows)),
      h("td", {}, fmt(v.metrics.threshold)), h("td", {}, pct(v.metrics.training_alarm_share)),
      h("td", { title: v.sha256 }, v.sha256.slice(0, 12)), h("td", {}, time(v.created_ns)));
  }));
  if (!versions.length) showError("No trained models: add a [[model]] to genba.toml (docs/ai.md); the node trains it once it holds its training days of data.");
  document.body.dataset.ready = "1";
}

main().catch((e) => showError(e.message));
