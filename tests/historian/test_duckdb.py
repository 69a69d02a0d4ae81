"""What only the embedded DuckDB store does: one file, locked by its writer."""

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

from genba.errors import StoreError
from genba.historian import Record, StoreSettings, TimeRange, open_store
from genba.historian.duckdb import SCHEMA_VERSION, DuckDBStore
from genba.types import SampleBatch


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
        store = DuckDBStore(disk / "h.duckdb", checkpoint_threshold="4MB")
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
    store = DuckDBStore(path)
    assert store.applied == [(2, "the record log")]
    assert store.schema_version() == SCHEMA_VERSION
    assert store.raw([1], TimeRange(0, 2000)).values.tolist() == [2.5]
    assert store.append_records([Record("x", 1, "", {})]) == [1]
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
