"""Shared fixtures: configs in temp dirs, nodes running in-process on free ports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from genba.api import bind_socket, serve
from genba.api._app import create_app
from genba.config import GenbaConfig, example_config, parse_config
from genba.node import Node
from genba.testing import Mosquitto, PostgreSQL

SIM_LINE = "berlin/packaging/line1"


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "genba.toml"
    path.write_text(text, encoding="utf-8")
    return path


def demo_config_text(*, rate_hz: float = 1.0, extra: str = "", flush_ms: int = 50) -> str:
    """The example config, on a free port, with faster sampling and flushing for tests."""
    return (
        example_config()
        .replace('http = "127.0.0.1:8000"', 'http = "127.0.0.1:0"')
        .replace('scenario = "demo"', f'scenario = "demo"\nsample_rate_hz = {rate_hz}')
        .replace("flush_interval_ms = 250", f"flush_interval_ms = {flush_ms}")
        + extra
    )


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[[str], GenbaConfig]:
    """Parse config text with ``data_dir`` in this test's temp dir."""

    def make(text: str) -> GenbaConfig:
        return parse_config(text).with_source(write_config(tmp_path, text))

    return make


@dataclass
class RunningNode:
    node: Node
    url: str
    http: httpx.AsyncClient
    stop: asyncio.Event
    task: asyncio.Task[None] | None = None

    async def shutdown(self) -> None:
        """Stop the node and wait until it has stored everything and closed its store."""
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 20)


IN_PROCESS_URL = "http://genba.test"
"""The base URL of an API served in-process (no socket: ``httpx.ASGITransport``)."""


async def _run_until(node: Node, stop: asyncio.Event) -> None:
    """Run ``node`` until ``stop`` is set (or it fails), then stop it in order."""
    node_task = asyncio.create_task(node.run(), name="node")
    stop_task = asyncio.create_task(stop.wait(), name="stop")
    try:
        await asyncio.wait({node_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        node.stop()
        stop_task.cancel()
        await node_task


@pytest.fixture
async def run_node(
    request: pytest.FixtureRequest,
) -> AsyncIterator[Callable[[GenbaConfig], asyncio.Future[RunningNode]]]:
    """Start nodes; stop them all at teardown. The API is served in-process through an ASGI
    client; a test marked ``socket`` (a browser, a WebSocket, another process or node that
    connects to it), or one that asks for a ``port``, gets uvicorn on a real TCP port."""
    started: list[tuple[RunningNode, asyncio.Task[None]]] = []
    on_socket = request.node.get_closest_marker("socket") is not None

    async def start(config: GenbaConfig, port: int = 0) -> RunningNode:
        node = Node(config)
        stop = asyncio.Event()
        if not on_socket and not port:
            task = asyncio.create_task(_run_until(node, stop))
            while not node.running and not task.done():  # noqa: ASYNC110 - a flag, no event
                await asyncio.sleep(0.005)
            transport = httpx.ASGITransport(app=create_app(node))
            http = httpx.AsyncClient(transport=transport, base_url=IN_PROCESS_URL, timeout=10)
            rn = RunningNode(node, IN_PROCESS_URL, http, stop, task)
            started.append((rn, task))
            return rn
        ready = asyncio.Event()
        urls: list[str] = []

        def on_ready(url: str) -> None:
            urls.append(url)
            ready.set()

        task = asyncio.create_task(
            serve(node, stop=stop, on_ready=on_ready, sock=bind_socket("127.0.0.1", port))
        )
        await asyncio.wait_for(ready.wait(), 10)
        rn = RunningNode(node, urls[0], httpx.AsyncClient(base_url=urls[0], timeout=10), stop, task)
        started.append((rn, task))
        return rn

    yield start  # type: ignore[misc]
    for rn, task in started:
        rn.stop.set()
        await rn.http.aclose()
        await asyncio.wait_for(task, 20)


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Poll ``predicate`` until true; fail the test with a clear message on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)


Broker = Mosquitto


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgreSQL]:
    """One private PostgreSQL for the test session; tests make their own databases in it."""
    try:
        server = PostgreSQL()
        server.start()
    except (FileNotFoundError, RuntimeError) as e:
        pytest.fail(str(e))
    yield server
    server.remove()


@pytest.fixture
def postgres_dsn(postgres_server: PostgreSQL) -> str:
    """A new, empty database for this test."""
    import uuid

    return postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def mqtt_broker(tmp_path: Path) -> Iterator[Broker]:
    """A private Mosquitto on a free port, stopped after the test."""
    try:
        broker = Broker(tmp_path)
        broker.start()
    except (FileNotFoundError, RuntimeError) as e:
        pytest.fail(str(e))
    yield broker
    broker.stop()


def stored_rows(config_path: Path) -> list[tuple[str, int, float, int]]:
    """Every sample in the store of the node configured at ``config_path``, opened read-only:
    (tag path, ts_ns, value, quality) in time order."""
    from genba.config import load_config
    from genba.historian import TimeRange, open_store

    cfg = load_config(config_path)
    store = open_store(cfg.store, data_dir=cfg.data_dir, read_only=True)
    try:
        paths = {t.id: t.path for t in store.load_tags()}
        got = store.raw(sorted(paths), TimeRange(0, 2**62))
    finally:
        store.close()
    return list(
        zip(
            [paths[i] for i in got.tag_ids.tolist()],
            got.ts_ns.tolist(),
            got.values.tolist(),
            got.quality.tolist(),
            strict=True,
        )
    )
