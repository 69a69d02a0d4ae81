"""The node's write path on the in-process simulator: what may be written, by whom, how it is
confirmed, and `genba write` against a running node."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from genba.cli import cli
from genba.config import GenbaConfig
from genba.types import Command
from tests.conftest import RunningNode, wait_until, write_config

SP = "berlin/packaging/line1/filler/speed_sp"
CONFIG = """
[node]
http = "127.0.0.1:{port}"

[store]
flush_interval_ms = 20

[[connector]]
kind = "simulator"
name = "sim"
scenario = "demo"
sample_rate_hz = 10
{writable}
"""


async def _node(
    make_config: Callable[[str], GenbaConfig],
    run_node: Callable[[GenbaConfig], Awaitable[RunningNode]],
    writable: str = 'writable = ["+/+/+/+/speed_sp"]',
    port: int = 0,
) -> RunningNode:
    config = make_config(CONFIG.format(port=port, writable=writable))
    start: Callable[..., Awaitable[RunningNode]] = run_node
    return await start(config, port)


async def test_only_what_the_config_marks_writable_is_written(
    make_config: Callable[[str], GenbaConfig],
    run_node: Callable[[GenbaConfig], Awaitable[RunningNode]],
) -> None:
    rn = await _node(make_config, run_node, writable="")  # off by default
    r = await rn.http.post(f"/api/tags/{SP}/write", json={"value": 50})
    assert r.status_code == 403
    assert r.json()["error"]["type"] == "not_writable"
    assert "add a filter that names it to [[connector]] writable of connector 'sim'" in r.text
    r = await rn.http.post(
        "/api/tags/berlin/packaging/line1/filler/speed_spp/write", json={"value": 1}
    )
    assert r.status_code == 404
    assert SP in r.json()["error"]["suggestions"]
    bodies: list[dict[str, object]] = [{"value": "fast"}, {}, {"value": float("inf")}]
    for bad in bodies:
        r = await rn.http.post(f"/api/tags/{SP}/write", content=_json(bad))
        assert r.status_code == 422, (bad, r.text)


def _json(body: dict[str, object]) -> bytes:
    import json

    return json.dumps(body).replace("Infinity", "1e999").encode()


async def test_a_write_is_confirmed_by_the_simulators_next_sample(
    make_config: Callable[[str], GenbaConfig],
    run_node: Callable[[GenbaConfig], Awaitable[RunningNode]],
) -> None:
    rn = await _node(make_config, run_node)
    r = await rn.http.post(f"/api/tags/{SP}/write", json={"value": 55.5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["value"], body["confirmed"], body["connector"]) == (55.5, True, "sim")
    r = await rn.http.post(f"/api/tags/{SP}/write", json={"value": 150})  # over 100 %
    assert r.status_code == 409
    assert (
        "speed_sp of berlin/packaging/line1/filler must be 10..100 %"
        in r.json()["error"]["message"]
    )
    temperature = "berlin/packaging/line1/filler/temperature_sp"
    r = await rn.http.post(f"/api/tags/{temperature}/write", json={"value": 60})
    assert r.status_code == 403  # the filter names speed_sp only
    assert rn.node.health()["writes"] == {"done": 1, "failed": 1, "waiting": 0}


async def test_a_command_a_component_puts_on_the_bus_is_executed_and_kept(
    make_config: Callable[[str], GenbaConfig],
    run_node: Callable[[GenbaConfig], Awaitable[RunningNode]],
) -> None:
    rn = await _node(make_config, run_node)
    now = rn.node.clock.now_ns()
    await rn.node.bus.publish(Command(SP, now, value=42.0, origin="optimiser", id="c1"))
    await wait_until(lambda: rn.node.write_path.done == 1, 10)
    await wait_until(lambda: rn.node.records.pending == 0)
    (result,) = rn.node.store.records("command.result", key=SP)
    assert (result.body["id"], result.body["confirmed"], result.body["origin"]) == (
        "c1", True, "optimiser"
    )  # fmt: skip
    (command,) = rn.node.store.records("command", key=SP)
    assert command.body == {"value": 42.0, "origin": "optimiser", "id": "c1"}


async def test_genba_write_goes_through_the_running_node(
    tmp_path: Path,
    make_config: Callable[[str], GenbaConfig],
    run_node: Callable[[GenbaConfig], Awaitable[RunningNode]],
) -> None:
    from genba.testing import free_port

    port = free_port()
    rn = await _node(make_config, run_node, port=port)
    path = write_config(tmp_path, CONFIG.format(port=port, writable=""))

    def run(*args: str) -> tuple[int, str]:
        r = CliRunner().invoke(cli, ["write", *args, "-c", str(path)], prog_name="genba")
        return r.exit_code, r.output

    code, out = await asyncio.to_thread(run, SP, "47.5")
    assert code == 0, out
    assert out.strip() == f"{SP} = 47.5 (confirmed; via sim)"
    code, out = await asyncio.to_thread(run, SP, "400")
    assert code == 1
    assert "must be 10..100 %" in out
    await rn.shutdown()
    code, out = await asyncio.to_thread(run, SP, "50")
    assert code == 1
    assert "writes go through a running node; start it with `genba up`" in out


@pytest.mark.parametrize("value", [0.1, 33.3])
def test_float32_precision_counts_as_confirmed(value: float) -> None:
    import numpy as np

    from genba.node._write import same

    assert same(value, float(np.float32(value)))
    assert not same(value, value * 1.0001)


async def test_a_write_nobody_carries_out_answers_with_a_timeout_not_never(
    make_config: Callable[[str], GenbaConfig],
    run_node: Callable[[GenbaConfig], Awaitable[RunningNode]],
) -> None:
    """A command that is on the bus but never executed (the write path restarted under it)
    ends in a timeout for its caller, within twice the connector's write timeout."""
    config = make_config(
        CONFIG.format(port=0, writable='writable = ["+/+/+/+/speed_sp"]\nwrite_timeout_s = 0.5')
    )
    rn = await run_node(config)
    rn.node.write_path._sub.close()  # nothing takes the command off the bus any more
    r = await asyncio.wait_for(rn.http.post(f"/api/tags/{SP}/write", json={"value": 50}), 10)
    assert r.status_code == 504, r.text
    assert "the write was not carried out within 2 s" in r.text
