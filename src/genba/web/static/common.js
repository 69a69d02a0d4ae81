// Shared by the dashboard pages: JSON fetch with genba's error shape, safe DOM building,
// number formatting, machine state names, and the live WebSocket with reconnect.

// genba.states.MachineState codes
export const STATES = { 1: "running", 2: "idle", 3: "starved", 4: "blocked", 5: "planned_stop", 6: "setup", 7: "down", 8: "small_stop" };

export async function getJSON(url, options = {}) {
  const r = await fetch(url, options);
  const body = await r.json();
  if (!r.ok) throw new Error(body.error ? body.error.message : r.statusText);
  return body;
}

export function postJSON(url, data) {
  return getJSON(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(data) });
}

export function showError(msg) {
  const el = document.getElementById("error");
  el.textContent = msg;
  el.hidden = !msg;
}

export function fmt(v) {
  if (v === null || v === undefined) return "–";
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a >= 1000 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}

export function pct(v) { return v === null || v === undefined ? "–" : `${(100 * v).toFixed(1)} %`; }

// Build DOM with textContent only: tag paths and descriptions can come from devices.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v; else if (k.startsWith("data-")) el.dataset[k.slice(5)] = v; else el.setAttribute(k, v);
  }
  for (const c of children) el.append(c);
  return el;
}

export function pathURL(path) { return path.split("/").map(encodeURIComponent).join("/"); }

// The live stream of samples matching `pattern`; calls onSamples(msg) with paths resolved.
// The node's clock minus this browser's, from the last heartbeat (ms).
export const clock = { offset_ms: 0, now: () => Date.now() + clock.offset_ms };
const SILENT_MS = 6000;  // three missed heartbeats (the node sends one every 2 s): not live

// Whether the page is live: body[data-live] and the status text say it on every page, so a
// screen never shows old values as if they were current.
function setLive(on, since) {
  const dot = document.getElementById("conn"), text = document.getElementById("conn-text");
  document.body.dataset.live = on ? "true" : "false";
  if (dot) dot.classList.toggle("on", on);
  if (text) text.textContent = on ? "live" : `NOT LIVE: no connection to the node since ${hhmmss(since)}`;
}

export function hhmmss(ms) { return new Date(ms).toLocaleTimeString([], { hour12: false }); }

export function live(pattern, onSamples, delay = 500, lostSince = null) {
  const idToPath = new Map();
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${proto}://${location.host}/ws/live?pattern=${encodeURIComponent(pattern)}`);
  let heard = Date.now(), lost = lostSince, retried = false;
  const retry = () => {
    if (retried) return;
    retried = true;
    clearInterval(watch);
    lost = lost || heard;
    setLive(false, lost);
    setTimeout(() => live(pattern, onSamples, Math.min(delay * 2, 10000), lost), delay);
  };
  // A node that hangs or a network that drops packets closes nothing: watch the heartbeat.
  const watch = setInterval(() => { if (Date.now() - heard > SILENT_MS) { ws.close(); retry(); } }, 1000);
  ws.onopen = () => { heard = Date.now(); delay = 500; };
  ws.onmessage = (ev) => {
    heard = Date.now();
    const msg = JSON.parse(ev.data);
    if (msg.type === "hello" || msg.type === "samples") {
      for (const [id, path] of Object.entries(msg.tags || {})) idToPath.set(Number(id), path);
    }
    if (msg.type === "hello") { lost = null; setLive(true); }
    if (msg.type === "heartbeat") clock.offset_ms = msg.now_ms - Date.now();
    if (msg.type === "samples") onSamples(msg, idToPath);
    else if (msg.type === "error") showError(msg.error.message);
  };
  ws.onclose = retry;
}

const UNIT_MS = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 };

// A time as the API reads it (genba.timeparse): ISO 8601 (no zone: UTC), epoch ms, "now", or
// relative to now (-15m, now-2h, now+1d); null for none. Relative times count from now.
export function parseTime(text, nowMs) {
  if (text === null || text === undefined || text.trim() === "") return null;
  const t = text.trim();
  if (t === "now") return nowMs;
  if (/^-?[0-9]+$/.test(t)) return Number(t);
  const m = t.match(/^(?:now)?\s*([+-])\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/);
  if (m) return nowMs + (m[1] === "-" ? -1 : 1) * Number(m[2]) * UNIT_MS[m[3]];
  const iso = Date.parse(/(z|[+-]\d\d:?\d\d)$/i.test(t) ? t : t + "Z");
  if (!Number.isNaN(iso)) return iso;
  throw new Error(`Cannot read the time '${text}': use ISO 8601, epoch ms, 'now' or a time relative to now such as -15m.`);
}
