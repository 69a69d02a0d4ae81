"""What only the embedded DuckDB store does: one file, locked by its writer."""

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from genba.config import GenbaConfig
from genba.errors import StoreError
from genba.historian import Record, StoreSettings, TimeRange, open_store
from genba.historian.duckdb import SCHEMA_VERSION, DuckDBStore
from genba.types import SampleBatch
from tests.conftest import demo_config_text, wait_until


def test_second_process_gets_a_clear_lock_error(tmp_path: Path) -> None:
    store = open_store(StoreSettings(), data_dir=tmp_path)
    try:
        code = (
            "from pathlib import Path; from genba.historian import open_store, StoreSettings;"
            f"open_store(StoreSettings(), data_dir=Path({str(tmp_path)!r}), read_only=True)"
        )
        r = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False
        )
    finally:
        store.close()
    assert r.returncode != 0
    assert "StoreLockedError" in r.stderr
    assert "in use by another process" in r.stderr


def test_read_only_open_of_a_missing_store_says_to_start_a_node(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="genba up"):
        DuckDBStore(tmp_path / "none.duckdb", read_only=True)


def test_path_option_is_relative_to_data_dir(tmp_path: Path) -> None:
    store = open_store(StoreSettings(path="sub/h.duckdb"), data_dir=tmp_path)
    store.close()
    assert (tmp_path / "sub" / "h.duckdb").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a file system needs root")
def test_a_checkpoint_that_fills_the_disk_invalidates_duckdb_and_the_store_comes_back(
    tmp_path: Path,
) -> None:
    """DuckDB invalidates the database when a checkpoint hits ENOSPC (every later call, reads
    too, fails with 'database has been invalidated'); the store opens it again by itself (reads
    work at once, writes once there is space) and holds every appended batch once."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)], check=True)
    try:
        store = DuckDBStore(disk / "h.duckdb", checkpoint_threshold="4MB", compact_rows=10**7)
        rng = np.random.default_rng(1)
        appended, failures, t = 0, [], 0
        for _ in range(150):  # random values: ~10 MB of file, 4 MB logs
            batch = SampleBatch.from_columns(
                tag_ids=np.ones(20_000, np.int32),
                ts_ns=np.arange(t, t + 20_000),
                values=rng.random(20_000),
            )
            try:
                store.append(batch)
                appended += len(batch)
                t += len(batch)
            except StoreError as e:
                failures.append(str(e))
        assert any("FATAL" in f for f in failures), failures[:3]
        # still no room, but opened again for reading: history stays readable
        assert len(store.raw([1], TimeRange(0, t))) == appended
        subprocess.run(["mount", "-o", "remount,size=200m", str(disk)], check=True)
        store.append(
            SampleBatch.from_columns(tag_ids=[1], ts_ns=[t], values=[0.5])
        )  # space is back: the store opens the file again
        got = store.raw([1], TimeRange(0, t + 1))
        assert len(got) == appended + 1
        assert len(np.unique(got.ts_ns)) == len(got)
        assert store.last([1]).ts_ns.tolist() == [t]
        store.close()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


V1_SCHEMA = """
CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE TABLE tags (id INTEGER PRIMARY KEY, path VARCHAR NOT NULL UNIQUE,
    unit VARCHAR NOT NULL, description VARCHAR NOT NULL, low DOUBLE, high DOUBLE);
CREATE TABLE rollups (every_ns BIGINT NOT NULL, tag_id INTEGER NOT NULL, bucket_ns BIGINT NOT NULL,
    count DOUBLE, sum DOUBLE, min DOUBLE, max DOUBLE, first DOUBLE, last DOUBLE,
    PRIMARY KEY (every_ns, tag_id, bucket_ns));
CREATE TABLE samples (tag_id INTEGER NOT NULL, ts_ns BIGINT NOT NULL, value DOUBLE NOT NULL,
    quality UTINYINT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO samples VALUES (1, 1000, 2.5, 0);
"""


def test_a_file_of_an_older_schema_is_migrated_at_open_keeping_its_samples(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(V1_SCHEMA)  # what genba wrote before the record log
    con.close()
    old = DuckDBStore(path, read_only=True)  # not migrated: read as it is
    assert old.raw([1], TimeRange(0, 2000)).values.tolist() == [2.5]
    assert old.last().values.tolist() == [2.5]
    old.close()
    store = DuckDBStore(path)
    assert [n for n, _ in store.applied] == [2, 3]
    assert store.schema_version() == SCHEMA_VERSION
    assert store.raw([1], TimeRange(0, 2000)).values.tolist() == [2.5]
    assert store.append_records([Record("x", 1, "", {})]) == [1]
    store.compact(everything=True)  # the old samples move into a segment like new ones
    assert store.segments()["hot_rows"] == 0
    assert store.raw([1], TimeRange(0, 2000)).values.tolist() == [2.5]
    store.close()
    again = DuckDBStore(path)
    assert again.applied == []  # nothing left to apply
    again.close()


def test_a_file_of_a_newer_genba_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.duckdb"
    DuckDBStore(path).close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(StoreError, match="schema version 99, written by a newer genba"):
        DuckDBStore(path)


def _batches(n: int, rows: int, tags: int) -> list[SampleBatch]:
    """``n`` batches of every tag in turn, time rising: arrival order, as a bus sends them."""
    out = []
    for i in range(n):
        k = np.arange(i * rows, (i + 1) * rows, dtype=np.int64)
        out.append(
            SampleBatch.from_columns(
                tag_ids=(k % tags + 1).astype(np.int32), ts_ns=k // tags, values=k.astype(float)
            )
        )
    return out


def test_the_background_compactor_lays_history_out_by_tag_while_appends_go_on(
    tmp_path: Path,
) -> None:
    """Appends fill the hot table; the compactor moves it into segments sorted by tag and
    merges full levels, meanwhile: every sample is read back once, and the newest ones
    survive a reopen without the hot table."""
    store = DuckDBStore(tmp_path / "h.duckdb", compact_rows=2_000)
    batches = _batches(200, 500, 7)  # 100,000 samples: 50 moves, 6 merges into level 1
    for b in batches:
        store.append(b)
    deadline = time.monotonic() + 30
    while store.segments()["hot_rows"] >= 2_000 or store.compaction.merges < 6:
        assert time.monotonic() < deadline, store.segments()
        time.sleep(0.05)
    layout = store.segments()
    assert {lv["level"] for lv in layout["levels"]} == {0, 1}
    assert sum(lv["rows"] for lv in layout["levels"]) + layout["hot_rows"] == 100_000
    got = store.raw(list(range(1, 8)), TimeRange(0, 10**9))
    want = SampleBatch.concat(batches)
    order = np.lexsort((want.tag_ids, want.ts_ns))
    assert got.values.tolist() == want.values[order].tolist()  # each once, in time order
    one = store.aggregate([3], TimeRange(0, 10**9), every_ns=1000, aggs=["count", "first"])
    assert one.columns["count"].sum() == len(want.values[want.tag_ids == 3])
    store.close()
    again = DuckDBStore(tmp_path / "h.duckdb", compact_rows=2_000)
    assert again.last().ts_ns.tolist() == [14_285] * 5 + [14_284] * 2  # k // 7, k < 100,000
    assert again.count() == 100_000
    again.close()


def test_retention_deletes_from_segments_and_forgets_the_emptied_ones(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "h.duckdb", compact_rows=2_000)  # no move but ours
    for b in _batches(4, 1_000, 2):  # 4 segments: ts 0-499, 500-999, 1000-1499, 1500-1999
        store.append(b)
        store.compact(everything=True)
    store.append(_batches(5, 1_000, 2)[4])  # and ts 2000-2499 still hot
    assert store.delete_before([1, 2], 1_250) == 2_500
    layout = store.segments()
    assert layout["levels"] == [{"level": 0, "segments": 2, "rows": 1_500}]
    assert layout["hot_rows"] == 1_000
    assert store.raw([1], TimeRange(0, 10**9)).ts_ns[0] == 1_250
    assert store.delete_before([2], 10**9) == 1_250  # tag 2 gone everywhere...
    store.close()
    again = DuckDBStore(tmp_path / "h.duckdb")
    assert again.last().tag_ids.tolist() == [1]  # ...its newest sample too
    again.close()


def test_a_checkpoint_goes_through_after_writes_on_a_reopened_file(tmp_path: Path) -> None:
    """The open left a result half-read on its connection (``fetchone``), which kept a
    transaction open: once another connection had written, DuckDB refused every checkpoint,
    so the space of moved and dropped tables never came back."""
    DuckDBStore(tmp_path / "h.duckdb").close()
    store = DuckDBStore(tmp_path / "h.duckdb")
    with store._cursor() as cur:  # what the compactor does: tables come and go
        cur.execute("CREATE TABLE seg_99 (a INTEGER)")
    with store._cursor() as cur:
        cur.execute("CHECKPOINT")
    store.close()


def test_a_clean_close_moves_a_large_hot_table_so_the_next_open_groups_nothing(
    tmp_path: Path,
) -> None:
    store = DuckDBStore(tmp_path / "h.duckdb", compact_rows=1_000_000)
    for b in _batches(3, 50_000, 7):  # 150,000 samples: below compact_rows, above the close move
        store.append(b)
    assert store.segments()["hot_rows"] == 150_000
    store.close()
    again = DuckDBStore(tmp_path / "h.duckdb", compact_rows=1_000_000)
    assert again.segments() == {
        "hot_rows": 0,
        "levels": [{"level": 0, "segments": 1, "rows": 150_000}],
    }
    assert again.last().ts_ns.tolist() == [21_428] * 4 + [21_427] * 3  # k // 7, k < 150,000
    again.close()


async def test_the_node_reports_what_compaction_has_done(
    make_config: Callable[[str], GenbaConfig], run_node: Any
) -> None:
    rn = await run_node(make_config(demo_config_text(rate_hz=20)))
    await wait_until(lambda: rn.node.health()["compaction"]["runs"] >= 1)
    health = rn.node.health()["compaction"]
    assert health["failures"] == 0
    assert set(health["store"]) >= {"moves", "merges", "rows_moved", "rows_merged", "seconds"}
