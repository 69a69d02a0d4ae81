"""Jittered exponential backoff, and the :class:`Session` that keeps a link up with it.

Connectors reconnecting to a broker, PLC or server, the simulator's outputs, the forwarder
sending its spool upstream and the historian writing its backlog into the store are each a
:class:`Session`; they, the node restarting a failed connector or task and the record log all
wait with one :class:`Backoff`, so a plant full of clients that lost the same broker does not
come back in lockstep.

>>> import random
>>> random.seed(1)
>>> b = Backoff(max_s=4.0, first_s=1.0)
>>> [round(b.next_delay(), 2) for _ in range(5)]  # 1, 2, 4, 4, 4 s, each ×0.5–1.5
[0.63, 2.69, 5.06, 3.02, 3.98]
>>> b.reset(); round(b.next_delay(), 2)
0.95
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable


class Backoff:
    """Waits of ``first_s`` doubling up to ``max_s``, each jittered ×0.5–1.5; :meth:`reset`
    after a success."""

    def __init__(self, max_s: float, first_s: float = 0.5) -> None:
        self.max_s, self.first_s = max_s, first_s
        self._next = first_s

    def reset(self) -> None:
        self._next = self.first_s

    def next_delay(self) -> float:
        """The next wait in seconds."""
        delay = self._next * random.uniform(0.5, 1.5)
        self._next = min(self._next * 2, self.max_s)
        return delay


class LinkState(enum.StrEnum):
    """Where a link to a device, broker, server or upstream node is."""

    CONNECTING = "connecting"
    """Opening it (the first time, or again after a wait)."""
    CONNECTED = "connected"
    """Up: the serving code said so with :meth:`Session.connected`."""
    WAITING = "waiting"
    """Lost; waiting (backoff) before the next try."""
    STOPPED = "stopped"
    """Not running: not started yet, cancelled, or the serving code returned."""


class Session:
    """Keeps one link up: the one reconnect loop of genba's connectors, the simulator's
    outputs, the forwarder and the historian's backlog.

    :meth:`run` calls ``serve(session)`` — which opens the link, calls :meth:`connected` once
    it is up (that resets the backoff) and serves until the link fails — again and again: each
    failure that is one of ``errors`` is counted, handed to ``on_lost`` (mark tags stale, say
    so in health), logged, and followed by a jittered backoff wait. Any other exception, and
    cancellation, ends the loop (the node's supervision deals with crashes). ``log_every_s``
    keeps the warning to one per that many seconds through a long outage.

    >>> import asyncio
    >>> async def demo():
    ...     tries = []
    ...     async def serve(s):
    ...         tries.append(s.state.value)
    ...         if len(tries) < 3:
    ...             raise ConnectionError("refused")
    ...         s.connected()
    ...     s = Session("plc", max_s=0.01, first_s=0.001, errors=(ConnectionError,))
    ...     await s.run(serve)
    ...     return tries, s.failures, s.last_error, s.state.value
    >>> asyncio.run(demo())
    (['connecting', 'connecting', 'connecting'], 2, 'ConnectionError: refused', 'stopped')
    """

    def __init__(
        self,
        name: str,
        *,
        max_s: float,
        first_s: float = 0.5,
        errors: tuple[type[BaseException], ...] = (OSError,),
        log: logging.Logger | None = None,
        on_connected: Callable[[], None] | None = None,
        log_every_s: float = 0.0,
        retry_word: str = "reconnecting",
    ) -> None:
        self.name = name
        self.on_connected = on_connected
        self.errors = errors
        self.backoff = Backoff(max_s=max_s, first_s=first_s)
        self.log = log or logging.getLogger("genba")
        self.log_every_s = log_every_s
        self.retry_word = retry_word
        self._logged_at = float("-inf")
        self.state = LinkState.STOPPED
        self.failures = 0
        self.last_error = ""
        self.since = time.monotonic()
        """When the state last changed (monotonic seconds)."""

    def _set(self, state: LinkState) -> None:
        if state is not self.state:
            self.state = state
            self.since = time.monotonic()

    def connected(self) -> None:
        """The link is up: say so and start the next backoff from the first wait again."""
        self._set(LinkState.CONNECTED)
        self.backoff.reset()
        if self.on_connected is not None:
            self.on_connected()

    async def run(
        self,
        serve: Callable[[Session], Awaitable[None]],
        on_lost: Callable[[BaseException], Awaitable[None]] | None = None,
    ) -> None:
        """Serve until ``serve`` returns or raises something not in ``errors``."""
        task = asyncio.current_task()
        try:
            while True:
                self._set(LinkState.CONNECTING)
                try:
                    await serve(self)
                    return
                except self.errors as e:
                    if task is not None and task.cancelling():
                        # Cancelled while the link failed: Python 3.11's wait_for and
                        # timeout() can turn the cancellation into this error. Stop.
                        raise asyncio.CancelledError from e
                    self.failures += 1
                    self.last_error = f"{type(e).__name__}: {e}"
                    self._set(LinkState.WAITING)
                    if on_lost is not None:
                        await on_lost(e)
                    delay = self.backoff.next_delay()
                    if time.monotonic() - self._logged_at >= self.log_every_s:
                        self._logged_at = time.monotonic()
                        self.log.warning(
                            "%s: %s; %s in %.1f s", self.name, e, self.retry_word, delay
                        )
                    await asyncio.sleep(delay)
        finally:
            self._set(LinkState.STOPPED)
