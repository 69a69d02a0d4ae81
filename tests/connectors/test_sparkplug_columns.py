"""The Sparkplug host's columnar read of DATA gives exactly what reading metric by metric gives.

DATA whose metrics go by alias is read as columns (:func:`genba.sparkplug.decode_columns`);
anything it cannot match to metrics falls back to the one-by-one read, which also writes dead
letters. Thousands of random messages — mixed and single value types, nulls, names, missing
and partial timestamps, negative integers, NaN, type mismatches, unborn aliases — go through a
host with the columnar read and one without, and both must store the same samples and refuse
the same messages.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from genba.bus import Bus
from genba.clock import RealClock
from genba.config import GenbaConfig
from genba.connectors import ConnectorContext, ConnectorHealth
from genba.connectors.sparkplug import SparkplugConnector, SparkplugSettings
from genba.deadletter import DeadLetters
from genba.sparkplug import DataType, encode
from genba.tags import TagRegistry

T_MS = 1_767_571_200_000
# alias → (datatype, value field): every kind of sample the host reads
BORN = {
    1: (DataType.Double, "double_value"),
    2: (DataType.Float, "float_value"),
    3: (DataType.Int8, "int_value"),
    4: (DataType.Int16, "int_value"),
    5: (DataType.Int32, "int_value"),
    6: (DataType.UInt32, "int_value"),
    7: (DataType.Int64, "long_value"),
    8: (DataType.UInt64, "long_value"),
    9: (DataType.Boolean, "boolean_value"),
    10: (DataType.Double, "double_value"),
}


def _host(columnar: bool) -> tuple[SparkplugConnector, DeadLetters]:
    dead = DeadLetters(None)
    ctx = ConnectorContext(
        "spb", GenbaConfig.model_validate({}), Bus(TagRegistry()), RealClock(),
        ConnectorHealth("spb", "sparkplug"), dead_letters=dead,
    )  # fmt: skip
    host = SparkplugConnector(SparkplugSettings(), ctx)
    if not columnar:
        host._columns = lambda *a: False  # type: ignore[method-assign]
    return host, dead


def _value(rng: random.Random, field: str) -> Any:
    if field == "double_value":
        return rng.choice([rng.uniform(-1e6, 1e6), 0.0, -0.0, 1e300])
    if field == "float_value":
        return rng.choice([rng.uniform(-1e3, 1e3), 0.5])
    if field == "int_value":
        return rng.choice([rng.randrange(0, 2**32), 2**32 - 1, 0, 127, 2**31])
    if field == "long_value":
        return rng.choice([rng.randrange(0, 2**64), 2**64 - 1, 0, 2**63])
    return rng.random() < 0.5


def _metric(rng: random.Random, alias: int, *, timestamp: bool) -> dict[str, Any]:
    field = BORN.get(alias, (DataType.Double, "double_value"))[1]
    roll = rng.random()
    m: dict[str, Any] = {"alias": alias}
    if roll < 0.03:
        m["is_null"] = True
    elif roll < 0.05:  # a type mismatch: the one-by-one read refuses it in a dead letter
        wrong = rng.choice(
            [f for f in ("double_value", "int_value", "long_value", "string_value") if f != field]
        )
        m[wrong] = "x" if wrong == "string_value" else _value(rng, wrong)
    elif roll < 0.06:
        m["double_value"] = float("nan")
    else:
        m[field] = _value(rng, field)
    if timestamp:
        m["timestamp"] = T_MS + rng.randrange(0, 10_000)
    if rng.random() < 0.01:
        m["name"] = "by-name"
    return m


def _message(rng: random.Random, seq: int) -> bytes:
    shape = rng.random()
    n = rng.choice([1, 2, 10, 100])
    if shape < 0.4:  # one value type, as most edge nodes send
        aliases = [rng.choice([1, 10])] * n
    else:
        aliases = [rng.choice(list(BORN)) for _ in range(n)]
    stamps = rng.choice(["all", "none", "some"])
    metrics = [
        _metric(rng, a, timestamp=stamps == "all" or (stamps == "some" and rng.random() < 0.5))
        for a in aliases
    ]
    if shape < 0.4 and rng.random() < 0.8:  # keep most single-type messages clean
        metrics = [
            {"alias": a, BORN[a][1]: _value(rng, BORN[a][1]), **({"timestamp": T_MS + i}
             if stamps == "all" else {})}
            for i, a in enumerate(aliases)
        ]  # fmt: skip
    if rng.random() < 0.02:  # never born: the host asks for a rebirth
        metrics[-1]["alias"] = 99
    return encode(timestamp=T_MS, seq=seq, metrics=metrics)


def _feed(host: SparkplugConnector, messages: list[bytes]) -> tuple[np.ndarray, ...]:
    birth = [{"name": "bdSeq", "datatype": DataType.Int64, "long_value": 0}]
    born = [
        {"name": f"m{a}", "alias": a, "datatype": dt, field: 0 if field != "double_value" else 0.0}
        for a, (dt, field) in BORN.items()
    ]
    host.handle("spBv1.0/g/NBIRTH/edge", encode(timestamp=T_MS, seq=0, metrics=birth))
    host.handle("spBv1.0/g/DBIRTH/edge/dev", encode(timestamp=T_MS, seq=1, metrics=born))
    for payload in messages:
        host.handle("spBv1.0/g/DDATA/edge/dev", payload)
    batch = host._pending.take()
    assert batch is not None
    return batch.tag_ids, batch.ts_ns, batch.values


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_columns_store_what_metric_by_metric_stores(seed: int) -> None:
    rng = random.Random(seed)
    messages = [_message(rng, (i + 2) % 256) for i in range(600)]
    fast, fast_dead = _host(columnar=True)
    slow, slow_dead = _host(columnar=False)
    got, want = _feed(fast, messages), _feed(slow, messages)

    def rows(cols: tuple[np.ndarray, ...]) -> list[tuple[int, int, float]]:
        tags, ts, values = cols
        return sorted(zip(tags.tolist(), ts.tolist(), values.tolist(), strict=True))

    assert len(got[0]) > 10_000
    assert rows(got) == rows(want)
    assert fast_dead.counts == slow_dead.counts
    assert [d["reason"] for d in fast_dead.recent(limit=50)] == [
        d["reason"] for d in slow_dead.recent(limit=50)
    ]
    assert fast.rebirths_requested == slow.rebirths_requested


def test_negative_integers_and_extremes_read_as_their_types_say() -> None:
    host, dead = _host(columnar=True)
    data = encode(timestamp=T_MS, seq=2, metrics=[
        {"alias": 3, "int_value": 2**32 - 5},   # Int8 −5 as Tahu's Java sends it
        {"alias": 4, "int_value": 2**16 - 2},   # Int16 −2 in its own width (Tahu's Python)
        {"alias": 5, "int_value": 2**31},       # Int32 minimum
        {"alias": 6, "int_value": 2**32 - 1},   # UInt32 maximum
        {"alias": 7, "long_value": 2**64 - 7},  # Int64 −7
        {"alias": 8, "long_value": 2**63},      # UInt64 past Int64
        {"alias": 9, "boolean_value": True},
        {"alias": 2, "float_value": 0.25},
    ])  # fmt: skip
    tags, _, values = _feed(host, [data])
    by_alias = dict(zip(tags[-8:].tolist(), values[-8:].tolist(), strict=True))
    registry = host.ctx.bus.registry
    got = {int(registry.get(f"g/edge/dev/m{a}").id): a for a in BORN}
    assert {got[t]: v for t, v in by_alias.items()} == {
        3: -5.0,
        4: -2.0,
        5: -(2.0**31),
        6: 2.0**32 - 1,
        7: -7.0,
        8: 2.0**63,
        9: 1.0,
        2: 0.25,
    }
    assert not dead.counts


def test_metrics_with_two_value_fields_are_read_as_protobuf_says() -> None:
    """Hand-made wire bytes: two metrics (Int32, UInt32) each carry a double and then an int —
    protobuf's last one wins, so they are the ints 7 and 8 — and a third (Double) no value.
    The columns hold two doubles and two ints for three metrics: not to be matched by count."""
    from genba.sparkplug import Metric

    def two_values(alias: int, double: float, integer: int) -> bytes:
        return bytes(
            Metric(alias=alias, double_value=double).SerializeToString()
            + Metric(int_value=integer).SerializeToString()
        )

    metrics = [two_values(5, 1.5, 7), two_values(6, 2.5, 8)]
    metrics.append(Metric(alias=10, is_null=True).SerializeToString())
    body = b"".join(b"\x12" + bytes([len(m)]) + m for m in metrics)
    data = encode(timestamp=T_MS, seq=2, metrics=[]) + body
    got = {}
    for columnar in (True, False):
        host, dead = _host(columnar)
        _, _, values = _feed(host, [data])
        got[columnar] = (values[-2:].tolist(), dict(dead.counts))
    assert got[True] == got[False] == ([7.0, 8.0], {})
