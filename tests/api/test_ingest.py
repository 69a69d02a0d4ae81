"""POST /api/ingest: JSON, CSV and Arrow IPC bodies, validated row by row."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as paipc
import pytest

from genba.config import GenbaConfig
from genba.deadletter import DeadLetters
from genba.errors import QueryError
from genba.node import ingest
from genba.tags import TagRegistry
from genba.timeparse import parse_time
from tests.conftest import RunningNode, wait_until

T = (time.time_ns() // 10**9 - 86_400) * 1000  # a day ago, whole second, epoch ms


@pytest.fixture
async def rn(make_config: Callable[[str], GenbaConfig], run_node: Any) -> RunningNode:
    return await run_node(make_config("[store]\nflush_interval_ms = 20\n"))  # type: ignore[no-any-return]


async def read(rn: RunningNode, tag: str) -> tuple[list[int], list[float], list[int]]:
    d = (
        await rn.http.get(f"/api/tags/{tag}/samples", params={"start": T - 1000, "end": T + 10_000})
    ).json()
    return d["ts_ms"], d["value"], d["quality"]


async def test_json_rows_with_per_row_validation(rn: RunningNode) -> None:
    body = [
        {"tag": "s/a/l/m/temp", "timestamp": T, "value": 20.5},
        {"tag": "s/a/l/m/temp", "timestamp": T + 1000, "value": 21, "quality": 1},
        {"tag": "s/a/l/m/temp", "timestamp": "bad", "value": 1},
        {"tag": "s/a/l/m/temp", "timestamp": T, "value": "warm"},
        {"tag": "s/a/#", "timestamp": T, "value": 1},
        {"tag": "s/a/l/m/temp", "timestamp": T + 10**10, "value": 1},
        {"timestamp": T, "value": 1},
    ]
    r = await rn.http.post("/api/ingest", json=body)
    assert r.status_code == 200
    res = r.json()
    assert (res["accepted"], res["rejected"]) == (2, 5)
    reasons = {e["row"]: e["reason"] for e in res["errors"]}
    assert "unreadable" in reasons[2]
    assert "not a finite number" in reasons[3]
    assert "wildcards" in reasons[4]
    assert "in the future" in reasons[5]
    assert "tag is missing" in reasons[6]
    await wait_until(lambda: rn.node.writer.stats.stored_samples == 2)
    assert await read(rn, "s/a/l/m/temp") == ([T, T + 1000], [20.5, 21.0], [0, 1])
    dead = (await rn.http.get("/api/deadletter", params={"source": "http-ingest"})).json()
    assert dead["counts"]["http-ingest"] == 5


async def test_csv_back_fill(rn: RunningNode) -> None:
    csv = "tag,timestamp,value\n" + "".join(
        f"s/a/l/m/p,{T + i * 1000},{i * 0.5}\n" for i in range(10)
    )
    r = await rn.http.post("/api/ingest", content=csv, headers={"content-type": "text/csv"})
    assert r.json() == {"accepted": 10, "rejected": 0, "errors": []}
    await wait_until(lambda: rn.node.writer.stats.stored_samples == 10)
    ts, values, _ = await read(rn, "s/a/l/m/p")
    assert ts == [T + i * 1000 for i in range(10)]
    assert values == [i * 0.5 for i in range(10)]


async def test_arrow_ipc_with_timestamp_column(rn: RunningNode) -> None:
    table = pa.table(
        {
            "tag": ["s/a/l/m/q"] * 3,
            "timestamp": pa.array(
                [T * 1000, (T + 1000) * 1000, (T + 2000) * 1000], type=pa.timestamp("us", tz="UTC")
            ),
            "value": pa.array([1.0, float("nan"), 3.0]),
        }
    )
    sink = io.BytesIO()
    with paipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    r = await rn.http.post(
        "/api/ingest",
        content=sink.getvalue(),
        headers={"content-type": "application/vnd.apache.arrow.stream"},
    )
    assert (r.json()["accepted"], r.json()["rejected"]) == (2, 1)
    await wait_until(lambda: rn.node.writer.stats.stored_samples == 2)
    assert (await read(rn, "s/a/l/m/q"))[:2] == ([T, T + 2000], [1.0, 3.0])


@pytest.mark.parametrize(
    ("content", "ctype", "fragment"),
    [
        (b"{nope", "application/json", "cannot read the application/json body"),
        (b'{"rows": []}', "application/json", "a JSON body is"),
        (b"tag,value\nx,1\n", "text/csv", "no ['timestamp'] column"),
        (b"x", "application/xml", "is not accepted"),
    ],
)
async def test_unreadable_bodies_are_400_with_the_fix(
    rn: RunningNode, content: bytes, ctype: str, fragment: str
) -> None:
    r = await rn.http.post("/api/ingest", content=content, headers={"content-type": ctype})
    assert r.status_code == 400
    assert fragment in r.json()["error"]["message"]


def test_millisecond_timestamps_are_exact_to_the_nanosecond_in_every_format() -> None:
    """ns since 1970 do not fit a float64: 1767225600001 ms must not become ...000.9998 ms."""
    import pyarrow as pa
    import pyarrow.ipc as paipc

    from genba.deadletter import DeadLetters
    from genba.node import ingest
    from genba.tags import TagRegistry

    ms = [1_767_225_600_001, 1_767_225_600_002, 1_767_225_600_003]
    want = [m * 1_000_000 for m in ms]
    sink = pa.BufferOutputStream()
    table = pa.table({"tag": ["a/b"] * 3, "timestamp": ms, "value": [1.0, 2.0, 3.0]})
    with paipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    bodies = {
        "application/json": json.dumps(
            [{"tag": "a/b", "timestamp": m, "value": 1.0} for m in ms]
        ).encode(),
        "text/csv": ("tag,timestamp,value\n" + "".join(f"a/b,{m},1\n" for m in ms)).encode(),
        "application/vnd.apache.arrow.stream": sink.getvalue().to_pybytes(),
    }
    for content_type, body in bodies.items():
        batch, result = ingest(
            body, content_type, registry=TagRegistry(), now_ns=2 * 10**18,
            dead_letters=DeadLetters(None), max_future_s=300,
        )  # fmt: skip
        assert result.accepted == 3, content_type
        assert batch.ts_ns.tolist() == want, content_type


async def test_a_superscript_digit_is_an_unreadable_time_not_a_server_error(
    rn: RunningNode,
) -> None:
    # '³'.isdigit() is true: it once reached int() and gave HTTP 500 everywhere
    body = [
        {"tag": "s/a/l/m/temp", "timestamp": T, "value": 1.0},
        {"tag": "s/a/l/m/temp", "timestamp": "³", "value": 2.0},
    ]
    r = await rn.http.post("/api/ingest", json=body)
    assert r.status_code == 200, r.text
    assert (r.json()["accepted"], r.json()["rejected"]) == (1, 1)  # refused alone
    await wait_until(lambda: rn.node.writer.stats.stored_samples == 1)
    for url, q in (
        ("/api/tags/s/a/l/m/temp/samples", "start"),
        ("/api/tags/s/a/l/m/temp/value", "at"),
    ):
        r = await rn.http.get(url, params={q: "³"})
        assert r.status_code == 400, (url, r.text)
        assert "Cannot read the time '³'" in r.json()["error"]["message"]
        r = await rn.http.get(url, params={q: "-99999999999d"})  # beyond int64 ns
        assert r.status_code == 400, (url, r.text)
        assert "out of range" in r.json()["error"]["message"]


async def test_many_new_tags_in_one_body_each_get_their_own_id(rn: RunningNode) -> None:
    # one pass numbers the distinct tags (issue 14: 20,000 of them took 26 s, quadratic)
    n = 5_000
    csv = "tag,timestamp,value\n" + "".join(f"s/a/l/m/t{i},{T},{i}\n" for i in range(n))
    csv += f"s/a/l/m/t7,{T + 1},7.5\nbad/#/tag,{T},1\n"
    r = await rn.http.post("/api/ingest", content=csv, headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    assert (r.json()["accepted"], r.json()["rejected"]) == (n + 1, 1)
    await wait_until(lambda: rn.node.writer.stats.stored_samples == n + 1)
    assert await read(rn, "s/a/l/m/t7") == ([T, T + 1], [7.0, 7.5], [0, 0])
    assert await read(rn, f"s/a/l/m/t{n - 1}") == ([T], [float(n - 1)], [0])
    ids = {rn.node.registry.get(f"s/a/l/m/t{i}").id for i in range(n)}
    assert len(ids) == n


async def test_a_refused_row_creates_no_tag(rn: RunningNode) -> None:
    body = [{"tag": f"junk/a/l/m/t{i}", "timestamp": T, "value": "x"} for i in range(50)]
    r = await rn.http.post("/api/ingest", json=body)
    assert r.json()["rejected"] == 50
    assert not [t for t in rn.node.registry if t.path.startswith("junk/")]


async def test_a_body_over_max_body_mb_is_413_on_any_endpoint(
    make_config: Callable[[str], GenbaConfig], run_node: Any
) -> None:
    small: RunningNode = await run_node(make_config("[node]\nmax_body_mb = 0.01\n"))
    rows = "\n".join(f"s/a/l/m/big,{T + i},1.0" for i in range(2000))  # ~50 kB
    r = await small.http.post(
        "/api/ingest", content="tag,timestamp,value\n" + rows, headers={"content-type": "text/csv"}
    )
    assert r.status_code == 413
    assert "max_body_mb" in r.json()["error"]["message"]

    async def chunked() -> Any:  # no length given: counted as it arrives
        for _ in range(20):
            yield b"x" * 1000

    r = await small.http.post("/api/ingest", content=chunked())
    assert r.status_code == 413
    assert "s/a/l/m/big" not in small.node.registry
    rule = {"name": "big", "tag": "s/a/l/m/big", "kind": "high", "limit": 1}
    r = await small.http.post("/api/alarms", json=rule | {"message": "x" * 20_000})
    assert r.status_code == 413  # every endpoint, not ingest alone
    assert r.json()["error"]["type"] == "too_large"
    assert (await small.http.get("/api/health")).json()["status"] == "ok"


@pytest.mark.socket  # raw TCP connections to uvicorn
async def test_connections_that_send_no_request_are_closed(rn: RunningNode) -> None:
    from genba.api._serve import HEAD_TIMEOUT_S

    host, port = rn.url.removeprefix("http://").rsplit(":", 1)
    idle = [await asyncio.open_connection(host, int(port)) for _ in range(200)]
    slow = idle[0][1]
    slow.write(b"GET /api/health HTTP/1.1\r\n")  # a head that never ends
    await asyncio.sleep(HEAD_TIMEOUT_S + 1.5)
    closed = 0
    for reader, writer in idle:
        with contextlib.suppress(ConnectionError):
            if await asyncio.wait_for(reader.read(), 1) == b"":
                closed += 1
        writer.close()
    assert closed == 200
    assert (await rn.http.get("/api/health")).json()["status"] == "ok"


# Found by bench/fuzz.py: each used to escape as a 500 (or, the first, crash the process).
SEGFAULT_ARROW = bytes.fromhex(
    (Path(__file__).parent / "data" / "mutated-arrow-stream.hex").read_text().strip()
)


def test_a_mutated_arrow_stream_is_refused_not_followed_out_of_bounds() -> None:
    code = (
        "import sys; from genba.node import ingest; from genba.errors import QueryError;"
        "from genba.deadletter import DeadLetters; from genba.tags import TagRegistry\n"
        "try:\n"
        "    ingest(sys.stdin.buffer.read(), 'application/vnd.apache.arrow.stream',"
        " registry=TagRegistry(), now_ns=0, dead_letters=DeadLetters(None))\n"
        "except QueryError as e:\n"
        "    print('refused:', e)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], input=SEGFAULT_ARROW, capture_output=True, check=False
    )
    assert r.returncode == 0, r.stderr.decode()[-2000:]  # -11 before: a segfault
    assert r.stdout.decode().startswith("refused: cannot read the application/vnd.apache.arrow")


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        (b"ta\xc3(g,timestamp,value\nx,1,2\n", "text/csv", "not UTF-8"),
        (b"tag,timestamp,timestamp,value\ns/a/l/m/t,1,2,3\n", "text/csv", "more than once"),
        (b"\xff\xff\xff\xff\x10\x00\x00\x00garbage!", "application/vnd.apache.arrow.stream",
         "cannot read"),
    ],
)  # fmt: skip
def test_unreadable_bodies_found_by_fuzzing_are_400s(
    body: bytes, content_type: str, says: str
) -> None:
    with pytest.raises(QueryError, match=says):
        ingest(body, content_type, registry=TagRegistry(), now_ns=0, dead_letters=DeadLetters(None))


def test_times_beyond_int64_nanoseconds_are_refused_per_row() -> None:
    body = (
        b"tag,timestamp,value\n"
        b"s/a/l/m/t,9999-01-05T00:00:00Z,1\n"
        b"s/a/l/m/t,2026-01-05T00:00:00Z,2\n"
    )  # pyarrow reads the column as timestamp[s]: ns of year 9999 overflow int64
    batch, result = ingest(
        body, "text/csv", registry=TagRegistry(), now_ns=T * 10**6, dead_letters=DeadLetters(None)
    )
    assert batch.values.tolist() == [2.0]
    assert result.errors[0]["reason"] == "timestamp is out of range (after the year 2200)"
    rows = [{"tag": "s/a/l/m/t", "timestamp": "9999-01-05T00:00:00+00:00", "value": 1}]
    batch, result = ingest(
        json.dumps(rows).encode(), "application/json", registry=TagRegistry(), now_ns=0,
        dead_letters=DeadLetters(None),
    )  # fmt: skip
    assert (len(batch), result.rejected) == (0, 1)
    with pytest.raises(QueryError, match="out of range"):
        parse_time("-99999999999d", now_ns=0)  # relative, beyond int64 ns: no overflow later


def _stream(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with paipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue()


def test_columns_python_cannot_hold_are_400s_and_big_integers_are_values() -> None:
    """Found by bench/fuzz.py at a million payloads: each was a 500."""
    for value in (
        pa.array([2**62], pa.timestamp("us")),  # past year 9999 as a Python datetime
        pa.array([2**62], pa.duration("s")),
    ):
        table = pa.table({"tag": ["s/a/l/m/t"], "timestamp": [T], "value": value})
        with pytest.raises(QueryError, match="cannot be read"):
            ingest(
                _stream(table), "application/vnd.apache.arrow.stream", registry=TagRegistry(),
                now_ns=T * 10**6, dead_letters=DeadLetters(None),
            )  # fmt: skip
    body = f"tag,timestamp,value\ns/a/l/m/t,{T},1999999999999999999\n".encode()
    batch, _ = ingest(
        body, "text/csv", registry=TagRegistry(), now_ns=T * 10**6, dead_letters=DeadLetters(None)
    )  # an integer past 2**53: the nearest float, as a float column would hold it
    assert batch.values.tolist() == [2e18]
