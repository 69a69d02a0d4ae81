"""Run a node with its API and dashboard on one asyncio loop."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable, Iterator

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from genba.api._app import create_app
from genba.errors import GenbaError
from genba.node import Node

log = logging.getLogger("genba.api")


HEAD_TIMEOUT_S = 10.0
"""Longest a new connection may take to send a whole request head; then it is closed."""


class _TimedH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing a connection that has not sent a whole request
    head within :data:`HEAD_TIMEOUT_S` of opening: idle or slow clients (500 of them once
    were held open for good) cannot pile up. Between requests, uvicorn's keep-alive timeout
    (5 s) closes idle connections."""

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self.timeout_keep_alive_handler)

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and self._head_timer is not None:  # a request head came
            self._head_timer.cancel()
            self._head_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)


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
            http=_TimedH11,
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
