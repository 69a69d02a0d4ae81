"""What only the PostgreSQL backend has: migrations, partitions, binary COPY, a node on it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from genba.config import GenbaConfig
from genba.errors import ConfigError
from genba.historian import StoreSettings, TimeRange, open_store
from genba.historian.postgres import (
    MIGRATIONS,
    PostgresSettings,
    PostgresStore,
    copy_payload,
    parse_copy,
)
from genba.types import NS_PER_DAY, NS_PER_S, SampleBatch
from tests.conftest import RunningNode, demo_config_text, wait_until


def _store(dsn: str, tmp_path: Path, **options: Any) -> PostgresStore:
    s = open_store(StoreSettings(kind="postgres", dsn=dsn, **options), data_dir=tmp_path)
    assert isinstance(s, PostgresStore)
    return s


def test_binary_copy_format_round_trips_exactly() -> None:
    rng = np.random.default_rng(1)
    batch = SampleBatch.from_columns(
        tag_ids=rng.integers(1, 2**31 - 1, 1000),
        ts_ns=rng.integers(-(2**62), 2**62, 1000),
        values=rng.normal(0, 1e6, 1000),
        quality=rng.integers(0, 3, 1000),
    )
    back = parse_copy(copy_payload(batch))
    for col in ("tag_ids", "ts_ns", "values", "quality"):
        assert getattr(back, col).tolist() == getattr(batch, col).tolist()


def test_migrations_run_once_and_record_the_version(postgres_dsn: str, tmp_path: Path) -> None:
    s = _store(postgres_dsn, tmp_path)
    try:
        assert s.schema_version() == MIGRATIONS[-1][0]
        assert s.upgrade() == []  # nothing left to apply
    finally:
        s.close()


def test_partitions_follow_the_data_and_reads_span_them(postgres_dsn: str, tmp_path: Path) -> None:
    s = _store(postgres_dsn, tmp_path, partition_days=1)
    try:
        ts = np.array([-NS_PER_DAY // 2, 0, NS_PER_DAY + 5, 3 * NS_PER_DAY], dtype=np.int64)
        s.append(SampleBatch.from_columns(tag_ids=[7] * 4, ts_ns=ts, values=[1.0, 2.0, 3.0, 4.0]))
        with psycopg.connect(postgres_dsn) as conn:
            parts = {
                r[0]
                for r in conn.execute(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                ).fetchall()
            }
        assert {"samples_pm1", "samples_p0", "samples_p1", "samples_p3"} <= parts
        got = s.raw([7], TimeRange(-NS_PER_DAY, 4 * NS_PER_DAY))
        assert got.ts_ns.tolist() == ts.tolist()
        assert got.values.tolist() == [1.0, 2.0, 3.0, 4.0]
    finally:
        s.close()
    again = _store(postgres_dsn, tmp_path, partition_days=1)  # knows its partitions
    try:
        again.append(SampleBatch.from_columns(tag_ids=[7], ts_ns=[NS_PER_DAY + 6], values=[5.0]))
        assert again.count() == 5
    finally:
        again.close()


def test_a_large_batch_is_stored_exactly(postgres_dsn: str, tmp_path: Path) -> None:
    s = _store(postgres_dsn, tmp_path)
    try:
        n = 200_000
        k = np.arange(n)
        batch = SampleBatch.from_columns(
            tag_ids=k % 100 + 1, ts_ns=1_767_225_600 * NS_PER_S + k * 10**7, values=k * 0.5
        )
        s.append(batch)
        got = s.raw([42], TimeRange(0, 2**62))
        want = k[k % 100 == 41]
        assert got.values.tolist() == (want * 0.5).tolist()
        assert s.last([42]).values.tolist() == [want[-1] * 0.5]
    finally:
        s.close()


def test_bad_dsn_and_bad_schema_name_say_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot connect"):
        open_store(
            StoreSettings(kind="postgres", dsn="postgresql://nobody@127.0.0.1:1/x"),
            data_dir=tmp_path,
        )
    with pytest.raises(ConfigError, match="use lower-case letters, digits and _"):
        open_store(
            StoreSettings(kind="postgres", dsn="postgresql://x", schema="Bad-Name"),
            data_dir=tmp_path,
        )


async def test_a_node_with_the_simulator_on_postgres(
    make_config: Callable[[str], GenbaConfig], run_node: Any, postgres_dsn: str
) -> None:
    text = (
        demo_config_text(rate_hz=10.0)
        .replace('kind = "duckdb"', f'kind = "postgres"\ndsn = "{postgres_dsn}"')
        .replace('path = "historian.duckdb"', "")
    )
    rn: RunningNode = await run_node(make_config(text))
    await wait_until(lambda: rn.node.writer.stats.stored_samples > 500, 20)
    tag = "berlin/packaging/line1/filler/vibration"
    last = (await rn.http.get(f"/api/tags/{tag}/last")).json()
    got = (
        await rn.http.get(
            f"/api/tags/{tag}/samples",
            params={"start": last["ts_ms"] - 2000, "end": last["ts_ms"] + 1},
        )
    ).json()
    assert got["ts_ms"][-1] == last["ts_ms"]
    assert got["value"][-1] == last["value"]
    assert rn.node.health()["store"]["kind"] == "postgres"


def test_an_older_schema_is_upgraded_in_order(
    postgres_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    monkeypatch.setattr(PostgresStore, "migrations", MIGRATIONS[:1])  # a node of an older genba
    old = _store(postgres_dsn, tmp_path)
    old.append(SampleBatch.from_columns(tag_ids=[1], ts_ns=[0], values=[1.5]))
    assert old.schema_version() == 1
    old.close()
    monkeypatch.setattr(PostgresStore, "migrations", MIGRATIONS)
    new = PostgresStore(PostgresSettings(dsn=postgres_dsn), read_only=True)
    try:
        assert new.schema_version() == 1  # read-only: left alone
    finally:
        new.close()
    new = _store(postgres_dsn, tmp_path)
    try:
        assert new.schema_version() == MIGRATIONS[-1][0]
        assert new.raw([1], TimeRange(0, 1)).values.tolist() == [1.5]  # data kept
    finally:
        new.close()


def test_genba_db_upgrade_reports_the_migrations(
    postgres_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from genba.cli import cli

    toml = tmp_path / "genba.toml"
    toml.write_text(f'[store]\nkind = "postgres"\ndsn = "{postgres_dsn}"\n')
    monkeypatch.setattr(PostgresStore, "migrations", MIGRATIONS[:1])
    first = CliRunner().invoke(cli, ["db", "upgrade", "-c", str(toml)])
    assert first.exit_code == 0, first.output
    assert "applied migration 1: tags, partitioned samples, last values" in first.output
    monkeypatch.setattr(PostgresStore, "migrations", MIGRATIONS)
    second = CliRunner().invoke(cli, ["db", "upgrade", "-c", str(toml)])
    assert "applied migration 2" in second.output
    assert "applied migration 1" not in second.output
    assert f"postgres: schema version {MIGRATIONS[-1][0]}, current" in second.output
    third = CliRunner().invoke(cli, ["db", "upgrade", "-c", str(toml)])
    assert "applied" not in third.output


def _heap_order(dsn: str, table: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(f"SELECT tag_id FROM genba.{table} ORDER BY ctid").fetchall()
    return [r[0] for r in rows]


def test_compaction_rewrites_closed_partitions_in_tag_order(
    postgres_dsn: str, tmp_path: Path
) -> None:
    """Every partition but the newest is rewritten sorted by (tag, time), once; what reads
    return is unchanged; late data into a sorted partition has it sorted again."""
    s = _store(postgres_dsn, tmp_path, partition_days=1)
    try:
        k = np.arange(3 * 600, dtype=np.int64)  # three days, three tags, batches of 60 rows
        day = NS_PER_DAY // 600
        for i in range(0, len(k), 60):
            part = k[i : i + 60]
            s.append(
                SampleBatch.from_columns(
                    tag_ids=(part % 3 + 1).astype(np.int32), ts_ns=part * day, values=part * 1.0
                )
            )
        before = s.raw([1, 2, 3], TimeRange(0, 3 * NS_PER_DAY))
        assert _heap_order(postgres_dsn, "samples_p0")[:21] == [1] * 20 + [2]  # batch by batch
        assert s.compact() == 2  # days 0 and 1; day 2 is still being written
        assert _heap_order(postgres_dsn, "samples_p0") == [1] * 200 + [2] * 200 + [3] * 200
        after = s.raw([1, 2, 3], TimeRange(0, 3 * NS_PER_DAY))
        assert after.values.tolist() == before.values.tolist()
        assert s.compact() == 0  # nothing new is closed
        s.append(SampleBatch.from_columns(tag_ids=[1], ts_ns=[5], values=[-1.0]))  # late
        again = _store(postgres_dsn, tmp_path, partition_days=1)  # the marks are in the db
        try:
            assert again.compact() == 1
            assert _heap_order(postgres_dsn, "samples_p0")[:201] == [1] * 201
        finally:
            again.close()
    finally:
        s.close()
