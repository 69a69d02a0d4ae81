"""Dead letters: input that could not be used, kept with the reason, never silently lost.

A malformed payload, an unknown alias, a value of the wrong type, NaN/Inf, a timestamp far in
the future, an oversized message: each becomes one record handed to ``sink`` (the node keeps
them in the store's record log, kind ``deadletter``, keyed by the connector), is counted for
its connector, and the connector carries on.

>>> kept = []
>>> log = DeadLetters(lambda ts_ns, record: kept.append(record))
>>> log.add("mqtt-0", "not a number: 'abc'", topic="s/a/l/m/t", payload=b'"abc"', ts_ns=0)
>>> kept[0]["reason"], log.counts["mqtt-0"]
("not a number: 'abc'", 1)
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import Any

from genba.timeparse import format_time

log = logging.getLogger("genba.deadletter")
MAX_PAYLOAD_SHOWN = 2048

Sink = Callable[[int, dict[str, Any]], None]
"""Takes a dead letter's time (UTC ns) and its record."""


KEEP_IN_MEMORY = 1000


class DeadLetters:
    """The node's dead letters: counted per source, each handed to ``sink`` to be kept, the
    newest ``KEEP_IN_MEMORY`` also in memory (:meth:`recent`)."""

    def __init__(self, sink: Sink | None = None) -> None:
        self.sink = sink
        self._recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=KEEP_IN_MEMORY)
        self.counts: collections.Counter[str] = collections.Counter()

    def add(
        self, source: str, reason: str, *, topic: str = "", payload: bytes = b"", ts_ns: int
    ) -> None:
        """Record one unusable input from ``source`` (a connector name)."""
        shown = payload[:MAX_PAYLOAD_SHOWN].decode("utf-8", errors="backslashreplace")
        record = {
            "time": format_time(ts_ns),
            "source": source,
            "topic": topic,
            "reason": reason,
            "payload": shown,
            "payload_bytes": len(payload),
        }
        self._recent.append(record)
        self.counts[source] += 1
        if self.counts[source] in (1, 10, 100, 1000) or self.counts[source] % 10_000 == 0:
            log.warning(
                "%s: dead letter #%d (%s) on %r", source, self.counts[source], reason, topic
            )
        if self.sink is not None:
            self.sink(ts_ns, record)

    def recent(self, source: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The newest in memory, newest first, optionally of one source."""
        rows = [r for r in reversed(self._recent) if source is None or r["source"] == source]
        return rows[:limit]
