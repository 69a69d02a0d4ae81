"""Compaction: lay the history out for reading by tag, at start and every ten minutes.

The store does the work (:class:`~genba.historian.Compacting`); this component only keeps
time. DuckDB also compacts by itself as soon as appends have filled its hot table (see
``genba.historian._segments``), so here it only picks up what a failure left; PostgreSQL has
no thread of its own, and rewrites its closed partitions when this asks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any, ClassVar, Self

from genba.component import ComponentContext, Shutdown
from genba.config import Section
from genba.historian._store import Compacting

log = logging.getLogger("genba.historian")
COMPACT_EVERY_S = 600.0


class Compaction:
    """Calls the store's ``compact`` in a worker thread, now and every ``COMPACT_EVERY_S``."""

    name: ClassVar[str] = "compaction"
    order: ClassVar[int] = 11
    sections: ClassVar[tuple[Section[Any], ...]] = ()
    shutdown: ClassVar[Shutdown] = Shutdown.CANCEL

    @classmethod
    def create(cls, ctx: ComponentContext) -> Self | None:
        return cls(ctx.store) if isinstance(ctx.store, Compacting) else None

    def __init__(self, store: Compacting) -> None:
        self.store = store
        self.last: dict[str, Any] = {}
        """What the store's last ``compact`` said it has done (DuckDB: moves, merges, rows,
        seconds since open; PostgreSQL: partitions rewritten in that round)."""
        self.runs = 0
        self.failures = 0
        self.last_error = ""

    async def run(self) -> None:
        while True:
            try:
                done = await asyncio.to_thread(self.store.compact)
                self.last = (
                    dataclasses.asdict(done)
                    if dataclasses.is_dataclass(done) and not isinstance(done, type)
                    else {"rewritten": done}
                )
                self.runs += 1
            except Exception as e:  # tried again at the next round; collection goes on
                self.failures += 1
                self.last_error = f"{type(e).__name__}: {e}"
                log.warning("compaction failed (next try in %g s): %s", COMPACT_EVERY_S, e)
            await asyncio.sleep(COMPACT_EVERY_S)

    def health(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "failures": self.failures,
            "last_error": self.last_error,
            "store": self.last,
        }

    def problems(self) -> list[str]:
        return (
            [f"compaction failed: {self.last_error}"] if self.failures and self.last_error else []
        )
