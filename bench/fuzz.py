"""Fuzz benchmark: random and mutated payloads thrown at each decoder a node exposes.

Four decoders, each through the code a running node uses, in-process:

* ``json``: MQTT JSON payloads (``MqttConnector.handle``; topics mutated too);
* ``sparkplug``: Sparkplug B births, data and deaths (``SparkplugConnector.handle``);
* ``csv`` and ``arrow``: ``POST /api/ingest`` bodies (``genba.node.ingest``).

Each payload is, one time in ten, random bytes of random length; otherwise a valid payload
from a small corpus with one to four mutations (bit flips, interesting bytes, inserted,
deleted or duplicated spans, truncation, splices with another payload, extreme numbers,
control characters and broken UTF-8 in names). The corpus itself, unmutated, is the baseline,
measured in the same run: the ratio says what hostile input costs against valid input.

Reported per decoder: payloads/s, dead letters (payloads or rows refused with their reason;
for ingest, whole bodies refused with 400 count here too), **escapes** (an exception out of
the decoder: in a node, a connector restart or an HTTP 500; must be 0), faults the Sparkplug
guard caught (a bug that would have been an escape), tags created, and whether a valid
payload after the storm still decodes. Medians of ``--runs`` runs.

    python bench/fuzz.py [--payloads 1000000] [--runs 1] [--decoders json,sparkplug,csv,arrow]
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.ipc as paipc

from genba.bus import Bus
from genba.clock import RealClock
from genba.config import GenbaConfig
from genba.connectors import ConnectorContext
from genba.connectors._base import ConnectorHealth
from genba.connectors._gather import Pending
from genba.connectors.mqtt import MqttConnector, MqttSettings
from genba.connectors.sparkplug import SparkplugConnector, SparkplugSettings
from genba.deadletter import DeadLetters
from genba.errors import QueryError
from genba.node import ingest
from genba.sparkplug import DataType, encode
from genba.tags import TagRegistry

NOW_MS = int(time.time() * 1000)
INTERESTING = [0, 0xFF, 0x7F, 0x80, 0xC3, 0x22, 0x2C, 0x0A, 0x7B, 0x7D, 0x5B, 0x5D, 0x2F, 0x23]
EXTREMES = [b"1e309", b"-1e309", b"NaN", b"-0", b"99999999999999999999999", b"1e-400", b"\xc3("]


@dataclass
class Outcome:
    payloads: int = 0
    dead_letters: int = 0
    escapes: int = 0
    guarded: int = 0
    tags: int = 0
    seconds: float = 0.0
    valid_after: bool = False
    first_escape: str = ""


def _flip(rng: random.Random, b: bytearray, corpus: list[bytes]) -> bytearray:
    if b:
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    return b


def _interesting(rng: random.Random, b: bytearray, corpus: list[bytes]) -> bytearray:
    if b:
        b[rng.randrange(len(b))] = rng.choice(INTERESTING)
    return b


def _insert(rng: random.Random, b: bytearray, corpus: list[bytes]) -> bytearray:
    i = rng.randint(0, len(b))
    b[i:i] = rng.randbytes(rng.randint(1, 16))
    return b


def _delete(rng: random.Random, b: bytearray, corpus: list[bytes]) -> bytearray:
    if b:
        i = rng.randrange(len(b))
        del b[i : i + rng.randint(1, 16)]
    return b


def _repeat(rng: random.Random, b: bytearray, corpus: list[bytes]) -> bytearray:
    if b:
        i = rng.randrange(len(b))
        b[i:i] = b[i : i + rng.randint(1, 32)] * rng.randint(1, 8)
    return b


def _truncate(rng: random.Random, b: bytearray, corpus: list[bytes]) -> bytearray:
    if b:
        del b[rng.randrange(len(b)) :]
    return b


def _splice(rng: random.Random, b: bytearray, corpus: list[bytes]) -> bytearray:
    other = rng.choice(corpus)
    return b[: rng.randint(0, len(b))] + bytearray(other[rng.randint(0, len(other)) :])


def _extreme(rng: random.Random, b: bytearray, corpus: list[bytes]) -> bytearray:
    i = rng.randint(0, len(b))
    b[i:i] = rng.choice(EXTREMES)
    return b


def _control(rng: random.Random, b: bytearray, corpus: list[bytes]) -> bytearray:
    i = rng.randint(0, len(b))
    b[i:i] = rng.choice([b"\x00", b"\x1b[", b"\xff\xfe", b"\xed\xa0\x80", "³".encode()])
    return b


MUTATIONS = [_flip, _interesting, _insert, _delete, _repeat, _truncate, _splice, _extreme, _control]


def mutate(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    """``data`` with one to four random mutations."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        b = rng.choice(MUTATIONS)(rng, b, corpus)
    return bytes(b)


def payloads(rng: random.Random, corpus: list[bytes], n: int) -> list[bytes]:
    out = []
    for _ in range(n):
        if rng.random() < 0.1:
            out.append(rng.randbytes(rng.randint(0, 256)))
        else:
            out.append(mutate(rng, rng.choice(corpus), corpus))
    return out


def _context() -> tuple[ConnectorContext, DeadLetters]:
    dead = DeadLetters(None)
    config = GenbaConfig.model_validate({})
    bus = Bus(TagRegistry())
    ctx = ConnectorContext(
        "fuzz", config, bus, RealClock(), ConnectorHealth("fuzz", "fuzz"), dead_letters=dead
    )
    return ctx, dead


# -- JSON over MQTT -----------------------------------------------------------------------
JSON_CORPUS = [
    b"21.5", b"true", b"-3", b'{"value": 1.5}',
    b'{"value": 2, "timestamp": %d, "quality": 0}' % NOW_MS,
    b'{"temp": 20.1, "rpm": 1500, "timestamp": "2026-01-05T00:00:00Z"}',
    b'[{"timestamp": %d, "value": 1}, {"timestamp": %d, "value": 2}]' % (NOW_MS - 1, NOW_MS),
    b"[[%d, 3.5], [%d, 4.5]]" % (NOW_MS - 1, NOW_MS),
]  # fmt: skip
TOPICS = ["plant/a/l/m/temp", "plant/a/l/m", "plant/a/l/m/speed"]


def run_json(items: list[bytes], rng: random.Random, mutated: bool) -> Outcome:
    ctx, dead = _context()
    conn = MqttConnector(MqttSettings(topics=["plant/#"]), ctx)
    topics = [
        mutate(rng, t.encode(), [x.encode() for x in TOPICS]).decode("utf-8", "replace")
        if mutated and rng.random() < 0.3
        else rng.choice(TOPICS)
        for t in (rng.choice(TOPICS) for _ in items)
    ]
    out = Outcome(payloads=len(items))
    t0 = time.perf_counter()
    for k, (topic, p) in enumerate(zip(topics, items, strict=True)):
        try:
            conn.handle(topic, p)
            if k % 100 == 99:  # what the connector's flush does: a crash there is a restart
                conn._pending.take()
        except Exception as e:
            out.escapes += 1
            out.first_escape = out.first_escape or f"{type(e).__name__}: {e}"
            conn._pending = Pending()  # as a restarted connector would start
    out.seconds = time.perf_counter() - t0
    conn._pending.take()
    conn.handle("plant/a/l/m/after", b"7.25")
    batch = conn._pending.take()
    out.valid_after = batch is not None and batch.values.tolist() == [7.25]
    out.dead_letters = sum(dead.counts.values())
    out.tags = len(ctx.bus.registry)
    return out


# -- Sparkplug B ----------------------------------------------------------------------------
def _metric(name: str, alias: int, dtype: DataType, **value: object) -> dict[str, object]:
    return {"name": name, "alias": alias, "datatype": int(dtype), "timestamp": NOW_MS} | value


SPB = [
    ("spBv1.0/g/NBIRTH/e", encode(timestamp=NOW_MS, seq=0, metrics=[
        _metric("bdSeq", 0, DataType.Int64, long_value=1),
        _metric("press/force", 1, DataType.Double, double_value=12.5),
        _metric("press/count", 2, DataType.UInt32, int_value=7),
        _metric("press/running", 3, DataType.Boolean, boolean_value=True),
    ])),
    ("spBv1.0/g/NDATA/e", encode(timestamp=NOW_MS, seq=1, metrics=[
        {"alias": 1, "datatype": int(DataType.Double), "double_value": 13.0, "timestamp": NOW_MS},
        {"alias": 2, "datatype": int(DataType.UInt32), "int_value": 8, "timestamp": NOW_MS},
    ])),
    ("spBv1.0/g/DBIRTH/e/d", encode(timestamp=NOW_MS, seq=2, metrics=[
        _metric("temp", 10, DataType.Float, float_value=20.5),
    ])),
    ("spBv1.0/g/DDATA/e/d", encode(timestamp=NOW_MS, seq=3, metrics=[
        {"alias": 10, "datatype": int(DataType.Float), "float_value": 21.0, "timestamp": NOW_MS},
    ])),
    ("spBv1.0/g/NDEATH/e", encode(timestamp=NOW_MS, metrics=[
        _metric("bdSeq", 0, DataType.Int64, long_value=1),
    ])),
]  # fmt: skip


def run_sparkplug(items: list[bytes], rng: random.Random, mutated: bool) -> Outcome:
    ctx, dead = _context()
    conn = SparkplugConnector(SparkplugSettings(), ctx)
    spb_topics = [t for t, _ in SPB]
    topics = [
        mutate(rng, t.encode(), [x.encode() for x in spb_topics]).decode("utf-8", "replace")
        if mutated and rng.random() < 0.2
        else t
        for t in (rng.choice(spb_topics) for _ in items)
    ]
    out = Outcome(payloads=len(items))
    t0 = time.perf_counter()
    for k, (topic, p) in enumerate(zip(topics, items, strict=True)):
        before = dead.counts["fuzz"]
        try:
            conn.handle(topic, p)
        except Exception as e:
            out.escapes += 1
            out.first_escape = out.first_escape or f"{type(e).__name__}: {e}"
        if dead.counts["fuzz"] > before and dead.recent(limit=1)[0]["reason"].startswith(
            "cannot use this message"
        ):
            out.guarded += 1
        if k % 100 == 99:
            try:  # what the connector's flush does: a crash there is a restart
                conn._pending.take()
            except Exception as e:
                out.escapes += 1
                out.first_escape = out.first_escape or f"{type(e).__name__} at flush: {e}"
                conn._pending = Pending()
            conn._outbox.clear()
            conn._events.clear()
            conn._stale_tags.clear()
    out.seconds = time.perf_counter() - t0
    conn._pending.take()
    for topic, p in SPB[:2]:  # a fresh birth and data: still decoded
        conn.handle(topic.replace("/e", "/after"), p)
    batch = conn._pending.take()
    out.valid_after = batch is not None and 13.0 in batch.values.tolist()
    out.dead_letters = sum(dead.counts.values())
    out.tags = len(ctx.bus.registry)
    return out


# -- ingest bodies: CSV and Arrow IPC -----------------------------------------------------
def _csv(rows: int, iso: bool) -> bytes:
    lines = ["tag,timestamp,value,quality"]
    for i in range(rows):
        ts = f"2026-01-05T00:00:{i:02d}Z" if iso else str(NOW_MS - 1000 * i)
        lines.append(f"s/a/l/m/t{i % 3},{ts},{i * 0.5},{i % 3}")
    return "\n".join(lines).encode()


def _arrow(rows: int) -> bytes:
    table = pa.table({
        "tag": [f"s/a/l/m/t{i % 3}" for i in range(rows)],
        "timestamp": pa.array([NOW_MS - 1000 * i for i in range(rows)], pa.int64()),
        "value": pa.array([i * 0.5 for i in range(rows)], pa.float64()),
    })  # fmt: skip
    sink = io.BytesIO()
    with paipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue()


CSV_CORPUS = [_csv(5, False), _csv(3, True), _csv(20, False), b"tag,timestamp,value\n"]
ARROW_CORPUS = [_arrow(5), _arrow(1), _arrow(30)]


def _run_ingest(content_type: str) -> Callable[[list[bytes], random.Random, bool], Outcome]:
    def run(items: list[bytes], rng: random.Random, mutated: bool) -> Outcome:
        dead = DeadLetters(None)
        registry = TagRegistry()
        out = Outcome(payloads=len(items))
        refused = 0
        t0 = time.perf_counter()
        for p in items:
            try:
                ingest(
                    p, content_type, registry=registry, now_ns=NOW_MS * 10**6,
                    dead_letters=dead, max_future_s=300,
                )  # fmt: skip
            except QueryError:
                refused += 1  # the whole body refused: HTTP 400 naming why
            except Exception as e:
                out.escapes += 1
                out.first_escape = out.first_escape or f"{type(e).__name__}: {e}"
        out.seconds = time.perf_counter() - t0
        valid = CSV_CORPUS[0] if content_type == "text/csv" else ARROW_CORPUS[0]
        batch, _ = ingest(
            valid, content_type, registry=registry, now_ns=NOW_MS * 10**6,
            dead_letters=dead, max_future_s=300,
        )  # fmt: skip
        out.valid_after = len(batch) == 5
        out.dead_letters = sum(dead.counts.values()) + refused
        out.tags = len(registry)
        return out

    return run


DECODERS: dict[str, tuple[list[bytes], Callable[[list[bytes], random.Random, bool], Outcome]]] = {
    "json": (JSON_CORPUS, run_json),
    "sparkplug": ([p for _, p in SPB], run_sparkplug),
    "csv": (CSV_CORPUS, _run_ingest("text/csv")),
    "arrow": (ARROW_CORPUS, _run_ingest("application/vnd.apache.arrow.stream")),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--payloads", type=int, default=1_000_000, help="fuzzed payloads a decoder")
    ap.add_argument("--baseline", type=int, default=100_000, help="valid payloads a decoder")
    ap.add_argument("--runs", type=int, default=1, help="runs (median reported)")
    ap.add_argument("--decoders", default=",".join(DECODERS), help="comma-separated")
    ap.add_argument("--seed", type=int, default=14)
    args = ap.parse_args()
    print(
        f"{args.payloads:,} random and mutated payloads a decoder (seed {args.seed}); baseline: "
        f"{args.baseline:,} valid ones from the same corpus; median of {args.runs}\n"
    )
    print(
        "| decoder | payloads | payloads/s | valid payloads/s (baseline) | ratio to baseline "
        "| dead letters | escapes | guard caught | tags created | valid after |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    escaped = 0
    for name in args.decoders.split(","):
        corpus, run = DECODERS[name]
        fuzz, base = [], []
        for r in range(args.runs):
            rng = random.Random(args.seed + r)
            fuzz.append(run(payloads(rng, corpus, args.payloads), rng, True))
            valid = [rng.choice(corpus) for _ in range(args.baseline)]
            base.append(run(valid, rng, False))
        f = sorted(fuzz, key=lambda o: o.seconds)[len(fuzz) // 2]
        rate = statistics.median(o.payloads / o.seconds for o in fuzz)
        base_rate = statistics.median(o.payloads / o.seconds for o in base)
        escaped += f.escapes
        print(
            f"| {name} | {f.payloads:,} | {rate:,.0f} | {base_rate:,.0f} | "
            f"{rate / base_rate:.2f}× | {f.dead_letters:,} | {f.escapes} | {f.guarded} | "
            f"{f.tags:,} | {'yes' if f.valid_after else 'NO'} |"
        )
        if f.first_escape:
            print(f"|   first escape: {f.first_escape[:200]} |")
    if escaped:
        raise SystemExit(f"{escaped} payloads escaped a decoder")


if __name__ == "__main__":
    main()
