"""Connector benchmark: points/s end to end through a real Mosquitto, and publish→queryable latency.

A publisher process (paho-mqtt, QoS 0, payloads encoded before the clock starts) sends to a
private Mosquitto on a free port; genba's node (in this process: connector → bus → historian
writer → DuckDB) reads them. A point counts when the historian writer has committed it, i.e.
when a query can return it. Paths:

* ``json, 1 metric/msg``: the MQTT connector, ``{"value": v, "timestamp": ms}`` per message,
  1,000 topics; QoS 0, and QoS 1 (publisher and subscription) with the connector's two
  ``ack`` settings: acknowledged to the broker once stored (the default), or on receipt;
* ``sparkplug, 100 metrics/msg``: the Sparkplug B host; 10 devices × 100 metrics born with
  aliases (Eclipse Tahu's schema from the sparkplug-b-packets package, not genba's encoder),
  DDATA of 100 double metrics by alias;
* ``paho json subscriber`` (baseline): a plain paho-mqtt client that only ``json.loads`` each
  message and counts it: no tags, no store.

Each path is timed from the publisher's first message until the last point is committed (or
received, for the baseline). Then, for latency, the Sparkplug publisher paces messages at
``--latency-rate`` points/s and the time from each publish until its points are committed is
measured (this process polls the writer's count every 2 ms).

Prints Markdown tables: the median of ``--runs`` runs, and the ratio to the baseline.

    python bench/connect.py [--json-messages 100000] [--spb-messages 5000] [--runs 3]
                            [--paths json,sparkplug,baseline] [--latency-rate 300000]
                            [--latency-s 10] (0: no latency run)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

DEVICES = 10
METRICS = int(os.environ.get("GENBA_BENCH_METRICS", "100"))  # --metrics; the publisher inherits it
JSON_TOPICS = 1_000
T0_MS = (int(time.time()) - 3600) * 1000


# -- the publisher (runs as a child process) ----------------------------------------------------
def _payloads(kind: str, n: int) -> list[tuple[str, bytes]]:
    if kind.startswith("json"):
        return [
            (f"bench/d{i % JSON_TOPICS}/v", b'{"value":%d.5,"timestamp":%d}' % (i, T0_MS + i))
            for i in range(n)
        ]
    import sparkplub_b_packets.core.sparkplug_b_pb2 as tahu

    def payload(seq: int, metrics: list[dict[str, object]]) -> bytes:
        p = tahu.Payload(timestamp=T0_MS, seq=seq)
        for m in metrics:
            p.metrics.add(**m)
        return bytes(p.SerializeToString())

    out = [("spBv1.0/bench/NBIRTH/edge", payload(0, [
        {"name": "bdSeq", "datatype": tahu.Int64, "long_value": 0},
        {"name": "Node Control/Rebirth", "datatype": tahu.Boolean, "boolean_value": False},
    ]))]  # fmt: skip
    for d in range(DEVICES):
        metrics = [
            {"name": f"m{k}", "alias": d * METRICS + k, "datatype": tahu.Double,
             "double_value": 0.0, "timestamp": T0_MS}
            for k in range(METRICS)
        ]  # fmt: skip
        out.append((f"spBv1.0/bench/DBIRTH/edge/d{d}", payload(d + 1, metrics)))
    seq = DEVICES + 1
    for i in range(n):
        d = i % DEVICES
        metrics = [
            {"alias": d * METRICS + k, "double_value": i + k / 100, "timestamp": T0_MS + i}
            for k in range(METRICS)
        ]
        out.append((f"spBv1.0/bench/DDATA/edge/d{d}", payload(seq % 256, metrics)))
        seq += 1
    return out


def publisher(kind: str, port: int, n: int, rate_msgs: float, times_file: str) -> None:
    """Publish ``n`` data messages (after the births); print the wall time of the first."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    msgs = _payloads(kind, n)
    births = len(msgs) - n
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{kind}")
    c.max_queued_messages_set(0)
    c.max_inflight_messages_set(1000)  # QoS 1: the publisher is not the bottleneck
    c.connect("127.0.0.1", port)
    c.loop_start()
    for topic, body in msgs[:births]:
        c.publish(topic, body, qos=1).wait_for_publish()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()  # go
    sent = np.zeros(n, dtype=np.int64)
    qos = 1 if kind == "json-qos1" else 0
    marks: list[mqtt.MQTTMessageInfo] = []
    t0 = time.perf_counter()
    sys.stdout.write(f"{time.time_ns()}\n")
    sys.stdout.flush()
    for i, (topic, body) in enumerate(msgs[births:]):
        if rate_msgs:
            ahead = t0 + i / rate_msgs - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        sent[i] = time.time_ns()
        info = c.publish(topic, body, qos=qos)
        if qos and i % 1000 == 0:  # paho's message ids wrap at 65,535: stay well below
            marks.append(info)
            if len(marks) > 30:
                marks.pop(0).wait_for_publish(60)
    info.wait_for_publish(60)  # all written to the broker
    if times_file:
        np.save(times_file, sent)
    c.disconnect()
    c.loop_stop()


class Publisher:
    def __init__(self, kind: str, port: int, n: int, rate_msgs: float = 0.0, times: str = ""):
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--publisher", kind, str(port), str(n), str(rate_msgs),
             times or "-"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout
        assert self.proc.stdin
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the publisher did not start")

    def go(self) -> int:
        """Start publishing; the wall time (ns) of the first message."""
        assert self.proc.stdout
        assert self.proc.stdin
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def wait(self) -> None:
        self.proc.wait(120)


# -- genba's side ---------------------------------------------------------------------------------
def _config(kind: str, port: int, options: str) -> str:
    if kind.startswith("json"):
        return f"""
[[connector]]
kind = "mqtt"
name = "uns"
port = {port}
topics = ["bench/#"]
qos = {1 if kind == "json-qos1" else 0}
clean_session = true
{options}
"""
    return f"""
[[connector]]
kind = "sparkplug"
name = "spb"
port = {port}
group = "bench"
"""


async def _genba(
    kind: str,
    port: int,
    n_points: int,
    make_publisher: Callable[[], Publisher],
    d: Path,
    options: str,
) -> tuple[float, list[tuple[int, int]]]:
    """Run a node until ``n_points`` are committed; (seconds, [(wall ns, committed)...])."""
    from genba.config import parse_config
    from genba.node import Node

    path = d / "genba.toml"
    path.write_text(
        f'[node]\nname = "bench"\ndata_dir = "{d}/data"\n' + _config(kind, port, options)
    )
    config = parse_config(path.read_text()).with_source(path)
    node = Node(config)
    running = asyncio.create_task(node.run())
    try:
        ctx = node.connectors[0][1]
        deadline = time.monotonic() + 10
        while not ctx.health.connected:
            await asyncio.sleep(0.01)
            if time.monotonic() > deadline:
                raise RuntimeError("genba did not connect")
        publish = await asyncio.to_thread(make_publisher)  # it sends the births, if any
        if kind == "sparkplug":
            births = DEVICES * METRICS
            while node.writer.stats.stored_samples < births:  # noqa: ASYNC110 - a counter
                await asyncio.sleep(0.01)
        base = node.writer.stats.stored_samples
        trace: list[tuple[int, int]] = []
        t_first = await asyncio.to_thread(publish.go)
        stats = node.writer.stats
        deadline = time.monotonic() + 120
        while stats.stored_samples - base < n_points:
            trace.append((time.time_ns(), stats.stored_samples - base))
            await asyncio.sleep(0.002)
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"only {stats.stored_samples - base} of {n_points} points arrived"
                )
        t_end = time.time_ns()
        trace.append((t_end, stats.stored_samples - base))
    finally:
        node.stop()
        await running
    await asyncio.to_thread(publish.wait)
    return (t_end - t_first) / 1e9, trace


def run_genba(
    kind: str, port: int, n_msgs: int, rate_msgs: float = 0.0, options: str = ""
) -> tuple[float, np.ndarray | None]:
    """Seconds until every point is committed; with ``rate_msgs``, each message's latency.
    ``options``: more settings of the MQTT connector (TOML lines)."""
    per = 1 if kind.startswith("json") else METRICS
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        times = d / "sent.npy"

        def pub() -> Publisher:
            return Publisher(kind, port, n_msgs, rate_msgs, str(times) if rate_msgs else "")

        seconds, trace = asyncio.run(_genba(kind, port, n_msgs * per, pub, d, options))
        return seconds, latencies(np.load(times), trace, per) if rate_msgs else None


def latencies(sent: np.ndarray, trace: list[tuple[int, int]], per: int) -> np.ndarray:
    """Seconds from each message's publish until the first poll that saw its points stored."""
    wall = np.array([t for t, _ in trace], dtype=np.int64)
    count = np.array([c for _, c in trace], dtype=np.int64)
    need = (np.arange(len(sent)) + 1) * per  # points stored in publish order
    first = np.searchsorted(np.maximum.accumulate(count), need)
    return np.asarray((wall[np.minimum(first, len(wall) - 1)] - sent) / 1e9)


def run_baseline(port: int, n_msgs: int, qos: int = 0, kind: str = "json") -> float:
    """A plain paho-mqtt subscriber that decodes each JSON message and counts it (with
    ``qos`` 1 the publisher and the subscription are QoS 1; paho acknowledges on receipt).
    With ``kind`` "sparkplug" it counts the DDATA messages of the Sparkplug publisher and
    decodes none: the most the publisher and broker carry here."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    got = 0
    done = threading.Event()

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal got
        if kind == "json":
            json.loads(msg.payload)
        elif "/DDATA/" not in msg.topic:
            return  # a birth, sent before the clock starts
        got += 1
        if got >= n_msgs:
            done.set()

    subscribed = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-baseline-{qos}")
    c.on_message = on_message
    c.on_subscribe = lambda *a: subscribed.set()
    c.connect("127.0.0.1", port)
    c.subscribe("bench/#" if kind == "json" else "spBv1.0/#", qos=qos)
    c.loop_start()
    subscribed.wait(10)
    pub = Publisher(kind if kind != "json" else "json-qos1" if qos else "json", port, n_msgs)
    t_first = pub.go()
    if not done.wait(120):
        raise RuntimeError(f"the baseline received only {got} of {n_msgs}")
    t_end = time.time_ns()
    c.loop_stop()
    c.disconnect()
    pub.wait()
    return (t_end - t_first) / 1e9


def median_of(runs: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(runs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--json-messages", type=int, default=100_000, help="JSON messages per run")
    ap.add_argument("--spb-messages", type=int, default=5_000, help="Sparkplug DDATA per run")
    ap.add_argument("--runs", type=int, default=3, help="runs per path (median reported)")
    ap.add_argument("--latency-rate", type=float, default=150_000, help="points/s, paced")
    ap.add_argument("--latency-s", type=float, default=10.0, help="seconds of paced publishing")
    ap.add_argument("--metrics", type=int, default=METRICS, help="Sparkplug metrics a message")
    ap.add_argument(
        "--paths",
        default="json,json5,qos1,qos1-received,sparkplug,baseline,baseline-qos1,baseline-sparkplug",
        help="throughput paths to run, comma-separated (empty: none)",
    )
    ap.add_argument("--publisher", nargs=5, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.metrics != METRICS:  # the publisher is a child process: it reads the environment
        os.environ["GENBA_BENCH_METRICS"] = str(a.metrics)
        os.execv(sys.executable, [sys.executable, *sys.argv])
    if a.publisher:
        kind, port, n, rate, times = a.publisher
        publisher(kind, int(port), int(n), float(rate), "" if times == "-" else times)
        return

    from genba.testing import Mosquitto

    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp))
        broker.start()
        try:
            port = broker.port
            paths = {
                "json": ("json, 1 metric/msg, MQTT 3.1.1", a.json_messages,
                         lambda: run_genba("json", port, a.json_messages)[0]),
                "json5": ("json, 1 metric/msg, MQTT 5", a.json_messages,
                          lambda: run_genba("json", port, a.json_messages,
                                            options='protocol = "5"')[0]),
                "qos1": ("json, 1 metric/msg, QoS 1, ack when stored", a.json_messages,
                         lambda: run_genba("json-qos1", port, a.json_messages)[0]),
                "qos1-received": ("json, 1 metric/msg, QoS 1, ack when received",
                                  a.json_messages,
                                  lambda: run_genba("json-qos1", port, a.json_messages,
                                                    options='ack = "received"')[0]),
                "sparkplug": (f"sparkplug, {METRICS} metrics/msg", a.spb_messages * METRICS,
                              lambda: run_genba("sparkplug", port, a.spb_messages)[0]),
                "baseline": ("paho json subscriber (baseline)", a.json_messages,
                             lambda: run_baseline(port, a.json_messages)),
                "baseline-qos1": ("paho json subscriber, QoS 1", a.json_messages,
                                  lambda: run_baseline(port, a.json_messages, qos=1)),
                "baseline-sparkplug": (f"paho subscriber counting the Sparkplug DDATA, "
                                       f"{METRICS} metrics/msg", a.spb_messages * METRICS,
                                       lambda: run_baseline(port, a.spb_messages,
                                                            kind="sparkplug")),
            }  # fmt: skip
            chosen = [p for p in a.paths.split(",") if p]
            unknown = sorted(set(chosen) - set(paths))
            if unknown:
                raise SystemExit(f"--paths: unknown {unknown}; choose from {sorted(paths)}")
            rows = [(n, pts, median_of(a.runs, fn)) for n, pts, fn in (paths[p] for p in chosen)]
            lat_s = None
            if a.latency_s > 0:
                rate_msgs = a.latency_rate / METRICS
                _, lat_s = run_genba("sparkplug", port, int(rate_msgs * a.latency_s), rate_msgs)
        finally:
            broker.stop()

    base = next((pts / secs for n, pts, secs in rows if n.endswith("(baseline)")), None)
    # the JSON baseline; the Sparkplug paths read against the Sparkplug one when it ran
    if rows:
        print(f"\nend to end through Mosquitto, median of {a.runs} runs")
        print("| path | points | median s | points/s | × baseline |")
        print("|---|---:|---:|---:|---:|")
    for name, points, secs in rows:
        rate = points / secs
        ratio = f"{rate / base:.2f}" if base else "–"
        print(f"| {name} | {points:,} | {secs:.3f} | {rate:,.0f} | {ratio} |")
    if lat_s is None:
        return
    lat = lat_s * 1000
    print(
        f"\nsparkplug publish → queryable at {a.latency_rate:,.0f} points/s for {a.latency_s:g} s"
    )
    print("| messages | p50 ms | p90 ms | p99 ms | max ms |")
    print("|---:|---:|---:|---:|---:|")
    p50, p90, p99 = np.percentile(lat, [50, 90, 99])
    print(f"| {len(lat):,} | {p50:.0f} | {p90:.0f} | {p99:.0f} | {lat.max():.0f} |")


if __name__ == "__main__":
    main()
