"""Run a node with its API and dashboard on one asyncio loop."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable, Iterator

import uvicorn

from genba.api._app import create_app
from genba.errors import GenbaError
from genba.node import Node

log = logging.getLogger("genba.api")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The node owns SIGINT/SIGTERM: it stops the server, then flushes the historian.
        yield


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket for ``host:port``, or a GenbaError saying what to change."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        why = "is already in use" if e.errno == errno.EADDRINUSE else f"cannot be used ({e})"
        raise GenbaError(
            f'Address {host}:{port} {why}. Set another `http = "host:port"` in [node] '
            "of genba.toml, or stop what is listening there."
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


async def serve(
    node: Node,
    *,
    stop: asyncio.Event,
    on_ready: Callable[[str], None] | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Run ``node`` and its HTTP server until ``stop`` is set.

    Then the HTTP server closes first (no query can reach a closing store) and the node
    stores everything it acknowledged before returning.
    """
    settings = node.config.node
    sock = sock or bind_socket(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    url = f"http://{host}:{port}"
    server = _Server(
        uvicorn.Config(
            create_app(node),
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=3,
        )
    )
    node_task = asyncio.create_task(node.run(), name="node")
    http_task = asyncio.create_task(server.serve(sockets=[sock]), name="http")
    stop_task = asyncio.create_task(stop.wait(), name="stop")
    try:
        # uvicorn offers no "started" event to await, only a flag.
        while not server.started and not http_task.done() and not node_task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        if server.started and on_ready:
            on_ready(url)
        await asyncio.wait({node_task, http_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        http_error: BaseException | None = None
        try:
            await http_task
        except (Exception, SystemExit) as e:  # uvicorn exits on a failed startup
            http_error = e
        node.stop()
        stop_task.cancel()
        sock.close()
        await node_task  # re-raises a node failure after the data is flushed
    if http_error is not None:
        raise GenbaError(f"The HTTP server at {url} failed: {http_error!r}") from http_error
