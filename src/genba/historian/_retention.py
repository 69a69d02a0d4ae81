"""Retention (``[[retention]]``): roll raw samples up into each rule's tiers, then delete what is
older than the rule keeps; at start and every hour."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar, Self

from genba.clock import Clock
from genba.component import ComponentContext, Shutdown
from genba.config import RETENTION, RetentionSettings, Section
from genba.errors import ConfigError
from genba.historian._store import Rollups, Store, TimeRange
from genba.tags import TagRegistry
from genba.types import NS_PER_DAY

log = logging.getLogger("genba.retention")
RETENTION_EVERY_S = 3600.0


class Retention:
    """Applies the ``[[retention]]`` rules to the store."""

    name: ClassVar[str] = "retention"
    order: ClassVar[int] = 10
    sections: ClassVar[tuple[Section[Any], ...]] = (RETENTION,)
    shutdown: ClassVar[Shutdown] = Shutdown.CANCEL

    @classmethod
    def create(cls, ctx: ComponentContext) -> Self | None:
        rules = ctx.config.section(RETENTION)
        return cls(rules, ctx.store, ctx.registry, ctx.clock) if rules else None

    def __init__(
        self, rules: list[RetentionSettings], store: Store, registry: TagRegistry, clock: Clock
    ) -> None:
        tiered = [r.tags for r in rules if r.tiers]
        if tiered and not isinstance(store, Rollups):
            raise ConfigError(
                f"[[retention]] tags = {tiered[0]!r} has tiers, but this store kind keeps no "
                f"downsampling tiers ({type(store).__name__}): remove the tiers, or use a "
                "store kind that has them (duckdb, postgres)",
                key="retention.tiers",
            )
        self.rules = rules
        self.store = store
        self.rollups: Rollups | None = store if isinstance(store, Rollups) else None
        self.registry = registry
        self.clock = clock
        self.deleted = 0
        self.sweeps = 0
        self.failed_sweeps = 0

    def apply(self) -> int:
        """One sweep; the number of raw samples deleted."""
        now = self.clock.now_ns()
        claimed: set[int] = set()
        deleted = 0
        for rule in self.rules:
            ids = [t.id for t in self.registry.match(rule.tags) if t.id not in claimed]
            claimed.update(ids)
            if not ids:
                continue
            for tier in rule.tiers:
                assert self.rollups is not None  # checked in __init__
                self._roll_up(self.rollups, ids, tier.every_ns, now)
                if tier.keep_days is not None:
                    cutoff = now - round(tier.keep_days * NS_PER_DAY)
                    self.rollups.delete_rollup_before(tier.every_ns, ids, cutoff)
            deleted += self.store.delete_before(ids, now - round(rule.raw_days * NS_PER_DAY))
        self.deleted += deleted
        self.sweeps += 1
        if deleted:
            log.info("retention: deleted %d raw samples past their [[retention]] age", deleted)
        return deleted

    def _roll_up(self, rollups: Rollups, ids: list[int], every: int, now: int) -> None:
        """Aggregate the closed buckets since the tier's newest one (redone: it may have
        been written while still open) from raw samples, a window at a time."""
        end = now - now % every
        start = rollups.rollup_end(every, ids)
        if start is None:  # a new tier: from the oldest raw sample of these tags
            oldest = self.store.raw(ids, TimeRange(-(2**62), end), limit=1)
            if not len(oldest):
                return
            start = int(oldest.ts_ns[0]) - int(oldest.ts_ns[0]) % every
        window = every * 10_000
        for a in range(start, end, window):
            rollups.roll_up(every, ids, TimeRange(a, min(a + window, end)))

    async def run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.apply)
            except Exception:  # a failed sweep is retried at the next one
                self.failed_sweeps += 1
                log.exception("retention sweep failed; next try in %g s", RETENTION_EVERY_S)
            await asyncio.sleep(RETENTION_EVERY_S)

    def health(self) -> dict[str, Any]:
        return {
            "rules": len(self.rules),
            "deleted": self.deleted,
            "sweeps": self.sweeps,
            "failed_sweeps": self.failed_sweeps,
        }

    def problems(self) -> list[str]:
        return []
