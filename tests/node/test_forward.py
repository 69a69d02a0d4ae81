"""An edge node forwards to an upstream node that is away at first: nothing is lost."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genba.config import GenbaConfig
from genba.errors import ConfigError
from genba.historian import TimeRange
from genba.historian.duckdb import DuckDBStore
from genba.testing import free_port
from tests.conftest import RunningNode, demo_config_text, wait_until

pytestmark = pytest.mark.timeout(90)


def edge_config(port: int) -> str:
    return (
        demo_config_text(rate_hz=5.0)
        + f"""
[forward]
url = "http://127.0.0.1:{port}"
batch_ms = 100
retry_max_s = 0.5
"""
    )


async def test_edge_spools_while_upstream_is_away_and_delivers_everything_later(
    make_config: Callable[[str], GenbaConfig], run_node: Any, tmp_path: Path
) -> None:
    port = free_port()
    edge: RunningNode = await run_node(make_config(edge_config(port)))
    forward = edge.node.health()["forward"]
    assert forward["connected"] is False
    await wait_until(lambda: edge.node.health()["forward"]["spooled_samples"] > 500, 20)
    assert edge.node.health()["forward"]["errors"] >= 1
    # the upstream link is a retry.Session: lost, it waits (backoff) before the next try
    await wait_until(lambda: edge.node.health()["forward"]["state"] == "waiting", 10)
    spool_files = list((edge.node.config.data_dir / "forward-spool").glob("*.arrow"))
    assert spool_files  # on disk, not in memory

    up_dir = tmp_path / "upstream"
    up_dir.mkdir()
    up_toml = up_dir / "genba.toml"
    up_toml.write_text('[node]\nname = "site"\n')
    from genba.config import parse_config

    upstream: RunningNode = await run_node(
        parse_config(up_toml.read_text()).with_source(up_toml), port
    )
    backlog = edge.node.health()["forward"]["spooled_samples"]
    await wait_until(lambda: edge.node.health()["forward"]["sent_samples"] >= backlog, 30)
    assert edge.node.health()["forward"]["state"] == "connected"
    await edge.shutdown()  # what is still spooled or queued goes up before it stops
    forward = edge.node.health()["forward"]
    assert forward["connected"] is True
    assert forward["dropped_samples"] == forward["refused_samples"] == 0

    await wait_until(lambda: upstream.node.writer.stats.pending_samples == 0, 10)
    local = DuckDBStore(edge.node.config.data_dir / "historian.duckdb", read_only=True)
    try:
        assert forward["sent_samples"] == local.count()
        assert upstream.node.store.count() == local.count()
        for tag in local.load_tags():
            mine = local.raw([tag.id], _everything())
            theirs_tag = upstream.node.registry.get(tag.path)
            theirs = upstream.node.store.raw([theirs_tag.id], _everything())
            assert theirs.ts_ns.tolist() == mine.ts_ns.tolist(), tag.path
            np.testing.assert_array_equal(
                theirs.values, mine.values, err_msg=tag.path
            )  # NaN: stale marks
    finally:
        local.close()


def _everything() -> TimeRange:
    return TimeRange(0, 2**62)


def test_forward_settings_errors_name_the_fix(make_config: Callable[[str], GenbaConfig]) -> None:
    with pytest.raises(ConfigError, match="expected an http:// or https:// address"):
        make_config('[forward]\nurl = "site-node:8000"\n')
    with pytest.raises(ConfigError, match="'#' may only stand alone"):
        make_config('[forward]\nurl = "http://x"\npattern = "a/#/b"\n')
