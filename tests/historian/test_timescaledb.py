"""The PostgreSQL store on TimescaleDB: hypertable, compression, continuous aggregates as tiers.

The server is TimescaleDB 2.23 running in PGlite (PostgreSQL 17 compiled to WebAssembly, from
the npm registry; ``tests/timescaledb``), served over the PostgreSQL wire protocol: Debian has no
TimescaleDB package. It takes one client at a time (``pool_max = 1``), messages up to 64 KiB,
and no ``COPY … FROM STDIN`` over the wire, so samples go in here with ``INSERT`` where the store would ``COPY``
into the same hypertable; everything else runs through the store's own code.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from psycopg import sql

from genba.errors import ConfigError
from genba.historian import ROLLUP, TimeRange
from genba.historian.postgres import PostgresSettings, PostgresStore, Timescale
from genba.testing import free_port
from genba.types import NS_PER_S, SampleBatch

SERVER = Path(__file__).parent.parent / "timescaledb"
MIN = 60 * NS_PER_S
DAY = 86_400 * NS_PER_S
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def timescale_dsn() -> Iterator[str]:
    if not (SERVER / "node_modules").is_dir():
        pytest.fail(f"run `npm ci --prefix {SERVER}` first (./dev test does)")
    port = free_port()
    proc = subprocess.Popen(
        ["node", str(SERVER / "server.mjs"), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        pytest.fail(f"the TimescaleDB test server did not start: {line}{proc.stdout.read()}")
    yield f"host=127.0.0.1 port={port} user=postgres password=x dbname=postgres sslmode=disable"
    proc.terminate()
    proc.wait(10)
    proc.stdout.close()


def _settings(dsn: str, schema: str, **kw: Any) -> PostgresSettings:
    return PostgresSettings.model_validate(
        {"dsn": dsn, "schema": schema, "pool_max": 1, "partition_days": 1}
        | {"prepared_statements": False}  # the test server's clients share one session
        | kw
    )


def _plant(days: int = 2, every_s: int = 10) -> SampleBatch:
    """Three tags sampled every ``every_s`` for ``days`` days; tag 3 BAD every 7th sample."""
    ts = np.arange(0, days * DAY, every_s * NS_PER_S, dtype=np.int64)
    n = len(ts)
    rng = np.random.default_rng(5)
    tags = np.repeat(np.array([1, 2, 3], dtype=np.int32), n)
    values = np.concatenate([20 + rng.normal(0, 1, n), np.arange(n) * 0.5, rng.uniform(0, 9, n)])
    quality = np.zeros(3 * n, dtype=np.uint8)
    quality[2 * n :: 7] = 2
    return SampleBatch(tags, np.tile(ts, 3), values, quality)


def _insert(store: PostgresStore, batch: SampleBatch) -> None:
    """``batch`` into the samples table, 1,000 rows a statement (the test server's socket
    takes messages up to 64 KiB)."""
    query = sql.SQL(
        "INSERT INTO {}.samples SELECT * FROM "
        "unnest(%s::int4[], %s::int8[], %s::float8[], %s::int2[])"
    ).format(sql.Identifier(store.s.schema_name))
    with store.pool.connection() as conn, conn.transaction():
        for i in range(0, len(batch), 1000):
            part = slice(i, i + 1000)
            conn.execute(
                query,
                (
                    batch.tag_ids[part].tolist(),
                    batch.ts_ns[part].tolist(),
                    batch.values[part].tolist(),
                    batch.quality[part].astype(np.int16).tolist(),
                ),
            )


def _one(store: PostgresStore, query: str, *params: Any) -> Any:
    with store.pool.connection() as conn:
        row = conn.execute(query, params).fetchone()
        conn.rollback()
    return row


def _sorted(batch: SampleBatch) -> list[tuple[int, int, float, int]]:
    return sorted(
        zip(
            batch.tag_ids.tolist(),
            batch.ts_ns.tolist(),
            batch.values.tolist(),
            batch.quality.tolist(),
            strict=True,
        )
    )


def test_a_partitioned_database_is_moved_into_a_compressed_hypertable(timescale_dsn: str) -> None:
    plant = _plant()
    store = PostgresStore(_settings(timescale_dsn, "conv", timescaledb="off"))
    assert store.layout.name == "partitioned"
    with store.pool.connection() as conn:  # samples of a node that ran before: native layout
        conn.execute("CREATE TABLE conv.samples_default PARTITION OF conv.samples DEFAULT")
        conn.commit()
    _insert(store, plant)
    store.close()

    store = PostgresStore(_settings(timescale_dsn, "conv"))  # timescaledb = "auto"
    try:
        assert store.layout.name == Timescale.name
        assert (0, "samples moved into a TimescaleDB hypertable") in store.applied_on_open
        assert _one(
            store,
            "SELECT count(*) FROM timescaledb_information.hypertables "
            "WHERE hypertable_schema = 'conv' AND hypertable_name = 'samples'",
        ) == (1,)
        assert _one(
            store,
            "SELECT attname FROM timescaledb_information.compression_settings "
            "WHERE hypertable_schema = 'conv' AND segmentby_column_index = 1",
        ) == ("tag_id",)
        assert _one(
            store,
            "SELECT config->>'compress_after' FROM timescaledb_information.jobs "
            "WHERE proc_name = 'policy_compression' AND hypertable_schema = 'conv'",
        ) == (str(7 * DAY),)
        span = TimeRange(0, 2 * DAY)
        assert _sorted(store.raw([1, 2, 3], span)) == _sorted(plant)  # moved exactly

        before = store.aggregate([1, 3], span, every_ns=60 * MIN, aggs=["avg", "count", "max"])
        n_chunks = _one(store, "SELECT count(*) FROM show_chunks('conv.samples')")[0]
        assert n_chunks == 2  # partition_days = 1
        with store.pool.connection() as conn:
            conn.execute("SELECT compress_chunk(c) FROM show_chunks('conv.samples') c")
            conn.commit()
        raw_bytes, packed_bytes = _one(
            store,
            "SELECT sum(before_compression_total_bytes), sum(after_compression_total_bytes) "
            "FROM chunk_compression_stats('conv.samples')",
        )
        assert packed_bytes < raw_bytes / 4, (raw_bytes, packed_bytes)
        print(f"bytes/point: {raw_bytes / len(plant):.1f} → {packed_bytes / len(plant):.1f}")
        assert _sorted(store.raw([1, 2, 3], span)) == _sorted(plant)  # read back compressed
        after = store.aggregate([1, 3], span, every_ns=60 * MIN, aggs=["avg", "count", "max"])
        assert after.bucket_ns.tolist() == before.bucket_ns.tolist()
        for agg in ("avg", "count", "max"):
            np.testing.assert_allclose(after.columns[agg], before.columns[agg], rtol=1e-12)
        # tag 3, first hour (after tag 1's 48 buckets): 360 samples, every 7th BAD, left out
        bad = np.zeros(360, dtype=bool)
        bad[::7] = True
        assert after.columns["count"][48] == 360 - bad.sum() == 308
        assert store.delete_before([1], DAY) == DAY // (10 * NS_PER_S)  # from a compressed chunk
        assert store.count() == len(plant) - DAY // (10 * NS_PER_S)
    finally:
        store.close()
    store = PostgresStore(_settings(timescale_dsn, "conv"))  # converted once only
    assert store.applied_on_open == []
    assert store.layout.name == Timescale.name
    store.close()


def test_downsampling_tiers_are_continuous_aggregates(timescale_dsn: str) -> None:
    plant = _plant(days=1)
    store = PostgresStore(_settings(timescale_dsn, "tiers", timescaledb="on"))
    try:
        _insert(store, plant)
        span = TimeRange(0, 3 * 60 * MIN)
        assert store.rollup_end(MIN, [1]) is None
        assert len(store.read_rollup(MIN, [1], span)) == 0
        store.roll_up(MIN, [1, 2, 3], span)
        store.roll_up(MIN, [1, 2, 3], span)  # again: replaced, not doubled
        assert _one(
            store,
            "SELECT count(*) FROM timescaledb_information.continuous_aggregates "
            "WHERE view_schema = 'tiers' AND view_name = %s",
            f"rollup_{MIN}",
        ) == (1,)
        tier = store.read_rollup(MIN, [1, 2, 3], span)
        raw = store.aggregate([1, 2, 3], span, every_ns=MIN, aggs=list(ROLLUP))
        assert len(tier) == 3 * 180
        assert tier.tag_ids.tolist() == raw.tag_ids.tolist()
        assert tier.bucket_ns.tolist() == raw.bucket_ns.tolist()
        for c in ROLLUP:  # count, sum, min, max, first, last: as from the samples
            np.testing.assert_allclose(tier.columns[c], raw.columns[c], rtol=1e-12, err_msg=c)
        assert store.rollup_end(MIN, [1, 2]) == 179 * MIN

        assert store.delete_rollup_before(MIN, [1], 60 * MIN) == 60  # tag 1's first hour
        assert len(store.read_rollup(MIN, [1], span)) == 120
        assert len(store.read_rollup(MIN, [2], span)) == 180  # another tag: untouched
        # Raw samples age out; the tier keeps its buckets, and rolling the next hours up
        # leaves the earlier ones alone.
        store.delete_before([1, 2, 3], 3 * 60 * MIN)
        store.roll_up(MIN, [1, 2, 3], TimeRange(3 * 60 * MIN, 5 * 60 * MIN))
        assert len(store.read_rollup(MIN, [2], TimeRange(0, 5 * 60 * MIN))) == 300
        again = store.read_rollup(MIN, [2], span)
        np.testing.assert_allclose(again.columns["sum"], raw.columns["sum"][180:360])
    finally:
        store.close()


def test_timescaledb_on_without_the_extension_is_a_config_error(postgres_dsn: str) -> None:
    with pytest.raises(ConfigError, match="does not offer the timescaledb extension"):
        PostgresStore(_settings(postgres_dsn, "genba", timescaledb="on"))
