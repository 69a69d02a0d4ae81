"""The CLI as a user runs it: init, tags, query, errors (in-process with Click's runner)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from genba import __version__
from genba.cli import cli
from genba.config import load_config
from genba.node import Node
from genba.types import NS_PER_MS, NS_PER_S, SampleBatch

TAG = "berlin/packaging/line1/filler/temperature"
T0 = 1_767_225_600 * NS_PER_S  # 2026-01-01T00:00:00Z


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    """A data dir holding 10 minutes of 1 s samples of TAG (values 0..599), node stopped."""
    assert CliRunner().invoke(cli, ["init", str(tmp_path)]).exit_code == 0
    config = load_config(tmp_path / "genba.toml")

    async def fill() -> None:
        node = Node(config)
        task = asyncio.create_task(node.run())
        await node.bus.publish(
            SampleBatch.from_columns(
                tag_ids=np.full(600, node.registry.get(TAG).id),
                ts_ns=T0 + np.arange(600) * NS_PER_S,
                values=np.arange(600.0),
            )
        )
        node.stop()  # before the simulator's first tick has been written
        await task

    asyncio.run(fill())
    return tmp_path


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), prog_name="genba")
    return r.exit_code, r.stdout, r.stderr


def test_version_and_help() -> None:
    code, out, _ = run("--version")
    assert code == 0
    assert __version__ in out
    for command in ("init", "up", "tags", "query"):
        code, out, _ = run(command, "--help")
        assert code == 0
        assert "Usage: genba" in out


def test_init_writes_a_valid_config_and_refuses_to_overwrite(tmp_path: Path) -> None:
    code, _, err = run("init", str(tmp_path / "plant"))
    assert code == 0
    assert "genba up --config" in err
    assert load_config(tmp_path / "plant" / "genba.toml").node.name == "demo"
    code, _, err = run("init", str(tmp_path / "plant"))
    assert code == 1
    assert "--force" in err
    assert run("init", str(tmp_path / "plant"), "--force")[0] == 0


def test_tags_lists_paths_units_and_last_values(node_dir: Path) -> None:
    code, out, _ = run("tags", "-c", str(node_dir / "genba.toml"), "--format", "json")
    assert code == 0
    rows = {r["path"]: r for r in json.loads(out)}
    assert rows[TAG]["unit"] == "degC"
    # the node stopped: nothing vouches for the last value, which is a stale mark since then
    assert rows[TAG]["stale"] is True
    assert rows[TAG]["value"] is None
    assert rows[TAG]["time"] >= "2026-01-01T00:09:59.000Z"
    code, out, _ = run("tags", "-c", str(node_dir / "genba.toml"), "-p", "+/+/+/capper/#")
    assert code == 0
    assert "capper/temperature" in out
    assert "filler" not in out


def test_query_aggregates_as_csv(node_dir: Path) -> None:
    code, out, _ = run(
        "query", TAG, "-c", str(node_dir / "genba.toml"),
        "--start", "2026-01-01T00:00:00Z", "--end", "2026-01-01T00:03:00Z",
        "--every", "1m", "--agg", "avg,count", "--format", "csv",
    )  # fmt: skip
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows == [
        ["time", "avg", "count"],
        ["2026-01-01T00:00:00.000Z", "29.5", "60.0"],
        ["2026-01-01T00:01:00.000Z", "89.5", "60.0"],
        ["2026-01-01T00:02:00.000Z", "149.5", "60.0"],
    ]


def test_query_raw_table_with_limit_says_it_truncated(node_dir: Path) -> None:
    start_ms = str(T0 // NS_PER_MS)
    code, out, err = run(
        "query", TAG, "-c", str(node_dir / "genba.toml"), "--start", start_ms, "--limit", "3"
    )
    lines = out.strip().splitlines()
    assert code == 0
    assert lines[0].split() == ["time", "value", "quality"]
    assert lines[2].split() == ["2026-01-01T00:00:00.000Z", "0", "0"]
    assert len(lines) == 5
    assert "raise --limit" in err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["query", "no/such/tag"], "Unknown tag 'no/such/tag'"),
        (["query", TAG, "--start", "now", "--end", "-1h"], "is before the start"),
        (["query", TAG, "--every", "sometimes"], "Cannot read the interval 'sometimes'"),
        (["tags", "-p", "a/#/b"], "'#' may only stand alone"),
    ],
)
def test_bad_queries_fail_with_a_clear_error(
    node_dir: Path, args: list[str], fragment: str
) -> None:
    code, _, err = run(*args, "-c", str(node_dir / "genba.toml"))
    assert code == 1
    assert fragment in err


def test_bad_config_names_file_line_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "genba.toml"
    bad.write_text('[node]\nname = "x"\nport = 8000\n')
    code, _, err = run("up", "-c", str(bad))
    assert code == 1
    assert f"{bad}:3: node.port: unknown key in [node]" in err


def test_up_on_a_busy_port_says_what_to_change(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = tmp_path / "genba.toml"
        cfg.write_text(f'[node]\nhttp = "127.0.0.1:{port}"\n')
        code, _, err = run("up", "-c", str(cfg))
    assert code == 1
    assert f"127.0.0.1:{port} is already in use" in err
    assert "[node]" in err
