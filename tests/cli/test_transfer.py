"""`genba export` / `genba import`: history out to Parquet and CSV and back in, exactly."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from genba.cli import cli
from genba.config import GenbaConfig, load_config
from genba.historian import open_store
from genba.tags import TagRegistry
from genba.types import NS_PER_S, SampleBatch, TagSpec
from tests.conftest import RunningNode, stored_rows

T0 = 1_767_225_600 * NS_PER_S


def _fill(toml: Path) -> SampleBatch:
    """Two tags with nanosecond timestamps and a BAD sample, written straight to the store."""
    cfg = load_config(toml)
    store = open_store(cfg.store, data_dir=cfg.data_dir, read_only=False)
    try:
        reg = TagRegistry()
        reg.on_new_tags(store.save_tags)
        a, b = reg.ensure([TagSpec("s/a/l/m/temp", "degC"), TagSpec("s/a/l/m/speed")])
        k = np.arange(5000)
        batch = SampleBatch.from_columns(
            tag_ids=np.where(k % 2, a.id, b.id), ts_ns=T0 + k * 123_456_789 + 7,
            values=k / 7, quality=(k % 97 == 0) * 2,
        )  # fmt: skip
        store.append(batch)
    finally:
        store.close()
    return batch


def _read_all(toml: Path) -> dict[str, list[tuple[int, float, int]]]:
    out: dict[str, list[tuple[int, float, int]]] = {}
    for tag, ts, v, q in stored_rows(toml):
        out.setdefault(tag, []).append((ts, v, q))
    return out


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_then_import_into_an_empty_node_is_exact(
    kind: str, fmt: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    def node_dir(name: str) -> Path:
        d = tmp_path / name
        d.mkdir()
        store = ""
        if kind == "postgres":
            server = request.getfixturevalue("postgres_server")
            dsn = server.create_database(f"{name}_{fmt}_{id(tmp_path)}")
            store = f'[store]\nkind = "postgres"\ndsn = "{dsn}"\n'
        (d / "genba.toml").write_text(f'[node]\nhttp = "127.0.0.1:1"\n{store}')
        return d / "genba.toml"

    src, dst = node_dir("src"), node_dir("dst")
    _fill(src)
    out = tmp_path / f"all.{fmt}"
    r = CliRunner().invoke(cli, ["export", "-c", str(src), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "wrote 5,000 samples" in r.output
    if fmt == "parquet":
        assert pq.read_table(out).schema.names == ["tag", "timestamp", "value", "quality"]
    r = CliRunner().invoke(cli, ["import", str(out), "-c", str(dst)])
    assert r.exit_code == 0, r.output
    assert "imported 5,000 samples into the store, skipped 0 already stored, refused 0" in r.output
    assert _read_all(dst) == _read_all(src)
    # the same file again: idempotent, and the CLI says what it skipped
    r = CliRunner().invoke(cli, ["import", str(out), "-c", str(dst)])
    assert r.exit_code == 0, r.output
    assert "imported 0 samples into the store, skipped 5,000 already stored" in r.output
    assert _read_all(dst) == _read_all(src)

    part = tmp_path / f"part.{fmt}"
    start = str(T0 // 10**6 + 100_000)  # epoch ms
    r = CliRunner().invoke(
        cli, ["export", "-c", str(src), "-o", str(part), "--tags", "s/+/+/+/temp", "--start", start]
    )
    assert r.exit_code == 0, r.output
    assert "wrote 2,095 samples" in r.output  # odd k (temp) with k · 0.123 s ≥ 100 s: k ≥ 810


def test_import_refuses_bad_rows_and_keeps_the_rest(tmp_path: Path) -> None:
    toml = tmp_path / "genba.toml"
    toml.write_text('[node]\nhttp = "127.0.0.1:1"\n')
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "tag,timestamp,value\ns/a/l/m/x,1767225600000,1.5\na//b,1767225600000,2\n"
        "s/a/l/m/x,1767225601000,warm\n"
    )
    r = CliRunner().invoke(cli, ["import", str(bad), "-c", str(toml)])
    assert r.exit_code == 0, r.output
    assert "imported 1 samples into the store, skipped 0 already stored, refused 2" in r.output
    assert "row 1: a//b:" in r.output
    assert _read_all(toml) == {"s/a/l/m/x": [(1_767_225_600 * NS_PER_S, 1.5, 0)]}
    r = CliRunner().invoke(cli, ["import", str(tmp_path / "nope.parquet"), "-c", str(toml)])
    assert r.exit_code != 0
    assert "does not exist" in r.output


async def test_export_and_import_through_a_running_node(
    make_config: Callable[[str], GenbaConfig], run_node: Any, tmp_path: Path
) -> None:
    import asyncio

    from genba.testing import free_port

    port = free_port()
    toml = tmp_path / "genba.toml"
    text = f'[node]\nhttp = "127.0.0.1:{port}"\n'
    toml.write_text(text)
    rn: RunningNode = await run_node(make_config(text), port)
    src = tmp_path / "in.csv"
    src.write_text(
        "tag,timestamp,value\n"
        + "".join(f"s/a/l/m/x,{1_767_225_600_000 + i},{i}\n" for i in range(1000))
    )

    async def genba(*args: str) -> str:  # another process, as a user runs it
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "genba", *args, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await proc.communicate()
        assert proc.returncode == 0, out.decode()
        return out.decode()

    said = await genba("import", str(src), "-c", str(toml))
    assert "imported 1,000 samples through the running node" in said
    assert rn.node.writer.stats.stored_samples == 1000  # answered once durable
    said = await genba("import", str(src), "-c", str(toml))  # again: nothing stored twice
    assert "imported 0 samples through the running node, skipped 1,000 already stored" in said
    assert rn.node.store.count() == 1000
    out = tmp_path / "out.parquet"
    said = await genba("export", "-c", str(toml), "-o", str(out))
    assert "through the running node" in said
    t = pq.read_table(out)
    assert t.num_rows == 1000
    assert t.column("value").to_pylist() == [float(i) for i in range(1000)]
