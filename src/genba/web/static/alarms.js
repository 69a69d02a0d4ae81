// The alarm list (GET /api/alarms every 2 s) with acknowledge and shelve, and the history.
import { fmt, getJSON, h, postJSON, showError } from "./common.js";

const time = (ms) => (ms ? new Date(ms).toISOString().slice(0, 19).replace("T", " ") + "Z" : "–");
const user = () => document.getElementById("user").value;

function action(label, name, verb, body) {
  const b = h("button", { type: "button", "data-action": verb }, label);
  b.addEventListener("click", async () => {
    try {
      await postJSON(`/api/alarms/${name.split("/").map(encodeURIComponent).join("/")}/${verb}`, { user: user(), ...body });
      await refresh();
    } catch (e) { showError(e.message); }
  });
  return b;
}

async function refresh() {
  try {
    const [alarms, history] = await Promise.all([getJSON("/api/alarms"), getJSON("/api/alarms/history?limit=50")]);
    document.querySelector("#alarm-list tbody").replaceChildren(...alarms.map((a) => {
      const acts = [];
      if (a.state === "unack" || a.state === "rtn_unack") acts.push(action("Acknowledge", a.name, "ack", {}));
      if (a.state === "shelved") acts.push(action("Unshelve", a.name, "unshelve", {}));
      else acts.push(action("Shelve 30 min", a.name, "shelve", { minutes: 30 }));
      const text = h("td", { title: a.tag }, a.message || a.name);
      if (a.tag.endsWith("/anomaly/score")) {  // an anomaly model's alarm: what drove the score
        const machine = a.tag.slice(0, -"/anomaly/score".length);
        text.append(" ", h("a", { href: `/machine?path=${encodeURIComponent(machine)}&under=anomaly&start=-24h`, "data-contributions": "" }, "contributions"));
      }
      return h("tr", { "data-alarm": a.name, "data-state": a.state, class: `prio-${a.priority}` },
        h("td", {}, a.priority), text,
        h("td", { class: "state-cell" }, a.state.replace("_", " ") + (a.active ? " · active" : "")),
        h("td", {}, fmt(a.value)), h("td", {}, time(a.since_ms)), h("td", {}, ...acts));
    }));
    document.getElementById("alarm-history").replaceChildren(...history.map((e) =>
      h("li", {}, `${e.time} ${e.alarm}: ${e.event} → ${e.state}${e.user ? ` (${e.user})` : ""}`)));
    showError("");
  } catch (e) { showError(`Alarms: ${e.message}`); }
}

refresh();
setInterval(refresh, 2000);
