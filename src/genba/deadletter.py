"""Dead letters: input that could not be used, kept with the reason, never silently lost.

A malformed payload, an unknown alias, a value of the wrong type, NaN/Inf, a timestamp far in
the future, an oversized message: each becomes one record here (and one line in
``<data_dir>/deadletter.jsonl``, rotated at 16 MB with one older file kept; the counts go
on), is counted for its connector, and the connector carries on.

>>> log = DeadLetters(None)
>>> log.add("mqtt-0", "not a number: 'abc'", topic="s/a/l/m/t", payload=b'"abc"', ts_ns=0)
>>> log.recent()[0]["reason"]
"not a number: 'abc'"
"""

from __future__ import annotations

import collections
import logging
from pathlib import Path
from typing import Any

from genba._jsonl import JsonLines
from genba.timeparse import format_time

log = logging.getLogger("genba.deadletter")
KEEP_IN_MEMORY = 1000
MAX_PAYLOAD_SHOWN = 2048
MAX_FILE_BYTES = 16 * 1024 * 1024
"""The file is rotated at this size, one older file kept: 32 MB on disk at most."""


class DeadLetters:
    """The node's dead-letter record: the newest in memory, all of them in a JSON-lines file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file = JsonLines(path, max_bytes=MAX_FILE_BYTES) if path is not None else None
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
        if self._file is not None:
            self._file.append(record)

    def file_health(self) -> dict[str, int]:
        """How often the file was rotated, and how many records a full disk kept out of it."""
        if self._file is None:
            return {"rotations": 0, "write_errors": 0}
        return {"rotations": self._file.rotations, "write_errors": self._file.write_errors}

    def recent(self, source: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first, optionally for one source."""
        rows = [r for r in reversed(self._recent) if source is None or r["source"] == source]
        return rows[:limit]
