"""What only the embedded DuckDB store does: one file, locked by its writer."""

import subprocess
import sys
from pathlib import Path

import pytest

from genba.errors import StoreError
from genba.store import StoreSettings, open_store
from genba.store.duckdb import DuckDBStore


def test_second_process_gets_a_clear_lock_error(tmp_path: Path) -> None:
    store = open_store(StoreSettings(), data_dir=tmp_path)
    try:
        code = (
            "from pathlib import Path; from genba.store import open_store, StoreSettings;"
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
    store = open_store(StoreSettings(path="sub/h.duckdb"), data_dir=tmp_path)  # type: ignore[call-arg]
    store.close()
    assert (tmp_path / "sub" / "h.duckdb").exists()
