"""A node in-process: everything acknowledged is stored, history survives a restart."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import ClassVar

import pytest
from pydantic import BaseModel

from genba.config import GenbaConfig
from genba.connectors import ConnectorContext, ConnectorHealth
from genba.historian import open_store
from genba.node import Node
from genba.types import SampleBatch
from tests.conftest import demo_config_text, wait_until


def _fast_demo(make_config: Callable[[str], GenbaConfig]) -> GenbaConfig:
    text = demo_config_text(rate_hz=10).replace(
        '[clock]\nkind = "real"', '[clock]\nkind = "simulated"\nspeed = 200.0'
    )
    return make_config(text)


async def _run_for(node: Node, seconds: float) -> None:
    task = asyncio.create_task(node.run())
    await asyncio.sleep(seconds)
    node.stop()
    await asyncio.wait_for(task, 10)


async def test_everything_published_is_stored_and_survives_restart(make_config) -> None:  # type: ignore[no-untyped-def]
    config = _fast_demo(make_config)
    node = Node(config)
    await _run_for(node, 1.0)
    published = node.bus.stats().published_samples
    assert published > 10_000  # 200x speed, 10 Hz, 21 tags: ~40k samples a real second
    assert node.writer.stats.stored_samples == published
    ids = {t.path: t.id for t in node.registry}

    store = open_store(config.store, data_dir=config.data_dir, read_only=True)
    try:
        newest = int(store.last().ts_ns.max())
    finally:
        store.close()
    again = Node(config)  # same data dir
    assert {t.path: t.id for t in again.registry} == ids
    assert again.store.count() == published
    # The first run simulated ~200 s ahead of the wall clock: the second resumes after its
    # newest sample instead of simulating (and storing) the same times again.
    assert again.clock.now_ns() > newest
    await _run_for(again, 0.5)
    assert again.writer.stats.duplicates_dropped == 0
    store = open_store(config.store, data_dir=config.data_dir, read_only=True)
    try:
        assert store.count() == published + again.bus.stats().published_samples
    finally:
        store.close()


class _Crashy:
    """A connector that fails on its first two runs, then publishes one sample."""

    kind: ClassVar[str] = "crashy"
    Settings: ClassVar[type[BaseModel]] = BaseModel
    runs = 0

    def __init__(self, ctx: ConnectorContext) -> None:
        self.ctx = ctx

    async def run(self) -> None:
        type(self).runs += 1
        if self.runs <= 2:
            raise ConnectionError(f"peer refused (try {self.runs})")
        await self.ctx.publish(SampleBatch.from_columns(tag_ids=[1], ts_ns=[1], values=[1.0]))
        await asyncio.Event().wait()


async def test_a_crashing_connector_is_restarted_and_its_errors_shown(
    make_config: Callable[[str], GenbaConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("genba.retry.random.uniform", lambda a, b: 0.01)  # short backoff
    node = Node(make_config('[[machine]]\npath = "s/a/l/m"\n[[machine.tag]]\nname = "x"\n'))
    health = ConnectorHealth("crashy", "crashy")
    ctx = ConnectorContext("crashy", node.config, node.bus, node.clock, health)
    node.connectors.append((_Crashy(ctx), ctx))  # type: ignore[arg-type]  # a stand-in peer
    task = asyncio.create_task(node.run())
    await wait_until(lambda: node.writer.stats.stored_samples == 1)
    shown = node.health()["connectors"][0]
    assert shown["errors"] == 2
    assert "peer refused (try 2)" in shown["last_error"]
    assert node.running
    node.stop()
    await task


async def test_stopping_cancels_again_a_task_that_swallowed_its_cancellation() -> None:
    # Python 3.11's wait_for can drop a cancellation (a connector's connect completing as
    # the node stopped): the node's shutdown then waited for that connector forever.
    from genba.node._node import _cancel_all

    async def stubborn() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # lost, as wait_for may lose it
            await asyncio.sleep(10)
        await asyncio.sleep(10)

    task = asyncio.create_task(stubborn(), name="connector:plc")
    await asyncio.sleep(0)
    await asyncio.wait_for(_cancel_all([task], again_after_s=0.05), 2)
    assert task.cancelled()
